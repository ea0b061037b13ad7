// Package quota accounts what each tenant stores and refuses writes past
// its limits.
//
// Contract: Usage counts a tenant's keys and bytes (key + value length).
// It is loaded by scanning the tenant's space the first time a write needs
// it, and rescanned when older than RescanAfter (keys can also vanish
// without passing through the proxy: kine expires TTL keys itself). The
// rescan runs in the background: a large tenant's scan reads all its
// values, and the write that finds the count stale should not wait for it
// (it is checked against the count it has, at most RescanAfter old). Admit
// is asked before a write with what it adds; concurrent writers can
// overshoot a limit by what is in flight between Admit and Add, never
// more. A refused write gets etcd's "database space exceeded", which
// kube-apiserver reports for that tenant's request only.
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

// Usage is one tenant's stored keys and bytes.
type Usage struct {
	mu       sync.Mutex
	scanned  time.Time
	scanning bool // a rescan is running
	keys     int64
	bytes    int64
}

// rescanTimeout bounds a background rescan.
const rescanTimeout = time.Minute

// Snapshot returns the counts and whether they were ever loaded.
func (u *Usage) Snapshot() (keys, bytes int64, loaded bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.keys, u.bytes, !u.scanned.IsZero()
}

// Admit loads or refreshes the counts when needed and checks that adding
// keys and bytes stays within l.
func (u *Usage) Admit(ctx context.Context, l tenantconfig.Limits, scan Scan, keys, bytes int64) error {
	u.mu.Lock()
	loaded := !u.scanned.IsZero()
	if loaded && time.Since(u.scanned) > RescanAfter && !u.scanning {
		u.scanning = true
		go u.rescan(context.WithoutCancel(ctx), scan)
	}
	u.mu.Unlock()
	if !loaded {
		k, b, err := scan(ctx)
		if err != nil {
			return err
		}
		u.mu.Lock()
		if u.scanned.IsZero() { // a concurrent first write may have loaded it
			u.keys, u.bytes, u.scanned = k, b, time.Now()
		}
		u.mu.Unlock()
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if keys > 0 && l.MaxKeys > 0 && u.keys+keys > l.MaxKeys {
		return ErrNoSpace
	}
	if bytes > 0 && l.MaxBytes > 0 && u.bytes+bytes > l.MaxBytes {
		return ErrNoSpace
	}
	return nil
}

// rescan replaces the counts with a new scan. On failure the old counts
// stay, and the next write past RescanAfter tries again.
func (u *Usage) rescan(ctx context.Context, scan Scan) {
	ctx, cancel := context.WithTimeout(ctx, rescanTimeout)
	defer cancel()
	k, b, err := scan(ctx)
	u.mu.Lock()
	defer u.mu.Unlock()
	u.scanning = false
	if err == nil {
		u.keys, u.bytes, u.scanned = k, b, time.Now()
	}
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
