package tenantbackend_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// listLimits is a shared backend that records the limit of every list.
type listLimits struct {
	server.Backend
	mu     sync.Mutex
	limits []int64
}

func (b *listLimits) List(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) (int64, []*server.KeyValue, error) {
	b.mu.Lock()
	b.limits = append(b.limits, limit)
	b.mu.Unlock()
	return b.Backend.List(ctx, key, end, limit, revision, keysOnly)
}

func (b *listLimits) take() []int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	l := b.limits
	b.limits = nil
	return l
}

// On SQL, where the proxy deletes a range a key at a time, it reads the
// range a page at a time: a range of more than a page is deleted whole
// without ever being read at once, its keys come off the tenant's usage,
// the keys around it and another tenant's stay, and the previous values
// come back only when asked for. (The range used to be read in one list,
// with every value, whether or not the client wanted them.)
func TestARangeDeleteOnSQLReadsAPageAtATime(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		inner := &listLimits{Backend: proxytest.OpenBackend(t, c)}
		space, err := keyspace.ForTenant("alpha")
		if err != nil {
			t.Fatal(err)
		}
		usage := &quota.Usage{}
		alpha := tenantbackend.New(inner, space, func() tenantconfig.Limits { return tenantconfig.Limits{MaxKeys: 10000} }, usage)
		beta := tenantOn(t, inner, "beta", tenantconfig.Limits{})

		n := tenantbackend.ScanPage + 10
		for i := range n {
			if _, err := alpha.Create(ctx, fmt.Sprintf("/registry/cm/%04d", i), []byte("value"), 0); err != nil {
				t.Fatalf("create %d: %v", i, err)
			}
		}
		for _, k := range []string{"/registry/cm", "/registry/cm0"} { // just outside [/registry/cm/, /registry/cm0)
			if _, err := alpha.Create(ctx, k, []byte("stays"), 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := beta.Create(ctx, "/registry/cm/0000", []byte("beta's"), 0); err != nil {
			t.Fatal(err)
		}
		keys0, bytes0, _ := usage.Snapshot()
		inner.take()

		rev, deleted, prev, err := alpha.DeleteRange(ctx, "/registry/cm/", "/registry/cm0", false)
		if err != nil {
			t.Fatal(err)
		}
		lists := inner.take()
		if deleted != int64(n) || prev != nil || rev == 0 {
			t.Fatalf("delete of %d keys without previous values: rev %d, deleted %d, %d previous values", n, rev, deleted, len(prev))
		}
		if len(lists) < 2 {
			t.Fatalf("the range of %d keys was read in %d lists (limits %v), want a page at a time", n, len(lists), lists)
		}
		for _, l := range lists {
			if l <= 0 || l > tenantbackend.MaxScanPage {
				t.Fatalf("a list of limit %d (all: %v): not a page", l, lists)
			}
		}
		if _, left, err := alpha.Count(ctx, "/registry/cm/", "/registry/cm0", 0); err != nil || left != 0 {
			t.Fatalf("alpha's keys left in the range: %d, %v", left, err)
		}
		for _, k := range []string{"/registry/cm", "/registry/cm0"} {
			if _, kv, err := alpha.Get(ctx, k, 0, false); err != nil || kv == nil {
				t.Fatalf("alpha's %s, outside the range: %v, %v", k, kv, err)
			}
		}
		if _, kv, err := beta.Get(ctx, "/registry/cm/0000", 0, false); err != nil || kv == nil || string(kv.Value) != "beta's" {
			t.Fatalf("beta's key in the same range: %v, %v", kv, err)
		}
		keys1, bytes1, _ := usage.Snapshot()
		if keys0-keys1 != int64(n) || bytes0-bytes1 != int64(n*len("/registry/cm/0000value")) {
			t.Fatalf("usage went from %d keys, %d bytes to %d, %d; want %d keys and their bytes off", keys0, bytes0, keys1, bytes1, n)
		}

		for i := range 3 {
			if _, err := alpha.Create(ctx, fmt.Sprintf("/registry/x/%d", i), []byte(fmt.Sprintf("v%d", i)), 0); err != nil {
				t.Fatal(err)
			}
		}
		_, deleted, prev, err = alpha.DeleteRange(ctx, "/registry/x/", "/registry/x0", true)
		if err != nil || deleted != 3 || len(prev) != 3 {
			t.Fatalf("delete of 3 keys with previous values: deleted %d, %d previous values, %v", deleted, len(prev), err)
		}
		for i, kv := range prev {
			if want := fmt.Sprintf("/registry/x/%d", i); string(kv.Key) != want || string(kv.Value) != fmt.Sprintf("v%d", i) {
				t.Fatalf("previous value %d: %q = %q, want %s as it was", i, kv.Key, kv.Value, want)
			}
		}
	})
}

// foreignInLists is a shared backend whose lists of the range [from, end)
// also hold the stored key foreign, as a backend whose range order is not
// the keys' bytes' could (keyspace).
type foreignInLists struct {
	server.Backend
	from, end, foreign string
}

func (b *foreignInLists) List(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) (int64, []*server.KeyValue, error) {
	rev, kvs, err := b.Backend.List(ctx, key, end, limit, revision, keysOnly)
	if err != nil || key < b.from || end != b.end {
		return rev, kvs, err
	}
	_, kv, err := b.Backend.Get(ctx, b.foreign, revision, keysOnly)
	if err == nil && kv != nil {
		kvs = append(kvs, kv)
	}
	return rev, kvs, err
}

// A range delete on SQL deletes only keys of the tenant's, even when the
// backend lists another tenant's key in the tenant's range: the delete
// runs before the key is made the tenant's, so it checks first.
func TestARangeDeleteOnSQLNeverDeletesAnotherTenantsKey(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		inner := &foreignInLists{Backend: proxytest.OpenBackend(t, c),
			from: "/kplex/alpha//registry/cm/", end: "/kplex/alpha//registry/cm0", foreign: "/kplex/beta//registry/cm/0"}
		alpha := tenantOn(t, inner, "alpha", tenantconfig.Limits{})
		beta := tenantOn(t, inner, "beta", tenantconfig.Limits{})
		for _, tb := range []*tenantbackend.Backend{alpha, beta} {
			if _, err := tb.Create(ctx, "/registry/cm/0", []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
		if _, kvs, err := inner.List(ctx, inner.from, inner.end, 0, 0, false); err != nil || len(kvs) != 2 {
			t.Fatalf("the backend's list of alpha's range: %d keys, %v; want alpha's and beta's", len(kvs), err)
		}
		_, deleted, prev, err := alpha.DeleteRange(ctx, "/registry/cm/", "/registry/cm0", true)
		if err != nil || deleted != 1 || len(prev) != 1 || string(prev[0].Key) != "/registry/cm/0" {
			t.Fatalf("alpha's range delete: deleted %d, previous values %v, %v; want its one key", deleted, prev, err)
		}
		if _, kv, err := beta.Get(ctx, "/registry/cm/0", 0, false); err != nil || kv == nil {
			t.Fatalf("beta's key after alpha's range delete: %v, %v", kv, err)
		}
	})
}
