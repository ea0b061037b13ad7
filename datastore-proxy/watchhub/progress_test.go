package watchhub

import (
	"testing"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
)

func TestProgressAnswersGoToStreamsTheyCover(t *testing.T) {
	up := &upstream{wake: make(chan struct{}, 1), asked: map[*stream]bool{}}
	streams := map[string]*stream{}
	for _, n := range []string{"a", "b", "c"} {
		streams[n] = &stream{ids: map[int64]int64{}}
	}
	create := func(n string) {
		up.send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{}}})
		streams[n].lastCreate = up.seq
	}
	sent := func() { up.out = nil } // the writer took the queue
	answer := func() {
		up.answer(&etcdserverpb.WatchResponse{Header: &etcdserverpb.ResponseHeader{Revision: 9}, WatchId: -1})
	}
	answers := func(n string) int { return len(streams[n].out) } // posted, to be flushed
	progressQueued := func() int {
		n := 0
		for _, r := range up.out {
			if r.GetProgressRequest() != nil {
				n++
			}
		}
		return n
	}

	// a asks and is answered.
	up.ask(streams["a"])
	sent()
	answer()
	if answers("a") != 1 || len(up.asked) != 0 {
		t.Fatalf("a asked with no watch being created: %d answers, %d still waiting", answers("a"), len(up.asked))
	}

	// b asks; then c creates a watch and asks: c's request is not folded
	// into b's, which went before c's create.
	up.ask(streams["b"])
	create("c")
	up.ask(streams["c"])
	if n := progressQueued(); n != 2 {
		t.Fatalf("%d progress requests queued around c's create; want 2", n)
	}
	// A second ask with nothing queued after the last request is folded.
	up.ask(streams["a"])
	if n := progressQueued(); n != 2 {
		t.Fatalf("%d progress requests queued after a's ask; want still 2", n)
	}
	sent()
	// The first answer is put down to b's request: b gets it, c (whose
	// create came after) does not, and a, which asked after c's create
	// but has no watch created since, does.
	answer()
	if answers("b") != 1 || answers("c") != 0 || answers("a") != 2 {
		t.Fatalf("after the first answer: b %d, c %d, a %d answers; want 1, 0, 2", answers("b"), answers("c"), answers("a"))
	}
	// The second, to c's request, reaches c.
	answer()
	if answers("c") != 1 || len(up.asked) != 0 {
		t.Fatalf("after the second answer: c %d answers, %d still waiting; want 1, 0", answers("c"), len(up.asked))
	}

	// etcd drops a request it cannot answer (a watch not synced): the
	// next answer is put down to the older request, which is safe, and
	// the hub asks again for a stream it does not cover.
	up.ask(streams["a"]) // dropped by etcd
	sent()
	create("b")
	up.ask(streams["b"])
	sent()
	answer() // for b's request, put down to a's
	if answers("a") != 3 || answers("b") != 1 {
		t.Fatalf("after an answer put down to the dropped request: a %d, b %d; want 3, 1", answers("a"), answers("b"))
	}
	if progressQueued() != 1 {
		t.Fatal("no progress request queued again for b")
	}
	sent()
	answer()
	if answers("b") != 2 || len(up.asked) != 0 {
		t.Fatalf("after the next answer: b %d answers, %d waiting; want 2, 0", answers("b"), len(up.asked))
	}
}

// etcd never answers the progress requests it drops, so their numbers
// stay outstanding; an answer is put down to the oldest. Many drops (a
// tenant's watches catching up while its apiserver asks every 100 ms)
// must not make a stream that asks later wait for as many answers.
func TestDroppedProgressRequestsDelayLaterOnesABoundedWhile(t *testing.T) {
	up := &upstream{wake: make(chan struct{}, 1), asked: map[*stream]bool{}}
	a, c := &stream{ids: map[int64]int64{}}, &stream{ids: map[int64]int64{}}
	create := func(s *stream) {
		up.send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_CreateRequest{CreateRequest: &etcdserverpb.WatchCreateRequest{}}})
		s.lastCreate = up.seq
	}
	for range 50 { // each dropped by etcd
		create(a)
		up.ask(a)
		up.out = nil
	}
	create(c)
	up.ask(c)
	up.out = nil
	n := 0
	for ; len(c.out) == 0 && n < 100; n++ {
		up.answer(&etcdserverpb.WatchResponse{Header: &etcdserverpb.ResponseHeader{Revision: 9}, WatchId: -1})
		up.out = nil // the hub asked again; etcd answers that too
	}
	if n > 10 {
		t.Fatalf("c was answered after %d answers, after 50 requests dropped; want at most 10", n)
	}
}
