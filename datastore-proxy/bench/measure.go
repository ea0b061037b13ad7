package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// stat is one cell: throughput and latency percentiles.
type stat struct {
	opsPerSec float64
	p50, p99  time.Duration
	// perOp is what each of meters' processes used per operation.
	perOp   [3]usage
	metered [3]bool
	// perSync is the writes per WAL sync of etcd's in a writing cell
	// (walsyncs.go); 0: not counted.
	perSync float64
	// err is why the cell failed (nil: it did not); a failed cell has no
	// figures, and the tables show it as failed.
	err error
}

// meters are the processes whose CPU and system calls each measurement
// counts: the clients (this process), the proxy, and the store serving
// the proxy or the direct endpoint; 0: not in this measurement, or not a
// process of the benchmark.
var meters [3]int

func readMeters() (out [3]usage) {
	for i, pid := range meters {
		if pid != 0 {
			out[i] = procUsage(pid)
		}
	}
	return out
}

func (s stat) String() string {
	if s.err != nil {
		return "failed | - / -"
	}
	return fmt.Sprintf("%.0f | %.2f / %.2f", s.opsPerSec, ms(s.p50), ms(s.p99))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

type result struct {
	put, get, list stat
	// watch is events/s, the latency from a put's start to its event's
	// arrival, and the usage per event (watchThroughput).
	watch stat
}

func (r result) String() string {
	return fmt.Sprintf("%s | %s | %s | %s", r.put, r.get, r.list, r.watch)
}

// usageRow is the CPU (µs) or the read and write system calls per
// operation of clients / proxy / store, with their total.
func (r result) usageRow(syscalls bool) string {
	cell := func(s stat) string {
		if s.err != nil {
			return "failed"
		}
		var parts []string
		var total float64
		for i, u := range s.perOp {
			if !s.metered[i] {
				parts = append(parts, "-")
				continue
			}
			v, f := float64(u.cpu)/float64(time.Microsecond), "%.0f"
			if syscalls {
				v, f = u.syscalls, "%.1f"
			}
			total += v
			parts = append(parts, fmt.Sprintf(f, v))
		}
		f := "%s (%.0f)"
		if syscalls {
			f = "%s (%.1f)"
		}
		return fmt.Sprintf(f, strings.Join(parts, " / "), total)
	}
	return fmt.Sprintf("%s | %s | %s | %s", cell(r.put), cell(r.get), cell(r.list), cell(r.watch))
}

var runSeq atomic.Int64

// cells are what each row measures, in this order: the gets read the keys
// the puts wrote.
var cells = []string{"put", "get", "list", "watch"}

// cell is r's cell of that name (cells).
func (r result) cell(name string) stat {
	switch name {
	case "put":
		return r.put
	case "get":
		return r.get
	case "list":
		return r.list
	case "watch":
		return r.watch
	}
	return stat{err: fmt.Errorf("no cell %q", name)}
}

// set puts s in r's cell of that name.
func (r *result) set(cell string, s stat) {
	switch cell {
	case "put":
		r.put = s
	case "get":
		r.get = s
	case "list":
		r.list = s
	case "watch":
		r.watch = s
	}
}

// failedResult is a row of cells that all failed with err.
func failedResult(err error) result {
	s := stat{err: err}
	return result{put: s, get: s, list: s, watch: s}
}

// rowRun is one row's clients in one round. Its cells use keys of its
// own (a run); worker w uses clients[w % len(clients)], so tenants share
// the load evenly, and puts its keys under prefixes[w % len(clients)].
type rowRun struct {
	clients  []*clientv3.Client
	prefixes []string
	run      int64
	meters   [3]int                      // the processes the cells count (meters)
	around   func(cell string, f func()) // runs each cell (cellprofile.go)
	// syncs reads the store's WAL sync count (walsyncs.go); nil: not
	// counted.
	syncs func(context.Context) (float64, error)
}

// newRowRun makes the row's connections first (TLS handshakes are not
// what is measured: an apiserver keeps its connection). around may be nil.
func newRowRun(ctx context.Context, clients []*clientv3.Client, prefixes []string, m [3]int, around func(cell string, f func())) (*rowRun, error) {
	if around == nil {
		around = func(_ string, f func()) { f() }
	}
	for i, c := range clients {
		if _, err := c.Get(ctx, prefixes[i]+"/registry/warmup"); err != nil {
			return nil, fmt.Errorf("warm-up of client %d: %w", i, err)
		}
	}
	return &rowRun{clients: clients, prefixes: prefixes, run: runSeq.Add(1), meters: m, around: around}, nil
}

// dir holds worker w's keys: its puts write them, its lists read them.
func (m *rowRun) dir(w int) string {
	return fmt.Sprintf("%s/registry/bench/%d/w%d/", m.prefixes[w%len(m.clients)], m.run, w)
}

func (m *rowRun) key(w, i int) string {
	return fmt.Sprintf("%s%06d", m.dir(w), i)
}

// cell measures the cell of that name (cells): the operation ops times
// over conc workers.
func (m *rowRun) cell(ctx context.Context, name string, conc, ops int) (st stat) {
	meters = m.meters
	per := ops / conc
	client := func(w int) *clientv3.Client { return m.clients[w%len(m.clients)] }
	var syncs0 float64
	counted := m.syncs != nil && (name == "put" || name == "watch")
	if counted {
		var err error
		if syncs0, err = m.syncs(ctx); err != nil {
			fmt.Fprintf(os.Stderr, "%s cell: WAL syncs not counted: %v\n", name, err)
			counted = false
		}
	}
	defer func() {
		if !counted || st.err != nil {
			return
		}
		syncs1, err := m.syncs(ctx)
		if err != nil {
			fmt.Fprintf(os.Stderr, "%s cell: WAL syncs not counted: %v\n", name, err)
			return
		}
		if syncs1 > syncs0 {
			st.perSync = float64(conc*per) / (syncs1 - syncs0)
		}
	}()
	m.around(name, func() {
		switch name {
		case "put":
			st = parallel(conc, per, func(w, i int) error {
				k := m.key(w, i)
				_, err := client(w).Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", 0)).
					Then(clientv3.OpPut(k, string(value))).Else(clientv3.OpGet(k)).Commit()
				return err
			})
		case "get":
			st = parallel(conc, per, func(w, i int) error {
				_, err := client(w).Get(ctx, m.key(w, i))
				return err
			})
		case "list":
			st = parallel(conc, per, func(w, i int) error {
				return list(ctx, client(w), m.dir(w), 100)
			})
		case "watch":
			st = watchThroughput(ctx, m.clients, m.prefixes, conc, per, m.run)
		default:
			st = stat{err: fmt.Errorf("no cell %q", name)}
		}
	})
	return st
}

// listStream makes the list cells RangeStreams (-list-stream), as
// kube-apiserver v1.37 lists, rather than Ranges.
var listStream bool

// list reads up to limit keys under prefix, as a Range or a RangeStream.
func list(ctx context.Context, c *clientv3.Client, prefix string, limit int64) error {
	opts := []clientv3.OpOption{clientv3.WithRange(clientv3.GetPrefixRangeEnd(prefix)), clientv3.WithLimit(limit)}
	if !listStream {
		_, err := c.Get(ctx, prefix, opts...)
		return err
	}
	ch, err := c.GetStream(ctx, prefix, opts...)
	if err != nil {
		return err
	}
	var n int
	for r := range ch {
		if err := r.Err(); err != nil {
			return err
		}
		n += len(r.Kvs)
	}
	if int64(n) > limit {
		return fmt.Errorf("range stream of %s: %d keys, past the limit of %d", prefix, n, limit)
	}
	return nil
}

// value is a typical small object (~1 KiB).
var value = make([]byte, 1024)

// parallel runs f(w, i) for per iterations on each of conc workers. The
// cell fails (stat.err) if any call does.
func parallel(conc, per int, f func(w, i int) error) stat {
	lat := make([][]time.Duration, conc)
	var wg sync.WaitGroup
	var failed atomic.Int64
	var first atomic.Pointer[error]
	use0, start := readMeters(), time.Now()
	for w := range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := make([]time.Duration, 0, per)
			for i := range per {
				t0 := time.Now()
				if err := f(w, i); err != nil {
					failed.Add(1)
					first.CompareAndSwap(nil, &err)
					continue
				}
				l = append(l, time.Since(t0))
			}
			lat[w] = l
		}()
	}
	wg.Wait()
	elapsed, use1 := time.Since(start), readMeters()
	if conc*per == 0 {
		return stat{err: errors.New("no operations to measure")}
	}
	if n := failed.Load(); n > 0 {
		return stat{err: fmt.Errorf("%d of %d operations failed, the first with: %w", n, conc*per, *first.Load())}
	}
	return statOf(conc*per, elapsed, lat, use0, use1)
}

// p50p99 are the median and 99th percentile of sorted latencies.
func p50p99(sorted []time.Duration) (p50, p99 time.Duration) {
	return sorted[len(sorted)/2], sorted[len(sorted)*99/100]
}

// statOf is the cell of n operations done in elapsed: their latencies
// (any number of slices) and what the meters read before and after.
func statOf(n int, elapsed time.Duration, lat [][]time.Duration, use0, use1 [3]usage) stat {
	all := slices.Concat(lat...)
	slices.Sort(all)
	st := stat{opsPerSec: float64(n) / elapsed.Seconds()}
	st.p50, st.p99 = p50p99(all)
	for i := range use1 {
		st.perOp[i] = use1[i].sub(use0[i]).per(n)
		st.metered[i] = meters[i] != 0
	}
	return st
}

// watchWait is how long the watch cell waits for its events after the
// last put returned.
const watchWait = 2 * time.Minute

// watchThroughput: one watch per client on its own prefix; conc writers
// put per keys each; events/s is how fast all of them reach the watchers,
// and the latency of an event is from the start of its put (the value
// holds it) to its arrival. The watches ask for previous values, as
// kube-apiserver's do (its etcd3 watcher always sets WithPrevKV), so that
// etcd direct does the work it would do for an apiserver.
func watchThroughput(ctx context.Context, clients []*clientv3.Client, prefixes []string, conc, per int, run int64) stat {
	prefix := func(c int) string { return fmt.Sprintf("%s/registry/watchbench/%d/", prefixes[c], run) }
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var got atomic.Int64
	want := int64(conc * per)
	done := make(chan struct{})
	var once sync.Once
	var ready, drained sync.WaitGroup
	lat := make([][]time.Duration, len(clients))
	for i, c := range clients {
		ready.Add(1)
		drained.Add(1)
		wc := c.Watch(wctx, prefix(i), clientv3.WithPrefix(), clientv3.WithCreatedNotify(), clientv3.WithPrevKV())
		go func() {
			defer drained.Done()
			first := true
			defer func() {
				if first { // the watch ended before it answered
					ready.Done()
				}
			}()
			for resp := range wc {
				if first {
					ready.Done()
					first = false
				}
				now := time.Now()
				for _, ev := range resp.Events {
					if start, err := strconv.ParseInt(string(ev.Kv.Value), 10, 64); err == nil {
						lat[i] = append(lat[i], now.Sub(time.Unix(0, start)))
					}
				}
				if got.Add(int64(len(resp.Events))) >= want {
					once.Do(func() { close(done) })
				}
			}
		}()
	}
	ready.Wait()
	use0, start := readMeters(), time.Now()
	puts := parallel(conc, per, func(w, i int) error {
		v := strconv.FormatInt(time.Now().UnixNano(), 10)
		c := w % len(clients)
		_, err := clients[c].Put(ctx, fmt.Sprintf("%sw%d/%06d", prefix(c), w, i), v)
		return err
	})
	defer drained.Wait()
	defer cancel()
	if puts.err != nil {
		return stat{err: fmt.Errorf("the watched puts: %w", puts.err)}
	}
	select {
	case <-done:
	case <-time.After(watchWait):
		return stat{err: fmt.Errorf("%d of %d events in %s", got.Load(), want, watchWait)}
	}
	elapsed, use1 := time.Since(start), readMeters()
	return statOf(int(want), elapsed, lat, use0, use1)
}
