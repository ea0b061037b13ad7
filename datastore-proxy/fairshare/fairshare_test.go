package fairshare

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestRoundRobin: with one slot, a tenant that queued 50 requests first does
// not make a later tenant's single request wait behind any of them: the
// tenant served least recently goes first.
func TestRoundRobin(t *testing.T) {
	s := New(1, 0, nil)
	ctx := context.Background()
	hold, err := s.Acquire(ctx, "flood")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var order []string
	var wg sync.WaitGroup
	enqueue := func(tenant string) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			release, err := s.Acquire(ctx, tenant)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			order = append(order, tenant)
			mu.Unlock()
			release()
		}()
	}
	for range 50 {
		enqueue("flood")
	}
	waitQueued(t, s, "flood", 50)
	enqueue("quiet")
	waitQueued(t, s, "quiet", 1)
	hold()
	wg.Wait()
	for i, tenant := range order {
		if tenant == "quiet" {
			if i > 0 {
				t.Fatalf("quiet tenant served %dth, after %d flood requests; want first", i+1, i)
			}
			return
		}
	}
	t.Fatal("quiet tenant never served")
}

func TestCancelWhileQueued(t *testing.T) {
	s := New(1, 0, nil)
	hold, _ := s.Acquire(context.Background(), "a")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := s.Acquire(ctx, "b"); err == nil {
		t.Fatal("acquire succeeded while the only slot was held")
	}
	hold()
	// The cancelled waiter left no trace: the slot is free again.
	release, err := s.Acquire(context.Background(), "c")
	if err != nil {
		t.Fatal(err)
	}
	release()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.free != 1 || len(s.ring) != 0 || len(s.queues) != 0 || len(s.inflight) != 0 {
		t.Fatalf("state after all released: free=%d ring=%v queues=%d", s.free, s.ring, len(s.queues))
	}
}

func waitQueued(t *testing.T, s *Scheduler, tenant string, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s.mu.Lock()
		got := len(s.queues[tenant])
		s.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s has %d queued, want %d", tenant, got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCapWhileShared: a tenant alone may use every slot; once another
// tenant waits, the first cannot start more than the cap until it is below
// it, and the newcomer is served first.
func TestCapWhileShared(t *testing.T) {
	s := New(4, 1, nil)
	ctx := context.Background()
	var held []func()
	for range 4 {
		r, err := s.Acquire(ctx, "flood")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, r)
	}
	got := make(chan string, 8)
	acquire := func(tenant string) {
		go func() {
			r, err := s.Acquire(ctx, tenant)
			if err != nil {
				t.Error(err)
				return
			}
			got <- tenant
			_ = r // held until the test ends
		}()
	}
	acquire("flood")
	waitQueued(t, s, "flood", 1)
	acquire("quiet")
	waitQueued(t, s, "quiet", 1)
	held[0]() // one flood request ends: quiet, not flood, gets the slot
	if first := <-got; first != "quiet" {
		t.Fatalf("first served after a release: %s, want quiet", first)
	}
	held[1]() // flood still has 2 running (cap 1, quiet active): no grant
	select {
	case tenant := <-got:
		t.Fatalf("%s served while flood is over its cap", tenant)
	case <-time.After(50 * time.Millisecond):
	}
	held[2]()
	held[3]() // flood at 0 running: its waiter may go
	select {
	case tenant := <-got:
		if tenant != "flood" {
			t.Fatalf("got %s", tenant)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("flood's waiter never served")
	}
}

// A tenant that waits at its cap only because another was active a
// moment ago gets a free slot once the other's ActiveWindow has passed,
// while its own request still runs: it had waited for that request to
// end, however long.
func TestACappedTenantLeftAloneGetsAFreeSlot(t *testing.T) {
	s := New(4, 1, nil)
	ctx := context.Background()
	r, err := s.Acquire(ctx, "other")
	if err != nil {
		t.Fatal(err)
	}
	r() // other is gone, but active for ActiveWindow
	long, err := s.Acquire(ctx, "alone")
	if err != nil {
		t.Fatal(err)
	}
	defer long()
	start := time.Now()
	got := make(chan time.Duration, 1)
	go func() {
		r, err := s.Acquire(ctx, "alone")
		if err != nil {
			t.Error(err)
			return
		}
		got <- time.Since(start)
		r()
	}()
	select {
	case waited := <-got:
		if waited < ActiveWindow/2 {
			t.Fatalf("the second request went past the cap after %s, while the other tenant was active", waited)
		}
	case <-time.After(ActiveWindow + 2*time.Second):
		t.Fatalf("the second request still waits %s after the other tenant's window ended, its first still running", 2*time.Second)
	}
}
