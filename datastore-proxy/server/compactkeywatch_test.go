package server_test

import (
	"context"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// kine stores the apiserver's compaction key under another name; a watch
// of that one key follows it, and a watch of a range that starts at it is
// the range asked for (renamed, a prefix watch on "compact_rev_key" missed
// "compact_rev_key/x"). On the SQL backends kine's bridge renamed the
// start of every watch from that key itself, until the proxy served those
// watches (localwatch).
func TestWatchesFromTheCompactionKey(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		prefix := c.Watch(wctx, "compact_rev_key", clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		one := c.Watch(wctx, "compact_rev_key", clientv3.WithCreatedNotify())
		for _, w := range []clientv3.WatchChan{prefix, one} {
			if r := <-w; !r.Created {
				t.Fatalf("watch not created: %+v", r)
			}
		}
		for _, k := range []string{"compact_rev_key/x", "compact_rev_key"} {
			if _, err := c.Put(ctx, k, "v"); err != nil {
				t.Fatal(err)
			}
		}
		next := func(name string, w clientv3.WatchChan) string {
			select {
			case r := <-w:
				if err := r.Err(); err != nil || len(r.Events) == 0 {
					t.Fatalf("%s watch: %v, %d events", name, err, len(r.Events))
				}
				return string(r.Events[0].Kv.Key)
			case <-time.After(10 * time.Second):
				t.Fatalf("%s watch: no event in 10 s", name)
			}
			return ""
		}
		if k := next("prefix", prefix); k != "compact_rev_key/x" {
			t.Errorf("the prefix watch's first event is for %q, want compact_rev_key/x", k)
		}
		if k := next("one-key", one); k != "compact_rev_key" {
			t.Errorf("the one-key watch's first event is for %q, want compact_rev_key", k)
		}
	})
}
