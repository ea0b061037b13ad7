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
type leaseCache struct {
	lc etcdserverpb.LeaseClient
	mu sync.Mutex
	by map[int64]cachedLease // by TTL class
}

type cachedLease struct {
	id      clientv3.LeaseID
	granted time.Time
}

func newLeaseCache(c *clientv3.Client) *leaseCache {
	l := &leaseCache{by: map[int64]cachedLease{}}
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

func (l *leaseCache) get(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	if ttl > maxLeaseTTL {
		return 0, rpctypes.ErrGRPCLeaseTTLTooLarge // as it is: its code and message reach the client
	}
	class := ttlClass(ttl)
	window := reuseWindow(class)
	l.mu.Lock()
	defer l.mu.Unlock()
	if cl, ok := l.by[class]; ok && time.Since(cl.granted) < window {
		return cl.id, nil
	}
	grant := class + int64((window+time.Second-1)/time.Second)
	var err error
	for range grantAttempts {
		id := leaseid.New(class, rand.Uint64())
		// The window runs from before the request: etcd starts the
		// lease's time no earlier, so a key attached at the window's end
		// still has its whole TTL.
		start := time.Now()
		_, err = l.lc.LeaseGrant(ctx, &etcdserverpb.LeaseGrantRequest{ID: id, TTL: grant})
		if err == nil {
			l.by[class] = cachedLease{id: clientv3.LeaseID(id), granted: start}
			return clientv3.LeaseID(id), nil
		}
		if !errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist) {
			break
		}
	}
	return 0, fmt.Errorf("etcd lease for ttl %ds: %w", ttl, mapErr(err))
}
