// Package ownership decides which shard serves which tenant, and fences a
// shard that lost a tenant so it cannot write for it any more.
//
//   - Membership: every shard puts a heartbeat in the NATS KV bucket
//     kplex-shards every TTL/6; a shard is live while its heartbeats keep
//     arriving (judged by when this shard received them, never by clocks
//     of other machines).
//   - Assignment: rendezvous hashing over the live shards: each tenant
//     goes to the shard with the highest hash(tenant, shard), so adding or
//     removing a shard moves only the tenants whose highest shard changed.
//   - Ownership: the KV bucket kplex-owners holds, per tenant, the owning
//     shard; it is taken with compare-and-set on the key's revision, which
//     is the lease's epoch. A shard takes a tenant over from a holder only
//     when that holder is no longer live, and then waits TTL/2 before
//     writing.
//   - Fencing: a lease is valid for TTL/2 after its holder last read its
//     own record unchanged (re-read every TTL/6). A frozen or partitioned
//     holder stops re-reading, so its lease lapses TTL/2 after its last
//     read; the new owner writes no earlier than TTL (membership) + TTL/2
//     after that read. After a SIGSTOP, the monotonic clock has moved on:
//     the resumed holder's lease is already invalid, and its next read
//     shows the new epoch. Every write a shard makes for a tenant goes
//     through a client that refuses to send while the lease is invalid
//     (see Fence). What remains is a request whose bytes were already
//     being written when the holder froze: the kernel delivers them at
//     once, long before a new owner may write.
package ownership

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sort"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"kplex.dev/api/bus"
)

// Buckets.
const (
	ShardsBucket = "kplex-shards"
	OwnersBucket = bus.OwnersBucket
)

// Coordinator is one shard's view of membership and its leases.
type Coordinator struct {
	shard  string
	ttl    time.Duration
	log    *slog.Logger
	shards jetstream.KeyValue
	owners jetstream.KeyValue

	mu       sync.Mutex
	lastSeen map[string]time.Time // shard -> when its last heartbeat arrived
	started  time.Time
}

// Buckets of relay leader election: the relays are members, and the
// one lease is RelayLease.
const (
	RelaysBucket      = "kplex-relays"
	RelayLeaderBucket = "kplex-relay-leader"
	RelayLease        = "relay"
)

// New creates the shard buckets if needed. ttl is the membership timeout
// (failover takes about ttl + ttl/2).
func New(ctx context.Context, js jetstream.JetStream, shard string, ttl time.Duration, log *slog.Logger) (*Coordinator, error) {
	return NewIn(ctx, js, ShardsBucket, OwnersBucket, shard, ttl, log)
}

// NewIn is New with other buckets (the relays' leader election).
func NewIn(ctx context.Context, js jetstream.JetStream, membersBucket, leasesBucket, shard string, ttl time.Duration, log *slog.Logger) (*Coordinator, error) {
	// File storage: a memory bucket is gone after a NATS restart, and
	// every heartbeat after it would fail.
	shards, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: membersBucket, History: 1, TTL: time.Minute, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", membersBucket, err)
	}
	owners, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: leasesBucket, History: 1, Storage: jetstream.FileStorage})
	if err != nil {
		return nil, fmt.Errorf("bucket %s: %w", leasesBucket, err)
	}
	return &Coordinator{shard: shard, ttl: ttl, log: log, shards: shards, owners: owners, lastSeen: map[string]time.Time{}}, nil
}

// Shard is this shard's name.
func (c *Coordinator) Shard() string { return c.shard }

// Run heartbeats and watches the other shards' heartbeats until ctx ends.
func (c *Coordinator) Run(ctx context.Context) error {
	w, err := c.watch(ctx)
	if err != nil {
		return err
	}
	defer func() { w.stop() }()
	beat := time.NewTicker(c.ttl / 6)
	defer beat.Stop()
	last := time.Now()
	for {
		if gap := time.Since(last); gap > c.ttl/2 {
			// This process was paused (SIGSTOP, a stalled VM): what it
			// knows of the others is stale, so it learns membership again
			// before it may take any tenant (Settled is false meanwhile).
			c.log.Warn("membership view is stale after a pause; relearning it", "paused", gap.String())
			c.relearn()
		}
		last = time.Now()
		b, _ := json.Marshal(map[string]any{"shard": c.shard, "at": time.Now().UTC()})
		if _, err := c.shards.Put(ctx, c.shard, b); err != nil && ctx.Err() == nil {
			c.log.Warn("heartbeat failed", "err", err)
		}
		// Our own heartbeats come back through the watch; when they stop
		// (NATS restarted under the watcher), watch again.
		if w.quietFor() > c.ttl/2 && ctx.Err() == nil {
			c.log.Warn("membership watch went quiet; watching again")
			w.stop()
			if nw, err := c.watch(ctx); err == nil {
				w = nw
			} else {
				c.log.Warn("membership watch failed; retrying", "err", err)
			}
		}
		select {
		case <-ctx.Done():
			// Leaving: say so, so tenants move at once rather than after ttl.
			dctx, cancel := context.WithTimeout(context.Background(), time.Second)
			_ = c.shards.Delete(dctx, c.shard)
			cancel()
			return nil
		case <-beat.C:
		}
	}
}

func (c *Coordinator) relearn() {
	c.mu.Lock()
	c.lastSeen = map[string]time.Time{}
	c.started = time.Now()
	c.mu.Unlock()
}

// watcher follows the membership bucket.
type watcher struct {
	w       jetstream.KeyWatcher
	mu      sync.Mutex
	ownSeen time.Time
}

func (w *watcher) stop() { _ = w.w.Stop() }

func (w *watcher) quietFor() time.Duration {
	w.mu.Lock()
	defer w.mu.Unlock()
	return time.Since(w.ownSeen)
}

// watch starts following heartbeats. The first values are old heartbeats
// (a dead shard's too): only heartbeats that arrive from now on count, so
// a new watch relearns membership (Settled is false for ttl/2).
func (c *Coordinator) watch(ctx context.Context) (*watcher, error) {
	kw, err := c.shards.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch membership: %w", err)
	}
	w := &watcher{w: kw, ownSeen: time.Now()}
	c.relearn()
	go func() {
		initial := true
		for e := range kw.Updates() {
			if e == nil {
				initial = false
				continue
			}
			if initial {
				continue
			}
			now := time.Now()
			if e.Key() == c.shard {
				w.mu.Lock()
				w.ownSeen = now
				w.mu.Unlock()
			}
			c.mu.Lock()
			if e.Operation() == jetstream.KeyValuePut {
				c.lastSeen[e.Key()] = now
			} else {
				delete(c.lastSeen, e.Key()) // a shard that left
			}
			c.mu.Unlock()
		}
	}()
	return w, nil
}

// Live lists the shards whose heartbeats arrived within ttl, sorted. A
// shard that started watching less than ttl/2 ago may not have seen every
// live shard's heartbeat yet; Settled says so.
func (c *Coordinator) Live() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	now := time.Now()
	var out []string
	for s, t := range c.lastSeen {
		if now.Sub(t) < c.ttl {
			out = append(out, s)
		}
	}
	sort.Strings(out)
	return out
}

// Settled reports whether this shard has watched membership long enough
// (ttl/2: three heartbeats of every live shard) to know who is live.
func (c *Coordinator) Settled() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return !c.started.IsZero() && time.Since(c.started) >= c.ttl/2
}

func (c *Coordinator) live(shard string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	t, ok := c.lastSeen[shard]
	return ok && time.Since(t) < c.ttl
}

// Owner is the live shard a tenant belongs to (rendezvous hashing).
func Owner(tenant string, live []string) string {
	best, bestScore := "", uint64(0)
	for _, s := range live {
		h := fnv.New64a()
		h.Write([]byte(tenant))
		h.Write([]byte{0})
		h.Write([]byte(s))
		if score := mix(h.Sum64()); best == "" || score > bestScore || (score == bestScore && s < best) {
			best, bestScore = s, score
		}
	}
	return best
}

// mix is murmur3's 64-bit finalizer: FNV alone scores shard names that
// differ in their last byte too alike (one shard of four took half the
// tenants).
func mix(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Desired reports whether this shard should own a tenant now.
func (c *Coordinator) Desired(tenant string) bool {
	live := c.Live()
	if len(live) == 0 {
		return false
	}
	return Owner(tenant, live) == c.shard
}

// ErrHeld means another live shard holds the tenant.
var ErrHeld = errors.New("held by another live shard")

type record = bus.OwnerRecord

// TryAcquire takes a tenant's lease if it is free, already this shard's,
// or held by a shard that is no longer live. It returns ErrHeld when a live
// shard holds it (that shard releases it once it sees it should not).
func (c *Coordinator) TryAcquire(ctx context.Context, tenant string) (*Lease, error) {
	val, _ := json.Marshal(record{Shard: c.shard, Since: time.Now().UTC()})
	e, err := c.owners.Get(ctx, tenant)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		rev, err := c.owners.Create(ctx, tenant, val)
		if err != nil {
			return nil, fmt.Errorf("acquire %s: %w", tenant, err)
		}
		return c.newLease(ctx, tenant, rev, 0)
	case err != nil:
		return nil, fmt.Errorf("acquire %s: %w", tenant, err)
	}
	var cur record
	_ = json.Unmarshal(e.Value(), &cur)
	if cur.Shard != c.shard && c.live(cur.Shard) {
		return nil, ErrHeld
	}
	rev, err := c.owners.Update(ctx, tenant, val, e.Revision())
	if err != nil {
		return nil, fmt.Errorf("acquire %s from %s: %w", tenant, cur.Shard, err)
	}
	// Taking over (also from this shard's own earlier life): the previous
	// holder's lease may run for up to ttl/2 after its last read.
	c.log.Info("took tenant over", "tenant", tenant, "from", cur.Shard, "epoch", rev)
	return c.newLease(ctx, tenant, rev, c.ttl/2)
}
