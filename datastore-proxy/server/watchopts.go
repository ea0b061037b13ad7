package server

import (
	"slices"
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// watchOpts is what a create request asks of its watch's events that kine
// does not do on the SQL backends: kine sends every watch every event,
// with its previous value. On etcd, etcd does it (watchhub passes the
// create request on).
type watchOpts struct {
	noPut, noDelete, prevKV bool
}

func optsOf(cr *etcdserverpb.WatchCreateRequest) watchOpts {
	o := watchOpts{prevKV: cr.PrevKv}
	for _, f := range cr.Filters {
		switch f {
		case etcdserverpb.WatchCreateRequest_NOPUT:
			o.noPut = true
		case etcdserverpb.WatchCreateRequest_NODELETE:
			o.noDelete = true
		}
	}
	return o
}

// apply leaves of events those the watch asked for, without previous
// values unless it asked for them. kine makes each response's events for
// its watch alone (server.toEvents), so they are changed in place.
func (o watchOpts) apply(events []*mvccpb.Event) []*mvccpb.Event {
	events = slices.DeleteFunc(events, func(ev *mvccpb.Event) bool {
		return ev.Type == mvccpb.PUT && o.noPut || ev.Type == mvccpb.DELETE && o.noDelete
	})
	if !o.prevKV {
		for _, ev := range events {
			ev.PrevKv = nil
		}
	}
	return events
}

// watchOptions keeps each watch's options on one tenant stream, by kine's
// watch ID. kine answers the creates it starts in the order it reads them
// (its Create holds a lock until its created answer is sent), and calls
// Backend.Watch for each just before that answer: there the create's
// options queue (tenantbackend.WithWatchStart), and each created answer
// with a watch ID takes the first. Creates the proxy refuses (watch.go;
// among them every one kine would refuse at once) never reach
// Backend.Watch and are not queued: their answers have no watch ID.
type watchOptions struct {
	mu     sync.Mutex
	queued []watchOpts
	byKine map[int64]watchOpts
}

// queue records the options of a create request kine is starting.
func (w *watchOptions) queue(o watchOpts) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.queued = append(w.queued, o)
}

// filter applies the options of the watch m is for to m's events; ok is
// false when m held events and none is left, which etcd does not send. A
// created answer gives its watch the first queued options, a canceled
// answer ends them.
func (w *watchOptions) filter(m *etcdserverpb.WatchResponse) (ok bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	id := m.WatchId
	switch {
	case m.Created && id >= 0:
		if len(w.queued) == 0 {
			return true // not one of ours to shape: kine's own order broke
		}
		o := w.queued[0]
		w.queued = w.queued[1:]
		if !m.Canceled {
			if w.byKine == nil {
				w.byKine = map[int64]watchOpts{}
			}
			w.byKine[id] = o
		}
		return true
	case m.Canceled:
		delete(w.byKine, id)
		return true
	}
	o, known := w.byKine[id]
	if !known || len(m.Events) == 0 {
		return true
	}
	m.Events = o.apply(m.Events)
	return len(m.Events) > 0
}
