package watchhub

import (
	"context"
	"sync"
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

// gatedSink is a tenant stream whose sends wait for the test to let each
// one go, and which keeps what it was sent.
type gatedSink struct {
	etcdserverpb.Watch_WatchServer
	ctx  context.Context
	gate chan struct{}
	mu   sync.Mutex
	got  []int64
}

func (s *gatedSink) Context() context.Context { return s.ctx }

func (s *gatedSink) Send(r *etcdserverpb.WatchResponse) error {
	<-s.gate
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, r.WatchId)
	return nil
}

// A flush sends what was posted in order, outside the hub's lock, and what
// is posted while it sends goes out in the same flush, after it. Another
// flush meanwhile sends nothing: a refusal's returns at once, the
// reader's returns once that flush has ended, so that the reader never
// runs ahead of what the stream has taken.
func TestFlushSendsInOrderOutsideTheLock(t *testing.T) {
	h := New(Config{})
	up := &upstream{streams: map[*stream]bool{}}
	ws := &gatedSink{ctx: context.Background(), gate: make(chan struct{})}
	s := &stream{ws: ws, up: up}
	s.outbox.init(&h.mu, nil)
	s.watchdog = time.AfterFunc(time.Hour, func() {})
	post := func(id int64) {
		h.mu.Lock()
		defer h.mu.Unlock()
		up.post(s, &etcdserverpb.WatchResponse{WatchId: id})
	}
	post(1)
	post(2)
	refusal := make(chan struct{})
	go func() { h.flush(s, false); close(refusal) }()
	ws.gate <- struct{}{} // 1 sent; that flush now waits in sending 2

	// The lock is free while a send waits: posting does not wait, nor
	// does another flush that may return at once.
	post(3)
	h.flush(s, false)
	reader := make(chan struct{})
	go func() { h.flush(s, true); close(reader) }()
	select {
	case <-reader:
		t.Fatal("the reader's flush returned while another flush was still sending")
	case <-time.After(50 * time.Millisecond):
	}
	ws.gate <- struct{}{} // 2
	ws.gate <- struct{}{} // 3, by the first flush
	<-refusal
	<-reader
	if want := []int64{1, 2, 3}; len(ws.got) != len(want) || ws.got[0] != 1 || ws.got[1] != 2 || ws.got[2] != 3 {
		t.Fatalf("sent %v, want %v", ws.got, want)
	}

	// A stream that has left is sent nothing more.
	post(4)
	h.mu.Lock()
	s.gone = true
	h.mu.Unlock()
	h.flush(s, true)
	if len(ws.got) != 3 || len(s.out) != 0 {
		t.Fatalf("after leaving: sent %v, %d queued; want nothing more", ws.got, len(s.out))
	}
}
