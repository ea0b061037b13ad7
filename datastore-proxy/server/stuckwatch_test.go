package server_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/embedetcd"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A tenant that opens a watch and never reads it does not grow the shared
// proxy on etcd: while its range takes 40 MiB of writes, the proxy's heap
// grows by a few MiB at most (etcd keeps what the tenant's stream has not
// taken, as it does for its own clients; the proxy holds the stream's
// flow-control windows and the response it is passing on); another
// tenant's watch meanwhile gets its events at once; when the tenant reads
// at last, it gets every event once, in order.
func TestAStuckWatchDoesNotGrowTheProxy(t *testing.T) {
	// etcd in a process of its own: its raft log would be most of this
	// process's heap growth, and the growth measured is the proxy's.
	url, stop, err := embedetcd.StartChild(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	px := proxytest.Start(t, backend.Config{Kind: "etcd", DSN: url})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// A raw watch stream: created, then not read (its small windows keep
	// the heap figure below from measuring the client).
	prefix := "/registry/stuck/"
	ws := rawWatch(t, ctx, px, "alpha", prefix, true)

	// Another tenant's watch, read as a client reads.
	beta := px.Client(t, "beta")
	betaWatch := beta.Watch(ctx, "/registry/pods/", clientv3.WithPrefix())

	writer := px.Client(t, "alpha")
	value := strings.Repeat("v", 64<<10)
	const n = 640 // 40 MiB
	write := func(under string) (revs []int64) {
		for i := range n {
			resp, err := writer.Put(ctx, fmt.Sprintf("%s%05d", under, i), value)
			if err != nil {
				t.Fatal(err)
			}
			revs = append(revs, resp.Header.Revision)
		}
		time.Sleep(300 * time.Millisecond)
		return revs
	}
	// What the same writes grow this process by (etcd's own raft log is
	// in it too) without a watch, then with the stuck one.
	heap0 := liveHeap()
	write("/registry/free/")
	heap1 := liveHeap()
	revs := write(prefix)
	heap2 := liveHeap()
	written := n * len(value)
	// The windows between etcd and the tenant's stream, and a response of
	// 128 KiB events in them: 4 MiB (with etcd's client and the proxy's
	// own queue, 5.4 MiB; 100 buffered batches once held 11).
	if extra, limit := (heap2-heap1)-(heap1-heap0), int64(8<<20); extra > limit {
		t.Errorf("writing %d MiB grew the heap by %d KiB more with a stuck watch than without; want at most %d KiB", written>>20, extra>>10, limit>>10)
	}
	t.Logf("writing %d MiB grew the heap by %d KiB without a watch, %d KiB with a stuck one",
		written>>20, (heap1-heap0)>>10, (heap2-heap1)>>10)

	// Another tenant's watch gets its event at once, while alpha's is stuck.
	putSeen(t, ctx, beta, betaWatch, "/registry/pods/p", 5*time.Second)

	got := 0
	for got < n {
		resp, err := ws.Recv()
		if err != nil {
			t.Fatalf("after %d of %d events: %v", got, n, err)
		}
		if resp.Canceled {
			t.Fatalf("watch canceled after %d of %d events: %s", got, n, resp.CancelReason)
		}
		for _, ev := range resp.Events {
			if want := fmt.Sprintf("%s%05d", prefix, got); got >= n || string(ev.Kv.Key) != want || ev.Kv.ModRevision != revs[got] {
				t.Fatalf("event %d: %s at %d; want %s at %d", got, ev.Kv.Key, ev.Kv.ModRevision, want, revs[min(got, n-1)])
			}
			got++
		}
	}
}

// liveHeap is the bytes of live heap objects of this process, after two
// collections: the first only moves what sync.Pools hold (gRPC's and the
// TLS coalescing buffers, megabytes after 64 KiB messages) to their victim
// caches, the second frees it.
func liveHeap() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
