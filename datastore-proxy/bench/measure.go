package main

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// stat is one cell: throughput and latency percentiles.
type stat struct {
	opsPerSec float64
	p50, p99  time.Duration
}

func (s stat) String() string {
	return fmt.Sprintf("%.0f | %.2f / %.2f", s.opsPerSec, ms(s.p50), ms(s.p99))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type result struct {
	put, get, list stat
	watchPerSec    float64
}

func (r result) String() string {
	return fmt.Sprintf("%s | %s | %s | %.0f", r.put, r.get, r.list, r.watchPerSec)
}

var runSeq atomic.Int64

// measure runs each operation ops times over conc workers; worker w uses
// clients[w % len(clients)], so tenants share the load evenly.
func measure(ctx context.Context, clients []*clientv3.Client, conc, ops int) result {
	run := runSeq.Add(1)
	key := func(w, i int) string { return fmt.Sprintf("/registry/bench/%d/w%d/%06d", run, w, i) }
	per := ops / conc
	var r result
	r.put = parallel(conc, per, func(w, i int) error {
		c := clients[w%len(clients)]
		k := key(w, i)
		_, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", 0)).
			Then(clientv3.OpPut(k, string(value))).Else(clientv3.OpGet(k)).Commit()
		return err
	})
	r.get = parallel(conc, per, func(w, i int) error {
		_, err := clients[w%len(clients)].Get(ctx, key(w, i))
		return err
	})
	r.list = parallel(conc, per, func(w, i int) error {
		prefix := fmt.Sprintf("/registry/bench/%d/w%d/", run, w)
		_, err := clients[w%len(clients)].Get(ctx, prefix, clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)), clientv3.WithLimit(100))
		return err
	})
	r.watchPerSec = watchThroughput(ctx, clients, conc, per, run)
	return r
}

// value is a typical small object (~1 KiB).
var value = make([]byte, 1024)

// parallel runs f(w, i) for per iterations on each of conc workers.
func parallel(conc, per int, f func(w, i int) error) stat {
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	var failed atomic.Int64
	start := time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, per)
			for i := range per {
				t0 := time.Now()
				if err := f(w, i); err != nil {
					failed.Add(1)
					continue
				}
				l = append(l, time.Since(t0))
			}
			lat[w] = l
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	all := slices.Concat(lat...)
	slices.Sort(all)
	if len(all) == 0 || failed.Load() > 0 {
		panic(fmt.Sprintf("%d of %d operations failed", failed.Load(), conc*per))
	}
	return stat{
		opsPerSec: float64(len(all)) / elapsed.Seconds(),
		p50:       all[len(all)/2],
		p99:       all[len(all)*99/100],
	}
}

// watchThroughput: one watch per client on its own prefix; conc writers
// put per keys each; events/s is how fast all of them reach the watchers.
func watchThroughput(ctx context.Context, clients []*clientv3.Client, conc, per int, run int64) float64 {
	prefix := fmt.Sprintf("/registry/watchbench/%d/", run)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got atomic.Int64
	want := int64(conc * per)
	done := make(chan struct{})
	var once sync.Once
	var ready sync.WaitGroup
	for _, c := range clients {
		ready.Add(1)
		wc := c.Watch(wctx, prefix, clientv3.WithPrefix(), clientv3.WithCreatedNotify())
		go func() {
			first := true
			for resp := range wc {
				if first {
					ready.Done()
					first = false
				}
				if got.Add(int64(len(resp.Events))) >= want {
					once.Do(func() { close(done) })
				}
			}
		}()
	}
	ready.Wait()
	start := time.Now()
	parallel(conc, per, func(w, i int) error {
		_, err := clients[w%len(clients)].Put(ctx, fmt.Sprintf("%sw%d/%06d", prefix, w, i), "v")
		return err
	})
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		return 0
	}
	return float64(want) / time.Since(start).Seconds()
}
