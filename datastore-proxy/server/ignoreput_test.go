package server_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A put in a transaction that asks to keep the key's value or lease is
// refused, as a plain put is: kine took an update (compare the key's
// revision, put it, else get it) that does so as one that does not, wrote
// an empty value (or dropped the lease) and answered success, the key's
// value lost.
func TestATxnPutThatKeepsTheValueIsRefused(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		const k = "/registry/configmaps/ns/keep"
		put, err := c.Put(ctx, k, "value")
		if err != nil {
			t.Fatal(err)
		}
		for _, tc := range []struct {
			name string
			op   clientv3.Op
		}{
			{"ignore value", clientv3.OpPut(k, "", clientv3.WithIgnoreValue())},
			{"ignore lease", clientv3.OpPut(k, "other", clientv3.WithIgnoreLease())},
			{"nested", clientv3.OpTxn(nil, []clientv3.Op{clientv3.OpPut(k, "", clientv3.WithIgnoreValue())}, nil)},
			// kine answered success with no previous value, as if the key
			// had held none.
			{"previous value", clientv3.OpPut(k, "other", clientv3.WithPrevKV())},
		} {
			_, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", put.Header.Revision)).Then(tc.op).Else(clientv3.OpGet(k)).Commit()
			if status.Code(err) != codes.Unimplemented {
				t.Errorf("%s: err = %v, want Unimplemented", tc.name, err)
			}
		}
		got, err := c.Get(ctx, k)
		if err != nil || len(got.Kvs) != 1 || string(got.Kvs[0].Value) != "value" || got.Kvs[0].ModRevision != put.Header.Revision {
			t.Errorf("the key after the refused puts: %v, %v; want its value, unchanged", got, err)
		}
	})
}
