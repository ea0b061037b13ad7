// Package fairshare shares the proxy's backend among tenants.
//
// Contract: at most Slots requests run against the backend at once. When
// all slots are busy, waiting requests queue per tenant, and each slot that
// frees goes to the next tenant in round-robin order (FIFO within a
// tenant). So a tenant flooding the proxy with N concurrent requests
// delays another tenant's request by at most one slot turnover per active
// tenant, not by N. Acquire never blocks past its context.
package fairshare

import (
	"context"
	"sync"
)

// Scheduler hands out backend slots fairly.
type Scheduler struct {
	mu     sync.Mutex
	free   int
	queues map[string][]chan struct{}
	ring   []string // tenants with waiters, next first
}

// New returns a scheduler with slots concurrent requests.
func New(slots int) *Scheduler {
	if slots < 1 {
		slots = 1
	}
	return &Scheduler{free: slots, queues: map[string][]chan struct{}{}}
}

// Acquire waits for a slot for tenant; the returned release must be called
// once the request is done.
func (s *Scheduler) Acquire(ctx context.Context, tenant string) (func(), error) {
	s.mu.Lock()
	if s.free > 0 && len(s.ring) == 0 {
		s.free--
		s.mu.Unlock()
		return s.release, nil
	}
	ch := make(chan struct{})
	if len(s.queues[tenant]) == 0 {
		s.ring = append(s.ring, tenant)
	}
	s.queues[tenant] = append(s.queues[tenant], ch)
	s.mu.Unlock()

	select {
	case <-ch:
		return s.release, nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-ch: // granted just now: give it back
			s.releaseLocked()
		default:
			s.dropLocked(tenant, ch)
		}
		return nil, ctx.Err()
	}
}

func (s *Scheduler) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked()
}

// releaseLocked passes the slot to the next tenant in the ring, or frees it.
func (s *Scheduler) releaseLocked() {
	if len(s.ring) == 0 {
		s.free++
		return
	}
	tenant := s.ring[0]
	s.ring = s.ring[1:]
	q := s.queues[tenant]
	close(q[0])
	if len(q) > 1 {
		s.queues[tenant] = q[1:]
		s.ring = append(s.ring, tenant)
	} else {
		delete(s.queues, tenant)
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
}
