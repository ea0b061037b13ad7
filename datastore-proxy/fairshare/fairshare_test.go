package fairshare

import (
	"context"
	"sync"
	"testing"
	"time"
)

// TestRoundRobin: with one slot, a tenant that queued 50 requests first does
// not make a later tenant's single request wait behind all 50.
func TestRoundRobin(t *testing.T) {
	s := New(1)
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
			if i > 1 {
				t.Fatalf("quiet tenant served %dth, after %d flood requests; want within the first 2", i+1, i)
			}
			return
		}
	}
	t.Fatal("quiet tenant never served")
}

func TestCancelWhileQueued(t *testing.T) {
	s := New(1)
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
	if s.free != 1 || len(s.ring) != 0 || len(s.queues) != 0 {
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
