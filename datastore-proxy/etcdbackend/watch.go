package etcdbackend

import (
	"context"
	"errors"
	"math"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"
)

// errWatchByStream is what a watch through kine's backend contract ends
// with: on etcd a tenant's watches go by WatchStream.
var errWatchByStream = errors.New("kplex: watches on etcd go by a tenant's etcd watch stream (etcdbackend.Backend.WatchStream), not kine's bridge")

// Watch is kine's backend contract for a watch, which the proxy does not
// use on etcd: kine's bridge cannot answer a progress request on a store
// that every tenant writes to (watchhub), so a tenant's watch streams
// share an etcd stream of the tenant's own (WatchStream). Called anyway, the
// watch ends at once with errWatchByStream, which kine passes to its
// client as the reason the watch was canceled.
func (b *Backend) Watch(ctx context.Context, _ int64) server.WatchResult {
	eventc := make(chan server.EventBatch)
	close(eventc)
	errc := make(chan error, 1)
	errc <- errWatchByStream
	rev, _ := b.CurrentRevision(ctx)
	return server.WatchResult{CurrentRevision: rev, Eventc: eventc, Errorc: errc}
}

// WatchStream opens a watch stream of its own on etcd, over the client's
// connection (tenantbackend.WatchStreamer): a tenant's watches are then
// etcd's, with etcd's answers to progress requests. etcd ends the stream
// when it has no leader, as it does its own clients' streams.
func (b *Backend) WatchStream(ctx context.Context) (etcdserverpb.Watch_WatchClient, error) {
	// Any size etcd sends, as etcd's own client takes (gRPC's default is
	// 4 MiB): a watch that fell behind is caught up in responses of up to
	// 1000 revisions.
	return etcdserverpb.NewWatchClient(b.c.ActiveConnection()).Watch(clientv3.WithRequireLeader(ctx), grpc.MaxCallRecvMsgSize(math.MaxInt32))
}
