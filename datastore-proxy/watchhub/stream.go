package watchhub

import (
	"bytes"
	"context"
	"errors"
	"io"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// errDuplicateID refuses a create request with a watch ID its stream has
// in use, as etcd does (mvcc.ErrWatcherDuplicateID).
var errDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")

// errEmptyRange refuses a create request whose range end is not past its
// key, as etcd does (mvcc.ErrEmptyWatcherRange).
var errEmptyRange = errors.New("mvcc: watcher range is empty")

// RefusedFirst is the reason etcd refuses cr for before it gives the watch
// an ID, or nil: the hub refuses these itself, so that they take none of
// the stream's IDs either (and so does the proxy's SQL watch stream,
// where kine would start a watch on an empty range).
func RefusedFirst(cr *etcdserverpb.WatchCreateRequest) error {
	key, end := cr.Key, cr.RangeEnd
	if len(key) == 0 {
		key = []byte{0} // the smallest key, as etcd takes it
	}
	switch {
	case cr.StartRevision < 0:
		return rpctypes.ErrCompacted
	case len(end) != 0 && string(end) != "\x00" && bytes.Compare(key, end) >= 0:
		return errEmptyRange
	}
	return nil
}

// stream is one watch stream of the tenant; its fields are guarded by the
// hub's mu (outbox says which of its own are not).
type stream struct {
	ws   etcdserverpb.Watch_WatchServer
	up   *upstream
	gone bool
	// ids are the stream's watch IDs in use (open or being created), with
	// their etcd IDs; nextID is the next one etcd would assign.
	ids    map[int64]int64
	nextID int64
	// lastCreate is the number of its last create request on the etcd
	// stream (progress.go).
	lastCreate int64
	// queue holds the stream's create requests not yet answered, in order
	// (nil), and refusals waiting for the answers before them.
	queue []*etcdserverpb.WatchResponse
	// midFragment is set while the last response of etcd passed to the
	// stream was a fragment with more to come: etcd sends a response's
	// fragments back to back, and etcd's client takes a created or
	// canceled answer between them for the start of a new response,
	// dropping the fragments it had. The hub's own refusals wait.
	midFragment bool
	outbox      // what is for its client, sent outside the hub's mu (send.go)
}

// Serve serves one watch stream of the tenant until it ends, or the
// tenant's etcd stream does (its error is returned; etcd's client then
// watches again from where it was).
func (h *Hub) Serve(ws etcdserverpb.Watch_WatchServer) error {
	s := &stream{ws: ws, ids: map[int64]int64{}}
	s.outbox.init(&h.mu, h.cfg.OnStall)
	s.watchdog = time.AfterFunc(time.Hour, func() { h.watch(s) })
	s.watchdog.Stop()
	up, err := h.join(s)
	if err != nil {
		return err
	}
	defer h.leave(up, s)
	reqErr := make(chan error, 1)
	go func() { reqErr <- h.requests(up, s) }()
	select {
	case err := <-reqErr:
		if !errors.Is(err, io.EOF) {
			return err
		}
		// The client sends no more, and still reads, as from etcd.
		select {
		case <-ws.Context().Done():
			return ended(ws.Context())
		case <-up.done:
			return retriable(up.err, leaderRequired(ws.Context()))
		case <-s.kicked:
			return errStalled
		}
	case <-up.done:
		return retriable(up.err, leaderRequired(ws.Context()))
	case <-s.kicked:
		// Returning ends the stream, and so the send that waits on it.
		return errStalled
	case <-ws.Context().Done():
		return ended(ws.Context())
	}
}

// ended is what a stream whose context has ended returns: the cause the
// server gave (the proxy draining its watches), or nothing when the client
// has gone.
func ended(ctx context.Context) error {
	if err := context.Cause(ctx); !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return nil
}

// retriable is why the tenant's etcd stream ended, as an error that etcd's
// client answers by watching again from where it was (Unavailable),
// unless etcd's own status already says what to do. The tenant's etcd
// stream always requires a leader; etcd's "no leader" ends a client's
// watches for good, so it is passed on only to a stream that required a
// leader too, as etcd would (etcd never ends one that did not).
func retriable(err error, leaderRequired bool) error {
	if st, ok := status.FromError(err); ok && st.Code() != codes.Unknown && st.Code() != codes.Canceled {
		if leaderRequired || !errors.Is(rpctypes.Error(err), rpctypes.ErrNoLeader) {
			return err
		}
	}
	return status.Errorf(codes.Unavailable, "kplex: the tenant's watch stream on the store ended: %v", err)
}

// leaderRequired reports whether the client's stream asked for a leader
// (clientv3.WithRequireLeader), as etcd reads it.
func leaderRequired(ctx context.Context) bool {
	md, _ := metadata.FromIncomingContext(ctx)
	rl := md.Get(rpctypes.MetadataRequireLeaderKey)
	return len(rl) > 0 && rl[0] == rpctypes.MetadataHasLeader
}

// maxCreateRangeBytes bounds a create request's key and range end. etcd
// ends a stream whose request is larger than its gRPC limit (2 MiB by
// default, with its default 1.5 MiB requests); the tenant's space added to
// both could push a create the proxy took past that limit, and etcd would
// end the tenant's stream, and so every watch of the tenant, rather than
// the one stream that asked. No key longer than etcd's requests can be
// written, so a watch on one could never see an event: the stream that
// asks is ended, as etcd ends one that sends too much.
const maxCreateRangeBytes = 3 << 19 // 1.5 MiB

// requests passes the stream's requests on until it ends.
func (h *Hub) requests(up *upstream, s *stream) error {
	ctx := s.ws.Context()
	for {
		msg, err := s.ws.Recv()
		if err != nil {
			return err
		}
		switch {
		case msg.GetCreateRequest() != nil:
			if cr := msg.GetCreateRequest(); len(cr.Key)+len(cr.RangeEnd) > maxCreateRangeBytes {
				return status.Errorf(codes.ResourceExhausted, "kplex: a watch's key and range end may hold at most %d bytes, not %d", maxCreateRangeBytes, len(cr.Key)+len(cr.RangeEnd))
			}
			// A refusal is sent from a goroutine of its own: this one
			// must go on reading the client's requests, or a client that
			// does not take the refusal yet could wait on both.
			flush, err := h.create(ctx, up, s, msg.GetCreateRequest())
			for _, t := range flush {
				go h.flush(t, false)
			}
			if err != nil {
				return err
			}
		case msg.GetCancelRequest() != nil:
			h.cancel(up, s, msg.GetCancelRequest().WatchId)
		case msg.GetProgressRequest() != nil:
			h.mu.Lock()
			up.ask(s)
			h.mu.Unlock()
		}
	}
}

// errUntaken ends a stream whose client sends create requests that are
// refused while it takes none of the answers.
var errUntaken = status.Errorf(codes.ResourceExhausted, "kplex: a watch create refused while %d or more answers wait for the watch stream's client to take them; the stream is ended", maxUntaken)

// maxUntaken is how many answers may wait for a stream's client when a
// create is refused. A client that sends requests that are refused and
// takes none of the answers would otherwise grow them in the proxy without
// bound (etcd stops reading a stream's requests while 16 of its answers
// wait); one that takes them never comes near it.
const maxUntaken = 1024

// create sends a create request to etcd with an etcd ID of the hub's, or
// refuses it as etcd would (a watch ID in use) or for the tenant's
// maxWatches; it returns the streams to flush (the refusal's), and
// errUntaken if the refusal would wait behind maxUntaken others.
func (h *Hub) create(ctx context.Context, up *upstream, s *stream, cr *etcdserverpb.WatchCreateRequest) (flush []*stream, err error) {
	refusal := RefusedFirst(cr)
	key, end := h.cfg.Range(cr)
	var res *tenantbackend.Reservation
	if refusal == nil && h.cfg.Admit != nil {
		refusal = h.cfg.Admit(ctx)
	}
	if refusal == nil {
		res, refusal = h.cfg.Tenant.ReserveWatch()
	}
	var rev int64 // for a refusal's header
	if refusal != nil || cr.WatchId != clientv3.AutoWatchID {
		rev, _ = h.cfg.Tenant.CurrentRevision(ctx)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	defer func() { flush = up.takeTouched(nil) }()
	id := cr.WatchId
	switch {
	case refusal != nil:
	case id == clientv3.AutoWatchID:
		for id = s.nextID; s.used(id); id++ {
		}
		s.nextID = id + 1
	case s.used(id):
		res.Release()
		refusal = errDuplicateID
	}
	if refusal != nil {
		if s.untaken() >= maxUntaken {
			return nil, errUntaken
		}
		up.refuse(s, &etcdserverpb.WatchResponse{
			Header:  &etcdserverpb.ResponseHeader{Revision: rev},
			WatchId: clientv3.InvalidWatchID, Created: true, Canceled: true, CancelReason: refusal.Error(),
		})
		return
	}
	if up.ended || up.sendErr != nil {
		res.Release()
		return // the stream ends with the etcd stream's error
	}
	eid := up.nextID
	up.nextID++
	s.ids[id] = eid
	s.queue = append(s.queue, nil)
	p := &pendingCreate{s: s, id: id, eid: eid, res: res}
	up.pending = append(up.pending, p)
	cr.WatchId = eid
	up.es.Confine(cr, key, end)
	up.send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: cr}})
	p.seq, s.lastCreate = up.seq, up.seq
	return
}

// cancel cancels one of the stream's watches on etcd (an ID not in use is
// ignored, as etcd ignores it).
func (h *Hub) cancel(up *upstream, s *stream, id int64) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if eid, ok := s.ids[id]; ok {
		delete(s.ids, id) // free at once, as etcd frees it when it reads the cancel
		up.send(cancelRequest(eid))
	}
}

func (s *stream) used(id int64) bool {
	_, ok := s.ids[id]
	return ok
}

// refuse answers a create request of s with a refusal, in its turn.
func (up *upstream) refuse(s *stream, r *etcdserverpb.WatchResponse) {
	if len(s.queue) > 0 || s.midFragment {
		s.queue = append(s.queue, r)
		return
	}
	up.post(s, r)
}

// answerCreate answers the oldest create request of s, then passes on the
// refusals that waited for it.
func (up *upstream) answerCreate(s *stream, r *etcdserverpb.WatchResponse) {
	if len(s.queue) > 0 {
		s.queue = s.queue[1:]
	}
	up.post(s, r)
	up.postRefusals(s)
}

// postRefusals passes on the refusals at the head of s's queue, which
// waited for the answers, or the fragment, before them.
func (up *upstream) postRefusals(s *stream) {
	for len(s.queue) > 0 && s.queue[0] != nil {
		up.post(s, s.queue[0])
		s.queue = s.queue[1:]
	}
}
