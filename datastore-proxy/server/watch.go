package server

import (
	"context"
	"sync"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// Watch serves a tenant's watch stream: events of its own keys only.
//
// The stream is wrapped so that each create request's key range reaches the
// tenant backend (tenantbackend.WithWatchRange): the shared store is then
// asked for that range alone, not for every change of every tenant.
func (s *Server) Watch(ws etcdserverpb.Watch_WatchServer) error {
	b, err := s.bridge(ws.Context())
	if err != nil {
		return err
	}
	return b.Watch(&rangeStream{Watch_WatchServer: ws, ctx: ws.Context()})
}

// The apiserver's compaction key, which kine stores under another name
// (kine server/compact.go).
const (
	compactRevKey = "compact_rev_key"
	compactRevAPI = "compact_rev_key_apiserver"
)

// rangeStream's Context carries the range of the create request it last
// received: kine reads a request and calls Create(ws.Context(), request)
// right after, so each create's context carries its own range.
type rangeStream struct {
	etcdserverpb.Watch_WatchServer
	mu  sync.Mutex
	ctx context.Context
}

func (r *rangeStream) Context() context.Context {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ctx
}

func (r *rangeStream) Recv() (*etcdserverpb.WatchRequest, error) {
	msg, err := r.Watch_WatchServer.Recv()
	if err != nil {
		return msg, err
	}
	if cr := msg.GetCreateRequest(); cr != nil {
		key, end := string(cr.Key), string(cr.RangeEnd)
		switch {
		case key == "\x00" && end == "\x00": // every key, as kine spells it
			key, end = "", ""
		case key == compactRevKey: // kine watches its own substitute key
			key = compactRevAPI
		}
		ctx := tenantbackend.WithWatchRange(r.Watch_WatchServer.Context(), tenantbackend.WatchRange{Key: key, End: end, Revision: cr.StartRevision})
		r.mu.Lock()
		r.ctx = ctx
		r.mu.Unlock()
	}
	return msg, nil
}
