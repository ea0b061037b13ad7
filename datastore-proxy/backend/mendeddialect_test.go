package backend_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantbackend"
)

// A database that fails every connection just after kine's poller read a
// full batch of the log (a busy store's poller reads nothing else) is
// tried again a few times a second, not as fast as each attempt fails,
// and the poller resumes where it was once the database is back. Before
// the pacing, the poller made 10,000-17,000 attempts a second on this
// machine, each logged.
func TestThePollerPacesItsRetriesWhileTheDatabaseIsAway(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		p := afterAFullBatch(t, c)
		rejected := p.relay.Reject()
		time.Sleep(2 * time.Second)
		if n := rejected(); n > 40 {
			t.Errorf("the replica dialed the database %d times in the 2 s it failed every connection; want a few a second", n)
		} else {
			t.Logf("%d dials in the 2 s the database failed every connection", n)
		}

		p.relay.Admit()
		putKeys(p.ctx, t, p.writer, fullBatchWrites, fullBatchWrites+1)
		if !waitFor(20*time.Second, func() bool { return p.got.Load() == fullBatchWrites+1 }) {
			t.Fatalf("the watch got %d events of %d within 20 s of the database's return", p.got.Load(), fullBatchWrites+1)
		}
	})
}

// A backend stopped while its poller reads on after a full batch stops:
// kine's poller asks whether its context ended only after a read that was
// not full, and went round its failing calls for ever, so the proxy's stop
// waited for ever.
func TestABackendStopsWhileItsPollerReadsAfterAFullBatch(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		p := afterAFullBatch(t, c)
		stopped := make(chan struct{})
		go func() { p.stop(); close(stopped) }()
		select {
		case <-stopped:
		case <-time.After(10 * time.Second):
			t.Fatal("the backend did not stop within 10 s of its context's end")
		}
	})
}

// fullBatchWrites is how many writes afterAFullBatch makes: more than
// kine's poller reads at once (500).
const fullBatchWrites = 600

// pollerState is a replica whose poller has just read a full batch.
type pollerState struct {
	ctx    context.Context
	relay  *proxytest.Relay // between the replica and the database, holding its requests
	writer server.Backend   // another replica, its writes past the relay
	got    *atomic.Int64    // the events the replica's watch of /t/ got
	stop   func()           // stops the replica, waiting for its goroutines
}

// afterAFullBatch opens a replica of c's store through a relay and leaves
// it with its poller's read after a full batch held at the relay (the
// state of a busy store's poller).
func afterAFullBatch(t *testing.T, c backend.Config) *pollerState {
	t.Helper()
	addr := map[string]string{"postgres": proxytest.PostgresAddr, "mysql": proxytest.MySQLAddr}[c.Kind]
	if addr == "" {
		t.Skip("SKIPPED: an embedded SQLite has no connection to cut")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	p := &pollerState{ctx: ctx, writer: proxytest.OpenBackend(t, c), got: new(atomic.Int64)}
	p.relay = proxytest.NewRelay(t, addr)
	relayed := c
	relayed.DSN = strings.Replace(c.DSN, addr, p.relay.Addr, 1)
	var b server.Backend
	b, p.stop = proxytest.OpenBackendToStop(t, relayed)
	wctx, wcancel := context.WithCancel(ctx)
	t.Cleanup(func() { p.relay.Cut(); wcancel() }) // before the stop: a held read would hold it

	rev, err := b.CurrentRevision(ctx)
	if err != nil {
		t.Fatal(err)
	}
	w := b.(tenantbackend.RangeWatcher).WatchRange(wctx, "/t/", "/t0", rev+1, tenantbackend.WatchHooks{})
	go func() {
		for batch := range w.Eventc {
			p.got.Add(int64(len(batch.Events)))
		}
	}()

	// The writes while the replica's requests are held: its poller's next
	// read then finds a full batch (500) and more.
	p.relay.Hold()
	putKeys(ctx, t, p.writer, 0, fullBatchWrites)
	// Let the held requests on, a step at a time, until the poller has
	// read the full batch: its next read is then held. A step only once
	// a request is held and no batch came of the last for a while.
	deadline := time.Now().Add(30 * time.Second)
	for p.got.Load() < 500 {
		if time.Now().After(deadline) {
			t.Fatalf("the relayed replica's watch got %d of the writes' events in 30 s", p.got.Load())
		}
		if p.relay.Held() == 0 {
			time.Sleep(10 * time.Millisecond)
			continue
		}
		if !waitFor(time.Second, func() bool { return p.got.Load() >= 500 }) {
			p.relay.Step()
		}
	}
	if n := p.got.Load(); n != 500 {
		t.Fatalf("the watch got %d events; want the full batch, 500", n)
	}
	if !waitFor(10*time.Second, func() bool { return p.relay.Held() > 0 }) {
		t.Fatal("the poller did not read again after its full batch")
	}
	return p
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
