package tenantbackend_test

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/embedetcd"
	"kplex.dev/datastore-proxy/keyspace"
	"kplex.dev/datastore-proxy/quota"
	"kplex.dev/datastore-proxy/tenantbackend"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// BenchmarkRecount measures what counting a tenant on etcd costs the heap
// at its peak, above where it started, and its time: read whole, as the
// count was read until session 19, or a page at a time. Two tenants: 80
// MiB in 20,000 keys of 4 KiB, and 12 MiB in 100,000 keys of 100 bytes
// (where etcd counting the rest of the range for every page weighs most).
// etcd runs in this process, so its side of the read is in the figure
// too. Run it with a small GOGC, so that the peak is what is live rather
// than garbage not yet collected:
//
//	cd datastore-proxy && GOGC=10 go test ./tenantbackend -run '^$' -bench Recount -benchtime 3x
func BenchmarkRecount(b *testing.B) {
	for _, size := range []struct {
		name        string
		keys, value int
	}{{"20k-4KiB", 20000, 4096}, {"100k-100B", 100000, 100}} {
		b.Run(size.name, func(b *testing.B) { benchmarkRecount(b, size.keys, size.value) })
	}
}

// etcdBackend runs etcd in this process for the benchmark and opens the
// proxy's etcd backend on it; both stop when the benchmark ends.
func etcdBackend(b *testing.B) (ctx context.Context, inner server.Backend, url string) {
	url, stop, err := embedetcd.Start(b.TempDir(), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(stop)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	b.Cleanup(func() { cancel(); wg.Wait() })
	inner, _, err = backend.Open(ctx, &wg, backend.Config{Kind: "etcd", DSN: url})
	if err != nil {
		b.Fatal(err)
	}
	return ctx, inner, url
}

func benchmarkRecount(b *testing.B, keys, valueSize int) {
	ctx, inner, _ := etcdBackend(b)
	space, err := keyspace.ForTenant("big")
	if err != nil {
		b.Fatal(err)
	}
	tb := tenantbackend.New(inner, space, func() tenantconfig.Limits { return tenantconfig.Limits{} }, &quota.Usage{})
	value := []byte(strings.Repeat("v", valueSize))
	sem := make(chan struct{}, 64)
	var failed atomic.Int64
	var writers sync.WaitGroup
	for i := range keys {
		sem <- struct{}{}
		writers.Go(func() {
			defer func() { <-sem }()
			if _, err := tb.Create(ctx, fmt.Sprintf("/registry/configmaps/ns/c%06d", i), value, 0); err != nil {
				failed.Add(1)
			}
		})
	}
	writers.Wait()
	if n := failed.Load(); n > 0 {
		b.Fatalf("%d of %d creates failed", n, keys)
	}
	for _, bc := range []struct {
		name  string
		count func() (int64, error)
	}{
		{"whole", func() (int64, error) {
			from, end := space.Range("", "")
			res := inner.ListStream(ctx, from, end, 0, 0, false)
			var n int64
			for range res.KVc {
				n++
			}
			return n, <-res.Errorc
		}},
		{"paged", func() (int64, error) {
			n, _, _, err := tb.Scan(ctx, func(ctx context.Context, _ int64, _ int) error { return ctx.Err() })
			return n, err
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			var most uint64
			for b.Loop() {
				rise, err := heapRise(func() error {
					n, err := bc.count()
					if err == nil && n != int64(keys) {
						err = fmt.Errorf("counted %d keys, want %d", n, keys)
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				most = max(most, rise)
			}
			b.ReportMetric(float64(most)/(1<<20), "peak-heap-MiB")
		})
	}
}

// heapRise runs f and returns how far the heap in use rose above where it
// was before, sampled every 2 ms.
func heapRise(f func() error) (uint64, error) {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	base := m.HeapInuse
	var top atomic.Uint64
	done, sampled := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(sampled)
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(2 * time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapInuse > top.Load() {
				top.Store(m.HeapInuse)
			}
		}
	}()
	err := f()
	close(done)
	<-sampled
	return top.Load() - min(top.Load(), base), err
}
