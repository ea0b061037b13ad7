package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// Watch serves a tenant's watch stream: events of its own keys only.
//
// The stream is wrapped so that each create request's key range reaches the
// tenant backend (tenantbackend.WatchRanges): the shared store is then
// asked for that range alone, not for every change of every tenant.
func (s *Server) Watch(ws etcdserverpb.Watch_WatchServer) error {
	b, err := s.bridge(ws.Context())
	if err != nil {
		return err
	}
	ctx, ranges := tenantbackend.WithWatchRanges(ws.Context())
	return b.Watch(&rangeStream{Watch_WatchServer: ws, ctx: ctx, ranges: ranges})
}

// The apiserver's compaction key, which kine stores under another name
// (kine server/compact.go).
const (
	compactRevKey = "compact_rev_key"
	compactRevAPI = "compact_rev_key_apiserver"
)

// rangeStream records the create requests it passes on.
type rangeStream struct {
	etcdserverpb.Watch_WatchServer
	ctx    context.Context
	ranges *tenantbackend.WatchRanges
}

func (r *rangeStream) Context() context.Context { return r.ctx }

func (r *rangeStream) Recv() (*etcdserverpb.WatchRequest, error) {
	msg, err := r.Watch_WatchServer.Recv()
	if err != nil {
		return msg, err
	}
	if cr := msg.GetCreateRequest(); cr != nil && !tenantbackend.Refused(cr.WatchId, cr.StartRevision) {
		key, end := string(cr.Key), string(cr.RangeEnd)
		switch {
		case key == "\x00" && end == "\x00": // every key, as kine spells it
			key, end = "", ""
		case key == compactRevKey: // kine watches its own substitute key
			key = compactRevAPI
		}
		r.ranges.Push(tenantbackend.WatchRange{Key: key, End: end, Revision: cr.StartRevision})
	}
	return msg, nil
}
