package server_test

import (
	"context"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A transaction whose operations are on another key than its compare, or
// on a range, is refused on every backend: kine's bridge ran it on the
// wrong key ("if a's mod revision is 0, put b" wrote b's value to a). The
// shapes kube-apiserver sends, on one key, still run.
func TestTxnOnOtherKeysIsRefused(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c := px.Client(t, "alpha")
		put, err := c.Put(ctx, "/registry/c", "c0")
		if err != nil {
			t.Fatal(err)
		}
		rev := put.Header.Revision
		for _, tc := range []struct {
			name string
			txn  clientv3.Txn
		}{
			{"create of another key", c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/a"), "=", 0)).
				Then(clientv3.OpPut("/registry/b", "v")).Else(clientv3.OpGet("/registry/a"))},
			{"update of another key", c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/c"), "=", rev)).
				Then(clientv3.OpPut("/registry/b", "v")).Else(clientv3.OpGet("/registry/c"))},
			{"delete of another key", c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/b"), "=", 0)).
				Then(clientv3.OpDelete("/registry/c")).Else(clientv3.OpGet("/registry/b"))},
			{"failure reads another key", c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/c"), "=", rev)).
				Then(clientv3.OpPut("/registry/c", "c1")).Else(clientv3.OpGet("/registry/b"))},
			{"delete of a range", c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/c"), "=", rev)).
				Then(clientv3.OpDelete("/registry/c", clientv3.WithPrefix())).Else(clientv3.OpGet("/registry/c"))},
			{"compare of a range", c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/c"), "=", rev).WithPrefix()).
				Then(clientv3.OpPut("/registry/c", "c1")).Else(clientv3.OpGet("/registry/c"))},
		} {
			_, err := tc.txn.Commit()
			if status.Code(err) != codes.Unimplemented {
				t.Errorf("%s: err = %v, want Unimplemented", tc.name, err)
			}
		}
		for key, want := range map[string]string{"/registry/a": "", "/registry/b": "", "/registry/c": "c0"} {
			got, err := c.Get(ctx, key)
			if err != nil {
				t.Fatal(err)
			}
			if v := ""; len(got.Kvs) > 0 {
				v = string(got.Kvs[0].Value)
				if v != want {
					t.Errorf("%s = %q after the refused transactions, want %q", key, v, want)
				}
			} else if want != "" {
				t.Errorf("%s is gone after the refused transactions, want %q", key, want)
			}
		}

		// One key throughout, as kube-apiserver writes: runs.
		resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision("/registry/c"), "=", rev)).
			Then(clientv3.OpPut("/registry/c", "c1")).Else(clientv3.OpGet("/registry/c")).Commit()
		if err != nil || !resp.Succeeded {
			t.Fatalf("an update of /registry/c at its revision: %v, %v", resp, err)
		}
	})
}
