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
// of them reached the backend scoped to its range (the proxy pairs create
// requests with backend watches in order).
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
		scoped, unscoped := watchCounts(t, px.MetricsAddress)
		if scoped < n || unscoped != 0 {
			t.Fatalf("kplex_datastore_proxy_watches_total: %d scoped, %d unscoped; want >= %d and 0", scoped, unscoped, n)
		}
	})
}

var watchesMetric = regexp.MustCompile(`(?m)^kplex_datastore_proxy_watches_total\{scoped="(true|false)",tenant="alpha"\} (\d+)`)

func watchCounts(t *testing.T, addr string) (scoped, unscoped int) {
	t.Helper()
	for _, m := range watchesMetric.FindAllStringSubmatch(scrape(t, addr), -1) {
		v, _ := strconv.Atoi(m[2])
		if m[1] == "true" {
			scoped += v
		} else {
			unscoped += v
		}
	}
	return scoped, unscoped
}
