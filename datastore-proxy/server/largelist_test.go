package server_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A list whose answer is over gRPC's default 4 MiB is served, unary and
// by RangeStream, as etcd serves it. On etcd it failed with
// ResourceExhausted ("received message larger than max"): a tenant with a
// few large secrets or CRDs could not list them at all.
func TestAListOverFourMiB(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		alpha := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		const keys, size = 6, 1 << 20
		for i := range keys {
			if _, err := alpha.Put(ctx, fmt.Sprintf("/registry/secrets/ns/s%d", i), strings.Repeat("x", size)); err != nil {
				t.Fatal(err)
			}
		}
		resp, err := alpha.Get(ctx, "/registry/secrets/", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("a list of %d keys of 1 MiB: %v", keys, err)
		}
		if len(resp.Kvs) != keys || resp.Count != keys || len(resp.Kvs[keys-1].Value) != size {
			t.Fatalf("a list of %d keys of 1 MiB: %d keys, count %d", keys, len(resp.Kvs), resp.Count)
		}
		got, _, err := streamed(ctx, alpha, "/registry/secrets/", clientv3.WithPrefix())
		if err != nil {
			t.Fatalf("the same list by RangeStream: %v", err)
		}
		if len(got.Kvs) != keys || got.Count != keys {
			t.Fatalf("the same list by RangeStream: %d keys, count %d; want %d", len(got.Kvs), got.Count, keys)
		}
	})
}
