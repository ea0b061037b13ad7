package backend_test

import (
	"context"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantbackend"
)

// A watch whose catch-up fails (here: from a revision the store has not
// reached) hands over no revision before its error: the proxy's watch
// stream takes a batch's revision for one the watch has sent everything
// up to, and could answer a progress request at it before the watch ends.
// Before, the batch carried the revision the failed read had reached.
func TestAFailedCatchUpHandsOverNoRevision(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b := proxytest.OpenBackend(t, c)
		rev, err := b.Create(ctx, "/t/a", []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}
		w := b.(tenantbackend.RangeWatcher).WatchRange(ctx, "/t/", "/t0", rev+100, tenantbackend.WatchHooks{})
		var err2 error
		select {
		case err2 = <-w.Errorc:
		case <-time.After(10 * time.Second):
			t.Fatal("no error for a watch from 100 revisions ahead within 10 s")
		}
		batch := <-w.Eventc
		if batch.CurrentRev != 0 || len(batch.Events) != 0 {
			t.Fatalf("a catch-up that failed (%v) handed over revision %d and %d events; want none", err2, batch.CurrentRev, len(batch.Events))
		}
	})
}
