package server_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A range of one key answers as etcd does: a count without the key, and
// any limit (kine refused a limit above 1 and sent the key with a count).
func TestOneKeyRange(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := c.Put(ctx, "/k", "v"); err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name  string
			key   string
			opts  []clientv3.OpOption
			count int64
			kvs   int
		}{
			{"count", "/k", []clientv3.OpOption{clientv3.WithCountOnly()}, 1, 0},
			{"count of none", "/none", []clientv3.OpOption{clientv3.WithCountOnly()}, 0, 0},
			{"limit 5", "/k", []clientv3.OpOption{clientv3.WithLimit(5)}, 1, 1},
			{"limit 1", "/k", []clientv3.OpOption{clientv3.WithLimit(1)}, 1, 1},
			{"keys only", "/k", []clientv3.OpOption{clientv3.WithKeysOnly()}, 1, 1},
		} {
			r, err := c.Get(ctx, tc.key, tc.opts...)
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if r.Count != tc.count || len(r.Kvs) != tc.kvs {
				t.Fatalf("%s: count %d, %d keys; want count %d, %d keys", tc.name, r.Count, len(r.Kvs), tc.count, tc.kvs)
			}
		}
	})
}
