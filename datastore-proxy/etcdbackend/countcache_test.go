package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

func TestCountCache(t *testing.T) {
	t0 := time.Unix(1000, 0)
	type step struct {
		op          string // put, take, compacted, wait
		rev         int64
		wait        time.Duration
		ok          bool  // take: served
		count, head int64 // take: what it served
	}
	for _, tc := range []struct {
		name   string
		maxAge time.Duration
		steps  []step
	}{
		{"served with the list's header", 0, []step{
			{op: "put", rev: 5}, {op: "take", rev: 5, ok: true, count: 42, head: 9},
		}},
		{"not for another revision", 0, []step{
			{op: "put", rev: 5}, {op: "take", rev: 6},
		}},
		{"served once", 0, []step{
			{op: "put", rev: 5}, {op: "take", rev: 5, ok: true, count: 42, head: 9}, {op: "take", rev: 5},
		}},
		{"young enough", 0, []step{
			{op: "put", rev: 5}, {op: "wait", wait: maxCountAge - time.Millisecond}, {op: "take", rev: 5, ok: true, count: 42, head: 9},
		}},
		{"too old", 0, []step{
			{op: "put", rev: 5}, {op: "wait", wait: maxCountAge}, {op: "take", rev: 5},
		}},
		{"too old for a shorter compaction interval", 100 * time.Millisecond, []step{
			{op: "put", rev: 5}, {op: "wait", wait: 100 * time.Millisecond}, {op: "take", rev: 5},
		}},
		{"compacted past it", 0, []step{
			{op: "put", rev: 5}, {op: "compacted", rev: 6}, {op: "take", rev: 5},
		}},
		{"compacted to it: still etcd's to count", 0, []step{
			{op: "put", rev: 5}, {op: "compacted", rev: 5}, {op: "take", rev: 5, ok: true, count: 42, head: 9},
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := t0
			c := countCache{maxAge: tc.maxAge, now: func() time.Time { return now }}
			for i, s := range tc.steps {
				switch s.op {
				case "put":
					c.put("a", "b", s.rev, 42, 9)
				case "wait":
					now = now.Add(s.wait)
				case "compacted":
					c.compacted(s.rev)
				case "take":
					n, head, ok := c.take("a", "b", s.rev)
					if ok != s.ok || n != s.count || head != s.head {
						t.Fatalf("step %d: take at %d = %d, %d, %v; want %d, %d, %v", i, s.rev, n, head, ok, s.count, s.head, s.ok)
					}
				}
			}
		})
	}
}

func TestCountCacheIsBounded(t *testing.T) {
	var c countCache
	for i := range maxCounts + 1 {
		c.put("k", "e", int64(i+10), 1, int64(i+10))
	}
	if len(c.m) > maxCounts {
		t.Fatalf("cache grew to %d entries", len(c.m))
	}
}

// A count at a revision compaction has passed is refused, as etcd refuses
// it, even right after a list at that revision (it was served from the
// list's count).
func TestACountAtACompactedRevisionIsRefused(t *testing.T) {
	b, ctx, at := threeKeys(t)
	if _, _, err := b.List(ctx, "/kplex/alpha/", "/kplex/alpha0", 1, at, false); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Compact(ctx, at+1); err != nil {
		t.Fatal(err)
	}
	rev, n, err := b.Count(ctx, "/kplex/alpha/", "/kplex/alpha0", at)
	if !errors.Is(err, server.ErrCompacted) {
		t.Fatalf("count at revision %d, compacted to %d: %d at revision %d, err %v; want compacted", at, at+1, n, rev, err)
	}
}

// A count served from the cache answers with the list's header revision,
// the store's revision then, as etcd's count does, not with the revision
// it counted at (it did: a count-only range at an older revision read
// that revision as the store's).
func TestACachedCountAnswersWithTheStoresRevision(t *testing.T) {
	b, ctx, at := threeKeys(t)
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

// threeKeys is a backend on a real etcd with three keys of alpha's written,
// a context for the test, and the revision of the first key.
func threeKeys(t *testing.T) (*Backend, context.Context, int64) {
	t.Helper()
	b := New(startEtcd(t), &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
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
	return b, ctx, at
}
