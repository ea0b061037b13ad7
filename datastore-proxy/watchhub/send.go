package watchhub

import (
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// How responses reach a tenant stream.
//
// What is for a stream is queued in its outbox, in order, while h.mu is
// held, and sent after h.mu is let go (flush): a send waits while the
// stream's client takes nothing (gRPC's flow control), and a wait under
// h.mu held up every request of every stream of the tenant. A client of
// etcd's sends its requests from the loop that reads its responses, so
// one whose requests were not read stopped reading, and the hub could
// then wait on it for ever.
//
// The reader sends what a response queued before it reads the next one,
// so a stream whose client stops reading still holds up the tenant's
// other streams (and etcd keeps what they have not taken), but only for
// Config.StallTimeout: a stream that has taken nothing for that long
// while the tenant has another stream is ended (Unavailable, which etcd's
// client answers by watching again from where it was), so that the others
// go on. A client whose host is gone would otherwise hold them until TCP
// gives up on it, minutes later. A tenant's only stream is left waiting,
// as etcd leaves its own clients.

// errStalled ends a stream that stalled.
var errStalled = status.Error(codes.Unavailable, "kplex: the watch stream took no response for too long; ended so that the tenant's other watch streams go on")

// outbox is a stream's responses not yet sent; its fields but sending and
// kicked are guarded by the hub's mu.
type outbox struct {
	out, spare []*etcdserverpb.WatchResponse
	// sendingN counts the responses the flush under way took from out and
	// has not finished sending (untaken).
	sendingN int
	flushing bool       // a flush is under way: it sends what is queued meanwhile
	flushed  *sync.Cond // on the hub's mu: a flush has ended
	touched  bool       // in up.touched
	broken   bool       // a send failed: the stream is ending
	// sending is when the send under way began (since epoch), 0 between
	// sends; watchdog checks it.
	sending  atomic.Int64
	watchdog *time.Timer
	kicked   chan struct{} // closed when the stream has stalled
	kick     func()
}

// epoch is where the watchdog's times are counted from, on the monotonic
// clock.
var epoch = time.Now()

func (o *outbox) init(mu *sync.Mutex, onKick func()) {
	o.flushed = sync.NewCond(mu)
	o.kicked = make(chan struct{})
	o.kick = sync.OnceFunc(func() {
		close(o.kicked)
		if onKick != nil {
			onKick()
		}
	})
}

// post queues r for s; h.mu is held. Whoever posts flushes the streams it
// posted to, after letting go of h.mu (up.takeTouched).
func (up *upstream) post(s *stream, r *etcdserverpb.WatchResponse) {
	if s.gone || s.broken {
		return
	}
	s.out = append(s.out, r)
	if !s.touched {
		s.touched = true
		up.touched = append(up.touched, s)
	}
}

// takeTouched returns the streams posted to since it was last called,
// appended to buf; h.mu is held.
func (up *upstream) takeTouched(buf []*stream) []*stream {
	for _, s := range up.touched {
		s.touched = false
	}
	buf = append(buf, up.touched...)
	clear(up.touched)
	up.touched = up.touched[:0]
	return buf
}

// flush sends s's queued responses in order until none are left; h.mu is
// not held. A flush already under way, in another goroutine, sends them
// instead: flush returns at once then, unless wait is set (the reader's),
// and then only once that flush has ended, so that the reader reads on
// from etcd only when the stream has taken what it was sent.
func (h *Hub) flush(s *stream, wait bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for s.flushing {
		if !wait {
			return
		}
		s.flushed.Wait()
	}
	s.flushing = true
	for len(s.out) > 0 && !s.broken && !s.gone {
		out := s.out
		s.out = s.spare[:0]
		s.sendingN = len(out)
		h.mu.Unlock()
		err := s.sendAll(out, h.cfg.StallTimeout)
		h.mu.Lock()
		s.sendingN = 0
		clear(out)
		s.spare = out
		s.broken = s.broken || err != nil
	}
	if s.broken || s.gone { // nothing more reaches its client
		clear(s.out)
		s.out = s.out[:0]
	}
	s.flushing = false
	s.flushed.Broadcast()
}

// sendAll sends out to the tenant, each response watched for a stall of
// timeout (0: not watched).
func (s *stream) sendAll(out []*etcdserverpb.WatchResponse, timeout time.Duration) error {
	if timeout > 0 {
		defer func() {
			s.sending.Store(0)
			s.watchdog.Stop()
		}()
		s.watchdog.Reset(timeout)
	}
	ctx := s.ws.Context()
	for _, r := range out {
		if err := ctx.Err(); err != nil { // the stream has ended
			return err
		}
		s.sending.Store(max(int64(time.Since(epoch)), 1))
		if err := s.ws.Send(r); err != nil {
			return err
		}
	}
	return nil
}

// watch is the stream's watchdog: it ends the stream when a send has
// waited the stall timeout and the tenant has another stream to hold up,
// and otherwise looks again when the send under way would reach it.
// Between sendAll's calls it is not armed.
func (h *Hub) watch(s *stream) {
	timeout := h.cfg.StallTimeout
	began := s.sending.Load()
	if began == 0 {
		return
	}
	waited := time.Since(epoch) - time.Duration(began)
	if waited < timeout {
		s.watchdog.Reset(timeout - waited)
		return
	}
	h.mu.Lock()
	others := len(s.up.streams) > 1
	h.mu.Unlock()
	if !others {
		s.watchdog.Reset(timeout)
		return
	}
	s.kick()
}

// untaken counts the responses for s that its client has not taken yet,
// as far as the hub knows: queued, refusals waiting for the answers before
// them, or being sent; h.mu is held. Creates the store has yet to answer
// (nil in queue) wait on the store, not on the client: not counted.
func (s *stream) untaken() int {
	n := len(s.out) + s.sendingN
	for _, r := range s.queue {
		if r != nil {
			n++
		}
	}
	return n
}
