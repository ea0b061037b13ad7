// Package fairshare shares the proxy's backend among tenants.
//
// Contract: at most Slots requests run against the backend at once. A
// tenant alone may use every slot. While more than one tenant is active
// (has requests running or waiting, or had one within ActiveWindow: a
// tenant sending one request at a time is active between its requests
// too), a tenant with Cap or more requests running waits, so no tenant can
// keep the backend to itself; waiting
// requests queue per tenant and freed slots go round-robin to the next
// tenant allowed to run (FIFO within a tenant). Slots left idle because
// every waiting tenant is at its cap are the price of that isolation.
// Acquire never blocks past its context.
package fairshare

import (
	"context"
	"sync"
	"time"
)

// ActiveWindow is how long after its last request a tenant still counts as
// active.
const ActiveWindow = 500 * time.Millisecond

// Scheduler hands out backend slots fairly.
type Scheduler struct {
	mu       sync.Mutex
	free     int
	cap      int // per-tenant running requests while shared; 0 = no cap
	inflight map[string]int
	queues   map[string][]chan struct{}
	ring     []string // tenants with waiters, next first
	activity *Activity
}

// Activity records when each tenant last asked for a slot. Schedulers
// that share one (reads and writes) see a tenant active in either as
// active in both.
type Activity struct {
	mu       sync.Mutex
	lastSeen map[string]time.Time
	now      func() time.Time
}

// NewActivity returns an empty activity record.
func NewActivity() *Activity {
	return &Activity{lastSeen: map[string]time.Time{}, now: time.Now}
}

// seen records tenant's activity, forgetting tenants idle past the window.
func (a *Activity) seen(tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.lastSeen[tenant] = now
	if len(a.lastSeen) > 64 {
		for t, at := range a.lastSeen {
			if now.Sub(at) >= ActiveWindow {
				delete(a.lastSeen, t)
			}
		}
	}
}

// othersActive reports whether a tenant other than tenant was seen within
// the window.
func (a *Activity) othersActive(tenant string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	for t, at := range a.lastSeen {
		if t != tenant && now.Sub(at) < ActiveWindow {
			return true
		}
	}
	return false
}

// New returns a scheduler with slots concurrent requests; while tenants
// contend, each may run at most perTenant of them (0: no such cap).
// Activity may be shared with other schedulers; nil gives it its own.
func New(slots, perTenant int, activity *Activity) *Scheduler {
	if slots < 1 {
		slots = 1
	}
	if activity == nil {
		activity = NewActivity()
	}
	return &Scheduler{free: slots, cap: perTenant, inflight: map[string]int{}, queues: map[string][]chan struct{}{}, activity: activity}
}

// Acquire waits for a slot for tenant; the returned release must be called
// once the request is done.
func (s *Scheduler) Acquire(ctx context.Context, tenant string) (func(), error) {
	release := func() { s.release(tenant) }
	if s.cap > 0 {
		s.activity.seen(tenant)
	}
	s.mu.Lock()
	if s.free > 0 && len(s.ring) == 0 && s.allowed(tenant) {
		s.free--
		s.inflight[tenant]++
		s.mu.Unlock()
		return release, nil
	}
	ch := make(chan struct{})
	if len(s.queues[tenant]) == 0 {
		s.ring = append(s.ring, tenant)
	}
	s.queues[tenant] = append(s.queues[tenant], ch)
	s.mu.Unlock()

	select {
	case <-ch:
		return release, nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-ch: // granted just now: give it back
			s.releaseLocked(tenant)
		default:
			s.dropLocked(tenant, ch)
		}
		return nil, ctx.Err()
	}
}

// allowed reports whether tenant may start one more request now.
func (s *Scheduler) allowed(tenant string) bool {
	if s.cap == 0 || s.inflight[tenant] < s.cap {
		return true
	}
	for t := range s.inflight {
		if t != tenant {
			return false
		}
	}
	for t := range s.queues {
		if t != tenant {
			return false
		}
	}
	return !s.activity.othersActive(tenant) // alone: no cap
}

func (s *Scheduler) release(tenant string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(tenant)
}

func (s *Scheduler) releaseLocked(tenant string) {
	if s.inflight[tenant]--; s.inflight[tenant] <= 0 {
		delete(s.inflight, tenant)
	}
	s.free++
	s.dispatchLocked()
}

// dispatchLocked hands free slots to waiting tenants, round-robin, skipping
// those at their cap.
func (s *Scheduler) dispatchLocked() {
	for s.free > 0 {
		i := -1
		for j, t := range s.ring {
			if s.allowed(t) {
				i = j
				break
			}
		}
		if i < 0 {
			return
		}
		tenant := s.ring[i]
		s.ring = append(s.ring[:i:i], s.ring[i+1:]...)
		q := s.queues[tenant]
		close(q[0])
		s.free--
		s.inflight[tenant]++
		if len(q) > 1 {
			s.queues[tenant] = q[1:]
			s.ring = append(s.ring, tenant)
		} else {
			delete(s.queues, tenant)
		}
	}
}

func (s *Scheduler) dropLocked(tenant string, ch chan struct{}) {
	q := s.queues[tenant]
	for i, c := range q {
		if c == ch {
			q = append(q[:i], q[i+1:]...)
			break
		}
	}
	if len(q) > 0 {
		s.queues[tenant] = q
		return
	}
	delete(s.queues, tenant)
	for i, t := range s.ring {
		if t == tenant {
			s.ring = append(s.ring[:i], s.ring[i+1:]...)
			break
		}
	}
	// Its leaving may make another waiter's tenant the only one.
	s.dispatchLocked()
}
