package etcdbackend

import (
	"context"
	"fmt"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// leaseCache turns kine's lease argument (a TTL in seconds) into real etcd
// leases, reusing one lease per TTL for a short window as kube-apiserver's
// own lease manager does: a key attached late in the window expires up to
// that window early, so the lease is granted for TTL plus the window.
type leaseCache struct {
	c  *clientv3.Client
	mu sync.Mutex
	by map[int64]cachedLease
}

type cachedLease struct {
	id      clientv3.LeaseID
	granted time.Time
}

func newLeaseCache(c *clientv3.Client) *leaseCache {
	return &leaseCache{c: c, by: map[int64]cachedLease{}}
}

// reuseWindow is 5% of the TTL, at most a minute.
func reuseWindow(ttl int64) time.Duration {
	w := time.Duration(ttl) * time.Second / 20
	return min(w, time.Minute)
}

// maxLeaseTTL is etcd's longest lease (lease.MaxLeaseTTL, about 285
// years); a longer TTL, such as a real lease ID a client sent where kine
// takes a TTL, is refused before the window arithmetic overflows.
const maxLeaseTTL = 9_000_000_000

func (l *leaseCache) get(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	if ttl > maxLeaseTTL {
		return 0, rpctypes.ErrGRPCLeaseTTLTooLarge // as it is: its code and message reach the client
	}
	window := reuseWindow(ttl)
	l.mu.Lock()
	defer l.mu.Unlock()
	if cl, ok := l.by[ttl]; ok && time.Since(cl.granted) < window {
		return cl.id, nil
	}
	resp, err := l.c.Grant(ctx, ttl+int64(window/time.Second))
	if err != nil {
		return 0, fmt.Errorf("etcd lease for ttl %ds: %w", ttl, mapErr(err))
	}
	l.by[ttl] = cachedLease{id: resp.ID, granted: time.Now()}
	return resp.ID, nil
}
