package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// Leases past etcd's bounds are answered as etcd answers them, on every
// backend: a grant of 0 s is raised to etcd's shortest lease (kine
// answered lease 0, "no lease", and a key put with it never expired); a
// grant, put or create longer than etcd's longest is refused (on the SQL
// backends kine's expiry overflowed and deleted such a key at once). And a
// read at a negative revision reads the latest, as on etcd (kine's read of
// one key found nothing).
func TestLeaseBoundsAndNegativeRevisions(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		const tooLong = 10_000_000_000 // etcd's longest lease is 9e9 s

		g, err := c.Grant(ctx, 0)
		if err != nil {
			t.Fatalf("grant of 0 s: %v", err)
		}
		if g.ID == 0 || g.TTL < 2 {
			t.Errorf("grant of 0 s: lease %d, TTL %d; want a lease of at least etcd's 2 s", g.ID, g.TTL)
		}
		if _, err := c.Grant(ctx, tooLong); !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
			t.Errorf("grant of %d s: %v, want %v", int64(tooLong), err, rpctypes.ErrLeaseTTLTooLarge)
		}

		const key = "/registry/leases/k"
		if _, err := c.Put(ctx, key, "v", clientv3.WithLease(tooLong)); !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
			t.Errorf("put with lease %d: %v, want %v", int64(tooLong), err, rpctypes.ErrLeaseTTLTooLarge)
		}
		_, err = c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, "v", clientv3.WithLease(tooLong))).Commit()
		if !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
			t.Errorf("create with lease %d: %v, want %v", int64(tooLong), err, rpctypes.ErrLeaseTTLTooLarge)
		}
		// A negative lease is none etcd could have granted: refused as
		// etcd refuses a lease it does not know (the etcd backend wrote the
		// key with no lease, SQL with one that never expired).
		if _, err := c.Put(ctx, key, "v", clientv3.WithLease(-5)); !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Errorf("put with lease -5: %v, want %v", err, rpctypes.ErrLeaseNotFound)
		}
		_, err = c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", 0)).
			Then(clientv3.OpPut(key, "v", clientv3.WithLease(-5))).Commit()
		if !errors.Is(err, rpctypes.ErrLeaseNotFound) {
			t.Errorf("create with lease -5: %v, want %v", err, rpctypes.ErrLeaseNotFound)
		}
		if got, err := c.Get(ctx, key); err != nil || len(got.Kvs) != 0 {
			t.Fatalf("after the refused writes: %v, %v; want no key", got, err)
		}

		if _, err := c.Put(ctx, key, "v"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(2 * time.Second) // a key deleted at once by its expiry would be gone
		for _, opts := range [][]clientv3.OpOption{{clientv3.WithRev(-1)}, {clientv3.WithRev(-1), clientv3.WithPrefix()}} {
			got, err := c.Get(ctx, key, opts...)
			if err != nil || len(got.Kvs) != 1 {
				t.Errorf("get at revision -1 (%d options): %v, %v; want the key", len(opts), got, err)
			}
		}
	})
}

// A lease the backend cannot hold is refused as too large, not with the
// database's error: PostgreSQL's and MySQL's lease column (kine's INTEGER)
// holds 68 years; SQLite's and etcd's take etcd's longest.
func TestLeasesTheBackendCannotHold(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		const long = int64(1) << 31 // 68 years
		if _, err := c.Put(ctx, "/registry/leases/short", "v", clientv3.WithLease(clientv3.LeaseID(long-1))); err != nil {
			t.Errorf("put with lease %d: %v", long-1, err)
		}
		// A new key (a create) and the one just written (an update).
		for _, key := range []string{"/registry/leases/long", "/registry/leases/short"} {
			_, err := c.Put(ctx, key, "v", clientv3.WithLease(clientv3.LeaseID(long)))
			switch b.Kind {
			case "postgres", "mysql":
				if !errors.Is(err, rpctypes.ErrLeaseTTLTooLarge) {
					t.Errorf("put of %s with lease %d: %v, want %v", key, long, err, rpctypes.ErrLeaseTTLTooLarge)
				}
			default:
				if err != nil {
					t.Errorf("put of %s with lease %d: %v", key, long, err)
				}
			}
		}
	})
}

// The lease calls the proxy does not serve (a lease is its TTL, kine's
// model) are answered Unimplemented, which a client takes for a call that
// did nothing; kine's bridge answered Unknown, which a client may take for
// one that might have been applied.
func TestUnsupportedLeaseCallsAreUnimplemented(t *testing.T) {
	px := proxytest.Start(t, backend.Config{Kind: "sqlite"})
	c := px.Client(t, "alpha")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	g, err := c.Grant(ctx, 60)
	if err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"revoke":        func() error { _, err := c.Revoke(ctx, g.ID); return err },
		"keep-alive":    func() error { _, err := c.KeepAliveOnce(ctx, g.ID); return err },
		"time to live":  func() error { _, err := c.TimeToLive(ctx, g.ID); return err },
		"lease listing": func() error { _, err := c.Leases(ctx); return err },
	} {
		if err := call(); status.Code(err) != codes.Unimplemented {
			t.Errorf("%s: %v, want Unimplemented", name, err)
		}
	}
}
