package etcdbackend

import (
	"context"
	"log/slog"

	"github.com/k3s-io/kine/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// DefaultWatchBacklog is how many bytes of events one watch may hold in
// the proxy for a client that reads them slower than etcd sends them.
//
// etcd's client keeps everything etcd sends a watch until it is read, with
// no bound (clientv3 watch.go: "TODO pause channel if buffer gets too
// large"), so one tenant's watch that is never read would grow the shared
// proxy's memory with every write to its range, until it ran out. Instead
// a watch's events are read from etcd at once into a queue of its own, and
// when the queue passes its backlog the watch on etcd is stopped. Once the
// client has taken half of what is queued, the watch on etcd starts again
// from the revision after the last one queued: a slow client is caught up
// from etcd's history, as etcd catches up its own slow watchers, and loses
// nothing unless that history is compacted meanwhile, when it gets etcd's
// "compacted" error, as it would from etcd.
//
// Past the queue, a watch's events wait in channels of batches (here, in
// tenantbackend and in kine) and in its gRPC stream's flow-control window;
// batches are cut at maxEventBatchBytes so that those hold little too.
const DefaultWatchBacklog = 2 << 20

// maxEventBatchBytes is about the most bytes of events in one batch (a batch holds at
// least one revision whole).
const maxEventBatchBytes = 64 << 10

// watchMetrics count what slow watch clients cost.
type watchMetrics struct {
	held   prometheus.Gauge
	pauses prometheus.Counter
}

func newWatchMetrics(reg prometheus.Registerer) watchMetrics {
	m := watchMetrics{
		held: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kplex_datastore_proxy_etcd_watch_held_bytes",
			Help: "Bytes of watch events read from etcd that the proxy holds until their clients read them.",
		}),
		pauses: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kplex_datastore_proxy_etcd_watch_pauses_total",
			Help: "Times a watch was stopped on etcd because its client fell a backlog behind (it starts again, from the next revision, when the client catches up).",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.held, m.pauses)
	}
	return m
}

// pump moves one tenant watch's events from etcd to eventc through a queue
// bounded by the backend's watch backlog (DefaultWatchBacklog says why).
type pump struct {
	b        *Backend
	ctx      context.Context
	key, end string
	hooks    tenantbackend.WatchHooks // events made the tenant's as they are queued
	eventc   chan<- server.EventBatch
	errc     chan<- error

	queue []queued
	held  int
	// next is the revision to watch from when the watch on etcd starts
	// again: every event before it has been queued.
	next int64
	// wc is the running watch on etcd (nil while stopped), stop stops it.
	wc     clientv3.WatchChan
	stop   context.CancelFunc
	paused int // times stopped for the backlog
}

type queued struct {
	batch server.EventBatch
	bytes int
}

// run pumps until ctx ends, the watch on etcd fails (its error goes to
// errc once the events before it are delivered) or ends; it then closes
// eventc.
func (p *pump) run() {
	defer p.hooks.Ended()
	defer close(p.eventc)
	defer func() { p.setHeld(0) }()
	defer func() {
		if p.wc != nil {
			p.stop()
		}
	}()
	var failed error
	ended := false
	for {
		if p.wc == nil && failed == nil && !ended && p.held <= p.b.watchBacklog/2 {
			p.start()
		}
		if len(p.queue) == 0 && (failed != nil || ended) {
			if failed != nil {
				p.errc <- failed
			}
			return
		}
		var out chan<- server.EventBatch
		var head server.EventBatch
		if len(p.queue) > 0 {
			out, head = p.eventc, p.queue[0].batch
		}
		select {
		case resp, ok := <-p.wc: // never ready while stopped (nil)
			switch {
			case !ok:
				p.halt()
				ended = true
			case resp.Err() != nil:
				p.halt()
				failed = mapErr(resp.Err())
			default:
				p.push(resp)
				if p.held > p.b.watchBacklog {
					p.halt()
					p.paused++
					p.b.watchMetrics.pauses.Inc()
					if p.paused == 1 {
						tenant, _ := tenantOf(p.key)
						slog.Info("a watch's client fell behind; the proxy reads its events from etcd again when it catches up",
							"tenant", tenant, "key", p.key, "backlog_bytes", p.b.watchBacklog)
					}
				}
			}
		case out <- head:
			p.setHeld(p.held - p.queue[0].bytes)
			p.queue[0] = queued{}
			p.queue = p.queue[1:]
		case <-p.ctx.Done():
			return
		}
	}
}

// start watches the range on etcd from p.next.
func (p *pump) start() {
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(p.ctx))
	p.wc, p.stop = p.b.c.Watch(wctx, p.key, watchOpts(p.end, p.next)...), cancel
}

// halt stops the watch on etcd; what it already sent is dropped unread
// (p.next is after the last event queued, so it is sent again).
func (p *pump) halt() {
	p.stop()
	p.wc = nil
}

// push queues one response from etcd, in batches of about maxEventBatchBytes
// (never splitting a revision), and moves p.next past it.
func (p *pump) push(resp clientv3.WatchResponse) {
	if len(resp.Events) == 0 {
		// A progress notification: every event up to it was sent.
		if resp.Header.Revision >= p.next {
			p.next = resp.Header.Revision + 1
		}
		p.add(queued{server.EventBatch{CurrentRev: resp.Header.Revision}, 64})
		return
	}
	// etcd splits a long catch-up into responses that share one header
	// revision; kine refuses (fatally) events sent at a revision already
	// sent, so a batch carries its last event's revision. A response
	// never ends inside a revision, so all of this one's are queued.
	var q queued
	for i, ev := range resp.Events {
		rev := ev.Kv.ModRevision
		if q.bytes >= maxEventBatchBytes && rev != q.batch.CurrentRev {
			p.add(q)
			q = queued{}
		}
		if e := p.own(toEvent(ev)); e != nil {
			q.batch.Events = append(q.batch.Events, e)
		}
		q.batch.CurrentRev = rev
		q.bytes += 64 + len(ev.Kv.Key) + len(ev.Kv.Value)
		if ev.PrevKv != nil {
			q.bytes += len(ev.PrevKv.Key) + len(ev.PrevKv.Value)
		}
		if i == len(resp.Events)-1 {
			p.add(q)
		}
	}
	p.next = resp.Events[len(resp.Events)-1].Kv.ModRevision + 1
}

// own is ev as the watch's tenant sees it (nil: not the tenant's).
func (p *pump) own(ev *server.Event) *server.Event {
	if p.hooks.Own == nil {
		return ev
	}
	return p.hooks.Own(ev)
}

func (p *pump) add(q queued) {
	p.queue = append(p.queue, q)
	p.setHeld(p.held + q.bytes)
}

func (p *pump) setHeld(n int) {
	p.b.watchMetrics.held.Add(float64(n - p.held))
	p.held = n
}

// watchOpts are the options of a tenant watch on etcd of [key, end) from
// revision.
func watchOpts(end string, revision int64) []clientv3.OpOption {
	opts := []clientv3.OpOption{clientv3.WithPrevKV(), clientv3.WithProgressNotify(), clientv3.WithRev(revision)}
	if end != "" {
		opts = append(opts, clientv3.WithRange(end))
	}
	return opts
}
