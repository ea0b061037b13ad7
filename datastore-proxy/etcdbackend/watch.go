package etcdbackend

import (
	"context"
	"errors"
	"math"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// Watch streams every change from revision (0: from now) on.
func (b *Backend) Watch(ctx context.Context, revision int64) server.WatchResult {
	return b.WatchRange(ctx, "\x00", "\x00", revision, tenantbackend.WatchHooks{})
}

// WatchRange streams the changes of keys in [key, end) (end "": the single
// key): tenants watch only the range their watch asked for, inside their own
// space, so etcd sends each watcher those events alone. The pump makes
// them the tenant's with h.Own as it reads them from etcd.
func (b *Backend) WatchRange(ctx context.Context, key, end string, revision int64, h tenantbackend.WatchHooks) server.WatchResult {
	// Unbuffered: the pump's queue is the buffer, counted and bounded.
	eventc := make(chan server.EventBatch)
	errc := make(chan error, 1)
	cur, err := b.CurrentRevision(ctx)
	if err != nil {
		errc <- err
		close(eventc)
		h.Ended()
		return server.WatchResult{Eventc: eventc, Errorc: errc}
	}
	from := revision
	if from <= 0 {
		from = cur + 1
	}
	wctx, cancel := context.WithCancel(clientv3.WithRequireLeader(ctx))
	wc := b.c.Watch(wctx, key, watchOpts(end, from)...)

	// A watch from a compacted revision fails on its first response, which
	// then comes at once. Otherwise the first response may be a long way
	// off (a quiet range), and kine holds the stream's other watch creates
	// until this one returns: so wait for it only when a read at that
	// revision says it is compacted.
	if revision > 0 && compacted(wctx, b.c, key, revision) {
		first, ok := <-wc
		if ok && first.CompactRevision != 0 {
			cancel()
			close(eventc)
			h.Ended()
			return server.WatchResult{CurrentRevision: cur, CompactRevision: first.CompactRevision, Eventc: eventc, Errorc: errc}
		}
		if ok {
			wc = prepend(wctx, first, wc)
		}
	}
	p := &pump{b: b, ctx: ctx, key: key, end: end, hooks: h, eventc: eventc, errc: errc, next: from, wc: wc, stop: cancel}
	go p.run()
	return server.WatchResult{CurrentRevision: cur, Eventc: eventc, Errorc: errc}
}

func toEvent(ev *clientv3.Event) *server.Event {
	e := &server.Event{
		Create: ev.IsCreate(),
		Delete: ev.Type == mvccpb.DELETE,
		KV:     toKV(ev.Kv),
	}
	if ev.PrevKv != nil {
		e.PrevKV = toKV(ev.PrevKv)
	}
	return e
}

// prepend returns a channel yielding first, then everything from rest.
func prepend(ctx context.Context, first clientv3.WatchResponse, rest clientv3.WatchChan) clientv3.WatchChan {
	out := make(chan clientv3.WatchResponse)
	go func() {
		defer close(out)
		select {
		case out <- first:
		case <-ctx.Done():
			return
		}
		for r := range rest {
			select {
			case out <- r:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out
}

// compacted reports whether revision is compacted, from a one-key read at
// that revision.
func compacted(ctx context.Context, c *clientv3.Client, key string, revision int64) bool {
	_, err := c.Get(ctx, key, clientv3.WithRev(revision), clientv3.WithKeysOnly())
	return errors.Is(err, rpctypes.ErrCompacted)
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
