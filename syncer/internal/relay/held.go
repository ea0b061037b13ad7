package relay

import (
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
)

// heldEvents keeps host Events that arrived before the relay's cache held
// the object they are about. Events and objects come on two watches with
// no order between them: the scheduler's Scheduled event can be read
// before the pod it names. A held Event is tried again until its object
// shows up or it has waited long enough; the oldest goes first when too
// many wait. Not safe for concurrent use: the events loop owns it.
type heldEvents struct {
	wait  time.Duration // how long one Event may wait
	limit int           // how many may wait at once
	items []heldEvent   // oldest first
}

type heldEvent struct {
	e     *corev1.Event
	until time.Time
}

// hold keeps e until now+wait. It returns the Event it had to let go to
// make room, if any.
func (h *heldEvents) hold(e *corev1.Event, now time.Time) (dropped *corev1.Event) {
	if h.limit <= 0 {
		return e
	}
	if len(h.items) >= h.limit {
		dropped = h.items[0].e
		h.items = h.items[1:]
	}
	h.items = append(h.items, heldEvent{e: e, until: now.Add(h.wait)})
	return dropped
}

// retry offers every held Event to try, which says whether the Event is
// done with (forwarded, or not for a tenant). Events not done are kept
// until they expire; expired ones are returned.
func (h *heldEvents) retry(now time.Time, try func(*corev1.Event) bool) (expired []*corev1.Event) {
	h.items = slices.DeleteFunc(h.items, func(it heldEvent) bool {
		switch {
		case try(it.e):
			return true
		case !now.Before(it.until):
			expired = append(expired, it.e)
			return true
		}
		return false
	})
	return expired
}

// supersede lets go of the held versions of e (same namespace and name):
// e is newer, and forwarding an older one after it would set the virtual
// Event back.
func (h *heldEvents) supersede(e *corev1.Event) {
	h.items = slices.DeleteFunc(h.items, func(it heldEvent) bool {
		return it.e.Namespace == e.Namespace && it.e.Name == e.Name
	})
}

// len is how many Events wait.
func (h *heldEvents) len() int { return len(h.items) }
