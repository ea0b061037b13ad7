package server_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A watch that catches up over more revisions than etcd sends in one
// response (1,000) gets every event once, in order: etcd sends such a
// catch-up as several responses with one header revision, which kine
// refuses fatally unless each batch carries its own events' revision.
func TestWatchCatchesUpOverManyRevisions(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		const n = 2500
		var first int64
		for i := range n {
			r, err := c.Put(ctx, fmt.Sprintf("/registry/many/%05d", i), "x")
			if err != nil {
				t.Fatal(err)
			}
			if i == 0 {
				first = r.Header.Revision
			}
		}
		wc := c.Watch(ctx, "/registry/many/", clientv3.WithPrefix(), clientv3.WithRev(first))
		next := 0
		for next < n {
			select {
			case resp, ok := <-wc:
				if !ok || resp.Err() != nil {
					t.Fatalf("watch ended after %d of %d events: %v", next, n, resp.Err())
				}
				for _, ev := range resp.Events {
					if want := fmt.Sprintf("/registry/many/%05d", next); string(ev.Kv.Key) != want {
						t.Fatalf("event %d is %s, want %s", next, ev.Kv.Key, want)
					}
					next++
				}
			case <-ctx.Done():
				t.Fatalf("%d of %d events", next, n)
			}
		}
	})
}
