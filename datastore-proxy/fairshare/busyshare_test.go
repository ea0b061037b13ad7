package fairshare

import (
	"context"
	"maps"
	"sync"
	"testing"
	"time"
)

// busyReader makes tenant busy (a read running in a scheduler that shares
// activity) until the returned func is called.
func busyReader(t *testing.T, activity *Activity, tenant string) func() {
	t.Helper()
	release, err := New(4, 2, activity).Acquire(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	return release
}

// With one slot and a busy share of 1/2, a flooding tenant (more requests
// waiting than it may run at once) that held the slot for d is held back
// for about d more while another tenant is busy, and the other tenant is
// served in that time.
func TestBusyShareHoldsBackAFloodWhileAnotherIsBusy(t *testing.T) {
	activity := NewActivity()
	s := New(1, 0, activity).WithBusyShare(0.5)
	ctx := context.Background()
	defer busyReader(t, activity, "quiet")()

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
// request held a slot for 50 ms, by how many of its requests wait then
// and what the other tenant does.
func TestBusyShareHolds(t *testing.T) {
	const (
		none     = "none"     // no other tenant
		busy     = "busy"     // a read running
		idle     = "idle"     // one request, done past BusyWindow, within ActiveWindow
		flooding = "flooding" // three requests waiting in the same scheduler
	)
	tests := []struct {
		name       string
		slots, cap int
		share      float64
		other      string
		waiting    int // the tenant's requests waiting when it releases
		wantHold   bool
	}{
		{"one slot, another busy, a flood", 1, 0, 0.5, busy, 3, true},
		{"one slot, another busy, its next request waiting", 1, 0, 0.5, busy, 1, false},
		{"one slot, another busy, one request at a time", 1, 0, 0.5, busy, 0, false},
		{"capped at one, two waiting", 2, 1, 0.25, busy, 2, true},
		{"capped at one, one waiting", 2, 1, 0.25, busy, 1, false},
		{"alone", 1, 0, 0.5, none, 3, false},
		{"another active, not busy", 1, 0, 0.0625, idle, 3, false},
		{"another flooding too", 1, 0, 0.0625, flooding, 3, false},
		{"one of 32 slots", 32, 1, 0.5, busy, 3, false},
		{"turned off", 1, 0, 0, busy, 3, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			activity := NewActivity()
			s := New(tt.slots, tt.cap, activity).WithBusyShare(tt.share)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			switch tt.other {
			case busy:
				defer busyReader(t, activity, "other")()
			case idle:
				r, err := s.Acquire(ctx, "other")
				if err != nil {
					t.Fatal(err)
				}
				r()
				time.Sleep(2 * BusyWindow)
			}
			release, err := s.Acquire(ctx, "t")
			if err != nil {
				t.Fatal(err)
			}
			if tt.other == flooding {
				for range 3 {
					go func() { _, _ = s.Acquire(ctx, "other") }()
				}
				waitQueued(t, s, "other", 3)
			}
			for range tt.waiting {
				// They queue: behind the one slot, or the cap of one.
				go func() { _, _ = s.Acquire(ctx, "t") }()
			}
			waitQueued(t, s, "t", tt.waiting)
			time.Sleep(50 * time.Millisecond)
			if tt.other == idle && !activity.othersActive("t") {
				t.Fatal("the other tenant is no longer active: the row tests nothing")
			}
			release()
			s.mu.Lock()
			defer s.mu.Unlock()
			if got := s.heldUntil["t"].After(time.Now()) && s.othersBusyLocked("t"); got != tt.wantHold {
				t.Fatalf("held back = %v, want %v (held until %v, now %v)", got, tt.wantHold, s.heldUntil["t"], time.Now())
			}
		})
	}
}

// TestBusyShareLeavesAFloodTheBackendBesideAQuietTenant: a tenant that
// sends a short request every 100 ms (an apiserver renewing leases) is
// active all the time but busy a fraction of it, and slows a flood down by
// about that fraction, however small the share. When the share held a
// flood back whenever another tenant was active, the flood ran at a
// sixteenth of the slot.
func TestBusyShareLeavesAFloodTheBackendBesideAQuietTenant(t *testing.T) {
	activity := NewActivity()
	s := New(1, 0, activity).WithBusyShare(0.0625)
	ctx, cancel := context.WithCancel(context.Background())
	quietDone := make(chan struct{})
	go func() {
		defer close(quietDone)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			r, err := s.Acquire(ctx, "quiet")
			if err != nil {
				return
			}
			r()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	defer func() { cancel(); <-quietDone }()

	hold, err := s.Acquire(ctx, "flood")
	if err != nil {
		t.Fatal(err)
	}
	const n, each = 20, 10 * time.Millisecond
	done := make(chan struct{}, n)
	for range n {
		go func() {
			r, err := s.Acquire(ctx, "flood")
			if err != nil {
				t.Error(err)
				return
			}
			time.Sleep(each)
			r()
			done <- struct{}{}
		}()
	}
	waitQueued(t, s, "flood", n)
	start := time.Now()
	hold()
	for range n {
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			t.Fatal("the flood's requests never all ran")
		}
	}
	// Held to a sixteenth, the n requests would take 16*n*each (3.2 s);
	// beside a tenant busy a fifth of the time, about n*each*5/4.
	if took, heldBack := time.Since(start), 4*n*each; took >= heldBack {
		t.Fatalf("%d requests of %v took %v beside a tenant sending one request every 100 ms; held back towards the share (%v or more)", n, each, took, heldBack)
	}
}

// TestBusyShareDebtDoesNotPileUp: a flood that ran beside a tenant busy
// now and then is not held back, once that tenant stays busy, for the
// charges of all those moments: its clock runs at most MaxHold ahead.
// Held back for all of them, it would wait seconds for its next slot
// here, and its apiserver's requests minutes on a platform.
func TestBusyShareDebtDoesNotPileUp(t *testing.T) {
	activity := NewActivity()
	s := New(1, 0, activity).WithBusyShare(0.0625)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const each = 5 * time.Millisecond
	served := make(chan time.Time, 1024)
	var floods sync.WaitGroup
	defer func() { cancel(); floods.Wait() }()
	for range 4 { // four writers: three wait while one runs
		floods.Go(func() {
			for ctx.Err() == nil {
				r, err := s.Acquire(ctx, "flood")
				if err != nil {
					return
				}
				select {
				case served <- time.Now():
				default:
				}
				time.Sleep(each)
				r()
			}
		})
	}
	// Two seconds of a neighbour putting every 30 ms: charges of about
	// three seconds, past MaxHold.
	for end := time.Now().Add(2 * time.Second); time.Now().Before(end); time.Sleep(30 * time.Millisecond) {
		r, err := s.Acquire(ctx, "quiet")
		if err != nil {
			t.Fatal(err)
		}
		r()
	}
	// Then it stays busy: the flood gets a sixteenth, one request of
	// 5 ms per 80 ms or so; its next within MaxHold.
	defer busyReader(t, activity, "quiet")()
	busy := time.Now()
	timeout := time.After(MaxHold + 250*time.Millisecond)
	for granted := busy; !granted.After(busy); {
		select {
		case granted = <-served:
			continue
		case <-timeout:
		}
		s.mu.Lock()
		until := s.heldUntil["flood"]
		s.mu.Unlock()
		t.Fatalf("the flood was not served for %v once its neighbour stayed busy; held until %v from now", MaxHold+250*time.Millisecond, time.Until(until))
	}
}

// However small the share, a flood's charge holds it back: with a share
// near the smallest float, the charge overflowed a Duration into a
// negative one, and the flood was never held.
func TestATinyBusyShareStillHolds(t *testing.T) {
	for _, share := range []float64{1e-3, 1e-12, 1e-300, 5e-324} {
		activity := NewActivity()
		s := New(1, 0, activity).WithBusyShare(share)
		ctx := context.Background()
		quiet := busyReader(t, activity, "quiet")
		release, err := s.Acquire(ctx, "flood")
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			go func() {
				if r, err := s.Acquire(ctx, "flood"); err == nil {
					r()
				}
			}()
		}
		waitQueued(t, s, "flood", 2)
		time.Sleep(5 * time.Millisecond)
		release()
		s.mu.Lock()
		until := s.heldUntil["flood"]
		s.mu.Unlock()
		if !until.After(time.Now().Add(MaxHold / 2)) {
			t.Errorf("share %g: the flood is held until %s from now; want at least %s", share, time.Until(until), MaxHold/2)
		}
		quiet() // the flood's waiters are let past once the quiet tenant's window ends
	}
}

// A tenant held back that floods no more is forgotten once its hold has
// ended and another's begins: the holds do not grow with every tenant
// that ever flooded (a deleted cluster's apiserver, its requests given up).
func TestEndedHoldsAreForgotten(t *testing.T) {
	activity := NewActivity()
	s := New(1, 0, activity).WithBusyShare(0.5)
	defer busyReader(t, activity, "quiet")()
	gone := floodAndGo(t, s, "gone")
	until, ok := gone["gone"]
	if !ok {
		t.Fatalf("holds %v: the first flood was not held back; the test sets up nothing", gone)
	}
	time.Sleep(time.Until(until) + 10*time.Millisecond)
	if _, ok := s.holds()["gone"]; !ok {
		t.Fatal("the ended hold was dropped before another began: the test shows nothing")
	}
	next := floodAndGo(t, s, "next")
	if _, ok := next["gone"]; ok {
		t.Fatalf("holds %v: the ended hold of a tenant that went is still kept", next)
	}
	if _, ok := next["next"]; !ok {
		t.Fatalf("holds %v: the second flood was not held back", next)
	}
}

// holds copies the scheduler's holds.
func (s *Scheduler) holds() map[string]time.Time {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.heldUntil)
}

// floodAndGo makes tenant flood s and go: its request holds the slot for
// 20 ms with two more waiting, which are given up once it ends. It
// returns the holds right after the request ended.
func floodAndGo(t *testing.T, s *Scheduler, tenant string) map[string]time.Time {
	t.Helper()
	release, err := s.Acquire(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	ctx, giveUp := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r, err := s.Acquire(ctx, tenant); err == nil {
				r()
			}
		}()
	}
	waitQueued(t, s, tenant, 2)
	time.Sleep(20 * time.Millisecond)
	release()
	holds := s.holds()
	giveUp()
	wg.Wait()
	return holds
}
