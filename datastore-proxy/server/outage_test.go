package server_test

import (
	"context"
	"net/http"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/cli/ports"
	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/embedetcd"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// TestBackendOutage: the etcd behind the proxy goes away mid-run. Requests
// fail with an error (not a hang), /readyz says not ready, and once etcd is
// back on the same address the proxy serves again with nothing lost; a
// watch opened before goes on with the writes after (etcd's client watches
// again from where it was, as the proxy ends its stream as unavailable).
func TestBackendOutage(t *testing.T) {
	p, err := ports.Free(2)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	url, stop, err := embedetcd.StartOn(dir, nil, p[0], p[1])
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			stop()
		}
	})
	px := proxytest.Start(t, backend.Config{Kind: "etcd", DSN: url})
	c := px.Client(t, "alpha")
	ctx := context.Background()
	if err := create(ctx, c, "/before", "v"); err != nil {
		t.Fatal(err)
	}
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	watch := c.Watch(wctx, "/after")
	ready := func() int { return readyz(px.MetricsAddress) }
	if code := ready(); code != http.StatusOK {
		t.Fatalf("/readyz = %d with etcd up", code)
	}

	stop()
	stopped = true
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	_, err = c.Get(rctx, "/before")
	cancel()
	if err == nil {
		t.Fatal("a read succeeded with the backend down")
	}
	t.Logf("read while the backend is down: %v", err)
	if code := ready(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d with etcd down, want 503", code)
	}

	_, stop, err = embedetcd.StartOn(dir, nil, p[0], p[1])
	if err != nil {
		t.Fatal(err)
	}
	stopped = false
	waitServed(t, c, "/before", "after etcd came back")
	if err := create(ctx, c, "/after", "v"); err != nil {
		t.Fatalf("write after recovery: %v", err)
	}
	select {
	case resp, ok := <-watch:
		if !ok || resp.Err() != nil || len(resp.Events) != 1 || string(resp.Events[0].Kv.Key) != "/after" {
			t.Fatalf("the watch opened before the outage got %+v (open: %v), want the write of /after", resp, ok)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the watch opened before the outage did not see the write after it within 15 s")
	}
	if code := ready(); code != http.StatusOK {
		t.Fatalf("/readyz = %d after recovery", code)
	}
}

// waitServed waits up to 30 s for the proxy to serve key, which exists,
// to c again, or fails the test with the last error (when says after what).
func waitServed(t *testing.T, c *clientv3.Client, key, when string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		resp, err := c.Get(ctx, key)
		cancel()
		if err == nil && len(resp.Kvs) == 1 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the proxy did not serve %s again %s: %v", key, when, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// readyz is the status code of the proxy's /readyz at addr (its metrics
// address), 0 if it did not answer.
func readyz(addr string) int {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}
