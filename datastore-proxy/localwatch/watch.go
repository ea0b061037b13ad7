package localwatch

import (
	"context"
	"errors"

	"github.com/k3s-io/kine/pkg/server"
	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	"go.etcd.io/etcd/api/v3/v3rpc/rpctypes"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/protobuf/proto"
)

// errDuplicateID refuses a create request with a watch ID in use, as etcd
// does (mvcc.ErrWatcherDuplicateID).
var errDuplicateID = errors.New("mvcc: duplicate watch ID provided on the WatchStream")

// errFellBehind ends a watch whose feed ended before it was canceled: its
// client watches again from the last revision it has.
var errFellBehind = errors.New("kplex: the watch fell behind the store's changes and was ended; watch again from the last revision received")

// maxFragmentBytes is about the largest part of a response cut into
// fragments for a watch that asked for them.
const maxFragmentBytes = 1 << 20

// watch is one watch of a stream; the fields below cancel are guarded by
// the stream's mu.
type watch struct {
	id                      int64
	key, end                string // stored keys, end "": the key alone
	start                   int64  // the first revision it takes events of
	prevKV, noPut, noDelete bool
	progress, fragment      bool
	cancel                  context.CancelFunc

	// synced is the revision up to which every event of the watch is
	// queued (0: its catch-up is not), sent the highest revision of a
	// response queued for it.
	synced, sent int64
	// quiet is set at each progress tick and cleared by events: the next
	// tick notifies only a watch that stayed quiet.
	quiet   bool
	started bool // its created answer is queued, and its events follow
	gone    bool // canceled or ended: nothing more is queued for it
}

// create starts the watch cr asks for; its catch-up is read in a
// goroutine of its own, and its created answer waits for those of the
// creates before it (answerCreates). A watch ID in use is refused, as etcd
// refuses it, in its turn too.
func (s *Stream) create(cr *etcdserverpb.WatchCreateRequest) {
	s.mu.Lock()
	_, dup := s.watches[cr.WatchId]
	s.mu.Unlock()
	if dup {
		rev, _ := s.src.CurrentRevision(s.ctx)
		s.mu.Lock()
		defer s.mu.Unlock()
		s.creating = append(s.creating, &pending{done: true, refusal: &etcdserverpb.WatchResponse{
			Header: header(max(rev, s.top)), WatchId: clientv3.InvalidWatchID,
			Created: true, Canceled: true, CancelReason: errDuplicateID.Error()}})
		s.answerCreates()
		return
	}
	ctx, cancel := context.WithCancel(s.ctx)
	w := &watch{id: cr.WatchId, key: string(cr.Key), end: string(cr.RangeEnd), start: cr.StartRevision,
		prevKV: cr.PrevKv, progress: cr.ProgressNotify, fragment: cr.Fragment, cancel: cancel}
	for _, f := range cr.Filters {
		switch f {
		case etcdserverpb.WatchCreateRequest_NOPUT:
			w.noPut = true
		case etcdserverpb.WatchCreateRequest_NODELETE:
			w.noDelete = true
		}
	}
	p := &pending{w: w}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		cancel()
		return
	}
	// In the stream from now: its ID is taken, and, synced to nothing
	// yet, it holds progress answers back.
	s.watches[w.id] = w
	s.creating = append(s.creating, p)
	s.mu.Unlock()
	go func() {
		wr := s.src.WatchRange(ctx, w.key, w.end, w.start)
		s.mu.Lock()
		defer s.mu.Unlock()
		p.wr, p.done = wr, true
		s.answerCreates()
	}()
}

// pending is a create request not yet answered: its watch's catch-up is
// being read (done is unset), or a create before it is.
type pending struct {
	w       *watch
	refusal *etcdserverpb.WatchResponse // instead of w: answered as it is
	wr      server.WatchResult
	done    bool
}

// answerCreates answers the create requests whose catch-ups are read, in
// the order they came, up to the first still being read; s.mu is held.
func (s *Stream) answerCreates() {
	for len(s.creating) > 0 && s.creating[0].done {
		p := s.creating[0]
		s.creating[0] = nil
		s.creating = s.creating[1:]
		switch {
		case p.refusal != nil:
			if !s.closed {
				s.queue(p.refusal)
			}
		case s.closed:
			go drain(p.wr.Eventc)
		default:
			s.started(p.w, p.wr)
		}
	}
}

// started answers the create of w, whose catch-up wr is read, and starts
// passing its events on; s.mu is held.
func (s *Stream) started(w *watch, wr server.WatchResult) {
	w.started = true
	s.top = max(s.top, wr.CurrentRevision)
	// The created answer's revision is where the watch starts from (etcd's
	// client watches again from it if the stream breaks before an event):
	// not a later one the stream has seen, whose changes may still be on
	// their way to this watch. A failed catch-up has none.
	created := wr.CurrentRevision
	if created == 0 {
		created = s.top
	}
	s.queue(&etcdserverpb.WatchResponse{Header: header(created), WatchId: w.id, Created: true})
	switch {
	case w.gone: // canceled while its catch-up was read
		s.queue(&etcdserverpb.WatchResponse{Header: header(s.top), WatchId: w.id, Canceled: true})
		go drain(wr.Eventc)
	case wr.CompactRevision != 0:
		delete(s.watches, w.id)
		w.gone = true
		w.cancel()
		s.queue(&etcdserverpb.WatchResponse{Header: header(created), WatchId: w.id, Canceled: true,
			CompactRevision: wr.CompactRevision, CancelReason: rpctypes.ErrCompacted.Error()})
		go drain(wr.Eventc)
	default:
		go s.follow(w, wr)
	}
}

// drain reads a feed no watch takes to its end, so that a feed that does
// not look at its context is not left waiting to hand over a batch (the
// SQL backends' end once their context does).
func drain(c <-chan server.EventBatch) {
	for range c {
	}
}

// cancel ends a watch at its client's request; one whose catch-up is
// still being read is answered, created and then canceled, in its turn.
func (s *Stream) cancel(id int64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	w, ok := s.watches[id]
	switch {
	case !ok:
	case !w.started:
		delete(s.watches, id)
		w.gone = true
		w.cancel()
	default:
		s.end(w, "")
	}
}

// end takes w off the stream with a canceled answer; s.mu is held.
func (s *Stream) end(w *watch, reason string) {
	delete(s.watches, w.id)
	w.gone = true
	w.cancel()
	s.queue(&etcdserverpb.WatchResponse{Header: header(s.top), WatchId: w.id, Canceled: true, CancelReason: reason})
	s.room.Broadcast()
}

// follow queues w's events until its feed ends.
func (s *Stream) follow(w *watch, wr server.WatchResult) {
	for batch := range wr.Eventc {
		if !s.deliver(w, batch) {
			drain(wr.Eventc) // gone: its context is canceled, and its feed ends
			return
		}
	}
	var err error
	select {
	case err = <-wr.Errorc:
	default:
	}
	if err == nil {
		err = errFellBehind
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !w.gone {
		s.end(w, err.Error())
	}
}

// deliver queues a batch's events for w and records that w is synced to
// the batch's revision; false once w is gone.
func (s *Stream) deliver(w *watch, batch server.EventBatch) bool {
	events := w.events(batch)
	s.mu.Lock()
	defer s.mu.Unlock()
	for len(events) > 0 && len(s.out) >= maxQueued && !w.gone {
		s.room.Wait()
	}
	if w.gone {
		return false
	}
	rev := batch.CurrentRev
	if len(events) > 0 {
		s.queue(w.responses(rev, events)...)
		w.sent = max(w.sent, rev)
		w.quiet = false
	}
	// A watch from a revision the store had not reached is synced to
	// nothing until the store is one short of its start: etcd sends no
	// progress below a watch's start (its progressIfSync), and a client
	// that resumed from one (at its revision + 1) would get the changes it
	// asked to skip.
	if rev >= w.start-1 {
		w.synced = max(w.synced, rev)
	}
	s.top = max(s.top, rev)
	return true
}

// events are the events of batch that w takes, as etcd sends them.
func (w *watch) events(batch server.EventBatch) []*mvccpb.Event {
	var out []*mvccpb.Event
	for _, ev := range batch.Events {
		if ev == nil || ev.KV == nil || !w.has(ev.KV.Key) || ev.KV.ModRevision < w.start ||
			ev.Delete && w.noDelete || !ev.Delete && w.noPut {
			continue
		}
		e := &mvccpb.Event{Kv: keyValue(ev.KV)}
		if ev.Delete {
			e.Type = mvccpb.DELETE
		}
		if w.prevKV && !ev.Create {
			e.PrevKv = keyValue(ev.PrevKV)
		}
		out = append(out, e)
	}
	return out
}

// has reports whether key is in w's range.
func (w *watch) has(key string) bool {
	return key == w.key || w.end != "" && key >= w.key && key < w.end
}

// keyValue is kine's key value as etcd's, as kine's bridge makes it.
func keyValue(kv *server.KeyValue) *mvccpb.KeyValue {
	if kv == nil {
		return nil
	}
	return &mvccpb.KeyValue{Key: []byte(kv.Key), Value: kv.Value, Version: kv.Version, Lease: kv.Lease,
		CreateRevision: kv.CreateRevision, ModRevision: kv.ModRevision}
}

// responses are w's events at revision rev as responses: one, or
// fragments of about maxFragmentBytes if w asked for them.
func (w *watch) responses(rev int64, events []*mvccpb.Event) []*etcdserverpb.WatchResponse {
	resp := func(evs []*mvccpb.Event, more bool) *etcdserverpb.WatchResponse {
		return &etcdserverpb.WatchResponse{Header: header(rev), WatchId: w.id, Events: evs, Fragment: more}
	}
	if !w.fragment || len(events) < 2 {
		return []*etcdserverpb.WatchResponse{resp(events, false)}
	}
	var out []*etcdserverpb.WatchResponse
	first, size := 0, 0
	for i, ev := range events {
		n := proto.Size(ev)
		if i > first && size+n > maxFragmentBytes {
			out = append(out, resp(events[first:i:i], true))
			first, size = i, 0
		}
		size += n
	}
	return append(out, resp(events[first:], false))
}
