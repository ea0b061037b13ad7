package server_test

import (
	"context"
	"crypto/tls"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/cli/pki"
	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// TestIsolation: two tenants on one proxy; every trick of beta's must fail
// to read, write, delete, watch, compare or learn of alpha's keys.
func TestIsolation(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		alpha, beta := px.Client(t, "alpha"), px.Client(t, "beta")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()

		put, err := alpha.Put(ctx, "/registry/secrets/default/s", "alpha-secret")
		if err != nil {
			t.Fatal(err)
		}
		alphaRev := put.Header.Revision
		if _, err := alpha.Put(ctx, "compact_rev_key_apiserver", "x"); err != nil {
			t.Fatal(err)
		}
		if _, err := beta.Put(ctx, "/registry/configmaps/default/c", "beta-config"); err != nil {
			t.Fatal(err)
		}

		mustSeeOnly := func(t *testing.T, what string, resp *clientv3.GetResponse, err error, want ...string) {
			t.Helper()
			if err != nil {
				t.Fatalf("%s: %v", what, err)
			}
			var got []string
			for _, kv := range resp.Kvs {
				got = append(got, string(kv.Key))
				if strings.Contains(string(kv.Value), "alpha") {
					t.Fatalf("%s: beta read alpha's value %q at %q", what, kv.Value, kv.Key)
				}
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Fatalf("%s: beta sees %v, want %v", what, got, want)
			}
		}
		own := "/registry/configmaps/default/c"
		t.Run("reads", func(t *testing.T) {
			r, err := beta.Get(ctx, "/registry/secrets/default/s")
			mustSeeOnly(t, "get alpha's key", r, err)
			r, err = beta.Get(ctx, "", clientv3.WithFromKey()) // "\x00".."\x00"
			mustSeeOnly(t, "everything from the empty key", r, err, own)
			// SQL backends refuse a non-UTF-8 bound outright; either way
			// nothing of alpha's may come back.
			if r, err = beta.Get(ctx, "\x00", clientv3.WithRange("\xff\xff\xff")); err == nil {
				mustSeeOnly(t, "crafted range to \\xff", r, err, own)
			}
			r, err = beta.Get(ctx, "/", clientv3.WithPrefix())
			mustSeeOnly(t, "prefix /", r, err, own)
			r, err = beta.Get(ctx, "../alpha/", clientv3.WithPrefix())
			mustSeeOnly(t, "relative path to alpha", r, err)
			r, err = beta.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithCountOnly())
			if err != nil || r.Count != 1 {
				t.Fatalf("count of everything = %d (%v), want 1 (beta's own key only)", r.Count, err)
			}
			r, err = beta.Get(ctx, "/registry/secrets/default/s", clientv3.WithRev(alphaRev))
			mustSeeOnly(t, "alpha's key at alpha's revision", r, err)
		})

		t.Run("writes and deletes stay in beta's space", func(t *testing.T) {
			if _, err := beta.Put(ctx, "/registry/secrets/default/s", "beta-overwrite"); err != nil {
				t.Fatal(err)
			}
			// Deletes as kube-apiserver sends them: a txn on the key's
			// mod revision. Beta's overwrite made its own copy of the key.
			cur, err := beta.Get(ctx, "/registry/secrets/default/s")
			if err != nil || len(cur.Kvs) != 1 {
				t.Fatalf("beta's own copy: %v (%v)", cur, err)
			}
			del, err := beta.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision("/registry/secrets/default/s"), "=", cur.Kvs[0].ModRevision)).
				Then(clientv3.OpDelete("/registry/secrets/default/s")).
				Else(clientv3.OpGet("/registry/secrets/default/s")).Commit()
			if err != nil || !del.Succeeded {
				t.Fatalf("beta's txn delete of its own key: %v (%v)", del, err)
			}
			// A range delete of everything deletes everything of beta's.
			if _, err := beta.Put(ctx, "/registry/configmaps/default/c", "beta"); err != nil {
				t.Fatal(err)
			}
			for _, end := range []clientv3.OpOption{clientv3.WithFromKey(), clientv3.WithPrefix()} {
				if _, err := beta.Delete(ctx, "", end); err != nil { // "\x00".."\x00"
					t.Fatalf("beta's delete of everything: %v", err)
				}
			}
			if _, err := beta.Delete(ctx, "/", clientv3.WithRange("\x7f")); err != nil {
				t.Fatalf("beta's delete of / to \\x7f: %v", err)
			}
			// An empty key with an end of its own is refused, as etcd does.
			if _, err := beta.Delete(ctx, "", clientv3.WithRange("\x7f")); !errors.Is(rpctypes.Error(err), rpctypes.ErrEmptyKey) {
				t.Fatalf("beta's delete from the empty key: err = %v, want %v", err, rpctypes.ErrEmptyKey)
			}
			if _, err := beta.Put(ctx, "", "x"); !errors.Is(rpctypes.Error(err), rpctypes.ErrEmptyKey) {
				t.Fatalf("beta's put of the empty key: err = %v, want %v", err, rpctypes.ErrEmptyKey)
			}
			if _, err := beta.Get(ctx, ""); !errors.Is(rpctypes.Error(err), rpctypes.ErrEmptyKey) {
				t.Fatalf("beta's get of the empty key: err = %v, want %v", err, rpctypes.ErrEmptyKey)
			}
			if _, err := beta.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(""), "=", 0)).Then(clientv3.OpPut("", "x")).Commit(); !errors.Is(rpctypes.Error(err), rpctypes.ErrEmptyKey) {
				t.Fatalf("beta's txn create of the empty key: err = %v, want %v", err, rpctypes.ErrEmptyKey)
			}
			if r, err := beta.Get(ctx, "", clientv3.WithFromKey(), clientv3.WithCountOnly()); err != nil || r.Count != 0 {
				t.Fatalf("beta's keys after its delete of everything: %v (%v)", r, err)
			}
			r, err := alpha.Get(ctx, "/registry/secrets/default/s")
			if err != nil || len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "alpha-secret" {
				t.Fatalf("alpha's key after beta's writes: %v (%v)", r, err)
			}
		})

		t.Run("txn compare on alpha's key", func(t *testing.T) {
			// The compare is evaluated on beta's own (absent) key: it fails
			// exactly as for a key that never existed, and the put goes to
			// beta's space if anywhere.
			resp, err := beta.Txn(ctx).
				If(clientv3.Compare(clientv3.ModRevision("/registry/secrets/default/s"), "=", alphaRev)).
				Then(clientv3.OpPut("/registry/secrets/default/s", "beta-txn")).
				Else(clientv3.OpGet("/registry/secrets/default/s")).Commit()
			if err == nil && resp.Succeeded {
				t.Fatalf("beta's txn compare matched alpha's revision")
			}
			r, _ := alpha.Get(ctx, "/registry/secrets/default/s")
			if len(r.Kvs) != 1 || string(r.Kvs[0].Value) != "alpha-secret" {
				t.Fatalf("alpha's key changed: %v", r.Kvs)
			}
		})

		t.Run("watch sees only own events", func(t *testing.T) {
			wctx, wcancel := context.WithCancel(ctx)
			defer wcancel()
			w := beta.Watch(wctx, "", clientv3.WithFromKey(), clientv3.WithRev(1))
			if _, err := alpha.Put(ctx, "/registry/pods/x", "alpha-pod"); err != nil {
				t.Fatal(err)
			}
			if _, err := beta.Put(ctx, "/registry/pods/marker", "beta-marker"); err != nil {
				t.Fatal(err)
			}
			for {
				select {
				case resp := <-w:
					if err := resp.Err(); err != nil {
						t.Fatal(err)
					}
					for _, ev := range resp.Events {
						if strings.Contains(string(ev.Kv.Value), "alpha") || strings.HasPrefix(string(ev.Kv.Key), "/kplex") {
							t.Fatalf("beta's watch got %q=%q", ev.Kv.Key, ev.Kv.Value)
						}
						if string(ev.Kv.Key) == "/registry/pods/marker" {
							return
						}
					}
				case <-time.After(20 * time.Second):
					t.Fatal("beta's watch never delivered its own marker")
				}
			}
		})

		t.Run("compaction by beta keeps alpha's history", func(t *testing.T) {
			cur, err := beta.Get(ctx, "x")
			if err != nil {
				t.Fatal(err)
			}
			if _, err := beta.Compact(ctx, cur.Header.Revision); err != nil {
				t.Fatal(err)
			}
			r, err := alpha.Get(ctx, "/registry/secrets/default/s", clientv3.WithRev(alphaRev))
			if err != nil || len(r.Kvs) != 1 {
				t.Fatalf("alpha's history at %d after beta compacted: %v (%v)", alphaRev, r, err)
			}
		})

		t.Run("compaction of a future revision is refused, as etcd refuses it", func(t *testing.T) {
			cur, err := beta.Get(ctx, "x")
			if err != nil {
				t.Fatal(err)
			}
			_, err = beta.Compact(ctx, cur.Header.Revision+1000)
			if !errors.Is(err, rpctypes.ErrFutureRev) {
				t.Fatalf("compaction %d revisions ahead of the store: %v; want %v", 1000, err, rpctypes.ErrFutureRev)
			}
		})

		t.Run("leases are not shared", func(t *testing.T) {
			l, err := alpha.Grant(ctx, 60)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := beta.Revoke(ctx, l.ID); err == nil {
				t.Fatal("beta revoked a lease id alpha was granted")
			}
			if _, err := beta.Leases(ctx); err == nil {
				t.Fatal("beta listed leases")
			}
		})

		// On etcd the tenants' keys share real leases; what a key's lease
		// reads is its TTL, as on kine, never an ID another tenant's key
		// shares, on every path a key reaches a tenant by.
		t.Run("a key's lease reads as its TTL", func(t *testing.T) {
			wctx, stop := context.WithCancel(ctx)
			defer stop()
			w := alpha.Watch(wctx, "/registry/events/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
			<-w
			for _, c := range []*clientv3.Client{beta, alpha} {
				l, err := c.Grant(ctx, 60)
				if err != nil {
					t.Fatal(err)
				}
				if _, err := c.Put(ctx, "/registry/events/default/e", "event", clientv3.WithLease(l.ID)); err != nil {
					t.Fatal(err)
				}
			}
			check := func(what string, leases ...int64) {
				t.Helper()
				if len(leases) != 1 || leases[0] != 60 {
					t.Errorf("%s: the key's lease reads %v, want [60]", what, leases)
				}
			}
			get, err := alpha.Get(ctx, "/registry/events/default/e")
			if err != nil {
				t.Fatal(err)
			}
			list, err := alpha.Get(ctx, "/registry/events/", clientv3.WithPrefix())
			if err != nil {
				t.Fatal(err)
			}
			leasesOf := func(r *clientv3.GetResponse) (l []int64) {
				for _, kv := range r.Kvs {
					l = append(l, kv.Lease)
				}
				return l
			}
			check("get", leasesOf(get)...)
			check("list", leasesOf(list)...)
			select {
			case ev := <-w:
				var l []int64
				for _, e := range ev.Events {
					l = append(l, e.Kv.Lease)
				}
				check("watch", l...)
			case <-time.After(10 * time.Second):
				t.Error("watch: no event in 10 s")
			}
		})
	})
}

// TestIdentity: no valid client certificate, no access.
func TestIdentity(t *testing.T) {
	px := proxytest.Start(t, backend.Config{Kind: "sqlite"})
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	foreign, err := pki.NewCA("someone-else")
	if err != nil {
		t.Fatal(err)
	}
	noCert := px.ClientTLS(t, "alpha", px.CA)
	noCert.Certificates = nil
	tests := []struct {
		name string
		tls  *tls.Config
		want string
	}{
		{"no client certificate", noCert, ""},
		{"certificate from another CA", px.ClientTLS(t, "alpha", foreign), ""},
		{"CN is not a tenant name", px.ClientTLS(t, "Alpha/../beta", px.CA), "not a tenant"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := px.ClientWithTLS(t, tt.tls)
			cctx, ccancel := context.WithTimeout(ctx, 3*time.Second)
			defer ccancel()
			_, err := c.Get(cctx, "k")
			if err == nil {
				t.Fatal("request succeeded")
			}
			if tt.want != "" && !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
	// The refused request is counted under a tenant label no tenant can
	// have: "unauthenticated" is a valid tenant name.
	refused := regexp.MustCompile(`(?m)^kplex_datastore_proxy_requests_total\{code="PermissionDenied",method="/etcdserverpb.KV/Range",tenant="([^"]+)"\} (\S+)`)
	got := metricByTenant(refused, scrape(t, px.MetricsAddress))
	if len(got) != 1 || got["(unauthenticated)"] < 1 {
		t.Errorf("refused requests by tenant: %v, want them under (unauthenticated) alone", got)
	}
}
