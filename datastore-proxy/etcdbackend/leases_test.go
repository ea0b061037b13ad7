package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"kplex.dev/datastore-proxy/leaseid"
)

func TestTTLClass(t *testing.T) {
	for _, tc := range []struct{ ttl, want int64 }{
		{1, 1}, {63, 63}, {64, 64}, {65, 66}, {3600, 3648}, {4096, 4096},
		{maxLeaseTTL, topClass},
	} {
		if got := ttlClass(tc.ttl); got != tc.want {
			t.Errorf("ttlClass(%d) = %d, want %d", tc.ttl, got, tc.want)
		}
	}
	// Every TTL is in a class at or above it, at most 1/32 more (but the
	// top class), and there are 930 classes.
	classes := 0
	for ttl := int64(1); ttl <= maxLeaseTTL; {
		c := ttlClass(ttl)
		if c < ttl && c != topClass || c > ttl+ttl/32 {
			t.Fatalf("ttlClass(%d) = %d", ttl, c)
		}
		if ttlClass(c) != c || ttlClass(c+1) <= c && c != topClass {
			t.Fatalf("class %d: not a class of its own", c)
		}
		classes++
		if c == topClass {
			break
		}
		ttl = c + 1
	}
	if classes != 930 { // as the lease cache's comment and the README say
		t.Errorf("%d TTL classes, want 930", classes)
	}
}

func TestReuseWindow(t *testing.T) {
	for _, tc := range []struct {
		class int64
		want  time.Duration
	}{
		{1, 50 * time.Millisecond},
		{60, 3 * time.Second},
		{3648, time.Minute}, // 5% would be 3 minutes
		{86400, 864 * time.Second},
		{topClass, topClass / 100 * time.Second},
	} {
		if got := reuseWindow(tc.class); got != tc.want {
			t.Errorf("reuseWindow(%d) = %v, want %v", tc.class, got, tc.want)
		}
	}
	if grant := topClass + int64(reuseWindow(topClass)/time.Second); grant > maxLeaseTTL {
		t.Errorf("the top class's lease, %d s, is longer than etcd's longest", grant)
	}
}

// A TTL past etcd's longest lease (a real lease ID sent where kine takes
// a TTL, say) is refused with etcd's error, without asking etcd.
func TestLeaseTTLTooLarge(t *testing.T) {
	l := newLeaseCache(nil) // a request to etcd would panic
	for _, ttl := range []int64{maxLeaseTTL + 1, 0x694d9a4b2c5e1f07} {
		if _, err := l.get(context.Background(), ttl); !errors.Is(err, rpctypes.ErrGRPCLeaseTTLTooLarge) {
			t.Errorf("ttl %d: err = %v, want %v", ttl, err, rpctypes.ErrGRPCLeaseTTLTooLarge)
		}
	}
}

// Keys put with many distinct TTLs share a few leases in etcd, one per
// TTL class, each granted for at least the TTLs it serves; a key's lease
// reads as its TTL class. (Before classes, each distinct TTL was an etcd
// lease of its own: 300 here.) The longest TTL etcd takes is served too.
func TestDistinctTTLsShareFewLeases(t *testing.T) {
	c := startEtcd(t)
	b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	key := func(ttl int64) string { return fmt.Sprintf("/kplex/alpha/registry/events/e%d", ttl) }
	ttls := []int64{maxLeaseTTL}
	for ttl := int64(3600); ttl < 3900; ttl++ {
		ttls = append(ttls, ttl)
	}
	for _, ttl := range ttls {
		if _, err := b.Create(ctx, key(ttl), []byte("v"), ttl); err != nil {
			t.Fatalf("create with ttl %d: %v", ttl, err)
		}
	}
	leases, err := c.Leases(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// 3600-3899 fall in 5 classes (3648 ... 3904); one more for the longest.
	if n := len(leases.Leases); n > 6 {
		t.Errorf("%d leases in etcd for %d keys, want at most 6", n, len(ttls))
	}
	for _, ttl := range ttls {
		_, kv, err := b.Get(ctx, key(ttl), 0, false)
		if err != nil || kv == nil {
			t.Fatalf("get %s: %v %v", key(ttl), kv, err)
		}
		if want := ttlClass(ttl); kv.Lease != want {
			t.Errorf("ttl %d: the key's lease reads %d, want its class %d", ttl, kv.Lease, want)
		}
	}
	for _, l := range leases.Leases {
		ttl, err := c.TimeToLive(ctx, l.ID)
		if err != nil {
			t.Fatal(err)
		}
		if class := leaseid.TTL(int64(l.ID)); ttl.TTL < class || ttl.GrantedTTL > maxLeaseTTL {
			t.Errorf("lease %x of class %d: %d s left of %d granted", l.ID, class, ttl.TTL, ttl.GrantedTTL)
		}
	}
}

// The lease a key gets expires with it: a key put with a TTL of 2 s is
// gone within a few seconds.
func TestAKeyExpiresWithItsTTL(t *testing.T) {
	c := startEtcd(t)
	b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	start := time.Now()
	if _, err := b.Create(ctx, "/kplex/alpha/short", []byte("v"), 2); err != nil {
		t.Fatal(err)
	}
	for {
		resp, err := c.Get(ctx, "/kplex/alpha/short", clientv3.WithCountOnly())
		if err != nil {
			t.Fatal(err)
		}
		if resp.Count == 0 {
			break
		}
		if time.Since(start) > 15*time.Second {
			t.Fatal("a key with a TTL of 2 s is there after 15 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if took := time.Since(start); took < 2*time.Second {
		t.Errorf("a key with a TTL of 2 s was gone after %v", took)
	}
}

// gatedLeases is etcd's lease API with the grants of one TTL (held)
// waiting until gate is closed; entered is closed when the first of them
// has arrived.
type gatedLeases struct {
	etcdserverpb.LeaseClient
	held    int64
	gate    chan struct{}
	entered chan struct{}
	once    sync.Once
}

func (g *gatedLeases) LeaseGrant(ctx context.Context, r *etcdserverpb.LeaseGrantRequest, opts ...grpc.CallOption) (*etcdserverpb.LeaseGrantResponse, error) {
	if r.TTL == g.held {
		g.once.Do(func() { close(g.entered) })
		select {
		case <-g.gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return g.LeaseClient.LeaseGrant(ctx, r, opts...)
}

// A slow grant of one TTL class holds up no other class, and a caller of
// its own class no longer than that caller's deadline; the caller that
// started the grant giving up does not fail it for the others, who all
// get its lease. (The cache's lock was held across the grant: every TTL
// write of every tenant waited for it, deadline or not.)
func TestASlowLeaseGrantHoldsUpNoOtherCaller(t *testing.T) {
	c := startEtcd(t)
	l := newLeaseCache(c)
	const ttl = 3600
	class := ttlClass(ttl)
	gated := &gatedLeases{LeaseClient: l.lc, held: class + int64(reuseWindow(class)/time.Second), gate: make(chan struct{}), entered: make(chan struct{})}
	l.lc = gated
	var opened sync.Once
	open := func() { opened.Do(func() { close(gated.gate) }) }
	t.Cleanup(open) // whatever fails, nothing stays waiting
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// within runs get and fails the test if it still waits after d.
	within := func(what string, d time.Duration, get func() error) error {
		t.Helper()
		done := make(chan error, 1)
		go func() { done <- get() }()
		select {
		case err := <-done:
			return err
		case <-time.After(d):
			t.Fatalf("%s: still waiting after %v", what, d)
			return nil
		}
	}

	// The first caller starts the grant, which etcd holds.
	firstCtx, firstGiveUp := context.WithCancel(ctx)
	first := make(chan error, 1)
	go func() { _, err := l.get(firstCtx, ttl); first <- err }()
	select {
	case <-gated.entered:
	case <-ctx.Done():
		t.Fatal("the first grant never reached etcd")
	}

	// Another class goes on meanwhile.
	if err := within("a lease of another class", 5*time.Second, func() error {
		_, err := l.get(ctx, 60)
		return err
	}); err != nil {
		t.Fatalf("a lease of another class while one grant waits: %v", err)
	}

	// A caller of the held class waits no longer than its deadline.
	err := within("a caller of the held class with 100 ms to wait", 2*time.Second, func() error {
		shortCtx, shortCancel := context.WithTimeout(ctx, 100*time.Millisecond)
		defer shortCancel()
		_, err := l.get(shortCtx, ttl)
		return err
	})
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a caller with 100 ms to wait got %v, want %v", err, context.DeadlineExceeded)
	}

	// The first caller gives up; the grant goes on for the others.
	firstGiveUp()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v, want %v", err, context.Canceled)
	}
	var wg sync.WaitGroup
	ids := make([]clientv3.LeaseID, 3)
	errs := make([]error, 3)
	for i := range ids {
		wg.Go(func() { ids[i], errs[i] = l.get(ctx, ttl-int64(i)) })
	}
	time.Sleep(50 * time.Millisecond) // let them wait for the grant
	open()
	wg.Wait()
	for i := range ids {
		if errs[i] != nil || ids[i] != ids[0] {
			t.Fatalf("callers of one class after the grant: ids %v, errors %v; want one lease", ids, errs)
		}
	}
	if ttlLeft, err := c.TimeToLive(ctx, ids[0]); err != nil || ttlLeft.TTL < class {
		t.Fatalf("the class's lease in etcd: %+v, %v; want at least %d s", ttlLeft, err, class)
	}
}
