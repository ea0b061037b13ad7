// Package tenantbackend confines a shared kine backend to one tenant.
//
// Backend implements kine's server.Backend for a single tenant on top of the
// shared one: every key goes through the tenant's keyspace.Space on the way
// in, and every key value and event coming back is checked to be the
// tenant's and stripped of its prefix on the way out (anything else is
// dropped, never returned). Revisions are the shared store's: monotonic for
// every tenant, with gaps where other tenants wrote. Compaction requested by
// a tenant does nothing to the shared store: its history is compacted by the
// proxy's own policy only, so one tenant never removes another's history.
package tenantbackend

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"

	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/leaseid"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// Backend is one tenant's view of a shared backend.
type Backend struct {
	inner  server.Backend
	space  keyspace.Space
	limits func() tenantconfig.Limits
	usage  *quota.Usage
	// OnWatch, if set, is told of every watch the tenant's watch hub
	// starts (each on its own range of the store). It returns what to call
	// when the watch ends.
	OnWatch func() (done func())
	// OnWatchRefused, if set, is told of every watch refused for the
	// tenant's MaxWatches (watchlimit.go).
	OnWatchRefused func()
	// ProgressInterval is how often idle watches that asked for progress
	// notifications get them, on a store whose watch streams the proxy
	// serves itself (WatchStream); 0: never.
	ProgressInterval time.Duration
	// AdmitCatchUp, if set, is called before a watch from a past revision
	// reads its history, on a store whose watch streams the proxy serves
	// itself (the SQL backends: etcd reads its own): the read waits for it,
	// and calls release when done. An error ends the watch as a failed
	// catch-up does. The server takes one of the tenant's read slots here,
	// so that watches created from the past at once (every apiserver of a
	// restarted proxy's tenants) share the database as reads do.
	AdmitCatchUp func(ctx context.Context) (release func(), err error)

	watches atomic.Int64 // open or reserved now (watchlimit.go)
}

var _ server.Backend = (*Backend)(nil)

// New confines inner to the tenant's space. Writes are checked against the
// tenant's current limits and counted in usage (quota.go).
func New(inner server.Backend, space keyspace.Space, limits func() tenantconfig.Limits, usage *quota.Usage) *Backend {
	return &Backend{inner: inner, space: space, limits: limits, usage: usage}
}

// Start does nothing: the shared backend is started once by the proxy.
func (b *Backend) Start(context.Context) error { return nil }

// Get returns the tenant's key.
func (b *Backend) Get(ctx context.Context, key string, revision int64, keysOnly bool) (int64, *server.KeyValue, error) {
	rev, kv, err := b.inner.Get(ctx, b.space.Key(key), revision, keysOnly)
	return rev, b.own(kv), err
}

// Create creates the tenant's key, within its quota.
func (b *Backend) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	if err := checkLease(lease); err != nil {
		return 0, err
	}
	size := int64(len(key) + len(value))
	if err := b.admit(ctx, 1, size); err != nil {
		// A key that exists is not created, whatever the limits: the
		// create's compare fails first, as on etcd.
		if errors.Is(err, quota.ErrNoSpace) {
			if rev, kv, gerr := b.inner.Get(ctx, b.space.Key(key), 0, true); gerr == nil && kv != nil {
				return rev, server.ErrKeyExists
			}
		}
		return 0, err
	}
	rev, err := b.inner.Create(ctx, b.space.Key(key), value, lease)
	switch {
	case err == nil:
		b.usage.Add(1, size, rev)
	case maybeApplied(err):
		b.usage.Unsure(1, size)
	}
	return rev, err
}

// Delete deletes the tenant's key.
func (b *Backend) Delete(ctx context.Context, key string, revision int64) (int64, *server.KeyValue, bool, error) {
	rev, kv, ok, err := b.inner.Delete(ctx, b.space.Key(key), revision)
	b.deleteFailed(err)
	if ok && err == nil && kv != nil && kv.CreateRevision == 0 {
		// kine's SQL backends answer with the key alone: what it held, and
		// so the bytes the delete freed, is at the revision before.
		if _, old, err := b.inner.Get(ctx, kv.Key, rev-1, false); err == nil && old != nil {
			kv = old
		}
	}
	kv = b.own(kv)
	if ok && kv != nil {
		b.countDeleted(kv, rev)
	}
	return rev, kv, ok, err
}

// List lists the tenant's keys in [key, end).
func (b *Backend) List(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) (int64, []*server.KeyValue, error) {
	k, e := b.space.Range(key, end)
	rev, kvs, err := b.inner.List(ctx, k, e, limit, revision, keysOnly)
	return rev, b.ownAll(kvs), err
}

// ListStream streams the tenant's keys in [key, end).
func (b *Backend) ListStream(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) server.ListResult {
	k, e := b.space.Range(key, end)
	in := b.inner.ListStream(ctx, k, e, limit, revision, keysOnly)
	out := make(chan *server.KeyValue)
	go func() {
		defer close(out)
		for kv := range in.KVc {
			if own := b.own(kv); own != nil {
				select {
				case out <- own:
				case <-ctx.Done():
					return
				}
			}
		}
	}()
	return server.ListResult{CurrentRevision: in.CurrentRevision, KVc: out, Errorc: in.Errorc}
}

// Count counts the tenant's keys in [key, end).
func (b *Backend) Count(ctx context.Context, key, end string, revision int64) (int64, int64, error) {
	k, e := b.space.Range(key, end)
	return b.inner.Count(ctx, k, e, revision)
}

// watchHandoff is how many batches a watch of a shared backend without
// range watches passes on ahead of its reader, here (Watch). Few: what a
// slow reader leaves unread is held where it is bounded, not here.
const watchHandoff = 4

// Watch streams the tenant's changes after revision: kine's
// server.Backend.Watch, for kine's bridge. The proxy serves the tenant's
// watch streams itself (WatchStream; watchhub), with the tenant's limits
// and metrics, so the bridge never watches through it; this is the plain
// watch of the tenant's whole space, its events made the tenant's.
func (b *Backend) Watch(ctx context.Context, revision int64) server.WatchResult {
	if rw, ok := b.inner.(RangeWatcher); ok {
		key, end := b.space.Range("", "")
		return rw.WatchRange(ctx, key, end, revision, WatchHooks{Own: b.ownEvent})
	}
	in := b.inner.Watch(ctx, revision)
	out := make(chan server.EventBatch, watchHandoff)
	go func() {
		defer close(out)
		for batch := range in.Eventc {
			// A batch with no events of this tenant still carries the
			// revision, so progress notifications stay current.
			select {
			case out <- OwnBatch(batch, b.ownEvent):
			case <-ctx.Done():
				return
			}
		}
	}()
	return server.WatchResult{
		CurrentRevision: in.CurrentRevision,
		CompactRevision: in.CompactRevision,
		Eventc:          out,
		Errorc:          in.Errorc,
	}
}

// DbSize is not reported per tenant: the shared store's size would tell a
// tenant about the others.
func (b *Backend) DbSize(context.Context) (int64, error) { return 0, nil }

// CurrentRevision is the shared store's revision.
func (b *Backend) CurrentRevision(ctx context.Context) (int64, error) {
	return b.inner.CurrentRevision(ctx)
}

// A HighestReviser is a shared backend whose CurrentRevision may answer
// from memory, behind the store (kine's on SQL); HighestRevision reads
// the store's own.
type HighestReviser interface {
	HighestRevision(ctx context.Context) (int64, error)
}

// StoreRevision is the shared store's revision as the store itself has
// it: every revision a tenant was answered with is at or below it.
func (b *Backend) StoreRevision(ctx context.Context) (int64, error) {
	if h, ok := b.inner.(HighestReviser); ok {
		return h.HighestRevision(ctx)
	}
	return b.inner.CurrentRevision(ctx)
}

// Compact does not compact the shared store (see the package comment); it
// reports the current revision as the apiserver expects.
func (b *Backend) Compact(ctx context.Context, _ int64) (int64, error) {
	return b.inner.CurrentRevision(ctx)
}

// own returns kv with the tenant prefix stripped, or nil if kv is not the
// tenant's.
func (b *Backend) own(kv *server.KeyValue) *server.KeyValue {
	if kv == nil {
		return nil
	}
	key, ok := b.space.Strip(kv.Key)
	if !ok {
		return nil
	}
	c := *kv
	c.Key = key
	return &c
}

func (b *Backend) ownAll(kvs []*server.KeyValue) []*server.KeyValue {
	out := kvs[:0:0]
	for _, kv := range kvs {
		if own := b.own(kv); own != nil {
			out = append(out, own)
		}
	}
	return out
}

func (b *Backend) ownEvent(ev *server.Event) *server.Event {
	if ev == nil || ev.KV == nil {
		return nil
	}
	kv := b.own(ev.KV)
	if kv == nil {
		return nil
	}
	c := *ev
	c.KV = kv
	if ev.PrevKV != nil {
		c.PrevKV = b.own(ev.PrevKV)
	}
	return &c
}

// checkLease refuses a write with a lease (a TTL, in kine's model) longer
// than etcd's longest, as etcd refuses it; kine's expiry of such a key
// would overflow and delete it at once. A negative lease is no lease etcd
// could have granted: refused as etcd refuses a lease it does not know
// (the etcd backend wrote such a key with no lease, SQL with one that
// never expired).
func checkLease(lease int64) error {
	switch {
	case lease < 0:
		return rpctypes.ErrGRPCLeaseNotFound
	case lease > leaseid.MaxTTL:
		return rpctypes.ErrGRPCLeaseTTLTooLarge
	}
	return nil
}

// deleteFailed records a delete whose outcome is unknown (maybeApplied):
// the keys it may have freed stay counted, and the doubt makes the next
// write that could be refused for them start a recount (quota.Usage.Admit)
// rather than be refused until the periodic one.
func (b *Backend) deleteFailed(err error) {
	if maybeApplied(err) {
		b.usage.Unsure(0, 0)
	}
}
