package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// MySQL's key column holds 630 bytes. A server in strict mode (MariaDB's
// default) refuses a longer key; one without it would cut the key to its
// first 630 bytes and store it under another key's name. So a longer key
// is refused on MySQL whatever the server's mode, with InvalidArgument,
// and the key it would have overwritten keeps its value. The test runs the
// proxy's connections without strict mode.
func TestMySQLRefusesKeysLongerThanItsColumn(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		if b.Kind != "mysql" {
			t.Skipf("SKIPPED: only MySQL's key column has a length")
		}
		b.DSN += "?sql_mode=%27%27"
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()

		// "/kplex/alpha/" is 13 bytes of the column's 630.
		short := "/registry/x/" + strings.Repeat("a", 630-13-len("/registry/x/"))
		if _, err := c.Put(ctx, short, "short"); err != nil {
			t.Fatalf("put a key that just fits: %v", err)
		}
		long := short + "b"
		_, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(long), "=", 0)).
			Then(clientv3.OpPut(long, "long")).Commit()
		if status.Code(err) != codes.InvalidArgument {
			t.Errorf("create a key of %d bytes: got %v, want InvalidArgument", len(long), err)
		}
		if _, err := c.Put(ctx, long, "long"); status.Code(err) != codes.InvalidArgument {
			t.Errorf("put a key of %d bytes: got %v, want InvalidArgument", len(long), err)
		}
		resp, err := c.Get(ctx, short)
		if err != nil || len(resp.Kvs) != 1 || string(resp.Kvs[0].Value) != "short" {
			t.Errorf("the key that fits: %v, %v; want its own value", resp, err)
		}
		if resp, err := c.Get(ctx, "/registry/x/", clientv3.WithPrefix(), clientv3.WithKeysOnly()); err != nil || resp.Count != 1 {
			t.Errorf("keys under /registry/x/: %v, %v; want the one that fits", resp, err)
		}
	})
}
