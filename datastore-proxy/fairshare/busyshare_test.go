package fairshare

import (
	"context"
	"testing"
	"time"
)

// With one slot and a busy share of 1/2, a tenant that held the slot for
// d is held back for about d more while another tenant is active, and the
// other tenant is served in that time.
func TestBusyShareHoldsBackAFloodWhileOthersAreActive(t *testing.T) {
	activity := NewActivity()
	s := New(1, 0, activity).WithBusyShare(0.5)
	ctx := context.Background()
	activity.seen("quiet")

	release, err := s.Acquire(ctx, "flood")
	if err != nil {
		t.Fatal(err)
	}
	const held = 200 * time.Millisecond
	time.Sleep(held)
	release()

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
	start := time.Now()
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
		if waited := at.Sub(start); waited < held/2 {
			t.Fatalf("the flooding tenant waited %v after holding the only slot for %v; want about as long", waited, held)
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
		held       time.Duration
		wantHold   bool
	}{
		{"one slot, others active", 1, 0.5, true, 50 * time.Millisecond, true},
		{"alone", 1, 0.5, false, 50 * time.Millisecond, false},
		{"one of 32 slots", 32, 0.5, true, 50 * time.Millisecond, false},
		{"turned off", 1, 0, true, 50 * time.Millisecond, false},
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
			time.Sleep(tt.held)
			release()
			s.mu.Lock()
			defer s.mu.Unlock()
			if got := !s.allowed("t"); got != tt.wantHold {
				t.Fatalf("held back = %v, want %v (held until %v, now %v)", got, tt.wantHold, s.heldUntil["t"], time.Now())
			}
		})
	}
}
