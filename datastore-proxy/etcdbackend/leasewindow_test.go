package etcdbackend

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/leaseid"
)

// leaseOf is the etcd lease that key is attached to.
func leaseOf(t *testing.T, ctx context.Context, c *clientv3.Client, key string) clientv3.LeaseID {
	t.Helper()
	r, err := c.Get(ctx, key)
	if err != nil || len(r.Kvs) != 1 {
		t.Fatalf("get %s straight from etcd: %v, %v", key, r, err)
	}
	return clientv3.LeaseID(r.Kvs[0].Lease)
}

// inOneWindow runs f until it runs within one window of class (a window
// may end while it runs; the second try is in the next one).
func inOneWindow(t *testing.T, class int64, f func(seq uint64)) {
	t.Helper()
	window := reuseWindow(class)
	for range 3 {
		seq := windowSeq(time.Now(), window)
		f(seq)
		if windowSeq(time.Now(), window) == seq {
			return
		}
	}
	t.Fatalf("three windows of %v ended while the test ran", window)
}

// Two proxies (two replicas, or one restarted) put keys of one TTL in the
// same window on the same lease: the leases in etcd are bounded for etcd,
// not for each proxy process. (With random IDs each proxy granted its own
// lease for every class and window, and a rollout left a new set alive for
// up to the class's TTL.)
func TestReplicasShareAWindowsLease(t *testing.T) {
	c := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ttl = 3600
	inOneWindow(t, ttlClass(ttl), func(uint64) {
		b1 := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
		b2 := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
		// Puts: a second try, in the next window, writes the keys again.
		if _, _, err := b1.Put(ctx, "/kplex/alpha/e1", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
		if _, _, err := b2.Put(ctx, "/kplex/beta/e2", []byte("v"), ttl); err != nil {
			t.Fatal(err)
		}
	})
	l1, l2 := leaseOf(t, ctx, c, "/kplex/alpha/e1"), leaseOf(t, ctx, c, "/kplex/beta/e2")
	if l1 != l2 {
		t.Errorf("two proxies put keys of one TTL in one window on leases %x and %x, want one", l1, l2)
	}
	left, err := c.TimeToLive(ctx, l2)
	if err != nil || left.TTL < ttlClass(ttl) {
		t.Errorf("the shared lease: %+v, %v; want at least %d s left", left, err, ttlClass(ttl))
	}
}

// A lease of the window's ID that has too little time left for the class
// (granted by a proxy with another clock, or before window IDs) is not
// taken: the key gets a lease of its own that keeps it its whole TTL. One
// with time enough is taken.
func TestAWindowsLeaseIsTakenOnlyWithTimeEnough(t *testing.T) {
	c := startEtcd(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	lc := etcdserverpb.NewLeaseClient(c.ActiveConnection())
	for _, tc := range []struct {
		name       string
		ttl        int64 // each case a class of its own: the window's ID is the class's
		grantedTTL int64
		taken      bool
	}{
		{"too little time left", 3600, 30, false},
		{"time enough", 7200, 7200 + 600, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ttl, class := tc.ttl, ttlClass(tc.ttl)
			key := "/kplex/alpha/" + tc.name
			var id int64
			inOneWindow(t, class, func(seq uint64) {
				id = leaseid.New(class, seq)
				if _, err := lc.LeaseGrant(ctx, &etcdserverpb.LeaseGrantRequest{ID: id, TTL: tc.grantedTTL}); err != nil {
					t.Fatal(err)
				}
				b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
				if _, _, err := b.Put(ctx, key, []byte("v"), ttl); err != nil {
					t.Fatal(err)
				}
			})
			got := leaseOf(t, ctx, c, key)
			if taken := int64(got) == id; taken != tc.taken {
				t.Errorf("the key's lease %x, the window's %x granted for %d s: taken %v, want %v", got, id, tc.grantedTTL, taken, tc.taken)
			}
			if leaseid.TTL(int64(got)) != class {
				t.Errorf("the key's lease %x is not of class %d", got, class)
			}
			if left, err := c.TimeToLive(ctx, got); err != nil || left.TTL < class {
				t.Errorf("the key's lease: %+v, %v; want at least %d s left", left, err, class)
			}
		})
	}
}

// A cached lease that etcd no longer has (an operator revoked it, or etcd
// was restored from a backup) costs the next write a grant, not an error:
// before, every write of the class failed with "requested lease not found"
// until the window ended (a minute here, days for long TTLs).
func TestARevokedLeaseIsGrantedAnew(t *testing.T) {
	c := startEtcd(t)
	b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ttl = 3600
	if _, err := b.Create(ctx, "/kplex/alpha/plain", []byte("v"), 0); err != nil {
		t.Fatal(err)
	}
	writes := []struct {
		name  string
		write func(key string) error
	}{
		{"create", func(key string) error { _, err := b.Create(ctx, key, []byte("v"), ttl); return err }},
		{"put", func(key string) error { _, _, err := b.Put(ctx, key, []byte("v"), ttl); return err }},
		{"update", func(string) error {
			_, kv, err := b.Get(ctx, "/kplex/alpha/plain", 0, false)
			if err != nil {
				return err
			}
			_, _, ok, err := b.Update(ctx, "/kplex/alpha/plain", []byte("w"), kv.ModRevision, ttl)
			if err == nil && !ok {
				t.Errorf("the update's compare failed")
			}
			return err
		}},
	}
	if _, err := b.Create(ctx, "/kplex/alpha/first", []byte("v"), ttl); err != nil {
		t.Fatal(err)
	}
	revoked := leaseOf(t, ctx, c, "/kplex/alpha/first")
	for _, w := range writes {
		if _, err := c.Revoke(ctx, revoked); err != nil {
			t.Fatalf("revoke %x: %v", revoked, err)
		}
		key := "/kplex/alpha/" + w.name
		if w.name == "update" {
			key = "/kplex/alpha/plain"
		}
		if err := w.write(key); err != nil {
			t.Fatalf("%s after its class's lease %x was revoked: %v", w.name, revoked, err)
		}
		// The lease granted anew may have the revoked one's ID (the
		// window's own): what counts is that etcd has it, for the TTL.
		got := leaseOf(t, ctx, c, key)
		left, err := c.TimeToLive(ctx, got)
		if err != nil || left.TTL < ttlClass(ttl) || leaseid.TTL(int64(got)) != ttlClass(ttl) {
			t.Fatalf("%s after %x was revoked: the key's lease %x has %+v, %v; want at least %d s", w.name, revoked, got, left, err, ttlClass(ttl))
		}
		revoked = got
	}
}

// keysPerLease sets maxKeysPerLease to n for the test.
func keysPerLease(t *testing.T, n int) {
	old := maxKeysPerLease
	maxKeysPerLease = n
	t.Cleanup(func() { maxKeysPerLease = old })
}

// A lease serves at most maxKeysPerLease keys, as kube-apiserver's own
// lease manager has it: etcd deletes a lease's keys in one transaction
// when it expires. The window's own lease comes first, then leases of
// random IDs. (Before, every key of the class in the window, of every
// tenant, went on one lease.)
func TestALeaseServesALimitedNumberOfKeys(t *testing.T) {
	c := startEtcd(t)
	keysPerLease(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ttl = 3600
	class := ttlClass(ttl)
	var first uint64
	inOneWindow(t, class, func(seq uint64) {
		first = seq
		b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
		for i := range 7 {
			if _, err := b.Create(ctx, fmt.Sprintf("/kplex/alpha/e%d-%d", seq, i), []byte("v"), ttl); err != nil {
				t.Fatal(err)
			}
		}
	})
	keys := map[clientv3.LeaseID]int{}
	for i := range 7 {
		keys[leaseOf(t, ctx, c, fmt.Sprintf("/kplex/alpha/e%d-%d", first, i))]++
	}
	if len(keys) != 3 {
		t.Errorf("7 keys on %d leases, want 3 (at most 3 keys a lease): %v", len(keys), keys)
	}
	if n := keys[clientv3.LeaseID(leaseid.New(class, first))]; n != 3 {
		t.Errorf("the window's own lease has %d keys, want 3: %v", n, keys)
	}
	for id, n := range keys {
		if n > 3 || leaseid.TTL(int64(id)) != class {
			t.Errorf("lease %x: %d keys, class %d", id, n, leaseid.TTL(int64(id)))
		}
	}
}

// Writes that waited together for a class's grant take its lease in turn
// too: a burst of them fills it and goes on to the next (each took it,
// however many they were).
func TestABurstKeepsALeaseToItsKeys(t *testing.T) {
	c := startEtcd(t)
	keysPerLease(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ttl, n = 3600, 12
	b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			_, _, err := b.Put(ctx, fmt.Sprintf("/kplex/alpha/burst%d", i), []byte("v"), ttl)
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	keys := map[clientv3.LeaseID]int{}
	for i := range n {
		keys[leaseOf(t, ctx, c, fmt.Sprintf("/kplex/alpha/burst%d", i))]++
	}
	for id, k := range keys {
		if k > 3 {
			t.Errorf("lease %x has %d keys, want at most 3: %v", id, k, keys)
		}
	}
}

// maxRandoms sets maxRandomLeases to n for the test.
func maxRandoms(t *testing.T, n int) {
	old := maxRandomLeases
	maxRandomLeases = n
	t.Cleanup(func() { maxRandomLeases = old })
}

// leasesInEtcd is how many leases etcd holds.
func leasesInEtcd(t *testing.T, ctx context.Context, c *clientv3.Client) int {
	t.Helper()
	r, err := c.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return len(r.Leases)
}

// A key counts on a lease when a write attaches it: a put or an update
// of a key already on the lease, and a create whose key exists, fill no
// lease.
// (Before, every write with a TTL counted, and a tenant rewriting one key,
// or failing to create one, made etcd hold a new lease every thousand
// writes, for as long as the class: 285 years for the longest.)
func TestFailedAndRepeatedWritesFillNoLease(t *testing.T) {
	c := startEtcd(t)
	keysPerLease(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	const ttl = 3600
	inOneWindow(t, ttlClass(ttl), func(seq uint64) {
		ls, err := c.Leases(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range ls.Leases { // an earlier try's, in another window
			if _, err := c.Revoke(ctx, l.ID); err != nil {
				t.Fatal(err)
			}
		}
		b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
		k := fmt.Sprintf("/kplex/alpha/k%d", seq)
		for range 10 {
			rev, _, err := b.Put(ctx, k, []byte("v"), ttl)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := b.Create(ctx, k, []byte("v"), ttl); err == nil {
				t.Fatalf("create of %s, which exists, succeeded", k)
			}
			// An update, as kube-apiserver writes a key it has read.
			if _, _, ok, err := b.Update(ctx, k, []byte("v2"), rev, ttl); err != nil || !ok {
				t.Fatalf("update of %s at %d: %v, %v", k, rev, ok, err)
			}
		}
		if n := leasesInEtcd(t, ctx, c); n != 1 {
			t.Errorf("after 10 puts, 10 updates and 10 failed creates of one key: %d leases in etcd, want 1", n)
		}
		// The lease has one key: one more fits, the next needs a lease.
		for i := range 2 {
			if _, err := b.Create(ctx, fmt.Sprintf("%s-new%d", k, i), []byte("v"), ttl); err != nil {
				t.Fatal(err)
			}
		}
		if n := leasesInEtcd(t, ctx, c); n != 2 {
			t.Errorf("after two new keys: %d leases in etcd, want 2", n)
		}
	})
}

// In a long class, full leases are followed by at most maxRandomLeases
// more in a row; the last then takes every key of the class until the
// window's next lease. A class of up to two hours (kube-apiserver's
// Events) takes as many as its keys need: its leases expire soon anyway.
func TestFullLeasesInARowAreBoundedInLongClasses(t *testing.T) {
	c := startEtcd(t)
	keysPerLease(t, 1)
	maxRandoms(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, tc := range []struct {
		ttl    int64
		leases int
	}{
		{30 * 24 * 3600, 3}, // the window's and 2 more
		{3600, 8},           // one a key
	} {
		class := ttlClass(tc.ttl)
		var first uint64
		inOneWindow(t, class, func(seq uint64) {
			first = seq
			b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
			for i := range 8 {
				if _, err := b.Create(ctx, fmt.Sprintf("/kplex/alpha/f%d-%d-%d", tc.ttl, seq, i), []byte("v"), tc.ttl); err != nil {
					t.Fatal(err)
				}
			}
		})
		keys := map[clientv3.LeaseID]int{}
		for i := range 8 {
			keys[leaseOf(t, ctx, c, fmt.Sprintf("/kplex/alpha/f%d-%d-%d", tc.ttl, first, i))]++
		}
		if len(keys) != tc.leases {
			t.Errorf("TTL %d: 8 keys on %d leases, want %d: %v", tc.ttl, len(keys), tc.leases, keys)
		}
		if n := keys[clientv3.LeaseID(leaseid.New(class, first))]; n != 1 {
			t.Errorf("TTL %d: the window's own lease has %d keys, want 1: %v", tc.ttl, n, keys)
		}
	}
}
