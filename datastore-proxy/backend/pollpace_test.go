package backend_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantbackend"
)

// A database that fails every connection just after kine's poller read a
// full batch of the log (a busy store's poller reads nothing else) is
// tried again a few times a second, not as fast as each attempt fails,
// and the poller resumes where it was once the database is back. Before
// the pacing, the poller made about 14,000 attempts a second on this
// machine, each logged.
func TestThePollerPacesItsRetriesWhileTheDatabaseIsAway(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		addr := map[string]string{"postgres": proxytest.PostgresAddr, "mysql": proxytest.MySQLAddr}[c.Kind]
		if addr == "" {
			t.Skip("SKIPPED: an embedded SQLite has no connection to cut")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		writer := proxytest.OpenBackend(t, c) // another replica, its writes past the relay
		relay := proxytest.NewRelay(t, addr)
		relayed := c
		relayed.DSN = strings.Replace(c.DSN, addr, relay.Addr, 1)
		b := proxytest.OpenBackend(t, relayed)

		rev, err := b.CurrentRevision(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var got atomic.Int64
		wctx, wcancel := context.WithCancel(ctx)
		defer wcancel()
		w := b.(tenantbackend.RangeWatcher).WatchRange(wctx, "/t/", "/t0", rev+1, tenantbackend.WatchHooks{})
		go func() {
			for batch := range w.Eventc {
				got.Add(int64(len(batch.Events)))
			}
		}()

		// 600 writes while the relayed replica's requests are held: its
		// poller's next read then finds a full batch (500) and more.
		relay.Hold()
		const writes = 600
		putKeys(ctx, t, writer, 0, writes)
		// Let the held requests on, one step at a time, until the poller
		// has read the full batch: its next read is then held.
		deadline := time.Now().Add(30 * time.Second)
		for got.Load() < 500 {
			if time.Now().After(deadline) {
				t.Fatalf("the relayed replica's watch got %d of the writes' events in 30 s", got.Load())
			}
			if relay.Held() == 0 || !waitFor(time.Second, func() bool { return got.Load() >= 500 }) {
				relay.Step()
				time.Sleep(10 * time.Millisecond)
			}
		}
		if n := got.Load(); n != 500 {
			t.Fatalf("the watch got %d events before the outage; want the full batch, 500", n)
		}
		if !waitFor(10*time.Second, func() bool { return relay.Held() > 0 }) {
			t.Fatal("the poller did not read again after its full batch")
		}

		rejected := relay.Reject()
		time.Sleep(2 * time.Second)
		if n := rejected(); n > 40 {
			t.Errorf("the replica dialed the database %d times in the 2 s it failed every connection; want a few a second", n)
		} else {
			t.Logf("%d dials in the 2 s the database failed every connection", n)
		}

		relay.Admit()
		putKeys(ctx, t, writer, writes, writes+1)
		if !waitFor(20*time.Second, func() bool { return got.Load() == writes+1 }) {
			t.Fatalf("the watch got %d events of %d within 20 s of the database's return", got.Load(), writes+1)
		}
	})
}

// putKeys creates /t/<from>... /t/<to-1>, eight at a time.
func putKeys(ctx context.Context, t *testing.T, b interface {
	Create(context.Context, string, []byte, int64) (int64, error)
}, from, to int) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, to-from)
	next := make(chan int)
	for range 8 {
		wg.Go(func() {
			for i := range next {
				if _, err := b.Create(ctx, fmt.Sprintf("/t/%05d", i), []byte("v"), 0); err != nil {
					errs <- err
				}
			}
		})
	}
	for i := from; i < to; i++ {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("create: %v", err)
	}
}

// waitFor polls cond every 10 ms for up to d.
func waitFor(d time.Duration, cond func() bool) bool {
	for end := time.Now().Add(d); ; time.Sleep(10 * time.Millisecond) {
		if cond() {
			return true
		}
		if time.Now().After(end) {
			return false
		}
	}
}
