package backend_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantbackend"
)

// A watch re-established while a write is in flight sees that write, even
// when its row commits after a row with a higher id: PostgreSQL and MySQL
// hand out ids at insert and show rows at commit. Before the catch-up
// stopped at the first gap in ids, the row committing into the gap was
// missing from both the catch-up and the live stream.
func TestWatchSeesARowCommittedIntoAGap(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, c backend.Config) {
		skipInIDOrder(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		b := proxytest.OpenBackend(t, c)
		start, err := b.Create(ctx, "/t/0", []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}

		// A writer of our own takes the next id and holds its commit.
		tx := proxytest.HoldRow(t, ctx, c, "/t/1")
		after, err := b.Create(ctx, "/t/2", []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}

		w := b.(tenantbackend.RangeWatcher).WatchRange(ctx, "/t/", "/t0", start+1, tenantbackend.WatchHooks{})
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit the held row: %v", err)
		}
		got := eventKeys(t, w, 2)
		if want := "/t/1 /t/2"; strings.Join(got, " ") != want {
			t.Fatalf("watch from revision %d (the held row committed after revision %d) saw %v, want %s", start+1, after, got, want)
		}
	})
}

// skipInIDOrder skips backends that show rows in id order (one writer, or
// one revision counter): gaps are PostgreSQL's and MySQL's.
func skipInIDOrder(t *testing.T, c backend.Config) {
	t.Helper()
	if c.Kind != "postgres" && c.Kind != "mysql" {
		t.Skipf("SKIPPED: %s shows rows in id order (one writer or one revision counter)", c.Kind)
	}
}

// eventKeys reads n events' keys from w in order of revision, skipping
// batches with none.
func eventKeys(t *testing.T, w server.WatchResult, n int) []string {
	t.Helper()
	var out []string
	var revs []int64
	timeout := time.After(15 * time.Second)
	for len(out) < n {
		select {
		case batch, ok := <-w.Eventc:
			if !ok {
				t.Fatalf("watch closed after %v", out)
			}
			for _, ev := range batch.Events {
				out = append(out, ev.KV.Key)
				revs = append(revs, ev.KV.ModRevision)
			}
		case err := <-w.Errorc:
			t.Fatalf("watch failed after %v: %v", out, err)
		case <-timeout:
			t.Fatalf("got %v at revisions %v, waited 15s for %d events", out, revs, n)
		}
	}
	return out
}

// A gap the poller has passed never fills: after a crash, a transaction
// that held an id and died leaves rows above it that the next proxy's
// poller, started above them, never streams. A watch resumed from before
// the gap gets those rows from its catch-up. (It stopped at the gap, so
// they were lost to every watch resumed from before it, silently, until
// compaction passed the gap.)
func TestWatchReadsPastAGapThePollerHasPassed(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, c backend.Config) {
		skipInIDOrder(t, c)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()

		// The first proxy: a row it writes, then one it never will
		// (another writer holds its id), then two more.
		actx, acancel := context.WithCancel(ctx)
		var awg sync.WaitGroup
		a, _, err := backend.Open(actx, &awg, c)
		if err != nil {
			t.Fatal(err)
		}
		start, err := a.Create(ctx, "/t/0", []byte("v"), 0)
		if err != nil {
			t.Fatal(err)
		}
		tx := proxytest.HoldRow(t, ctx, c, "/t/1")
		for _, key := range []string{"/t/2", "/t/3"} {
			if _, err := a.Create(ctx, key, []byte("v"), 0); err != nil {
				t.Fatal(err)
			}
		}
		// The proxy dies, and so does the writer: its id stays a gap.
		acancel()
		awg.Wait()
		if err := tx.Rollback(); err != nil {
			t.Fatalf("roll the held row back: %v", err)
		}

		// The next proxy's poller starts above the gap.
		var wg sync.WaitGroup
		defer wg.Wait()
		defer cancel()
		b, _, err := backend.Open(ctx, &wg, c)
		if err != nil {
			t.Fatal(err)
		}
		w := b.(tenantbackend.RangeWatcher).WatchRange(ctx, "/t/", "/t0", start+1, tenantbackend.WatchHooks{})
		got := eventKeys(t, w, 2)
		if want := "/t/2 /t/3"; strings.Join(got, " ") != want {
			t.Fatalf("watch from revision %d, past a gap the poller never waits at, saw %v, want %s", start+1, got, want)
		}
	})
}
