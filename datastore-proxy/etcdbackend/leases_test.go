package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

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
