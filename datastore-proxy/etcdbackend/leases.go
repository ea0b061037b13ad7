package etcdbackend

import (
	"context"
	"errors"
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
// whatever tenants do. A TTL is one of 930 classes (ttlClass), and each
// class has a window lease for at most about 101 windows alive at once
// (reuseWindow), so however many distinct TTLs tenants put keys with, the
// proxy holds at most 930 cached leases and etcd about 94,000 window
// leases. A full lease is followed by another, one per maxKeysPerLease
// keys attached: in classes up to two hours those expire within about
// twice the class, and in longer ones at most maxRandomLeases follow in a
// row (below), so what a replica can add there is bounded by the windows'
// pace (days to years), not by how fast tenants write. Before classes,
// every distinct TTL was a lease of its own, and a TTL of years a new one
// each minute; before the bound on full leases, a tenant attaching keys
// fast (or, before release, failing to) made etcd hold a new lease every
// thousand writes, for as long as the class.
//
// The IDs are the proxy's own (leaseid), so a key's lease reads as its
// TTL class, never as an ID that other tenants' keys share. Their other
// bits number the class's window (windowSeq), so that every replica of
// the proxy, and a proxy restarted, grants the same lease in one window:
// the bound above holds for etcd, not for each proxy process. A grant
// that finds its lease granted already (by another replica) takes it for
// as long as its time left keeps a key of the class (adopt).
//
// A lease serves at most maxKeysPerLease keys, as kube-apiserver's own
// lease manager has it: when a lease expires, etcd deletes all its keys in
// one transaction, and hundreds of tenants' Events on one lease would make
// that one transaction hold tens of thousands of deletes. A full lease is
// followed by one of a random ID within its window (in a long class up
// to maxRandomLeases in a row, after which the last takes every key until
// the window's next lease); each replica counts the keys it attaches
// itself, and a write that attached none (it failed, or the key was on
// that lease already) gives its place back.
//
// A cached lease that etcd no longer has (revoked by hand, or etcd
// restored from a backup) is forgotten when a write finds it missing, and
// the write is tried once more with a lease granted anew (forget).
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
	id    clientv3.LeaseID
	until time.Time // the last moment a key of the class may be attached
	keys  int       // attached through this cache so far
	// randoms counts the leases of random IDs granted, each when the one
	// before was full, since the class's last window lease.
	randoms int
}

// roomy reports whether cl, a lease of class, takes another key: it has
// room, or the class is a long one that has had its share of leases for
// now (maxRandomLeases).
func (cl cachedLease) roomy(class int64) bool {
	return cl.keys < maxKeysPerLease || class > maxUncappedClass && cl.randoms >= maxRandomLeases
}

// maxUncappedClass is the longest TTL class whose full leases are
// followed by as many more as its keys need. Its leases expire within the
// class plus its window, so those alive are bounded by the keys attached
// in the last two hours, however fast; kube-apiserver's Events (an hour)
// are in such a class. The leases of longer classes live for days to
// centuries: there maxRandomLeases bounds the leases in a row, and past
// it one lease takes more than maxKeysPerLease keys.
const maxUncappedClass = 2 * 60 * 60

// maxKeysPerLease is how many keys one lease serves (kube-apiserver's
// defaultLeaseMaxObjectCount); a variable for tests.
var maxKeysPerLease = 1000

// maxRandomLeases bounds the leases of random IDs that follow a long
// class's window lease (maxUncappedClass), each when the one before is
// full; past it the last one takes every key. A key counts when a write
// attaches it (release), but a tenant can attach keys over and over
// (write, delete, write again), and leases are granted for the class plus
// its window (285 years for the longest) and never revoked: without a
// bound a tenant writing fast made etcd hold a new lease every thousand
// writes, forever. A variable for tests.
var maxRandomLeases = 16

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

// maxLeaseTTL is etcd's longest lease; a longer TTL is refused (by
// tenantbackend for every backend, and here again) before the window
// arithmetic overflows.
const maxLeaseTTL = leaseid.MaxTTL

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

// grantAttempts is how often a random ID is drawn, after the window's own
// ID, before giving up: a random ID meets one in use about once in 2^29.
const grantAttempts = 3

// windowSeq numbers the window of class that t falls in, in the bits that
// leaseid leaves random: the window's lease has the same ID on every
// replica. It wraps after 2^29 windows, long after a lease of the class
// (the class plus a window, at most 101 windows) has expired.
func windowSeq(t time.Time, window time.Duration) uint64 {
	return uint64(t.UnixNano()/int64(window)) << (leaseid.TTLBits + 1)
}

// get returns a lease that keeps a key at least ttl seconds: its class's
// lease, granted now unless one granted within the class's window serves.
func (l *leaseCache) get(ctx context.Context, ttl int64) (clientv3.LeaseID, error) {
	if ttl > maxLeaseTTL {
		return 0, rpctypes.ErrGRPCLeaseTTLTooLarge // as it is: its code and message reach the client
	}
	class := ttlClass(ttl)
	window := reuseWindow(class)
	for {
		l.mu.Lock()
		cl, ok := l.by[class]
		live := ok && time.Now().Before(cl.until)
		if live && cl.roomy(class) {
			cl.keys++
			l.by[class] = cl
			l.mu.Unlock()
			return cl.id, nil
		}
		g := l.granting[class]
		if g == nil {
			g = &grantCall{done: make(chan struct{})}
			l.granting[class] = g
			// A full lease may be the window's own: the next is not.
			go l.grant(context.WithoutCancel(ctx), class, window, live, g)
		}
		l.mu.Unlock()
		select {
		case <-g.done:
			if g.err != nil {
				return 0, g.err
			}
			// The grant's lease is taken even if the grant outlasted its
			// window (a short class's is 50 ms), but like any only while
			// it has room: a burst that waited for it may fill it.
			l.mu.Lock()
			if cl, ok := l.by[class]; ok && cl.id == g.id && cl.roomy(class) {
				cl.keys++
				l.by[class] = cl
				l.mu.Unlock()
				return cl.id, nil
			}
			l.mu.Unlock()
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// grant grants class's lease for the class plus its window, caches it,
// and hands it to g's waiters.
func (l *leaseCache) grant(ctx context.Context, class int64, window time.Duration, random bool, g *grantCall) {
	ctx, cancel := context.WithTimeout(ctx, grantTimeout)
	defer cancel()
	cl, err := l.grantOnce(ctx, class+int64((window+time.Second-1)/time.Second), class, window, random)
	l.mu.Lock()
	if err == nil {
		if prev, ok := l.by[class]; ok && random {
			cl.randoms = prev.randoms + 1
		}
		l.by[class] = cl
	}
	delete(l.granting, class)
	l.mu.Unlock()
	g.id, g.err = cl.id, err
	close(g.done)
}

// release gives back the place get took on id for a key that the write
// did not attach to it after all: the write failed, its compare did, or
// the key was on id already. Otherwise failed and repeated writes would
// fill leases, and have more granted, with no key on them.
func (l *leaseCache) release(ttl int64, id clientv3.LeaseID) {
	class := ttlClass(ttl)
	l.mu.Lock()
	defer l.mu.Unlock()
	if cl, ok := l.by[class]; ok && cl.id == id && cl.keys > 0 {
		cl.keys--
		l.by[class] = cl
	}
}

// forget drops class's cached lease if it is id, which etcd no longer
// has: the next caller of the class gets one granted anew.
func (l *leaseCache) forget(ttl int64, id clientv3.LeaseID) {
	class := ttlClass(ttl)
	l.mu.Lock()
	defer l.mu.Unlock()
	if cl, ok := l.by[class]; ok && cl.id == id {
		delete(l.by, class)
	}
}

// grantOnce grants a lease of ttl seconds for class: the window's own ID
// (windowSeq), adopted if another replica granted it already, else (or if
// random) a random ID of the class, drawing another if the one drawn is
// taken.
func (l *leaseCache) grantOnce(ctx context.Context, ttl, class int64, window time.Duration, random bool) (cachedLease, error) {
	grant := func(id int64) (cachedLease, error) {
		// The window runs from before the request: etcd starts the
		// lease's time no earlier, so a key attached at the window's end
		// still has its whole TTL.
		start := time.Now()
		_, err := l.lc.LeaseGrant(ctx, &etcdserverpb.LeaseGrantRequest{ID: id, TTL: ttl})
		return cachedLease{id: clientv3.LeaseID(id), until: start.Add(window)}, err
	}
	taken := func(err error) bool { return errors.Is(rpctypes.Error(err), rpctypes.ErrLeaseExist) }
	if !random {
		id := leaseid.New(class, windowSeq(time.Now(), window))
		cl, err := grant(id)
		switch {
		case err == nil:
			return cl, nil
		case !taken(err):
			return cachedLease{}, mapErr(err)
		}
		if cl, ok, err := l.adopt(ctx, id, class); ok || err != nil {
			return cl, err
		}
	}
	var err error
	for range grantAttempts {
		var cl cachedLease
		if cl, err = grant(leaseid.New(class, rand.Uint64())); err == nil {
			return cl, nil
		}
		if !taken(err) {
			break
		}
	}
	// As etcd answered (mapErr): wrapped, the message a client knows the
	// error by (no space, too many requests) would be lost.
	return cachedLease{}, mapErr(err)
}

// adopt takes the lease id, granted already, for as long as the time it
// has left keeps a key of class: until that time less the class, counted
// from before the question (etcd rounds the time left down). ok is false
// when it has too little left (or is gone): a lease of the same class
// from a proxy of another clock, or from before window IDs.
func (l *leaseCache) adopt(ctx context.Context, id, class int64) (cl cachedLease, ok bool, err error) {
	asked := time.Now()
	r, err := l.lc.LeaseTimeToLive(ctx, &etcdserverpb.LeaseTimeToLiveRequest{ID: id})
	if err != nil {
		return cachedLease{}, false, mapErr(err)
	}
	until := asked.Add(time.Duration(r.TTL-class) * time.Second)
	if r.TTL <= class || !until.After(time.Now()) {
		return cachedLease{}, false, nil
	}
	return cachedLease{id: clientv3.LeaseID(id), until: until}, true, nil
}
