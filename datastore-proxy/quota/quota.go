// Package quota accounts what each tenant stores and refuses writes past
// its limits.
//
// Contract: Usage counts a tenant's keys and bytes (key + value length).
// It is loaded by scanning the tenant's space the first time a write needs
// it, and rescanned when older than RescanAfter (keys can also vanish
// without passing through the proxy: kine expires TTL keys itself). A scan
// reads all the tenant's values, so only a tenant with a key or byte limit
// waits for its first one, and one scan serves every write that waits for
// it; a tenant without limits is counted in the background (for its
// metrics), as is every rescan, and at most MaxBackgroundScans of those
// run at once in the proxy: a restart under load does not send every
// tenant's whole space through the proxy at the same moment. A write that
// finds the count stale is checked against the count it has, at most
// RescanAfter old. Admit is asked before a write with what it adds;
// concurrent writers can overshoot a limit by what is in flight between
// Admit and Add, never more. A refused write gets etcd's "database space
// exceeded", which kube-apiserver reports for that tenant's request only.
package quota

import (
	"context"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"kplex.dev/datastore-proxy/tenantconfig"
)

// RescanAfter is how old a count may get before the next write rescans.
const RescanAfter = 2 * time.Minute

// ErrNoSpace is what a write past a limit gets.
var ErrNoSpace = rpctypes.ErrGRPCNoSpace

// Scan counts the keys and bytes a tenant stores.
type Scan func(ctx context.Context) (keys, bytes int64, err error)

// MaxBackgroundScans is how many background scans run at once, over all
// tenants.
const MaxBackgroundScans = 2

// backgroundScans holds a token for each background scan running.
var backgroundScans = make(chan struct{}, MaxBackgroundScans)

// Usage is one tenant's stored keys and bytes.
type Usage struct {
	mu      sync.Mutex
	scanned time.Time
	run     *scanRun // the scan running, nil when none
	keys    int64
	bytes   int64
}

// scanRun is one scan; done is closed when err is set.
type scanRun struct {
	done chan struct{}
	err  error
}

// scanTimeout bounds a scan.
const scanTimeout = time.Minute

// Snapshot returns the counts and whether they were ever loaded.
func (u *Usage) Snapshot() (keys, bytes int64, loaded bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.keys, u.bytes, !u.scanned.IsZero()
}

// Admit loads or refreshes the counts when needed and checks that adding
// keys and bytes stays within l.
func (u *Usage) Admit(ctx context.Context, l tenantconfig.Limits, scan Scan, keys, bytes int64) error {
	limited := l.MaxKeys > 0 || l.MaxBytes > 0
	u.mu.Lock()
	loaded := !u.scanned.IsZero()
	if !loaded && limited {
		run := u.run
		if run == nil {
			run = u.startLocked(ctx, scan, false)
		}
		u.mu.Unlock()
		select {
		case <-run.done:
		case <-ctx.Done():
			return ctx.Err()
		}
		if run.err != nil {
			return run.err
		}
		u.mu.Lock()
	} else if u.run == nil && (!loaded || time.Since(u.scanned) > RescanAfter) {
		u.startLocked(ctx, scan, true)
	}
	defer u.mu.Unlock()
	if keys > 0 && l.MaxKeys > 0 && u.keys+keys > l.MaxKeys {
		return ErrNoSpace
	}
	if bytes > 0 && l.MaxBytes > 0 && u.bytes+bytes > l.MaxBytes {
		return ErrNoSpace
	}
	return nil
}

// startLocked starts a scan whose result replaces the counts (on failure
// the old counts stay, and a later write tries again). It outlives ctx,
// the first asker's, but keeps its values (trace context). A background
// scan first waits for one of the MaxBackgroundScans tokens.
func (u *Usage) startLocked(ctx context.Context, scan Scan, background bool) *scanRun {
	run := &scanRun{done: make(chan struct{})}
	u.run = run
	go func() {
		if background {
			backgroundScans <- struct{}{}
			defer func() { <-backgroundScans }()
		}
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), scanTimeout)
		k, b, err := scan(sctx)
		cancel()
		u.mu.Lock()
		u.run = nil
		if err == nil {
			u.keys, u.bytes, u.scanned = k, b, time.Now()
		}
		run.err = err
		u.mu.Unlock()
		close(run.done)
	}()
	return run
}

// Add records a write that happened.
func (u *Usage) Add(keys, bytes int64) {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.scanned.IsZero() {
		return // not loaded: the first scan will count it
	}
	u.keys += keys
	u.bytes += bytes
}
