package backend

import (
	"context"
	"strings"
	"sync"

	"github.com/k3s-io/kine/pkg/server"
)

// demux gives a kine (SQL) backend the prefix watches tenants need.
//
// kine's Watch covers every key: each tenant watch would receive every
// tenant's events, and each watch that starts from a past revision would
// read every tenant's history since then from the database. With dozens
// of watches per tenant (tenant apiservers run without a watch cache)
// that grows with events x watches of all tenants: 20 tenants rolling out
// at once drove the proxy past 16 GiB and its queries to 5-10 s.
//
// demux keeps ONE watch on the inner backend and hands each batch to the
// subscribers whose prefix it concerns, and it remembers the most recent
// events (ringSize), so a watch starting from a recent revision is caught
// up from memory. Only a watch from further back goes to the inner
// backend (kine then answers with the history, or with compaction).
// A subscriber that falls behind by a full channel is closed, as kine
// closes its slow watchers; its client (kube-apiserver) watches again.
type demux struct {
	server.Backend

	mu      sync.Mutex
	running bool
	base    int64 // the ring holds every event after this revision
	rev     int64 // the last revision seen
	ring    []*server.Event
	subs    map[*subscriber]struct{}
}

type subscriber struct {
	prefix string
	ch     chan server.EventBatch
}

// ringSize is how many recent events are kept for catching up new
// watches (a few tens of MiB of pod-sized values).
const ringSize = 10000

// subscriberBuffer is how many batches a subscriber may lag behind.
const subscriberBuffer = 100

func newDemux(inner server.Backend) *demux {
	return &demux{Backend: inner, subs: map[*subscriber]struct{}{}}
}

// WatchPrefix streams the changes of keys under prefix with a revision of
// at least revision (0: from now), like kine's Watch for one prefix.
func (d *demux) WatchPrefix(ctx context.Context, prefix string, revision int64) server.WatchResult {
	d.mu.Lock()
	if !d.running {
		if err := d.start(); err != nil {
			d.mu.Unlock()
			errc := make(chan error, 1)
			errc <- err
			ch := make(chan server.EventBatch)
			close(ch)
			return server.WatchResult{Eventc: ch, Errorc: errc}
		}
	}
	if revision > 0 && revision-1 < d.base {
		// Older than the ring: kine reads the history (or reports it
		// compacted); the tenant layer filters what is not the tenant's.
		d.mu.Unlock()
		return d.Backend.Watch(ctx, revision)
	}
	s := &subscriber{prefix: prefix, ch: make(chan server.EventBatch, subscriberBuffer)}
	first := server.EventBatch{CurrentRev: d.rev}
	if revision > 0 {
		for _, ev := range d.ring {
			if ev.KV.ModRevision >= revision && strings.HasPrefix(ev.KV.Key, prefix) {
				first.Events = append(first.Events, ev)
			}
		}
	}
	s.ch <- first
	d.subs[s] = struct{}{}
	current := d.rev
	d.mu.Unlock()
	go func() {
		<-ctx.Done()
		d.drop(s)
	}()
	return server.WatchResult{CurrentRevision: current, Eventc: s.ch, Errorc: make(chan error)}
}

// start opens the shared watch from the current revision; d.mu is held.
func (d *demux) start() error {
	ctx, cancel := context.WithCancel(context.Background())
	res := d.Backend.Watch(ctx, 0)
	rev := res.CurrentRevision
	if rev == 0 {
		var err error
		if rev, err = d.Backend.CurrentRevision(ctx); err != nil {
			cancel()
			return err
		}
	}
	d.running, d.base, d.rev, d.ring = true, rev, rev, nil
	go d.stream(res, cancel)
	return nil
}

// stream hands the shared watch's batches out until it ends, then closes
// every subscriber (their clients watch again, which restarts it).
func (d *demux) stream(res server.WatchResult, cancel context.CancelFunc) {
	defer cancel()
	for batch := range res.Eventc {
		d.mu.Lock()
		d.ring = append(d.ring, batch.Events...)
		if over := len(d.ring) - ringSize; over > 0 {
			d.base = d.ring[over-1].KV.ModRevision
			d.ring = append(d.ring[:0:0], d.ring[over:]...)
		}
		if batch.CurrentRev > d.rev {
			d.rev = batch.CurrentRev
		}
		for _, ev := range batch.Events {
			d.rev = max(d.rev, ev.KV.ModRevision)
		}
		// One filtered batch per prefix (a tenant's watches share it).
		byPrefix := map[string]server.EventBatch{}
		for s := range d.subs {
			out, ok := byPrefix[s.prefix]
			if !ok {
				out = server.EventBatch{CurrentRev: d.rev}
				for _, ev := range batch.Events {
					if strings.HasPrefix(ev.KV.Key, s.prefix) {
						out.Events = append(out.Events, ev)
					}
				}
				byPrefix[s.prefix] = out
			}
			select {
			case s.ch <- out:
			default: // too slow: closed, as kine does
				delete(d.subs, s)
				close(s.ch)
			}
		}
		d.mu.Unlock()
	}
	d.mu.Lock()
	for s := range d.subs {
		delete(d.subs, s)
		close(s.ch)
	}
	d.running = false
	d.mu.Unlock()
}

func (d *demux) drop(s *subscriber) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if _, ok := d.subs[s]; ok {
		delete(d.subs, s)
		close(s.ch)
	}
}
