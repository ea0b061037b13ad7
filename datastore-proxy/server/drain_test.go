package server_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// On shutdown the proxy ends its watch streams with Unavailable, which
// etcd's client answers by watching again from its revision, and then
// stops as soon as the calls under way are done, well inside its grace
// period. (gRPC's graceful stop waited for the watch streams, which never
// end by themselves, for the whole grace period, and then cut every
// connection.)
func TestShutdownDrainsWatchStreams(t *testing.T) {
	const grace = 30 * time.Second
	px := proxytest.StartWith(t, backend.Config{Kind: "sqlite"}, func(o *app.Options) { o.ShutdownGrace = grace })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws := rawWatch(t, ctx, px, "alpha", "/registry/drain/", false)
	c := px.Client(t, "alpha")
	if _, err := c.Put(ctx, "/registry/drain/a", "v"); err != nil {
		t.Fatal(err)
	}
	if resp, err := ws.Recv(); err != nil || len(resp.Events) != 1 {
		t.Fatalf("the watch before shutdown: %v, %v; want the put", resp, err)
	}

	start := time.Now()
	stopped := make(chan struct{})
	go func() { px.Stop(); close(stopped) }()
	t.Cleanup(func() { <-stopped }) // before the proxy's own cleanup stops it again
	var err error
	for err == nil {
		_, err = ws.Recv()
	}
	if took := time.Since(start); status.Code(err) != codes.Unavailable || !strings.Contains(err.Error(), "shutting down") || took > 5*time.Second {
		t.Fatalf("the watch stream ended %s after shutdown began with %v; want Unavailable, the proxy shutting down, at once", took.Round(time.Millisecond), err)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatalf("the proxy still stopping %s after shutdown began, with its watch streams ended (grace %s)", time.Since(start).Round(time.Millisecond), grace)
	}
}
