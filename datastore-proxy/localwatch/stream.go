// Package localwatch serves an etcd watch stream in the proxy's own
// process, from a kine backend's watches: on the SQL backends, each
// tenant's watch hub (watchhub) shares one such stream among the tenant's
// watch streams, as it shares an etcd watch stream of the tenant's own on
// etcd.
//
// Why not kine's bridge (kine v0.17, server/watch.go): it answers a
// progress request from a goroutine of its own, after it has checked
// that every watch is synced. A watch created in between, from a past
// revision, is then recorded as having been sent that revision, and when
// its older events follow, kine calls logrus.Fatalf ("events for past
// revision"): the proxy, every tenant's, exits. Here the answer is decided
// and queued under the lock every watch's events are queued under, and a
// watch that has not sent all its events up to a revision holds it back.
//
// What it keeps of etcd's watch stream (etcd's v3rpc/watch.go):
//   - a create request is answered (created) in its turn, before any event
//     of its watch; a watch whose start revision is compacted is created,
//     then canceled with the compact revision, as etcd does;
//   - a watch gets the events of its range from its start revision on,
//     without the kinds it filters out, with previous values only if it
//     asked for them, cut into fragments if it asked and they are large;
//   - a progress request is answered (watch ID -1) if every watch of the
//     stream has sent every event up to a revision at or past the store's,
//     and none a later one; otherwise it is dropped, as etcd (3.7) drops
//     one it cannot answer at once (watchhub asks again);
//   - every interval, a watch that asked for progress notifications and was
//     sent nothing since the last tick gets one, at the revision it has
//     sent everything up to;
//   - a cancel request ends its watch with a canceled answer; an ID the
//     stream does not have is ignored.
//
// A create's catch-up is read in a goroutine of its own, so that a large
// one holds up no other request of the tenant's streams (the hub shares
// this stream among them all); created answers still go out in the order
// of the creates.
//
// What it does not: the caller gives every create request its watch ID
// (watchhub does), and a watch ID in use is refused; a watch whose feed
// ends (kine's broadcaster drops a subscriber that falls 100 batches
// behind) is canceled with a reason, and its client watches again.
package localwatch

import (
	"context"
	"math"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"
)

// Source is the store a stream's watches read.
type Source interface {
	// WatchRange streams the changes of stored keys in [key, end) (end "":
	// the single key) from revision on (0: from now), as kine's
	// server.Backend.Watch does: the first batch is the catch-up, at the
	// revision it read to, then the live batches after it. A source that
	// cannot watch one range may send others' events too: they are left out.
	WatchRange(ctx context.Context, key, end string, revision int64) server.WatchResult
	// CurrentRevision is the store's revision.
	CurrentRevision(ctx context.Context) (int64, error)
}

// maxQueued bounds the responses queued for Recv: past it, a watch's
// goroutine waits, and its feed holds what comes (and ends it if it falls
// too far behind), and progress requests and notifications are dropped (a
// client that takes nothing would otherwise grow the queue with every
// progress request it sends). Created and canceled answers are always
// queued: a stream has as many as its creates.
const maxQueued = 64

// Stream is one watch stream. Send is called from one goroutine at a time,
// and Recv from another, as with etcd's client stream.
type Stream struct {
	ctx      context.Context
	src      Source
	interval time.Duration

	mu      sync.Mutex
	ready   *sync.Cond // out has grown, or the stream has ended
	room    *sync.Cond // out has shrunk, a watch has gone, or the stream has ended
	closed  bool
	out     []*etcdserverpb.WatchResponse
	watches map[int64]*watch // by ID, those being created too
	// creating are the create requests not yet answered, in order.
	creating []*pending
	// answered is the last progress answer's revision: none goes back.
	answered int64
	top      int64 // the highest revision seen, for canceled answers
}

// New returns a stream on src until ctx ends. Watches that ask for
// progress notifications get them every interval (0: never).
func New(ctx context.Context, src Source, interval time.Duration) *Stream {
	s := &Stream{ctx: ctx, src: src, interval: interval, watches: map[int64]*watch{}}
	s.ready = sync.NewCond(&s.mu)
	s.room = sync.NewCond(&s.mu)
	go s.run()
	return s
}

// run ends the stream with its context, and ticks its progress
// notifications until then.
func (s *Stream) run() {
	var tick <-chan time.Time
	if s.interval > 0 {
		t := time.NewTicker(s.interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-tick:
			s.notify()
		case <-s.ctx.Done():
			s.mu.Lock()
			defer s.mu.Unlock()
			s.closed = true
			for id, w := range s.watches {
				delete(s.watches, id)
				w.gone = true
				w.cancel()
			}
			s.ready.Broadcast()
			s.room.Broadcast()
			return
		}
	}
}

// Send takes one request: a create, a cancel or a progress request.
func (s *Stream) Send(r *etcdserverpb.WatchRequest) error {
	if err := s.ctx.Err(); err != nil {
		return status.FromContextError(err).Err()
	}
	switch {
	case r.GetCreateRequest() != nil:
		s.create(r.GetCreateRequest())
	case r.GetCancelRequest() != nil:
		s.cancel(r.GetCancelRequest().WatchId)
	case r.GetProgressRequest() != nil:
		s.ask()
	}
	return nil
}

// Recv returns the next response, waiting for one; an error once the
// stream has ended.
func (s *Stream) Recv() (*etcdserverpb.WatchResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(s.out) == 0 && !s.closed {
		s.ready.Wait()
	}
	if s.closed {
		return nil, status.FromContextError(s.ctx.Err()).Err()
	}
	r := s.out[0]
	s.out[0] = nil
	s.out = s.out[1:]
	s.room.Broadcast()
	return r, nil
}

// queue adds responses for Recv; s.mu is held.
func (s *Stream) queue(rs ...*etcdserverpb.WatchResponse) {
	s.out = append(s.out, rs...)
	s.ready.Broadcast()
}

func header(rev int64) *etcdserverpb.ResponseHeader {
	return &etcdserverpb.ResponseHeader{Revision: rev}
}

// ask answers a progress request if it can (progressRevision), and
// otherwise drops it, as etcd does.
func (s *Stream) ask() {
	rev, err := s.src.CurrentRevision(s.ctx)
	if err != nil {
		return // not answered, as etcd answers none it cannot
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.top = max(s.top, rev)
	r, ok := s.progressRevision(rev)
	if !ok || len(s.out) >= maxQueued {
		return
	}
	s.answered = r
	s.queue(&etcdserverpb.WatchResponse{Header: header(r), WatchId: clientv3.InvalidWatchID})
}

// progressRevision is the revision a progress request asked at store
// revision cur can be answered at, if it can; s.mu is held. That is the
// lowest revision the watches have sent every event up to, if it is at
// least cur (kine's cached revision, which can lag: then the higher one),
// no watch has been sent anything past it, and no answer went past it.
func (s *Stream) progressRevision(cur int64) (int64, bool) {
	floor := max(cur, s.answered)
	r := int64(math.MaxInt64)
	for _, w := range s.watches {
		r = min(r, w.synced)
		floor = max(floor, w.sent)
	}
	if len(s.watches) == 0 {
		r = floor
	}
	return r, r >= floor
}

// notify sends each watch that asked for progress notifications and was
// sent nothing since the last tick a notification at the revision it has
// sent every event up to, as etcd's ticker does (etcd's is its current
// revision; here the store's last batch the watch has taken, which can lag
// the store's by a poll).
func (s *Stream) notify() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, w := range s.watches {
		if w.progress && w.quiet && w.synced > 0 && w.synced >= w.sent && len(s.out) < maxQueued {
			w.sent = w.synced
			s.queue(&etcdserverpb.WatchResponse{Header: header(w.synced), WatchId: w.id})
		}
		w.quiet = true
	}
}
