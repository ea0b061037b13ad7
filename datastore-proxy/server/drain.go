package server

import (
	"context"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// How the proxy drains its watches when it shuts down.
//
// gRPC's graceful stop refuses new calls and waits for those under way to
// end, but a watch stream never ends by itself: every tenant's apiserver
// holds dozens, so a graceful stop waited the whole grace period and then
// cut every connection, writes under way included. Drain ends every watch
// stream, and refuses new ones, with Unavailable, which etcd's client
// answers by watching again from the revision it had, on another endpoint
// or once this one is back: nothing is missed. The writes and reads under
// way then finish within the grace period.

// errDraining ends the watch streams of a proxy that is shutting down.
var errDraining = status.Error(codes.Unavailable, "kplex: the datastore proxy is shutting down; watch again")

// Drain ends every watch stream, and refuses new ones, with Unavailable
// (above). It returns at once; a stream ends as soon as its hub lets it
// go.
func (s *Server) Drain() { s.drain(errDraining) }

// drainStream is a watch stream that ends when the proxy drains.
type drainStream struct {
	etcdserverpb.Watch_WatchServer
	ctx context.Context
}

func (d drainStream) Context() context.Context { return d.ctx }

// drainable returns ws with a context that also ends, with errDraining as
// its cause, when the proxy drains; stop lets go of it.
func (s *Server) drainable(ws etcdserverpb.Watch_WatchServer) (_ etcdserverpb.Watch_WatchServer, stop func(), err error) {
	if context.Cause(s.draining) != nil {
		return nil, nil, errDraining
	}
	ctx, cancel := context.WithCancelCause(ws.Context())
	unhook := context.AfterFunc(s.draining, func() { cancel(errDraining) })
	return drainStream{Watch_WatchServer: ws, ctx: ctx}, func() { unhook(); cancel(nil) }, nil
}
