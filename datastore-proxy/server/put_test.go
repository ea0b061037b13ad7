package server_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// Plain puts racing on one key each write what they acknowledge: every
// put that returned revision r left its value at r, as the key's history
// (a watch from before the first put) shows, and the key ends with the
// value of the put with the highest revision. A put that lost a race and
// still said it wrote would be an acknowledged write lost. Each put's
// previous value is the one before it in that history.
func TestConcurrentPutsWriteWhatTheyAcknowledge(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const key, writers, each = "/registry/race/k", 8, 25

		start, err := c.Put(ctx, key, "initial")
		if err != nil {
			t.Fatal(err)
		}
		var mu sync.Mutex
		acked := map[int64]string{} // revision -> value
		prevs := map[int64]string{} // revision -> the value it replaced
		var errs []error
		var wg sync.WaitGroup
		for w := range writers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range each {
					v := fmt.Sprintf("w%d-%d", w, i)
					resp, err := c.Put(ctx, key, v, clientv3.WithPrevKV())
					var rev int64
					if err == nil {
						rev = resp.Header.Revision
					}
					mu.Lock()
					switch prev, dup := acked[rev]; {
					case err != nil:
						errs = append(errs, fmt.Errorf("put %s: %w", v, err))
					case dup:
						errs = append(errs, fmt.Errorf("puts %s and %s both acknowledged at revision %d", prev, v, rev))
					case resp.PrevKv == nil:
						errs = append(errs, fmt.Errorf("put %s: no previous value", v))
					default:
						acked[rev], prevs[rev] = v, string(resp.PrevKv.Value)
					}
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if len(errs) > 0 {
			t.Fatalf("%d of %d puts failed or shared a revision, first: %v", len(errs), writers*each, errs[0])
		}

		// The key's history up to a marker written after every put.
		var last int64
		for rev := range acked {
			last = max(last, rev)
		}
		got, err := c.Get(ctx, key)
		if err != nil {
			t.Fatal(err)
		}
		if len(got.Kvs) != 1 || string(got.Kvs[0].Value) != acked[last] || got.Kvs[0].ModRevision != last {
			t.Errorf("the key is %v; want %q at revision %d, the last acknowledged put", got.Kvs, acked[last], last)
		}
		end, err := c.Put(ctx, key, "end")
		if err != nil {
			t.Fatal(err)
		}
		history := map[int64]string{}
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
	read:
		for resp := range c.Watch(wctx, key, clientv3.WithRev(start.Header.Revision+1)) {
			if err := resp.Err(); err != nil {
				t.Fatal(err)
			}
			for _, ev := range resp.Events {
				if ev.Kv.ModRevision >= end.Header.Revision {
					break read
				}
				history[ev.Kv.ModRevision] = string(ev.Kv.Value)
			}
		}
		revs := slices.Sorted(maps.Keys(history))
		for i, rev := range revs {
			before := "initial"
			if i > 0 {
				before = history[revs[i-1]]
			}
			if prevs[rev] != before {
				t.Errorf("put %q at revision %d returned %q as the previous value; the history has %q", acked[rev], rev, prevs[rev], before)
			}
		}
		for rev, v := range acked {
			if history[rev] != v {
				t.Errorf("put %q was acknowledged at revision %d, where the key's history has %q", v, rev, history[rev])
			}
		}
		if len(history) != len(acked) {
			t.Errorf("%d puts acknowledged, %d changes in the key's history", len(acked), len(history))
		}
	})
}

// Plain puts count against the tenant's quota as creates and updates do:
// a new key past maxKeys and a value past maxBytes are refused with etcd's
// "space exceeded"; overwriting a key at the key limit is not a new key.
func TestPutsKeepToQuotas(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		cfg := filepath.Join(t.TempDir(), "tenants.yaml")
		writeConfig(t, cfg, "tenants:\n  alpha: {maxKeys: 2, maxBytes: 100}\n")
		px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg })
		alpha, beta := px.Client(t, "alpha"), px.Client(t, "beta")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		put := func(c *clientv3.Client, key, value string) error {
			_, err := c.Put(ctx, key, value)
			return err
		}
		noSpace := func(err error) bool { return errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) }

		for _, k := range []string{"/a", "/b"} {
			if err := put(alpha, k, "x"); err != nil {
				t.Fatalf("put %s within quota: %v", k, err)
			}
		}
		if err := put(alpha, "/c", "x"); !noSpace(err) {
			t.Fatalf("a 3rd key over maxKeys 2: err = %v, want %v", err, rpctypes.ErrNoSpace)
		}
		if err := put(alpha, "/a", "y"); err != nil {
			t.Fatalf("overwriting a key at the key limit: %v", err)
		}
		if err := put(alpha, "/a", strings.Repeat("x", 200)); !noSpace(err) {
			t.Fatalf("a value past maxBytes: err = %v, want %v", err, rpctypes.ErrNoSpace)
		}
		if got, err := alpha.Get(ctx, "/a"); err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "y" {
			t.Fatalf("/a after a refused put: %v, %v; want y", got, err)
		}
		if err := put(beta, "/c", strings.Repeat("x", 200)); err != nil {
			t.Fatalf("beta has no quota: %v", err)
		}
	})
}
