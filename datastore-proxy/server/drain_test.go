package server_test

import (
	"context"
	"net/http"
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

// With --shutdown-delay the proxy serves on, /readyz answering 503, for
// that long before it drains: reads, writes and open watches go on while
// load balancers take it out.
func TestShutdownServesOnThroughItsDelay(t *testing.T) {
	const delay = 2 * time.Second
	px := proxytest.StartWith(t, backend.Config{Kind: "sqlite"}, func(o *app.Options) {
		o.ShutdownGrace = 30 * time.Second
		o.ShutdownDelay = delay
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ws := rawWatch(t, ctx, px, "alpha", "/registry/delay/", false)
	c := px.Client(t, "alpha")

	start := time.Now()
	stopped := make(chan struct{})
	go func() { px.Stop(); close(stopped) }()
	t.Cleanup(func() { <-stopped }) // before the proxy's own cleanup stops it again
	for code := readyz(px.MetricsAddress); code != http.StatusServiceUnavailable; code = readyz(px.MetricsAddress) {
		if time.Since(start) > delay/2 {
			t.Fatalf("/readyz = %d %s into the shutdown delay; want 503", code, time.Since(start).Round(time.Millisecond))
		}
		time.Sleep(20 * time.Millisecond)
	}
	if _, err := c.Put(ctx, "/registry/delay/a", "v"); err != nil {
		t.Fatalf("a write during the shutdown delay: %v", err)
	}
	if resp, err := ws.Recv(); err != nil || len(resp.Events) != 1 {
		t.Fatalf("the watch during the shutdown delay: %v, %v; want the write", resp, err)
	}
	if took := time.Since(start); took >= delay {
		t.Fatalf("the checks took %s, past the %s delay: nothing shown", took, delay)
	}
	var err error
	for err == nil {
		_, err = ws.Recv()
	}
	if took := time.Since(start); status.Code(err) != codes.Unavailable || took < delay {
		t.Fatalf("the watch stream ended %s after shutdown began with %v; want Unavailable after the %s delay", took.Round(time.Millisecond), err, delay)
	}
	select {
	case <-stopped:
	case <-time.After(delay + 10*time.Second):
		t.Fatal("the proxy still stopping 10 s after its delay, with its watch streams ended")
	}
}
