package server_test

import (
	"context"
	"slices"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A watch from a key (etcdctl watch --from-key) sees every key from it on,
// and a watch on the empty key sees the key "\x00" alone, as on etcd. kine
// took the first for its key alone and the second for every key.
func TestWatchFromKeyAndEmptyKey(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		now, err := c.Get(ctx, "/now")
		if err != nil {
			t.Fatal(err)
		}
		next := clientv3.WithRev(now.Header.Revision + 1)
		fromB := c.Watch(wctx, "/b", clientv3.WithFromKey(), next)
		empty := c.Watch(wctx, "", next)
		for _, key := range []string{"/a", "/b", "/c", "/zz"} {
			if _, err := c.Put(ctx, key, "x"); err != nil {
				t.Fatal(err)
			}
		}
		var got []string
		for len(got) < 3 {
			select {
			case resp := <-fromB:
				if err := resp.Err(); err != nil {
					t.Fatalf("from-key watch: %v", err)
				}
				for _, ev := range resp.Events {
					got = append(got, string(ev.Kv.Key))
				}
			case <-time.After(10 * time.Second):
				t.Fatalf("from-key watch on /b: saw %q, want /b, /c, /zz", got)
			}
		}
		if !slices.Equal(got, []string{"/b", "/c", "/zz"}) {
			t.Fatalf("from-key watch on /b: saw %q, want /b, /c, /zz", got)
		}
		// The puts above reached the from-key watch; on the same stream
		// the empty key's watch, had it matched them, would have them by
		// now (give it a moment more).
		select {
		case resp, ok := <-empty:
			switch {
			case len(resp.Events) > 0:
				t.Fatalf("watch on the empty key saw %v, want nothing (it watches \\x00)", resp.Events)
			case !ok && b.Kind == "postgres":
				// PostgreSQL's text holds no NUL byte: the key "\x00"
				// cannot be read there, and its watch ends at once.
			default:
				t.Fatalf("watch on the empty key: %v (closed: %v, err %v), want nothing", resp, !ok, resp.Err())
			}
		case <-time.After(500 * time.Millisecond):
		}
	})
}
