package server_test

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// Many watches created at once on one stream, each on its own range and
// from a past revision, each get exactly their own events, and every one
// of them is counted in the tenant's metrics.
func TestWatchesAreScopedToTheirRange(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		start, err := c.Put(ctx, "/registry/start", "x")
		if err != nil {
			t.Fatal(err)
		}
		const n = 12
		for i := range n {
			if _, err := c.Put(ctx, fmt.Sprintf("/registry/r%02d/before", i), "x"); err != nil {
				t.Fatal(err)
			}
		}
		// One stream: every Watch call on this context shares it.
		wctx, wcancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
		defer wcancel()
		chans := make([]clientv3.WatchChan, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				prefix := fmt.Sprintf("/registry/r%02d/", i)
				opts := []clientv3.OpOption{clientv3.WithRev(start.Header.Revision)}
				if i%3 == 0 { // a single key
					prefix += "before"
				} else {
					opts = append(opts, clientv3.WithPrefix())
				}
				chans[i] = c.Watch(wctx, prefix, opts...)
			})
		}
		wg.Wait()
		for i := range n {
			if _, err := c.Put(ctx, fmt.Sprintf("/registry/r%02d/after", i), "x"); err != nil {
				t.Fatal(err)
			}
		}
		for i, ch := range chans {
			want := []string{fmt.Sprintf("/registry/r%02d/before", i), fmt.Sprintf("/registry/r%02d/after", i)}
			if i%3 == 0 {
				want = want[:1]
			}
			var got []string
			timeout := time.After(20 * time.Second)
			for len(got) < len(want) {
				select {
				case resp := <-ch:
					if err := resp.Err(); err != nil {
						t.Fatalf("watch %d: %v", i, err)
					}
					for _, ev := range resp.Events {
						got = append(got, string(ev.Kv.Key))
					}
				case <-timeout:
					t.Fatalf("watch %d got %v, want %v", i, got, want)
				}
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Fatalf("watch %d got %v, want %v", i, got, want)
			}
		}
		if got := watchCount(t, px.MetricsAddress); got < n {
			t.Fatalf("kplex_datastore_proxy_watches_total of alpha: %d; want >= %d", got, n)
		}
	})
}

var watchesMetric = regexp.MustCompile(`(?m)^kplex_datastore_proxy_watches_total\{tenant="alpha"\} (\d+)`)

func watchCount(t *testing.T, addr string) int {
	t.Helper()
	m := watchesMetric.FindStringSubmatch(scrape(t, addr))
	if m == nil {
		t.Fatal("no kplex_datastore_proxy_watches_total of alpha in the metrics")
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
