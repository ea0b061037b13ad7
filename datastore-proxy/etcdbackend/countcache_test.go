package etcdbackend

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

func TestCountCache(t *testing.T) {
	var c countCache
	if _, _, ok := c.get("a", "b", 5); ok {
		t.Fatal("empty cache hit")
	}
	c.put("a", "b", 5, 42, 9)
	if n, header, ok := c.get("a", "b", 5); !ok || n != 42 || header != 9 {
		t.Fatalf("get = %d, %d, %v; want 42, 9 (the list's header), true", n, header, ok)
	}
	if _, _, ok := c.get("a", "b", 6); ok {
		t.Fatal("a count served for another revision")
	}
	for i := range maxCounts + 1 {
		c.put("k", "e", int64(i+10), 1, int64(i+10))
	}
	if len(c.m) > maxCounts {
		t.Fatalf("cache grew to %d entries", len(c.m))
	}
}

// A count served from the cache answers with the list's header revision,
// the store's revision then, as etcd's count does, not with the revision
// it counted at (it did: a count-only range at an older revision read
// that revision as the store's).
func TestACachedCountAnswersWithTheStoresRevision(t *testing.T) {
	c := startEtcd(t)
	b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var at int64
	for i := range 3 {
		rev, err := b.Create(ctx, fmt.Sprintf("/kplex/alpha/k%d", i), []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			at = rev
		}
	}
	header, _, err := b.List(ctx, "/kplex/alpha/", "/kplex/alpha0", 1, at, false)
	if err != nil {
		t.Fatal(err)
	}
	rev, n, err := b.Count(ctx, "/kplex/alpha/", "/kplex/alpha0", at)
	if err != nil {
		t.Fatal(err)
	}
	if n != 1 || rev != header || rev == at {
		t.Errorf("count at revision %d = %d at revision %d; want 1 at %d, the list's header", at, n, rev, header)
	}
}
