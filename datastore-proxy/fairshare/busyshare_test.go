package fairshare

import (
	"context"
	"testing"
	"time"
)

// With one slot and a busy share of 1/2, a flooding tenant (more requests
// waiting than it may run at once) that held the slot for d is held back
// for about d more while another tenant is active, and the other tenant is
// served in that time.
func TestBusyShareHoldsBackAFloodWhileOthersAreActive(t *testing.T) {
	activity := NewActivity()
	s := New(1, 0, activity).WithBusyShare(0.5)
	ctx := context.Background()
	activity.seen("quiet")

	release, err := s.Acquire(ctx, "flood")
	if err != nil {
		t.Fatal(err)
	}
	floodGot := make(chan time.Time, 2)
	for range 2 {
		go func() {
			r, err := s.Acquire(ctx, "flood")
			if err != nil {
				t.Error(err)
				return
			}
			floodGot <- time.Now()
			r()
		}()
	}
	waitQueued(t, s, "flood", 2)
	const held = 200 * time.Millisecond
	time.Sleep(held)
	released := time.Now()
	release()

	r, err := s.Acquire(ctx, "quiet")
	if err != nil {
		t.Fatal(err)
	}
	quietGot := time.Now()
	r()
	select {
	case at := <-floodGot:
		if at.Before(quietGot) {
			t.Fatalf("the flooding tenant was served before the quiet one, during its hold")
		}
		if waited := at.Sub(released); waited < held/2 {
			t.Fatalf("the flooding tenant's next request waited %v after it held the only slot for %v; want about as long", waited, held)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the flooding tenant was never served after its hold")
	}
}

// TestBusyShareHolds: whether a tenant is held back right after its
// request held a slot for 50 ms, by how many of its requests wait then.
func TestBusyShareHolds(t *testing.T) {
	tests := []struct {
		name       string
		slots, cap int
		share      float64
		othersSeen bool
		waiting    int // the tenant's requests waiting when it releases
		wantHold   bool
	}{
		{"one slot, others active, a flood", 1, 0, 0.5, true, 3, true},
		{"one slot, others active, its next request waiting", 1, 0, 0.5, true, 1, false},
		{"one slot, others active, one request at a time", 1, 0, 0.5, true, 0, false},
		{"capped at one, two waiting", 2, 1, 0.25, true, 2, true},
		{"capped at one, one waiting", 2, 1, 0.25, true, 1, false},
		{"alone", 1, 0, 0.5, false, 3, false},
		{"one of 32 slots", 32, 1, 0.5, true, 3, false},
		{"turned off", 1, 0, 0, true, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			activity := NewActivity()
			s := New(tt.slots, tt.cap, activity).WithBusyShare(tt.share)
			if tt.othersSeen {
				activity.seen("other")
			}
			release, err := s.Acquire(context.Background(), "t")
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			for range tt.waiting {
				// They queue: behind the one slot, or the cap of one.
				go func() { _, _ = s.Acquire(ctx, "t") }()
			}
			waitQueued(t, s, "t", tt.waiting)
			time.Sleep(50 * time.Millisecond)
			release()
			s.mu.Lock()
			defer s.mu.Unlock()
			if got := s.heldUntil["t"].After(time.Now()) && s.activity.othersActive("t"); got != tt.wantHold {
				t.Fatalf("held back = %v, want %v (held until %v, now %v)", got, tt.wantHold, s.heldUntil["t"], time.Now())
			}
		})
	}
}
