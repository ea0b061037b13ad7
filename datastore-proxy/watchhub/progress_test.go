package watchhub

import (
	"testing"
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	"go.etcd.io/etcd/api/v3/mvccpb"
)

// progressRig is an etcd stream's progress bookkeeping with a clock the
// test moves, and helpers for what etcd and the tenant streams do.
type progressRig struct {
	t   *testing.T
	up  *upstream
	now time.Time
}

func newProgressRig(t *testing.T) *progressRig {
	r := &progressRig{t: t, now: time.Unix(1000, 0)}
	r.up = &upstream{wake: make(chan struct{}, 1), asked: map[*stream]bool{}, now: func() time.Time { return r.now }}
	return r
}

func newStream() *stream { return &stream{ids: map[int64]int64{}} }

// create sends a create request for s, as the hub does.
func (r *progressRig) create(s *stream) {
	r.up.send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{}}})
	s.lastCreate = r.up.seq
}

// later moves the clock past the hold of an unanswered request.
func (r *progressRig) later() { r.now = r.now.Add(progressResend) }

// sent is the writer taking the queue; it returns the progress requests
// it took.
func (r *progressRig) sent() int {
	n := r.queued()
	r.up.out = nil
	return n
}

func (r *progressRig) queued() int {
	n := 0
	for _, q := range r.up.out {
		if q.GetProgressRequest() != nil {
			n++
		}
	}
	return n
}

// answer is etcd's answer to one progress request.
func (r *progressRig) answer() {
	r.up.answer(&etcdserverpb.WatchResponse{Header: &etcdserverpb.ResponseHeader{Revision: 9}, WatchId: -1})
}

func answers(s *stream) int { return len(s.out) } // posted, to be flushed

func TestProgressAnswersGoToStreamsTheyCover(t *testing.T) {
	r := newProgressRig(t)
	a, b, c := newStream(), newStream(), newStream()

	// a asks and is answered.
	r.up.ask(a)
	r.sent()
	r.answer()
	if answers(a) != 1 || len(r.up.asked) != 0 {
		t.Fatalf("a asked with no watch being created: %d answers, %d still waiting", answers(a), len(r.up.asked))
	}

	// b asks; then c creates a watch and asks: c's request is not folded
	// into b's, which went before c's create.
	r.later()
	r.up.ask(b)
	r.create(c)
	r.later()
	r.up.ask(c)
	if n := r.queued(); n != 2 {
		t.Fatalf("%d progress requests queued around c's create; want 2", n)
	}
	// A second ask with nothing queued after the last request is folded.
	r.later()
	r.up.ask(a)
	if n := r.queued(); n != 2 {
		t.Fatalf("%d progress requests queued after a's ask; want still 2", n)
	}
	r.sent()
	// The first answer is put down to b's request: b gets it, c (whose
	// create came after) does not, and a, which asked after c's create
	// but has no watch created since, does.
	r.answer()
	if answers(b) != 1 || answers(c) != 0 || answers(a) != 2 {
		t.Fatalf("after the first answer: b %d, c %d, a %d answers; want 1, 0, 2", answers(b), answers(c), answers(a))
	}
	// The second, to c's request, reaches c.
	r.answer()
	if answers(c) != 1 || len(r.up.asked) != 0 {
		t.Fatalf("after the second answer: c %d answers, %d still waiting; want 1, 0", answers(c), len(r.up.asked))
	}

	// etcd drops a request it cannot answer (a watch not synced): the
	// next answer is put down to the older request, which is safe, and
	// the hub asks again for a stream it does not cover.
	r.later()
	r.up.ask(a) // dropped by etcd
	r.sent()
	r.create(b)
	r.later()
	r.up.ask(b)
	r.sent()
	r.answer() // for b's request, put down to a's
	if answers(a) != 3 || answers(b) != 1 {
		t.Fatalf("after an answer put down to the dropped request: a %d, b %d; want 3, 1", answers(a), answers(b))
	}
	if r.queued() != 1 {
		t.Fatal("no progress request queued again for b")
	}
	r.sent()
	r.answer()
	if answers(b) != 2 || len(r.up.asked) != 0 {
		t.Fatalf("after the next answer: b %d answers, %d waiting; want 2, 0", answers(b), len(r.up.asked))
	}
}

// More than maxOutstanding requests unanswered: every answer is still put
// down to its own request or an older one. (The hub used to send the
// requests past the bound unnumbered. The answer to one of them was then
// put down to a request sent after it, and a stream whose watch was created
// in between got an answer that did not cover its watch: etcd may have
// read the create after the request it answered.)
func TestAnAnswerIsNeverPutDownToALaterRequest(t *testing.T) {
	r := newProgressRig(t)
	x, s := newStream(), newStream()
	for range maxOutstanding + 1 { // answered late, all of them
		r.later()
		r.up.ask(x)
		if r.sent() != 1 {
			t.Fatal("a progress request an interval after the last was not sent")
		}
	}
	r.create(s) // etcd reads it after the requests above
	r.later()
	r.up.ask(s)
	r.sent()
	// etcd answers the requests sent before s's create, in order.
	for i := range maxOutstanding + 1 {
		r.answer()
		r.sent() // the hub asks again for s
		if answers(s) != 0 {
			t.Fatalf("answer %d, to a request sent before s's create, went to s", i+1)
		}
	}
	if answers(x) != 1 {
		t.Fatalf("x got %d answers; want 1", answers(x))
	}
	// The rest reach s in the end.
	n := 0
	for ; answers(s) == 0 && n < 4*maxOutstanding; n++ {
		r.answer()
		r.sent()
	}
	if answers(s) == 0 {
		t.Fatalf("s not answered after %d more answers", n)
	}
}

// While a progress request is unanswered, another goes only once an answer
// has come or the first has been out progressResend; the streams that asked
// meanwhile are served by the answer to come or asked for again after it.
func TestAnUnansweredRequestHoldsBackTheNextAMoment(t *testing.T) {
	r := newProgressRig(t)
	a, b := newStream(), newStream()
	r.up.ask(a)
	if r.sent() != 1 {
		t.Fatal("the first request was not sent")
	}
	r.create(b)
	r.up.ask(b)
	if r.sent() != 0 {
		t.Fatal("a request went while one sent a moment ago was unanswered")
	}
	r.answer() // to a's: b's create came after it
	if answers(a) != 1 || answers(b) != 0 {
		t.Fatalf("a %d, b %d answers; want 1, 0", answers(a), answers(b))
	}
	if r.sent() != 1 {
		t.Fatal("no request sent again for b after the answer")
	}
	r.answer()
	if answers(b) != 1 {
		t.Fatalf("b %d answers; want 1", answers(b))
	}

	r.up.ask(a) // dropped by etcd
	r.sent()
	r.up.ask(a)
	if r.sent() != 0 {
		t.Fatal("a request went while one sent a moment ago was unanswered")
	}
	r.later()
	r.up.ask(a)
	if r.sent() != 1 {
		t.Fatal("no request sent progressResend after an unanswered one")
	}

	// Held back with no ask after it: the hub asks when the hold ends
	// (its writer waits heldFor, then calls askHeld).
	r.up.ask(b) // a's request above is unanswered
	if r.sent() != 0 {
		t.Fatal("a request went while one sent a moment ago was unanswered")
	}
	if d, ok := r.up.heldFor(); !ok || d != progressResend {
		t.Fatalf("heldFor = %s, %v; want %s, true", d, ok, progressResend)
	}
	r.later()
	r.up.askHeld()
	if r.sent() != 1 {
		t.Fatal("the held request was not sent when its hold ended")
	}
	if _, ok := r.up.heldFor(); ok {
		t.Fatal("still held after it was sent")
	}
}

// etcd never answers the progress requests it drops, so they stay kept,
// each a later stream's wait for one more answer. Many asks while etcd
// drops them (a tenant's watches catching up while its apiserver asks
// every 100 ms) must not make a stream that asks later wait for as many
// answers: they go out at most one per progressResend, and an event of a
// watch created after them lets them go.
func TestDroppedProgressRequestsDelayLaterOnesABoundedWhile(t *testing.T) {
	t.Run("asked faster than the hold", func(t *testing.T) {
		r := newProgressRig(t)
		a, c := newStream(), newStream()
		for range 50 { // each dropped by etcd
			r.create(a)
			r.up.ask(a)
			r.sent()
		}
		r.create(c)
		r.up.ask(c)
		r.sent()
		if n := answersUntil(r, c); n > 10 {
			t.Fatalf("c was answered after %d answers, after 50 requests dropped; want at most 10", n)
		}
	})
	t.Run("an event of a later watch", func(t *testing.T) {
		r := newProgressRig(t)
		h := &Hub{}
		a, c := newStream(), newStream()
		for range 50 { // each dropped by etcd
			r.later()
			r.create(a)
			r.up.ask(a)
			r.sent()
		}
		r.create(c)
		r.up.watches = map[int64]*route{7: {s: c, id: 1, seq: c.lastCreate}}
		h.route(r.up, &etcdserverpb.WatchResponse{Header: &etcdserverpb.ResponseHeader{Revision: 8}, WatchId: 7,
			Events: []*mvccpb.Event{{Kv: &mvccpb.KeyValue{Key: []byte("k"), ModRevision: 8}}}})
		c.out = nil
		r.later()
		r.up.ask(c)
		r.sent()
		if n := answersUntil(r, c); n != 1 {
			t.Fatalf("c was answered after %d answers, after 50 requests dropped and an event of its watch; want 1", n)
		}
	})
}

// answersUntil answers the hub's requests until s has an answer, and
// returns how many it took (at most 100).
func answersUntil(r *progressRig, s *stream) int {
	n := 0
	for ; answers(s) == 0 && n < 100; n++ {
		r.answer()
		r.sent() // the hub asked again; etcd answers that too
	}
	return n
}
