package fairshare

import (
	"context"
	"testing"
	"time"
)

// With one slot and a busy share of 1/2, a tenant with a backlog that held
// the slot for d is held back for about d more while another tenant is
// active, and the other tenant is served in that time.
func TestBusyShareHoldsBackAFloodWhileOthersAreActive(t *testing.T) {
	activity := NewActivity()
	s := New(1, 0, activity).WithBusyShare(0.5)
	ctx := context.Background()
	activity.seen("quiet")

	release, err := s.Acquire(ctx, "flood")
	if err != nil {
		t.Fatal(err)
	}
	floodGot := make(chan time.Time, 1)
	go func() {
		r, err := s.Acquire(ctx, "flood")
		if err != nil {
			t.Error(err)
			return
		}
		floodGot <- time.Now()
		r()
	}()
	waitQueued(t, s, "flood", 1)
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

func TestBusyShareHolds(t *testing.T) {
	tests := []struct {
		name       string
		slots      int
		share      float64
		othersSeen bool
		backlog    bool // another request of the tenant waits when it releases
		wantHold   bool
	}{
		{"one slot, others active, a backlog", 1, 0.5, true, true, true},
		{"one slot, others active, one request at a time", 1, 0.5, true, false, false},
		{"alone", 1, 0.5, false, true, false},
		{"one of 32 slots", 32, 0.5, true, true, false},
		{"turned off", 1, 0, true, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			activity := NewActivity()
			s := New(tt.slots, 0, activity).WithBusyShare(tt.share)
			if tt.othersSeen {
				activity.seen("other")
			}
			release, err := s.Acquire(context.Background(), "t")
			if err != nil {
				t.Fatal(err)
			}
			if tt.backlog {
				// With one slot the second request queues; with 32 it
				// runs, and so is running when the first releases.
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				got := make(chan func(), 1)
				go func() {
					if r, err := s.Acquire(ctx, "t"); err == nil {
						got <- r
					}
				}()
				if tt.slots == 1 {
					waitQueued(t, s, "t", 1)
				} else {
					defer (<-got)()
				}
			}
			time.Sleep(50 * time.Millisecond)
			release()
			s.mu.Lock()
			defer s.mu.Unlock()
			if got := !s.allowed("t"); got != tt.wantHold {
				t.Fatalf("held back = %v, want %v (held until %v, now %v)", got, tt.wantHold, s.heldUntil["t"], time.Now())
			}
		})
	}
}
