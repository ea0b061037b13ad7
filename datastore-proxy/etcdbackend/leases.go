package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"math/rand/v2"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/leaseid"
)

// leaseCache turns kine's lease argument (a TTL in seconds) into real etcd
// leases, reusing one lease per TTL class for a window, as kube-apiserver's
// own lease manager reuses one per TTL: a key attached late in the window
// would expire up to that window early, so the lease is granted for the
// class plus the window, and a key lives from its TTL to its TTL plus
// 1/32 (the class) plus the window.
//
// The leases in etcd are shared by every tenant and so must stay bounded
// whatever tenants do. A TTL is one of 930 classes (ttlClass), and
// each class has at most about 101 leases alive at once (reuseWindow), so
// however many distinct TTLs tenants put keys with, the proxy holds at
// most 930 cached leases and keeps at most about 94,000 alive in
// etcd. Before classes, every distinct TTL was a lease of its own, and a
// TTL of years a new one each minute: a tenant could fill the shared etcd
// with leases.
//
// The IDs are the proxy's own (leaseid), so a key's lease reads as its
// TTL class, never as an ID that other tenants' keys share.
//
// A class's grant is one at a time, and no lock is held while it runs:
// the callers of that class wait for it, each no longer than its own
// context, and every other class goes on. (A lock held across the grant
// made every tenant's TTL writes wait for one slow grant, even after
// their own deadlines.) The grant does not end with the caller that
// started it: it has a context of its own, grantTimeout long.
type leaseCache struct {
	lc       etcdserverpb.LeaseClient
	mu       sync.Mutex
	by       map[int64]cachedLease // by TTL class
	granting map[int64]*grantCall  // the grant running for a class
}

type cachedLease struct {
	id      clientv3.LeaseID
	granted time.Time
}

// grantCall is one grant of a class's lease; id and err are set when done
// is closed.
type grantCall struct {
	done chan struct{}
	id   clientv3.LeaseID
	err  error
}

// grantTimeout bounds one grant, whoever waits for it.
const grantTimeout = 30 * time.Second

func newLeaseCache(c *clientv3.Client) *leaseCache {
	l := &leaseCache{by: map[int64]cachedLease{}, granting: map[int64]*grantCall{}}
	if c != nil {
		l.lc = clientv3.RetryLeaseClient(c)
	}
	return l
}

// maxLeaseTTL is etcd's longest lease (lease.MaxLeaseTTL, about 285
// years); a longer TTL, such as a real lease ID a client sent where kine
// takes a TTL, is refused before the window arithmetic overflows.
const maxLeaseTTL = 9_000_000_000

// topClass is the longest TTL class: its lease, granted for it plus its
// window, is etcd's longest. A TTL above it (282 years) gets it.
const topClass = maxLeaseTTL - maxLeaseTTL/100

// ttlClass rounds ttl (seconds, > 0) up to one of 32 steps per doubling,
// at most 1/32 more; TTLs below 64 s are their own class.
func ttlClass(ttl int64) int64 {
	n := bits.Len64(uint64(ttl))
	if n <= 6 {
		return ttl
	}
	step := int64(1) << (n - 6)
	return min((ttl+step-1)&^(step-1), topClass)
}

// reuseWindow is how long one lease serves a TTL class: 5% of it, at most
// a minute as kube-apiserver's lease manager has it, but at least 1%, so
// that a class never has more than about 101 leases alive.
func reuseWindow(class int64) time.Duration {
	w := min(time.Duration(class)*time.Second/20, time.Minute)
	return max(w, time.Duration(class)*time.Second/100)
}

// grantAttempts is how often an ID is drawn before giving up: a random ID
// meets one in use about once in 2^29.
const grantAttempts = 3

// get returns a lease that keeps a key at least ttl seconds: its class's
// lease, granted now unless one granted within the class's window serves.
func (l *leaseCache) get(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	if ttl > maxLeaseTTL {
		return 0, rpctypes.ErrGRPCLeaseTTLTooLarge // as it is: its code and message reach the client
	}
	class := ttlClass(ttl)
	window := reuseWindow(class)
	l.mu.Lock()
	if cl, ok := l.by[class]; ok && time.Since(cl.granted) < window {
		l.mu.Unlock()
		return cl.id, nil
	}
	g := l.granting[class]
	if g == nil {
		g = &grantCall{done: make(chan struct{})}
		l.granting[class] = g
		go l.grant(context.WithoutCancel(ctx), class, window, g)
	}
	l.mu.Unlock()
	select {
	case <-g.done:
		return g.id, g.err
	case <-ctx.Done():
		return 0, ctx.Err()
	}
}

// grant grants class's lease for the class plus its window, caches it,
// and hands it to g's waiters.
func (l *leaseCache) grant(ctx context.Context, class int64, window time.Duration, g *grantCall) {
	ctx, cancel := context.WithTimeout(ctx, grantTimeout)
	defer cancel()
	id, start, err := l.grantOnce(ctx, class+int64((window+time.Second-1)/time.Second), class)
	l.mu.Lock()
	if err == nil {
		l.by[class] = cachedLease{id: id, granted: start}
	}
	delete(l.granting, class)
	l.mu.Unlock()
	g.id, g.err = id, err
	close(g.done)
}

// grantOnce grants a lease of ttl seconds with an ID of class, drawing
// another ID if the one drawn is taken; start is when the request went.
func (l *leaseCache) grantOnce(ctx context.Context, ttl, class int64) (clientv3.LeaseID, time.Time, error) {
	var err error
	for range grantAttempts {
		id := leaseid.New(class, rand.Uint64())
		// The window runs from before the request: etcd starts the
		// lease's time no earlier, so a key attached at the window's end
		// still has its whole TTL.
		start := time.Now()
		_, err = l.lc.LeaseGrant(ctx, &etcdserverpb.LeaseGrantRequest{ID: id, TTL: ttl})
		if err == nil {
			return clientv3.LeaseID(id), start, nil
		}
		if !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist) {
			break
		}
	}
	return 0, time.Time{}, fmt.Errorf("etcd lease for TTL class %ds: %w", class, mapErr(err))
}
