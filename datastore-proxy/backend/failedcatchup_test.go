package backend_test

import (
	"context"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantbackend"
)

// A watch whose catch-up fails (here: from a revision compacted away)
// hands over no revision before it ends: the proxy's watch stream takes a
// batch's revision for one the watch has sent everything up to, and could
// answer a progress request at it before the watch ends. Before, the
// batch carried the revision the failed read had reached. (This test
// watched from a revision the store had not reached, until such a watch
// waited for it, as etcd's does.)
func TestAFailedCatchUpHandsOverNoRevision(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		c.CompactInterval, c.CompactMinRetain = 100*time.Millisecond, 1
		b := proxytest.OpenBackend(t, c)
		var first int64
		for _, k := range []string{"/t/a", "/t/b", "/t/c"} {
			rev, err := b.Create(ctx, k, []byte("v"), 0)
			if err != nil {
				t.Fatal(err)
			}
			if first == 0 {
				first = rev
			}
		}
		deadline := time.Now().Add(10 * time.Second)
		for {
			wctx, wcancel := context.WithCancel(ctx)
			w := b.(tenantbackend.RangeWatcher).WatchRange(wctx, "/t/", "/t0", first, tenantbackend.WatchHooks{})
			batch := <-w.Eventc
			wcancel()
			for range w.Eventc {
			}
			if w.CompactRevision == 0 {
				if time.Now().After(deadline) {
					t.Fatalf("the store did not compact past %d within 10 s", first)
				}
				time.Sleep(100 * time.Millisecond)
				continue
			}
			if batch.CurrentRev != 0 || len(batch.Events) != 0 {
				t.Fatalf("a catch-up that failed (compacted at %d) handed over revision %d and %d events; want none", w.CompactRevision, batch.CurrentRev, len(batch.Events))
			}
			return
		}
	})
}
