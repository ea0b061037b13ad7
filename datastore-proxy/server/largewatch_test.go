package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A watch create whose key, with the tenant's space added, would be more
// than etcd takes in one request ends its own stream, as etcd ends one
// that sends too much; the tenant's other watch streams go on. (Before,
// the create reached etcd, which ended the tenant's one stream there, and
// with it every watch of the tenant.) The SQL backends' tenant streams
// are shared the same way (localwatch), and are bounded alike.
func TestAnOversizedWatchCreateEndsItsOwnStreamOnly(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		// clientv3 opens one gRPC stream per set of outgoing metadata.
		other := c.Watch(metadata.AppendToOutgoingContext(ctx, "stream", "other"), "/registry/ok", clientv3.WithCreatedNotify())
		if r := <-other; !r.Created {
			t.Fatalf("the other watch: %+v", r)
		}
		huge := "/registry/" + strings.Repeat("k", 2<<20-80) // within the proxy's 2 MiB, not with the space added
		big := c.Watch(metadata.AppendToOutgoingContext(ctx, "stream", "big"), huge)
		select {
		case r, ok := <-big:
			if ok && status.Code(r.Err()) != codes.ResourceExhausted {
				t.Errorf("the oversized watch: %v (%+v), want ResourceExhausted", r.Err(), r)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the oversized watch got no answer in 10 s")
		}
		if _, err := c.Put(ctx, "/registry/ok", "v"); err != nil {
			t.Fatal(err)
		}
		select {
		case r := <-other:
			if r.Err() != nil || len(r.Events) != 1 {
				t.Fatalf("the other watch after the oversized one: %v, %d events; want its event", r.Err(), len(r.Events))
			}
		case <-time.After(10 * time.Second):
			t.Fatal("the other watch got no event in 10 s")
		}
	})
}
