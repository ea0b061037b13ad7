package server_test

import (
	"bytes"
	"context"
	"fmt"
	"runtime"
	"runtime/pprof"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/embedetcd"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A tenant apiserver keeps about 70 watches open, one per resource, so
// hundreds of tenants are tens of thousands of idle watches. On etcd a
// watch costs the proxy no goroutine (a tenant stream has two, and the
// tenant one reader of its etcd stream, whatever they hold) and a few
// hundred bytes; it was four goroutines and 17 KiB through kine's bridge. On SQL it costs three: kine's bridge, the range
// filter and kine's broadcaster's (a fourth, only to copy events across,
// held a sixth of their memory).
func TestAnIdleWatchCostsTheProxyLittle(t *testing.T) {
	for kind, most := range map[string]float64{"etcd": 0.05, "sqlite": 3} {
		t.Run(kind, func(t *testing.T) {
			b := backend.Config{Kind: kind}
			if kind == "etcd" {
				// etcd in a process of its own, so that its goroutines are
				// not counted.
				url, stop, err := embedetcd.StartChild(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(stop)
				b.DSN = url
			}
			px := proxytest.Start(t, b)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			// A raw watch stream: etcd's client would add a goroutine of its
			// own per watch to this process's count.
			ws := px.WatchStream(t, ctx, "alpha")
			watch := func(i int) {
				t.Helper()
				prefix := fmt.Sprintf("/registry/resource%03d/", i)
				if err := ws.Send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{
					Key: []byte(prefix), RangeEnd: []byte(prefix[:len(prefix)-1] + "0"), PrevKv: true, ProgressNotify: true, StartRevision: 1,
				}}}); err != nil {
					t.Fatal(err)
				}
				resp, err := ws.Recv()
				// Earlier watches' progress notifications may come first.
				for err == nil && !resp.Created && !resp.Canceled && len(resp.Events) == 0 {
					resp, err = ws.Recv()
				}
				if err != nil || !resp.Created || resp.Canceled {
					t.Fatalf("watch %d: %v, %v", i, resp, err)
				}
			}
			// The stream's first watch starts what every stream has once.
			watch(0)
			g0, heap0 := settledGoroutines(), liveHeap()
			const n = 100
			for i := 1; i <= n; i++ {
				watch(i)
			}
			g1, heap1 := settledGoroutines(), liveHeap()
			per := float64(g1-g0) / n
			t.Logf("%d idle watches: %.2f goroutines and %.1f KiB of live heap each", n, per, float64(heap1-heap0)/1024/n)
			if per > most+0.05 {
				var dump bytes.Buffer
				_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
				t.Errorf("an idle watch costs the proxy %.2f goroutines; want %.0f\n%s", per, most, dump.Bytes()[:min(dump.Len(), 20000)])
			}
		})
	}
}

// settledGoroutines is the number of goroutines once it has not changed
// for 200 ms (watches start some after they answer created).
func settledGoroutines() int {
	n := runtime.NumGoroutine()
	for still := 0; still < 4; {
		time.Sleep(50 * time.Millisecond)
		if m := runtime.NumGoroutine(); m != n {
			n, still = m, 0
			continue
		}
		still++
	}
	return n
}
