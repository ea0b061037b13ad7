package relay

import (
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

func TestHeldEvents(t *testing.T) {
	t0 := time.Unix(1000, 0)
	ev := func(name string) *corev1.Event { return &corev1.Event{ObjectMeta: metav1.ObjectMeta{Name: name}} }
	names := func(es []*corev1.Event) []string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return out
	}
	type step struct {
		at      time.Duration // after t0
		hold    string        // an Event to hold, or "" to retry
		newer   string        // a newer version of this Event arrives (before hold)
		ready   []string      // Events whose object is cached at this retry
		dropped string        // the Event hold lets go of
		expired []string      // Events retry gives up on
		tried   []string      // Events retry offers, in order
		left    int
	}
	tests := []struct {
		name  string
		limit int
		steps []step
	}{
		{name: "an event is forwarded once its object is cached", limit: 10, steps: []step{
			{at: 0, hold: "a", left: 1},
			{at: time.Second, tried: []string{"a"}, left: 1},
			{at: 2 * time.Second, ready: []string{"a"}, tried: []string{"a"}, left: 0},
			{at: 3 * time.Second, left: 0},
		}},
		{name: "an event waits no longer than wait", limit: 10, steps: []step{
			{at: 0, hold: "a", left: 1},
			{at: 4 * time.Second, hold: "b", left: 2},
			{at: 9 * time.Second, tried: []string{"a", "b"}, left: 2},
			{at: 10 * time.Second, tried: []string{"a", "b"}, expired: []string{"a"}, left: 1},
			{at: 14 * time.Second, tried: []string{"b"}, expired: []string{"b"}, left: 0},
		}},
		{name: "a ready event is forwarded even when its wait is over", limit: 10, steps: []step{
			{at: 0, hold: "a", left: 1},
			{at: 20 * time.Second, ready: []string{"a"}, tried: []string{"a"}, left: 0},
		}},
		{name: "the oldest goes when too many wait", limit: 2, steps: []step{
			{at: 0, hold: "a", left: 1},
			{at: 1, hold: "b", left: 2},
			{at: 2, hold: "c", dropped: "a", left: 2},
			{at: 3, ready: []string{"c"}, tried: []string{"b", "c"}, left: 1},
		}},
		{name: "a newer version lets go of the held one", limit: 10, steps: []step{
			{at: 0, hold: "a", left: 1},
			{at: 1, hold: "b", left: 2},
			{at: 2, newer: "a", left: 1},
			{at: 3, tried: []string{"b"}, left: 1},
			{at: 4, newer: "b", hold: "b", left: 1},
			{at: 5, ready: []string{"b"}, tried: []string{"b"}, left: 0},
		}},
		{name: "no room at all", limit: 0, steps: []step{
			{at: 0, hold: "a", dropped: "a", left: 0},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := &heldEvents{wait: 10 * time.Second, limit: tt.limit}
			for i, s := range tt.steps {
				now := t0.Add(s.at)
				if s.newer != "" {
					h.supersede(ev(s.newer))
				}
				if s.hold != "" {
					got := ""
					if d := h.hold(ev(s.hold), now); d != nil {
						got = d.Name
					}
					if got != s.dropped {
						t.Fatalf("step %d: hold let go of %q, want %q", i, got, s.dropped)
					}
				} else if s.newer == "" {
					var tried []string
					expired := h.retry(now, func(e *corev1.Event) bool {
						tried = append(tried, e.Name)
						return slices.Contains(s.ready, e.Name)
					})
					if !slices.Equal(tried, s.tried) || !slices.Equal(names(expired), s.expired) {
						t.Fatalf("step %d: tried %v expired %v, want %v and %v", i, tried, names(expired), s.tried, s.expired)
					}
				}
				if h.len() != s.left {
					t.Fatalf("step %d: %d held, want %d", i, h.len(), s.left)
				}
			}
		})
	}
}
