package backend

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// A watch from exactly the compact revision, where compaction removed a
// key deleted at that revision, reads the rows above it: the missing id is
// compaction's, not a gap still open. Its catch-up used to stop there, and
// while the proxy's record of the poller was below it, the rows the poller
// had already passed reached the watch neither way.
func TestACatchUpFromTheCompactRevisionReadsPastACompactedDelete(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	const retain = 2
	b, _, err := Open(ctx, &wg, Config{Kind: "sqlite", DataDir: t.TempDir(), CompactInterval: 100 * time.Millisecond, CompactMinRetain: retain})
	if err != nil {
		t.Fatal(err)
	}
	sb := b.(*sqlBackend)
	first, err := b.Create(ctx, "/t/a", []byte("v"), 0)
	if err != nil {
		t.Fatal(err)
	}
	deleted, _, ok, err := b.Delete(ctx, "/t/a", 0)
	if err != nil || !ok {
		t.Fatalf("delete /t/a: %v, %v", ok, err)
	}
	for _, k := range []string{"/t/b", "/t/c"} { // retain revisions above the delete
		if _, err := b.Create(ctx, k, []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := sb.log.CompactRevision(ctx)
		switch {
		case err != nil:
			t.Fatal(err)
		case c == deleted:
		case c > deleted:
			t.Fatalf("compacted past the delete at %d: %d", deleted, c)
		case time.Now().After(deadline):
			t.Fatalf("not compacted to the delete at %d in 20 s: %d", deleted, c)
		default:
			continue
		}
		break
	}

	// A client learns the compact revision from a watch below it.
	old := sb.WatchRange(ctx, "/t/", "/t0", first, tenantbackend.WatchHooks{})
	<-old.Eventc
	if old.CompactRevision != deleted {
		t.Fatalf("a watch from %d: compact revision %d, want %d", first, old.CompactRevision, deleted)
	}
	// The proxy's record of the poller lags it (it only ever does).
	sb.polled.Store(deleted - 1)
	w := sb.WatchRange(ctx, "/t/", "/t0", deleted, tenantbackend.WatchHooks{})
	if got, want := strings.Join(keys(t, w.Eventc, 2), " "), "/t/b /t/c"; got != want {
		t.Fatalf("a watch from the compact revision %d: %s, want %s", deleted, got, want)
	}
}
