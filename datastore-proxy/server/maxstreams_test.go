package server_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// With --max-concurrent-streams, a connection with that many streams open
// gets no more: its next request waits in the client, unsent, rather than
// held in the proxy, until one ends; another connection is not held up.
// It also shows why the bound must sit above a tenant's long-lived watch
// streams: while they fill it, the tenant's requests wait.
func TestMaxConcurrentStreamsHoldsRequestsInTheClient(t *testing.T) {
	px := proxytest.StartWith(t, backend.Config{Kind: "sqlite"}, func(o *app.Options) { o.MaxStreams = 2 })
	alpha, beta := px.Client(t, "alpha"), px.Client(t, "beta")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := alpha.Put(ctx, "/registry/a", "1"); err != nil {
		t.Fatalf("alpha's first put: %v", err)
	}

	conn := alpha.ActiveConnection()
	open := func() context.CancelFunc {
		sctx, scancel := context.WithCancel(ctx)
		ws, err := etcdserverpb.NewWatchClient(conn).Watch(sctx)
		if err != nil {
			t.Fatal(err)
		}
		if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{
			CreateRequest: &etcdserverpb.WatchCreateRequest{Key: []byte("/registry/a")}}}); err != nil {
			t.Fatal(err)
		}
		if r, err := ws.Recv(); err != nil || !r.Created {
			t.Fatalf("watch: created %v, err %v", r.GetCreated(), err)
		}
		return scancel
	}
	first, second := open(), open()
	defer first()
	defer second()

	short, cancelShort := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err := alpha.Put(short, "/registry/b", "2")
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("alpha's put with its 2 streams open: err = %v, want it to wait until its deadline", err)
	}
	if _, err := beta.Put(ctx, "/registry/b", "2"); err != nil {
		t.Fatalf("beta's put, its own connection: %v", err)
	}
	first()
	if _, err := alpha.Put(ctx, "/registry/b", "2"); err != nil {
		t.Fatalf("alpha's put once a stream ended: %v", err)
	}
}
