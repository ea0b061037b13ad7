package server

import (
	"context"
	"errors"
	"sync"

	kineserver "github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// Why a tenant's watch stream on etcd is a watch stream of its own on etcd,
// not kine's bridge over the shared backend: kube-apiserver's watch cache
// serves a consistent list once it has seen the store's current revision,
// and to learn it, it asks its watch stream for progress; the answer is due
// when every watch of the stream has sent every event up to a revision.
// kine's bridge answers only when each watch's last batch is at the
// store's current revision. On a store that every tenant writes to, with
// watches that etcd sends only their own ranges' events, an idle watch is
// never there, so the request went unanswered and every consistent list
// waited 3 s for its cache and then read the store itself. etcd answers it
// for the watches of one stream, so each tenant stream gets an etcd stream
// of its own, and progress requests, per-watch progress notifications,
// compaction, fragments and client-chosen watch IDs are etcd's own.
//
// A relay passes the tenant's requests on with their ranges confined to the
// tenant's space and etcd's responses back with the tenant's keys
// (tenantbackend.Stream), and keeps what the proxy adds: a watch holds a
// place among the tenant's maxWatches from its create request to its end,
// and a create over the limit is refused in etcd's way, created and
// canceled, in its turn among the stream's create responses. A slow reader
// holds up its own stream, and etcd keeps what that stream has not taken,
// as it does for its own clients; the proxy holds the stream's
// flow-control windows and the one response it is passing on (splitEvents).

// relay is one tenant watch stream on its own etcd stream.
type relay struct {
	ws etcdserverpb.Watch_WatchServer
	tb *tenantbackend.Backend
	es *tenantbackend.Stream

	// mu orders what is sent to the tenant with pending and open.
	mu sync.Mutex
	// pending are the create requests etcd has not answered, oldest first,
	// and refusals waiting for the answers before them.
	pending []pendingCreate
	open    map[int64]openWatch // by watch ID
	ended   bool                // nothing more is sent
}

type pendingCreate struct {
	res     *tenantbackend.Reservation // a create sent to etcd
	refusal *etcdserverpb.WatchResponse
}

type openWatch struct {
	res  *tenantbackend.Reservation
	done func() // the watch metrics' end
}

func (w openWatch) end() {
	w.res.Release()
	w.done()
}

// relayWatch serves ws on es until either ends.
func relayWatch(ctx context.Context, cancel context.CancelFunc, ws etcdserverpb.Watch_WatchServer, tb *tenantbackend.Backend, es *tenantbackend.Stream) error {
	r := &relay{ws: ws, tb: tb, es: es, open: map[int64]openWatch{}}
	defer r.end()
	reqErr := make(chan error, 1)
	go func() {
		err := r.requests(ctx)
		cancel() // etcd's stream ends with the tenant's
		reqErr <- err
	}()
	err := r.responses()
	if ctx.Err() != nil {
		// The tenant ended its stream (or the proxy is stopping): its
		// error, not etcd's cancellation of the stream that followed.
		return <-reqErr
	}
	return err
}

// requests passes the tenant's requests on until its stream ends.
func (r *relay) requests(ctx context.Context) error {
	for {
		msg, err := r.ws.Recv()
		if err != nil {
			return err
		}
		switch {
		case msg.GetCreateRequest() != nil:
			err = r.create(ctx, msg.GetCreateRequest())
		case msg.GetCancelRequest() != nil || msg.GetProgressRequest() != nil:
			err = r.es.Send(msg)
		}
		if err != nil {
			return err
		}
	}
}

// create reserves the watch a place and sends it to etcd, or refuses it.
func (r *relay) create(ctx context.Context, cr *etcdserverpb.WatchCreateRequest) error {
	etcdWatchRange(cr)
	key, end := tenantRange(cr.Key, cr.RangeEnd)
	key = storedKey(key) // the apiserver's compaction key, as kine stores it
	res, err := r.tb.ReserveWatch()
	if err != nil {
		rev, _ := r.tb.CurrentRevision(ctx)
		refusal := &etcdserverpb.WatchResponse{
			Header:  &etcdserverpb.ResponseHeader{Revision: rev},
			WatchId: clientv3.InvalidWatchID, Created: true, Canceled: true, CancelReason: err.Error(),
		}
		r.mu.Lock()
		defer r.mu.Unlock()
		if len(r.pending) > 0 {
			r.pending = append(r.pending, pendingCreate{refusal: refusal})
			return nil
		}
		return r.send(refusal)
	}
	r.mu.Lock()
	r.pending = append(r.pending, pendingCreate{res: res})
	r.mu.Unlock()
	return r.es.Create(cr, key, end)
}

// responses passes etcd's responses back until its stream ends.
func (r *relay) responses() error {
	for {
		resp, err := r.es.Recv()
		if err != nil {
			return err
		}
		if err := r.answer(resp); err != nil {
			return err
		}
	}
}

// answer keeps the watches' places for resp and sends it to the tenant,
// then the refusals that waited for it.
func (r *relay) answer(resp *etcdserverpb.WatchResponse) error {
	for _, ev := range resp.Events {
		compactKeyAsAPI(ev.Kv)
		compactKeyAsAPI(ev.PrevKv)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	switch {
	case resp.Created:
		if len(r.pending) == 0 || r.pending[0].res == nil {
			return errors.New("kplex: etcd answered a watch create request that was not sent")
		}
		res := r.pending[0].res
		r.pending = r.pending[1:]
		w := openWatch{res: res, done: func() {}}
		if resp.Canceled {
			w.end()
			break
		}
		if r.tb.OnWatch != nil {
			w.done = r.tb.OnWatch(true)
		}
		r.open[resp.WatchId] = w
	case resp.Canceled:
		if w, ok := r.open[resp.WatchId]; ok {
			delete(r.open, resp.WatchId)
			w.end()
		}
	}
	for _, part := range splitEvents(resp, maxWatchResponseBytes) {
		if err := r.send(part); err != nil {
			return err
		}
	}
	for len(r.pending) > 0 && r.pending[0].refusal != nil {
		if err := r.send(r.pending[0].refusal); err != nil {
			return err
		}
		r.pending = r.pending[1:]
	}
	return nil
}

// send sends m to the tenant, unless the relay has ended; r.mu is held.
func (r *relay) send(m *etcdserverpb.WatchResponse) error {
	if r.ended {
		return context.Canceled
	}
	return r.ws.Send(m)
}

// end gives back the places of every watch and create still held.
func (r *relay) end() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ended = true
	for id, w := range r.open {
		delete(r.open, id)
		w.end()
	}
	for _, p := range r.pending {
		if p.res != nil {
			p.res.Release()
		}
	}
	r.pending = nil
}

// compactKeyAsAPI turns kine's stored compaction key back into the
// apiserver's, as toPB does for reads.
func compactKeyAsAPI(kv *mvccpb.KeyValue) {
	if kv != nil && string(kv.Key) == compactRevAPI {
		kv.Key = []byte(compactRevKey)
		kv.Version, kv.Value = kineserver.DecodeVersion(kv.Value)
	}
}
