package server_test

import (
	"context"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/app"
	"kplex.dev/datastore-proxy/internal/embedetcd"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

var stalledStreamsMetric = regexp.MustCompile(`(?m)^kplex_datastore_proxy_watch_streams_stalled_total\{tenant="([^"]+)"\} (\S+)`)

// rawWatch opens a raw watch stream of tenant with small windows, and
// watches prefix on it (with previous values if prevKV). Its messages may
// be as large as etcd's client takes them. Its windows are fixed: with
// gRPC's default, BDP estimation may let this client's transport (in this
// process too) buffer up to 16 MiB that the proxy no longer holds.
func rawWatch(t *testing.T, ctx context.Context, px *proxytest.Proxy, tenant, prefix string, prevKV bool) etcdserverpb.Watch_WatchClient {
	t.Helper()
	ws := px.WatchStream(t, ctx, tenant, grpc.WithInitialWindowSize(64<<10), grpc.WithInitialConnWindowSize(64<<10),
		grpc.WithDefaultCallOptions(grpc.MaxCallRecvMsgSize(math.MaxInt32)))
	if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
		Key: []byte(prefix), RangeEnd: []byte(clientv3.GetPrefixRangeEnd(prefix)), PrevKv: prevKV,
	}}}); err != nil {
		t.Fatal(err)
	}
	if created, err := ws.Recv(); err != nil || !created.Created {
		t.Fatalf("watch create: %v, %v", created, err)
	}
	return ws
}

// putSeen puts key with c and fails the test unless watch gets that put
// alone within wait; it returns how long that took.
func putSeen(t *testing.T, ctx context.Context, c *clientv3.Client, watch clientv3.WatchChan, key string, wait time.Duration) time.Duration {
	t.Helper()
	start := time.Now()
	put, err := c.Put(ctx, key, "v")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case resp := <-watch:
		if len(resp.Events) != 1 || resp.Events[0].Kv.ModRevision != put.Header.Revision {
			t.Fatalf("the watch got %+v; want the put of %s at %d", resp, key, put.Header.Revision)
		}
	case <-time.After(wait):
		t.Fatalf("the watch got nothing within %s of the put of %s", wait, key)
	}
	return time.Since(start)
}

// stuckStream opens a raw watch stream of tenant on prefix, and fills its
// windows: it is created, then never read, while 64 KiB values are written
// under prefix until the proxy can pass no more on to it (the writes take
// a while longer to be sent).
func stuckStream(t *testing.T, ctx context.Context, px *proxytest.Proxy, tenant, prefix string) etcdserverpb.Watch_WatchClient {
	t.Helper()
	ws := rawWatch(t, ctx, px, tenant, prefix, false)
	writer := px.Client(t, tenant)
	value := strings.Repeat("v", 64<<10)
	for i := range 64 { // 4 MiB: past the windows, the proxy's and etcd's
		if _, err := writer.Put(ctx, fmt.Sprintf("%s%03d", prefix, i), value); err != nil {
			t.Fatal(err)
		}
	}
	return ws
}

// A tenant's watch streams on etcd share one etcd stream, whose responses
// the proxy passes on in order, so a stream whose client stops reading
// holds up the tenant's others. It does so for the stall timeout only:
// then it is ended (Unavailable: etcd's client watches again from where
// it was), counted, and the other streams get their events.
func TestAStalledWatchStreamHoldsUpItsTenantBriefly(t *testing.T) {
	url, stop, err := embedetcd.StartChild(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	const stall = time.Second
	px := proxytest.StartWith(t, backend.Config{Kind: "etcd", DSN: url}, func(o *app.Options) { o.WatchStall = stall })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	alpha := px.Client(t, "alpha")
	pods := alpha.Watch(ctx, "/registry/pods/", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
	if resp := <-pods; !resp.Created {
		t.Fatalf("alpha's watch: %+v", resp)
	}
	stuck := stuckStream(t, ctx, px, "alpha", "/registry/stuck/")
	// Another stream of alpha's gets its events once the stalled one is
	// ended.
	took := putSeen(t, ctx, alpha, pods, "/registry/pods/p", stall+10*time.Second)
	t.Logf("alpha's other watch got its event %s after the put, with a stream stalled", took.Round(time.Millisecond))

	// The stalled stream: what was passed on before, then its end.
	for {
		resp, err := stuck.Recv()
		if err != nil {
			if st, _ := status.FromError(err); st.Code() != codes.Unavailable || !strings.Contains(st.Message(), "took no response") {
				t.Fatalf("the stalled stream ended with %v; want Unavailable, for taking no response", err)
			}
			break
		}
		if resp.Canceled {
			t.Fatalf("the stalled stream's watch canceled: %s", resp.CancelReason)
		}
	}
	if got := metricByTenant(stalledStreamsMetric, scrape(t, px.MetricsAddress))["alpha"]; got != 1 {
		t.Errorf("%s for alpha = %v, want 1", "kplex_datastore_proxy_watch_streams_stalled_total", got)
	}
}

// While the proxy waits for a stream's client to take a response, it
// still reads that client's requests. etcd's client sends its requests
// from the loop that reads its responses; if they were not read, it
// would stop reading, and the proxy would wait on it for ever. A
// tenant's only stream is never ended for stalling, so here the proxy
// waits as long as the client takes nothing.
func TestAStalledWatchStreamsRequestsAreStillRead(t *testing.T) {
	url, stop, err := embedetcd.StartChild(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	px := proxytest.StartWith(t, backend.Config{Kind: "etcd", DSN: url}, func(o *app.Options) { o.WatchStall = time.Second })
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	stuck := stuckStream(t, ctx, px, "alpha", "/registry/stuck/")

	// 2 MiB of create requests, twice the proxy's window for a stream's
	// requests: the client can send them all only if they are read.
	key := "/registry/" + strings.Repeat("k", 16<<10)
	sent := make(chan error, 1)
	go func() {
		for range 128 {
			if err := stuck.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
				Key: []byte(key),
			}}}); err != nil {
				sent <- err
				return
			}
		}
		sent <- nil
	}()
	select {
	case err := <-sent:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("2 MiB of requests not sent in 30 s on a stream whose client takes no response: the proxy stopped reading them")
	}
	time.Sleep(2 * time.Second) // past the stall timeout
	resp, err := stuck.Recv()
	if err != nil || resp.Canceled {
		t.Fatalf("a tenant's only stream, stalled: %v, %v; want it open", resp, err)
	}
}
