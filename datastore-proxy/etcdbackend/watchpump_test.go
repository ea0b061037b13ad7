package etcdbackend

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/tenantbackend"
)

const slowPrefix, slowEnd = "/kplex/alpha/registry/", "/kplex/alpha/registry0"

// writeWhileStuck creates n keys of 4 KiB under slowPrefix while nobody
// reads the watch, and returns their revisions and the most bytes the
// proxy held for the watch meanwhile.
func writeWhileStuck(ctx context.Context, t *testing.T, b *Backend, n int) (revs []int64, maxHeld float64) {
	t.Helper()
	value := []byte(strings.Repeat("v", 4096))
	for i := range n {
		rev, err := b.Create(ctx, fmt.Sprintf("%s%05d", slowPrefix, i), value, 0)
		if err != nil {
			t.Fatal(err)
		}
		revs = append(revs, rev)
		maxHeld = max(maxHeld, testutil.ToFloat64(b.watchMetrics.held))
	}
	// Let the last responses reach the pump.
	time.Sleep(200 * time.Millisecond)
	return revs, max(maxHeld, testutil.ToFloat64(b.watchMetrics.held))
}

// drain reads a watch to its end or until want events came, and returns
// the events and the error it ended with.
func drain(t *testing.T, wr server.WatchResult, want int) ([]*server.Event, error) {
	t.Helper()
	var got []*server.Event
	timeout := time.After(time.Minute)
	for {
		select {
		case batch, ok := <-wr.Eventc:
			if !ok {
				select {
				case err := <-wr.Errorc:
					return got, err
				default:
					return got, nil
				}
			}
			got = append(got, batch.Events...)
			if len(got) >= want {
				return got, nil
			}
		case <-timeout:
			t.Fatalf("watch: %d of %d events after a minute", len(got), want)
		}
	}
}

// slowBackend is a backend on a real etcd with a 64 KiB watch backlog.
func slowBackend(t *testing.T) (*clientv3.Client, *Backend) {
	t.Helper()
	c := startEtcd(t)
	b := New(c, &sync.WaitGroup{}, 0, 0, prometheus.NewRegistry())
	b.watchBacklog = 64 << 10
	return c, b
}

// A watch whose client stops reading holds at most about its backlog in
// the proxy: the watch on etcd stops, and starts again from the next
// revision once the client reads. The client gets every event once, in
// order.
func TestASlowWatchIsCaughtUpFromEtcdsHistory(t *testing.T) {
	_, b := slowBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wctx, wcancel := context.WithCancel(ctx)
	defer wcancel()
	wr := b.WatchRange(wctx, slowPrefix, slowEnd, 0, tenantbackend.WatchHooks{})

	const n = 300 // 1.2 MiB of values, about 19 backlogs
	revs, maxHeld := writeWhileStuck(ctx, t, b, n)
	if limit := float64(2 * b.watchBacklog); maxHeld > limit {
		t.Errorf("the proxy held up to %.0f bytes for a watch nobody read; want at most %.0f", maxHeld, limit)
	}
	pauses := testutil.ToFloat64(b.watchMetrics.pauses)
	if pauses < 1 {
		t.Errorf("the watch on etcd was never stopped (held %.0f bytes)", maxHeld)
	}

	got, err := drain(t, wr, n)
	if err != nil {
		t.Fatalf("watch ended with %v after %d of %d events", err, len(got), n)
	}
	if len(got) != n {
		t.Fatalf("got %d events, want %d", len(got), n)
	}
	for i, ev := range got {
		if want := fmt.Sprintf("%s%05d", slowPrefix, i); ev.KV.Key != want || ev.KV.ModRevision != revs[i] || !ev.Create {
			t.Fatalf("event %d: %s at %d (create %v), want the create of %s at %d", i, ev.KV.Key, ev.KV.ModRevision, ev.Create, want, revs[i])
		}
	}
	// Reading as it comes, the client gets what is written next at once.
	rev, err := b.Create(ctx, slowPrefix+"after", []byte("x"), 0)
	if err != nil {
		t.Fatal(err)
	}
	after, err := drain(t, wr, 1)
	if err != nil || len(after) != 1 || after[0].KV.ModRevision != rev {
		t.Fatalf("after catching up: %v, %v; want the event at %d", after, err, rev)
	}
	t.Logf("%d events, held at most %.0f bytes, watch on etcd stopped %.0f times", n, maxHeld, testutil.ToFloat64(b.watchMetrics.pauses))
	wcancel()
	if _, err := drain(t, wr, 1<<30); err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("watch ended with %v", err)
	}
	if held := testutil.ToFloat64(b.watchMetrics.held); held != 0 {
		t.Errorf("%.0f bytes still counted as held after the watch ended", held)
	}
}

// When etcd compacts what a stopped watch still has to send, its client
// gets the events it was held before the gap, then etcd's "compacted"
// error: it never skips a revision silently.
func TestASlowWatchPastCompactionGetsCompacted(t *testing.T) {
	c, b := slowBackend(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	wr := b.WatchRange(ctx, slowPrefix, slowEnd, 0, tenantbackend.WatchHooks{})

	const n = 100
	revs, _ := writeWhileStuck(ctx, t, b, n)
	if testutil.ToFloat64(b.watchMetrics.pauses) < 1 {
		t.Fatal("the watch on etcd was never stopped")
	}
	if _, err := c.Compact(ctx, revs[n-1]); err != nil {
		t.Fatal(err)
	}
	got, err := drain(t, wr, n)
	if !errors.Is(err, server.ErrCompacted) {
		t.Fatalf("watch ended with %v after %d of %d events; want %v", err, len(got), n, server.ErrCompacted)
	}
	if len(got) == 0 || len(got) >= n {
		t.Fatalf("got %d events before the error; want those held before the gap, fewer than %d", len(got), n)
	}
	for i, ev := range got {
		if ev.KV.ModRevision != revs[i] {
			t.Fatalf("event %d at revision %d, want %d", i, ev.KV.ModRevision, revs[i])
		}
	}
}
