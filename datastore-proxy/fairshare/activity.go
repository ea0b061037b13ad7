package fairshare

import (
	"sync"
	"time"
)

// ActiveWindow is how long after its last request a tenant still counts as
// active: sharing the backend with it, so held to its cap.
const ActiveWindow = 500 * time.Millisecond

// BusyWindow is how long after its last request ended a tenant still
// counts as busy: using the backend, so a reason to hold a flood back. A
// tenant sending one request after another is busy between them (its
// client turns one answer into the next request well within it, even on
// two loaded cores); a tenant that stopped is not, and a flood then has
// the backend to itself, not a share of it.
const BusyWindow = 20 * time.Millisecond

// Activity records which tenants use the backend and when they last did.
// Schedulers that share one (reads and writes) see a tenant active or busy
// in either as such in both.
type Activity struct {
	mu       sync.Mutex
	lastSeen map[string]time.Time // each tenant's last request
	pending  map[string]int       // requests asked for and not yet done, per tenant
	lastDone map[string]time.Time // when each tenant's last request was done
	now      func() time.Time

	prunedSeen, prunedDone time.Time // forgetOlder's last sweep of each map
}

// NewActivity returns an empty activity record.
func NewActivity() *Activity {
	return &Activity{lastSeen: map[string]time.Time{}, pending: map[string]int{}, lastDone: map[string]time.Time{}, now: time.Now}
}

// begin records that tenant asked for a slot; end must follow once the
// request is done or given up.
func (a *Activity) begin(tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	a.lastSeen[tenant] = now
	a.pending[tenant]++
	forgetOlder(a.lastSeen, now, ActiveWindow, &a.prunedSeen)
}

// end records that one of tenant's requests is done.
func (a *Activity) end(tenant string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.now()
	if a.pending[tenant]--; a.pending[tenant] <= 0 {
		delete(a.pending, tenant)
	}
	a.lastDone[tenant] = now
	forgetOlder(a.lastDone, now, BusyWindow, &a.prunedDone)
}

// forgetOlder drops, once m has grown past 64 tenants, those last seen a
// window or more ago, which no question asks about any more; at most once
// a window (*pruned: the last sweep), as every request calls it and a
// platform's hundreds of active tenants would otherwise be swept on each.
func forgetOlder(m map[string]time.Time, now time.Time, window time.Duration, pruned *time.Time) {
	if len(m) <= 64 || now.Sub(*pruned) < window {
		return
	}
	*pruned = now
	for t, at := range m {
		if now.Sub(at) >= window {
			delete(m, t)
		}
	}
}

// othersActive reports whether a tenant other than tenant has a request
// asked for and not done, or asked for a slot within ActiveWindow. (The
// first is what a scheduler sharing the Activity knows of a tenant whose
// request runs or waits in the other: one long write, and a read flood
// beside it was taken for alone after ActiveWindow and given every read
// slot.)
func (a *Activity) othersActive(tenant string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for t := range a.pending {
		if t != tenant {
			return true
		}
	}
	now := a.now()
	for t, at := range a.lastSeen {
		if t != tenant && now.Sub(at) < ActiveWindow {
			return true
		}
	}
	return false
}

// othersBusy reports whether a tenant other than tenant, and not one that
// flooding reports, has a request asked for and not done, or had one done
// within BusyWindow.
func (a *Activity) othersBusy(tenant string, flooding func(string) bool) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	for t := range a.pending {
		if t != tenant && !flooding(t) {
			return true
		}
	}
	now := a.now()
	for t, at := range a.lastDone {
		if t != tenant && now.Sub(at) < BusyWindow && !flooding(t) {
			return true
		}
	}
	return false
}
