// Package watchhub serves every watch stream of one tenant over a single
// watch stream of the tenant's own on the store: on etcd, an etcd watch
// stream; on the SQL backends, a stream the proxy serves itself from the
// store's watches, which answers as etcd's does (localwatch). "etcd"
// below stands for either.
//
// Why etcd's own stream: kube-apiserver's watch cache serves a consistent
// list once it has seen the store's current revision, and asks its watch
// stream for progress to learn it; the answer is due when every watch of
// the stream has sent every event up to a revision. kine's bridge answers
// only when each watch's last batch is at the store's current revision,
// and on a store every tenant writes to, an idle watch (etcd sends it its
// own range's events only) never is: every consistent list waited 3 s and
// then read the store. etcd answers it for the watches of one stream.
//
// Why one stream per tenant, not per tenant stream: an apiserver without
// its watch cache opens dozens of watch streams (54 for an idle kplex
// tenant), and an etcd stream costs etcd about 32 KiB; one per tenant
// costs etcd little more than the watches themselves. The hub gives each
// watch an etcd ID of its own and keeps each tenant stream's IDs as etcd
// would have assigned them, routes responses back by ID, and answers a
// stream's progress request with etcd's answer for the tenant's stream,
// which comes once every watch of the tenant, so every watch of the
// asking stream, has sent every event up to its revision (progress.go says
// which streams an answer is for). The cost: a watch still catching up on
// one stream holds back the answers of the tenant's other streams too,
// which ask again (kube-apiserver asks every 100 ms while it waits).
//
// What the hub keeps of the proxy's: a watch holds a place among the
// tenant's maxWatches from its create request to its end, and a create
// over the limit is refused in etcd's way (created and canceled) in its
// turn among its stream's create responses. One reader passes etcd's
// responses on to the tenant's streams in order: a stream whose client
// stops reading holds up the tenant's other streams, never another
// tenant's, and etcd keeps what the tenant's stream has not taken, as for
// its own clients; after Config.StallTimeout such a stream is ended, so
// that the others go on (send.go). The proxy holds the flow-control
// windows and the response it is passing on, cut into parts of about
// 1 MiB (split.go).
package watchhub

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
	clientv3 "go.etcd.io/etcd/client/v3"
	"google.golang.org/grpc/status"

	"kplex.dev/datastore-proxy/tenantbackend"
)

// Config is what a hub needs of its tenant.
type Config struct {
	// Tenant is the tenant's view of the shared backend, whose watch
	// streams the hub opens (tenantbackend.Backend.WatchStream).
	Tenant *tenantbackend.Backend
	// Range is the tenant's range that a create request asks for
	// (keyspace.Space.Range's spelling).
	Range func(*etcdserverpb.WatchCreateRequest) (key, end string)
	// FixKV, if set, turns an event's key value, as the tenant stored it,
	// into what the tenant wrote (kine's compaction key).
	FixKV func(*mvccpb.KeyValue)
	// StallTimeout is how long a send to a tenant stream may wait before
	// the stream is ended, when the tenant has another stream that it
	// holds up (send.go); 0: never.
	StallTimeout time.Duration
	// OnStall, if set, is told of every stream ended so.
	OnStall func()
	// Admit, if set, is asked before each create request, which it may
	// hold up (with ctx, the stream's) or refuse: its error is the
	// refusal's reason (the tenant's request rate).
	Admit func(ctx context.Context) error
}

// Hub is one tenant's etcd watch stream, shared by its watch streams.
type Hub struct {
	cfg Config

	mu sync.Mutex // guards everything below, in every upstream and stream
	up *upstream  // nil: none open
	// opening is closed when the etcd stream being opened, outside mu, is
	// open or has failed; nil: none is being opened.
	opening chan struct{}
}

// New returns the hub of a tenant; it opens its etcd stream when a watch
// stream first needs it, and closes it when the last one ends.
func New(cfg Config) *Hub { return &Hub{cfg: cfg} }

// upstream is one etcd watch stream of the tenant.
//
// Its requests go to etcd from a goroutine of their own (write): one that
// waited for etcd to take a request while holding the hub's lock would
// keep the reader from taking etcd's responses, and etcd, once its
// responses fill the stream's window, stops taking requests.
type upstream struct {
	es     *tenantbackend.Stream
	ctx    context.Context
	cancel context.CancelFunc
	out    []*etcdserverpb.WatchRequest // for write, in order
	wake   chan struct{}                // out has requests
	seq    int64                        // requests queued so far (progress.go)
	// outstanding are the progress requests sent and kept, oldest first;
	// answered is the number the last answer was put down to; askedAt is
	// when the last was sent, and heard whether an answer came since
	// (progress.go).
	outstanding []progressSent
	answered    int64
	askedAt     time.Time
	heard       bool
	held        bool             // a progress request was held back
	now         func() time.Time // nil: time.Now
	done        chan struct{}    // closed when the stream has ended, err set
	err         error
	nextID      int64            // etcd watch IDs, the hub's own
	watches     map[int64]*route // by etcd watch ID
	pending     []*pendingCreate // create requests sent, oldest first
	streams     map[*stream]bool // joined
	asked       map[*stream]bool // waiting for an answer to a progress request
	ended       bool             // nothing more is sent to etcd
	sendErr     error            // the first failed send to etcd
	touched     []*stream        // posted to, to be flushed (send.go)
}

type route struct {
	s    *stream
	id   int64 // the tenant stream's watch ID
	seq  int64 // the number of its create request (progress.go)
	res  *tenantbackend.Reservation
	done func() // the watch metrics' end
}

// end gives the watch's place back and ends its metrics; it is called
// once, as the route leaves up.watches.
func (r *route) end() {
	r.res.Release()
	r.done()
}

type pendingCreate struct {
	s       *stream
	id, eid int64 // the tenant stream's watch ID, and etcd's
	seq     int64 // the create request's number
	res     *tenantbackend.Reservation
	// canceled: its stream left before the answer, and the store was
	// asked to cancel it then (leave).
	canceled bool
}

// join adds s to the open etcd stream, opening one when there is none.
// The stream is opened outside mu: opening can wait while the connection
// to etcd is being made, and mu held would hold up the ending etcd stream's
// reader, which tells its streams why, and the tenant's other streams. A
// stream that joins while another opens one waits for it, or for its own
// end.
func (h *Hub) join(s *stream) (*upstream, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for {
		if h.up != nil && h.up.sendErr != nil {
			h.up = nil // ending: its reader lets its streams know
		}
		if h.up != nil {
			break
		}
		if h.opening != nil {
			opening := h.opening
			h.mu.Unlock()
			select {
			case <-opening:
			case <-s.ws.Context().Done():
				h.mu.Lock()
				if err := ended(s.ws.Context()); err != nil {
					return nil, err // the proxy draining: Unavailable
				}
				return nil, status.FromContextError(s.ws.Context().Err()).Err()
			}
			h.mu.Lock()
			continue // open now, or failed: this one opens one
		}
		if err := h.open(); err != nil {
			return nil, err
		}
	}
	h.up.streams[s] = true
	s.up = h.up
	return h.up, nil
}

// open opens the tenant's etcd stream, with mu let go meanwhile (join);
// h.mu is held.
func (h *Hub) open() error {
	opening := make(chan struct{})
	h.opening = opening
	h.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	es, err := h.cfg.Tenant.WatchStream(ctx)
	h.mu.Lock()
	h.opening = nil
	close(opening)
	if err != nil {
		cancel()
		return err
	}
	h.up = &upstream{
		es: es, ctx: ctx, cancel: cancel, wake: make(chan struct{}, 1), done: make(chan struct{}),
		watches: map[int64]*route{}, streams: map[*stream]bool{}, asked: map[*stream]bool{},
	}
	go h.read(h.up)
	go h.write(h.up)
	return nil
}

// leave takes s off up: its watches are canceled on etcd and give their
// places back; the etcd stream closes with its last tenant stream. Its
// creates not yet answered are canceled too: a watch from the past may be
// waiting for a read slot or reading its history, for nobody, and etcd
// takes a cancel sent after a create for that watch's (created() gives
// their places back when the answers come).
func (h *Hub) leave(up *upstream, s *stream) {
	h.mu.Lock()
	defer h.mu.Unlock()
	s.gone = true
	delete(up.streams, s)
	delete(up.asked, s)
	for eid, r := range up.watches {
		if r.s == s {
			delete(up.watches, eid)
			r.end()
			up.send(cancelRequest(eid))
		}
	}
	for _, p := range up.pending {
		if p.s == s && !p.canceled {
			p.canceled = up.send(cancelRequest(p.eid))
		}
	}
	if len(up.streams) == 0 && h.up == up {
		h.up = nil
		up.ended = true
		up.cancel()
	}
}

// read passes etcd's responses on until the stream ends, then gives back
// what its watches held and ends the tenant streams still on it.
func (h *Hub) read(up *upstream) {
	var err error
	var touched []*stream
	for {
		var resp *etcdserverpb.WatchResponse
		if resp, err = up.es.Recv(); err != nil {
			break
		}
		h.mu.Lock()
		h.route(up, resp)
		touched = up.takeTouched(touched[:0])
		h.mu.Unlock()
		for _, s := range touched {
			h.flush(s, true)
		}
		clear(touched)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up == up {
		h.up = nil
	}
	up.ended = true
	up.cancel()
	for eid, r := range up.watches {
		delete(up.watches, eid)
		r.end()
	}
	for _, p := range up.pending {
		p.res.Release()
	}
	up.pending = nil
	up.err = err
	if up.sendErr != nil {
		up.err = up.sendErr
	}
	close(up.done)
}

// route passes one response of etcd on to the stream it is for; h.mu is
// held.
func (h *Hub) route(up *upstream, resp *etcdserverpb.WatchResponse) {
	if h.cfg.FixKV != nil {
		for _, ev := range resp.Events {
			h.cfg.FixKV(ev.Kv)
			if ev.PrevKv != nil {
				h.cfg.FixKV(ev.PrevKv)
			}
		}
	}
	switch {
	case resp.Created:
		if len(up.pending) == 0 {
			up.fail(errors.New("kplex: etcd answered a watch create request that was not sent"))
			return
		}
		p := up.pending[0]
		up.pending = up.pending[1:]
		h.created(up, p, resp)
	case resp.WatchId == clientv3.InvalidWatchID:
		up.answer(resp) // to progress requests
	default:
		r, ok := up.watches[resp.WatchId]
		if !ok {
			return // a watch of a stream that has left, canceled on its way
		}
		if len(resp.Events) > 0 {
			up.settled(r.seq)
		}
		if eid := resp.WatchId; resp.Canceled {
			delete(up.watches, eid)
			if r.s.ids[r.id] == eid {
				delete(r.s.ids, r.id)
			}
			r.end()
			// etcd keeps a watch it canceled itself (compacted) until it
			// is asked to cancel it, and answers no progress request
			// while it has it; etcd's client asks, but the ID is free
			// here by then. (A watch the tenant canceled is gone, and
			// this one is ignored.)
			up.send(cancelRequest(eid))
		}
		resp.WatchId = r.id
		for _, part := range splitEvents(resp, maxResponseBytes) {
			up.post(r.s, part)
		}
		if r.s.midFragment = resp.Fragment; !resp.Fragment {
			up.postRefusals(r.s)
		}
	}
}

// created answers a create request with etcd's answer.
func (h *Hub) created(up *upstream, p *pendingCreate, resp *etcdserverpb.WatchResponse) {
	if p.s.gone {
		p.res.Release()
		if !resp.Canceled && !p.canceled {
			up.send(cancelRequest(resp.WatchId))
		}
		return
	}
	if resp.Canceled {
		p.res.Release()
		if p.s.ids[p.id] == p.eid {
			delete(p.s.ids, p.id)
		}
		resp.WatchId = clientv3.InvalidWatchID
	} else {
		r := &route{s: p.s, id: p.id, seq: p.seq, res: p.res, done: func() {}}
		if h.cfg.Tenant.OnWatch != nil {
			r.done = h.cfg.Tenant.OnWatch()
		}
		up.watches[p.eid] = r
		resp.WatchId = p.id
	}
	up.answerCreate(p.s, resp)
}

// send queues a request for etcd, numbered up.seq, unless the stream has
// ended or a send has failed (the reader then ends it too); it reports
// whether it did. h.mu is held.
func (up *upstream) send(r *etcdserverpb.WatchRequest) bool {
	if up.ended || up.sendErr != nil {
		return false
	}
	up.seq++
	up.out = append(up.out, r)
	up.wakeWriter()
	return true
}

func (up *upstream) wakeWriter() {
	select {
	case up.wake <- struct{}{}:
	default:
	}
}

// write sends the queued requests to etcd, in order, until the stream
// ends, and a progress request held back once its hold ends (progress.go).
func (h *Hub) write(up *upstream) {
	var held *time.Timer
	var heldc <-chan time.Time
	defer func() {
		if held != nil {
			held.Stop()
		}
	}()
	for {
		select {
		case <-up.wake:
		case <-heldc:
			heldc = nil
			h.mu.Lock()
			up.askHeld()
			h.mu.Unlock()
		case <-up.ctx.Done():
			return
		}
		h.mu.Lock()
		out := up.out
		up.out = nil
		if d, ok := up.heldFor(); ok && heldc == nil {
			held = time.NewTimer(d)
			heldc = held.C
		}
		h.mu.Unlock()
		for _, r := range out {
			if err := up.es.Send(r); err != nil {
				h.mu.Lock()
				up.fail(err)
				h.mu.Unlock()
				return
			}
		}
	}
}

// fail ends the etcd stream after an error; the reader then ends its
// tenant streams with it.
func (up *upstream) fail(err error) {
	if up.sendErr == nil {
		up.sendErr = err
	}
	up.cancel()
}

func cancelRequest(eid int64) *etcdserverpb.WatchRequest {
	return &etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CancelRequest{CancelRequest: &etcdserverpb.WatchCancelRequest{WatchId: eid}}}
}
