// Package fairshare shares the proxy's backend among tenants.
//
// Contract: at most Slots requests run against the backend at once. A
// tenant alone may use every slot. While more than one tenant is active
// (has requests running or waiting, or had one within ActiveWindow: a
// tenant sending one request at a time is active between its requests
// too), a tenant with Cap or more requests running waits, so no tenant can
// keep the backend to itself; waiting requests queue per tenant (FIFO
// within a tenant) and a freed slot goes to the waiting tenant, allowed to
// run, that was served least recently: backlogged tenants take turns, and
// a tenant that was idle goes before every tenant served since, so a
// tenant sending one request at a time waits for at most the requests
// already running. With a busy share (WithBusyShare), a flooding tenant
// (more requests waiting than its cap lets run at once) that has used more
// than that share of the slots' time also waits while another tenant, not
// itself flooding, is busy (has a request asked for and not done, or had
// one done within BusyWindow). Slots left idle because every waiting
// tenant is at its cap or held back are the price of that isolation; a
// hold never outlasts the others' being busy by more than its own length,
// nor a cap the others' being active by more than BusyWindow. Acquire
// never blocks past its context.
package fairshare

import (
	"context"
	"sync"
	"time"
)

// MaxHold bounds how far ahead of now a flooding tenant's clock
// (WithBusyShare) may run, unless one request's charge alone is more: the
// longest a flood waits, beyond its share, when a neighbour that was busy
// now and then (and charged the flood for each of those moments) stays
// busy. Unbounded, the charges piled up to seconds in a unit test. The
// bound has a price: a neighbour putting every 100 ms beside a flood on
// SQLite measured put p50 x1.3-x2.1 unbounded, x2.3-x6.3 at a second and
// x7.5-x8.9 at 500 ms (two runs each, noisy), as the piled-up clock held
// the flood back for the whole of each moment the neighbour was busy.
const MaxHold = time.Second

// maxCharge bounds one request's charge (WithBusyShare): a year, however
// small the share.
const maxCharge = 365 * 24 * time.Hour

// Scheduler hands out backend slots fairly.
type Scheduler struct {
	mu       sync.Mutex
	free     int
	slots    int
	cap      int // per-tenant running requests while shared; 0 = no cap
	inflight map[string]int
	queues   map[string][]chan struct{}
	ring     []string // tenants with waiters, in the order they queued
	activity *Activity
	// served is the grant number of the last grant of each tenant with
	// requests running or waiting (idle tenants have none: 0, served
	// before everyone); seq numbers the grants.
	served map[string]uint64
	seq    uint64

	busyShare float64              // 0: off (WithBusyShare)
	heldUntil map[string]time.Time // tenants held back after their last request
	timer     *time.Timer          // dispatches when the first hold ends (one, re-armed)
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
	return &Scheduler{free: slots, slots: slots, cap: perTenant, inflight: map[string]int{}, queues: map[string][]chan struct{}{}, activity: activity, heldUntil: map[string]time.Time{}, served: map[string]uint64{}}
}

// WithBusyShare bounds, while another tenant is busy, the share of the
// slots' time a flooding tenant may use: each request that held a slot for
// d while more of its tenant's requests were waiting than the cap lets run
// at once (flooding), and another tenant was busy, moves the tenant's
// clock on by d/(share*slots), from the request's start or the clock's
// last place, whichever is later, to at most MaxHold (or that one charge)
// ahead of now, and the tenant starts no request while its clock is ahead
// of now and another tenant is busy. With one slot and a share of 1/2, a
// flooding tenant that just held the slot for d waits d more. Busy, not
// merely active: a neighbour that sent a request 400 ms ago and none since
// leaves the flood the whole backend; when the share was held whenever
// others had been active within ActiveWindow, a tenant's burst of writes
// on SQLite (a sixteenth of the write slot) ran at a sixteenth of
// SQLite's write rate beside tenants doing next to nothing, and an
// apiserver's requests timed out after a minute in the queue (CI,
// session 23). Two floods do not hold each other back: they
// take turns. Never held either: a tenant alone; a tenant sending one
// request at a time, however long (it takes turns with the others); a
// tenant that only has its next requests ready, up to its cap's worth
// (with a cap of one, a second write waiting behind the running one),
// which the cap and the turns already keep in line. Why not those: on
// MySQL, a share that also held back ten tenants' second writers cost
// them a quarter of their throughput (docs/benchmarks.md, session 22).
// share <= 0 or >= 1 turns it off.
func (s *Scheduler) WithBusyShare(share float64) *Scheduler {
	if share <= 0 || share >= 1 {
		share = 0
	}
	s.busyShare = share
	return s
}

// Acquire waits for a slot for tenant; the returned release must be called
// once the request is done.
func (s *Scheduler) Acquire(ctx context.Context, tenant string) (func(), error) {
	tracked := s.cap > 0 || s.busyShare > 0
	if tracked {
		s.activity.begin(tenant)
	}
	done := func() {
		if tracked {
			s.activity.end(tenant)
		}
	}
	granted := func() func() {
		start := time.Now()
		return func() {
			s.release(tenant, start)
			done()
		}
	}
	s.mu.Lock()
	if s.free > 0 && len(s.ring) == 0 && s.allowed(tenant) {
		s.grantLocked(tenant)
		s.mu.Unlock()
		return granted(), nil
	}
	ch := make(chan struct{})
	if len(s.queues[tenant]) == 0 {
		s.ring = append(s.ring, tenant)
	}
	s.queues[tenant] = append(s.queues[tenant], ch)
	if s.free > 0 {
		s.dispatchLocked() // a hold may be all that keeps it waiting
	}
	s.mu.Unlock()

	select {
	case <-ch:
		return granted(), nil
	case <-ctx.Done():
		s.mu.Lock()
		defer s.mu.Unlock()
		select {
		case <-ch: // granted just now: give it back
			s.releaseLocked(tenant, time.Time{})
		default:
			s.dropLocked(tenant, ch)
		}
		done()
		return nil, ctx.Err()
	}
}

// allowed reports whether tenant may start one more request now.
func (s *Scheduler) allowed(tenant string) bool {
	if until, ok := s.heldUntil[tenant]; ok {
		if !time.Now().Before(until) {
			delete(s.heldUntil, tenant)
		} else if s.othersBusyLocked(tenant) {
			return false
		}
	}
	if s.cap == 0 || s.inflight[tenant] < s.cap {
		return true
	}
	return s.aloneLocked(tenant) && !s.activity.othersActive(tenant) // alone: no cap
}

// aloneLocked reports whether no tenant but tenant has requests running or
// waiting here.
func (s *Scheduler) aloneLocked(tenant string) bool {
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
	return true
}

func (s *Scheduler) release(tenant string, start time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.releaseLocked(tenant, start)
}

// releaseLocked frees the slot of tenant's request that started at start
// (zero: it never ran).
func (s *Scheduler) releaseLocked(tenant string, start time.Time) {
	if s.busyShare > 0 && !start.IsZero() && s.floodingLocked(tenant) && s.othersBusyLocked(tenant) {
		from := s.heldUntil[tenant]
		if start.After(from) {
			from = start
		}
		now := time.Now()
		// At most maxCharge: a share small enough made the quotient
		// overflow a Duration, into a charge that held nothing.
		charge := time.Duration(min(float64(now.Sub(start))/(s.busyShare*float64(s.slots)), float64(maxCharge)))
		// The clock runs on while nobody is busy and the flood is let
		// past it, but never more than MaxHold (or this one charge)
		// ahead: charges of every moment a neighbour was busy would
		// otherwise pile up, and a neighbour that then stayed busy would
		// find the flood held back for all of them at once.
		until := from.Add(charge)
		if limit := now.Add(max(charge, MaxHold)); until.After(limit) {
			until = limit
		}
		s.heldUntil[tenant] = until
		s.pruneHoldsLocked(tenant, now)
	}
	if s.inflight[tenant]--; s.inflight[tenant] <= 0 {
		delete(s.inflight, tenant)
		s.forgetIfIdleLocked(tenant)
	}
	s.free++
	s.dispatchLocked()
}

// floodingLocked reports whether tenant has more requests waiting than its
// cap lets run at once (one when there is no cap).
func (s *Scheduler) floodingLocked(tenant string) bool {
	return len(s.queues[tenant]) > max(s.cap, 1)
}

// othersBusyLocked reports whether a tenant other than tenant, and not
// itself flooding here, is busy (Activity.othersBusy): the only reason to
// hold tenant back. Two floods here are not held back for each other:
// they take turns. A tenant that floods only the other scheduler sharing
// the Activity (reads, writes) counts as busy here, and is held back
// there by a flood here in the same way: each is load on the one backend
// the other's requests go to.
func (s *Scheduler) othersBusyLocked(tenant string) bool {
	return s.activity.othersBusy(tenant, s.floodingLocked)
}

// grantLocked gives tenant a slot.
func (s *Scheduler) grantLocked(tenant string) {
	s.free--
	s.inflight[tenant]++
	s.seq++
	s.served[tenant] = s.seq
}

// pruneHoldsLocked forgets the holds of tenants other than tenant that
// have ended by now. A hold is otherwise dropped only when its tenant
// asks again (allowed), so every tenant that ever flooded and went (a
// deleted cluster) kept its entry for the proxy's life. Tenant's own
// is kept: its next charge runs on from it.
func (s *Scheduler) pruneHoldsLocked(tenant string, now time.Time) {
	for t, until := range s.heldUntil {
		if t != tenant && !now.Before(until) {
			delete(s.heldUntil, t)
		}
	}
}

// forgetIfIdleLocked drops the turn of a tenant with nothing running or
// waiting: when it comes back, it goes before every tenant served since.
func (s *Scheduler) forgetIfIdleLocked(tenant string) {
	if s.inflight[tenant] == 0 && len(s.queues[tenant]) == 0 {
		delete(s.served, tenant)
	}
}

// dispatchLocked hands free slots to waiting tenants, each to the one
// served least recently (the first queued among equals), skipping those at
// their cap or held back.
func (s *Scheduler) dispatchLocked() {
	for s.free > 0 {
		i := -1
		for j, t := range s.ring {
			if (i < 0 || s.served[t] < s.served[s.ring[i]]) && s.allowed(t) {
				i = j
			}
		}
		if i < 0 {
			s.wakeAtFirstHoldLocked()
			return
		}
		tenant := s.ring[i]
		s.ring = append(s.ring[:i:i], s.ring[i+1:]...)
		q := s.queues[tenant]
		close(q[0])
		s.grantLocked(tenant)
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
	s.forgetIfIdleLocked(tenant)
	// Its leaving may make another waiter's tenant the only one.
	s.dispatchLocked()
}

// wakeAtFirstHoldLocked dispatches again when the first hold of a waiting
// tenant ends, as no release may come before then, or within BusyWindow
// if sooner: a hold lasts only while others are busy, and their being done
// (in another scheduler, or by the window's passing) dispatches nothing
// here. So too, every BusyWindow, while a tenant alone here waits at its
// cap only because others are active elsewhere or were within
// ActiveWindow: once they are not, it is alone and has every slot, where
// it waited for one of its own requests to end (seconds, for a long list
// or catch-up).
func (s *Scheduler) wakeAtFirstHoldLocked() {
	var first time.Time
	capped := false
	for _, t := range s.ring {
		if until, ok := s.heldUntil[t]; ok {
			if first.IsZero() || until.Before(first) {
				first = until
			}
		} else if s.aloneLocked(t) {
			capped = true
		}
	}
	wait := BusyWindow
	switch {
	case !first.IsZero():
		wait = min(time.Until(first), BusyWindow)
	case !capped:
		return
	}
	if s.timer == nil {
		s.timer = time.AfterFunc(wait, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			s.dispatchLocked()
		})
		return
	}
	s.timer.Reset(wait)
}
