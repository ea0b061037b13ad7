package server_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A plain DeleteRange (etcdctl del) deletes the tenant's keys in the range
// and nothing else: it returns what it deleted, watches see each deletion,
// another tenant's keys in the same range stay, and the freed keys and
// bytes count against the tenant's quota again.
func TestDeleteRange(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		cfg := filepath.Join(t.TempDir(), "tenants.yaml")
		writeConfig(t, cfg, "tenants:\n  alpha: {maxKeys: 5, maxBytes: 400}\n")
		px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg })
		alpha, beta := px.Client(t, "alpha"), px.Client(t, "beta")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		value := strings.Repeat("v", 80) // 4 keys of ~90 bytes fill most of 400
		for _, k := range []string{"/a/1", "/a/2", "/a/3", "/b"} {
			if _, err := alpha.Put(ctx, k, value+k); err != nil {
				t.Fatalf("alpha put %s: %v", k, err)
			}
			if _, err := beta.Put(ctx, k, "beta"+k); err != nil {
				t.Fatalf("beta put %s: %v", k, err)
			}
		}
		if _, err := alpha.Put(ctx, "/c", value); !errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) {
			t.Fatalf("alpha's fifth key over its 400 bytes: err = %v, want %v", err, rpctypes.ErrNoSpace)
		}
		before, err := alpha.Get(ctx, "/b")
		if err != nil {
			t.Fatal(err)
		}
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		watch := alpha.Watch(wctx, "/a/", clientv3.WithPrefix(), clientv3.WithRev(before.Header.Revision+1))

		del, err := alpha.Delete(ctx, "/a/", clientv3.WithPrefix(), clientv3.WithPrevKV())
		if err != nil {
			t.Fatalf("delete /a/: %v", err)
		}
		if del.Deleted != 3 || len(del.PrevKvs) != 3 {
			t.Fatalf("delete /a/: deleted %d, %d previous values, want 3: %v", del.Deleted, len(del.PrevKvs), del)
		}
		for i, kv := range del.PrevKvs {
			if want := fmt.Sprintf("/a/%d", i+1); string(kv.Key) != want || string(kv.Value) != value+want {
				t.Errorf("previous value %d: %s=%.12q..., want %s", i, kv.Key, kv.Value, want)
			}
		}
		if del.Header.Revision <= before.Header.Revision {
			t.Errorf("delete at revision %d, not after %d", del.Header.Revision, before.Header.Revision)
		}
		deletes := map[string]bool{}
		for len(deletes) < 3 {
			select {
			case wr := <-watch:
				if err := wr.Err(); err != nil {
					t.Fatalf("watch: %v", err)
				}
				for _, ev := range wr.Events {
					if ev.Type != mvccpb.DELETE || ev.Kv.ModRevision > del.Header.Revision {
						t.Fatalf("watch event %v %s at %d, want deletes up to revision %d", ev.Type, ev.Kv.Key, ev.Kv.ModRevision, del.Header.Revision)
					}
					deletes[string(ev.Kv.Key)] = true
				}
			case <-ctx.Done():
				t.Fatalf("watch saw deletes of %v, want /a/1, /a/2, /a/3", deletes)
			}
		}

		// One key, present and absent.
		one, err := alpha.Delete(ctx, "/b", clientv3.WithPrevKV())
		if err != nil || one.Deleted != 1 || len(one.PrevKvs) != 1 || string(one.PrevKvs[0].Value) != value+"/b" {
			t.Fatalf("delete /b: %v (%v)", one, err)
		}
		none, err := alpha.Delete(ctx, "/b")
		if err != nil || none.Deleted != 0 {
			t.Fatalf("delete of the absent /b: %v (%v)", none, err)
		}
		if _, err := alpha.Delete(ctx, ""); !errors.Is(rpctypes.Error(err), rpctypes.ErrEmptyKey) {
			t.Fatalf("delete of the empty key: err = %v, want %v", err, rpctypes.ErrEmptyKey)
		}

		left, err := alpha.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithCountOnly())
		if err != nil || left.Count != 0 {
			t.Fatalf("alpha's keys left: %v (%v)", left, err)
		}
		for _, k := range []string{"/a/1", "/a/2", "/a/3", "/b"} {
			r, err := beta.Get(ctx, k)
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "beta"+k {
				t.Fatalf("beta's %s after alpha's deletes: %v (%v)", k, r, err)
			}
		}
		// The room is free again: 4 keys (5 allowed) of ~90 bytes (400).
		for _, k := range []string{"/d/1", "/d/2", "/d/3", "/d/4"} {
			if _, err := alpha.Put(ctx, k, value+k); err != nil {
				t.Fatalf("alpha put %s after deleting its keys: %v", k, err)
			}
		}
	})
}

// A delete as kube-apiserver sends it (a transaction at the key's mod
// revision) frees the key's bytes for the quota at once, not only at the
// next rescan of the tenant's usage.
func TestTxnDeleteFreesBytes(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		cfg := filepath.Join(t.TempDir(), "tenants.yaml")
		writeConfig(t, cfg, "tenants:\n  alpha: {maxBytes: 150}\n")
		px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg })
		alpha := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		big := strings.Repeat("x", 100)
		for i := range 3 {
			key := fmt.Sprintf("/big%d", i)
			if err := create(ctx, alpha, key, big); err != nil {
				t.Fatalf("create %s after deleting the one before: %v", key, err)
			}
			cur, err := alpha.Get(ctx, key)
			if err != nil || len(cur.Kvs) != 1 {
				t.Fatalf("get %s: %v (%v)", key, cur, err)
			}
			del, err := alpha.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", cur.Kvs[0].ModRevision)).
				Then(clientv3.OpDelete(key)).Else(clientv3.OpGet(key)).Commit()
			if err != nil || !del.Succeeded {
				t.Fatalf("txn delete %s: %v (%v)", key, del, err)
			}
		}
	})
}

// A range delete racing with writers to the same keys: each call succeeds,
// and once the writers stop, a last delete leaves nothing, and the tenant's
// usage is what it stores (its key limit lets it fill the range again).
func TestDeleteRangeWithConcurrentWriters(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		const keys = 10
		cfg := filepath.Join(t.TempDir(), "tenants.yaml")
		writeConfig(t, cfg, fmt.Sprintf("tenants:\n  alpha: {maxKeys: %d}\n", keys))
		px := proxytest.StartWith(t, b, func(o *app.Options) { o.TenantConfig = cfg })
		alpha := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		// Writers finish the put they are in before they stop, so none is
		// still in flight when the last delete runs.
		var stopped atomic.Bool
		stop := func() { stopped.Store(true) }
		defer stop()
		errc := make(chan error, 4)
		for w := range 4 {
			go func() {
				for i := 0; !stopped.Load(); i++ {
					_, err := alpha.Put(ctx, fmt.Sprintf("/r/%d", (w+i)%keys), strings.Repeat("w", i%50))
					// A put over the key limit is refused while the range
					// is full; anything else is a failure.
					if err != nil && !errors.Is(rpctypes.Error(err), rpctypes.ErrNoSpace) {
						errc <- fmt.Errorf("writer %d: %w", w, err)
						return
					}
				}
				errc <- nil
			}()
		}
		for range 20 {
			if _, err := alpha.Delete(ctx, "/r/", clientv3.WithPrefix()); err != nil {
				t.Fatalf("delete during writes: %v", err)
			}
		}
		stop()
		for range 4 {
			if err := <-errc; err != nil {
				t.Fatal(err)
			}
		}
		if _, err := alpha.Delete(ctx, "/r/", clientv3.WithPrefix()); err != nil {
			t.Fatal(err)
		}
		if r, err := alpha.Get(ctx, "/r/", clientv3.WithPrefix(), clientv3.WithCountOnly()); err != nil || r.Count != 0 {
			t.Fatalf("keys after the last delete: %v (%v)", r, err)
		}
		for i := range keys {
			if _, err := alpha.Put(ctx, fmt.Sprintf("/r/%d", i), "v"); err != nil {
				t.Fatalf("put %d of %d after the deletes: %v", i+1, keys, err)
			}
		}
	})
}
