package tenantbackend

import (
	"context"
	"fmt"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"

	"kplex.dev/datastore-proxy/leaseid"
	"kplex.dev/datastore-proxy/localwatch"
)

// WatchStreamer is implemented by shared backends that are etcd itself:
// a tenant's watch stream is then a watch stream of its own on etcd, its
// requests and responses passed on with the keys rewritten (Stream).
// Elsewhere (the SQL backends) the proxy serves the tenant's stream itself,
// from the backend's watches (localwatch); kine's bridge, which cannot
// answer a progress request on a shared store (watchhub says why) and can
// exit the process on one (localwatch says how), is not in the way on
// either.
type WatchStreamer interface {
	// WatchStream opens a watch stream on the store, until ctx ends.
	WatchStream(ctx context.Context) (etcdserverpb.Watch_WatchClient, error)
}

// Stream is one tenant watch stream on the store: create requests are
// confined to the tenant's space and events come back in the tenant's
// keys. Send may be called from one goroutine at a time, and Recv from
// another.
type Stream struct {
	b  *Backend
	es watchConn
}

// watchConn is a watch stream on the store: etcd's, or the proxy's own
// (localwatch).
type watchConn interface {
	Send(*etcdserverpb.WatchRequest) error
	Recv() (*etcdserverpb.WatchResponse, error)
}

// WatchStream opens a watch stream for the tenant on the store, until ctx
// ends: etcd's own, or one the proxy serves from the store's watches
// (localwatch), whose idle watches get progress notifications every
// b.ProgressInterval.
func (b *Backend) WatchStream(ctx context.Context) (*Stream, error) {
	ws, ok := b.inner.(WatchStreamer)
	if !ok {
		src := localSource{Backend: b.inner, admit: b.AdmitCatchUp}
		return &Stream{b: b, es: localwatch.New(ctx, src, b.ProgressInterval)}, nil
	}
	es, err := ws.WatchStream(ctx)
	if err != nil {
		return nil, err
	}
	return &Stream{b: b, es: es}, nil
}

// LocalSource is what a stream the proxy serves itself watches: the
// shared backend, a key range at a time where it can (RangeWatcher), or
// else every change of the store (the stream keeps its range's).
func LocalSource(inner server.Backend) localwatch.Source { return localSource{Backend: inner} }

type localSource struct {
	server.Backend
	admit func(context.Context) (func(), error) // Backend.AdmitCatchUp
}

// WatchRange starts a watch; one from a past revision reads its history
// once admitted (Backend.AdmitCatchUp), and holds its admission only
// while the catch-up is read (the source's WatchRange returns then).
func (s localSource) WatchRange(ctx context.Context, key, end string, revision int64) server.WatchResult {
	if revision > 0 && s.admit != nil {
		release, err := s.admit(ctx)
		if err != nil {
			return notAdmitted(ctx, err)
		}
		defer release()
	}
	if rw, ok := s.Backend.(RangeWatcher); ok {
		return rw.WatchRange(ctx, key, end, revision, WatchHooks{})
	}
	return s.Watch(ctx, revision)
}

// notAdmitted is a watch whose catch-up was not admitted, shaped as the
// SQL backends' failed catch-up: no revision, one empty batch, then the
// end, with err as its reason unless the watch's own context ended (it
// was canceled, or its stream closed).
func notAdmitted(ctx context.Context, err error) server.WatchResult {
	eventc := make(chan server.EventBatch, 1)
	eventc <- server.EventBatch{}
	close(eventc)
	errc := make(chan error, 1)
	if ctx.Err() == nil {
		errc <- fmt.Errorf("watch catch-up not admitted: %w", err)
	}
	return server.WatchResult{Eventc: eventc, Errorc: errc}
}

// Confine sets cr's range to the tenant's [key, end) (Space.Range's
// spelling) in the store; the rest of cr (start revision, watch ID,
// filters, previous values, progress notifications, fragments) is etcd's
// own.
func (s *Stream) Confine(cr *etcdserverpb.WatchCreateRequest, key, end string) {
	k, e := s.b.space.Range(key, end)
	cr.Key, cr.RangeEnd = []byte(k), []byte(e)
	// The tenant's message goes on to the store: without the bytes the
	// proxy did not read (fields unknown to its etcd API, or a known one
	// sent with the wrong wire type), which the proxy never confined.
	cr.ProtoReflect().SetUnknown(nil)
}

// Send sends a request to the store: a cancel, a progress request, or a
// create request whose range Confine set.
func (s *Stream) Send(r *etcdserverpb.WatchRequest) error { return s.es.Send(r) }

// Recv returns the store's next response with its events in the tenant's
// keys, and leases as the TTLs they stand for (leaseid); an event of a key
// outside the tenant's space, which its ranges never ask for, is dropped.
// The header keeps the revision only, as kine's bridge answers.
func (s *Stream) Recv() (*etcdserverpb.WatchResponse, error) {
	r, err := s.es.Recv()
	if err != nil {
		return nil, err
	}
	if r.Header != nil {
		r.Header = &etcdserverpb.ResponseHeader{Revision: r.Header.Revision}
	}
	events := r.Events[:0]
	for _, ev := range r.Events {
		if !s.own(ev.Kv) || (ev.PrevKv != nil && !s.own(ev.PrevKv)) {
			continue
		}
		events = append(events, ev)
	}
	r.Events = events
	return r, nil
}

// own rewrites a stored key value as the tenant's, in place; false when
// it is not the tenant's.
func (s *Stream) own(kv *mvccpb.KeyValue) bool {
	if kv == nil {
		return false
	}
	key, ok := s.b.space.Strip(string(kv.Key))
	if !ok {
		return false
	}
	kv.Key = []byte(key)
	kv.Lease = leaseid.TTL(kv.Lease)
	return true
}
