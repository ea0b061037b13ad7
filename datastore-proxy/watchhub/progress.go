package watchhub

import (
	"time"

	"go.etcd.io/etcd/api/v3/etcdserverpb"
	clientv3 "go.etcd.io/etcd/client/v3"
)

// Which tenant streams an answer to progress requests is for.
//
// etcd answers a progress request (watch ID -1, at its current revision)
// only if every watch of the stream is synced when it reads the request,
// and otherwise never; the answer does not say which request it is for.
// It covers the watches etcd had created by then, not one whose create
// request came after, whose older events may still be on their way (and
// etcd sends create answers and events on two queues, so such a watch's
// created answer can even arrive before the progress answer).
//
// So the hub numbers every request it sends on the tenant's etcd stream,
// keeps the numbers of the progress requests it sent (outstanding), and
// puts each answer down to the oldest of them: etcd answers in order, so
// the real one is that one or a later one, and what holds for the older
// holds for the later. A stream that asked gets the answer if its last
// create request went before that one; otherwise it keeps waiting, and
// the hub asks etcd again after the answer. A progress request is queued
// for a second one only while it is the last request queued.
//
// Every request sent is kept, so that no answer is ever put down to a
// request later than its own (the hub once sent requests past a bound of
// 8 unnumbered, and an answer to one of those could be put down to a
// request sent after it: a stream whose watch was created in between got
// an answer that did not cover that watch). Past maxOutstanding entries, a
// request joins the last entry, under that entry's older number.
//
// The requests etcd drops (a watch of the stream catching up) stay kept
// until let go, each a later stream's wait for one more answer (one round
// trip: the hub asks again after each answer). What limits them:
//   - an event of a watch tells that etcd has dealt with every request
//     sent before the watch's create: etcd reads requests in order, and
//     queues a progress answer, when it gives one, on the queue the events
//     of every watch of the stream go by, in order. So the requests before
//     that create that are still kept were dropped, and are let go
//     (settled). A stream that created a watch after them waits for none
//     of them once that watch has had an event;
//   - while a request sent less than progressResend ago is unanswered, and
//     no answer has come since, no other is sent: the answer to come
//     serves the streams that asked meanwhile, or the hub asks again after
//     it, or once that request has been out progressResend (heldFor). So
//     while etcd drops them, at most one a progressResend is kept: a
//     minute of a watch catching up keeps at most 1,200, however many of
//     kube-apiserver's watch caches ask every 100 ms meanwhile.

const (
	// maxOutstanding bounds the entries of kept progress requests (24
	// bytes each); up to it, each is one request, let go exactly.
	maxOutstanding = 1024
	// progressResend is how long an unanswered progress request holds
	// back the next.
	progressResend = 50 * time.Millisecond
)

// progressSent is one or more progress requests, numbered first to last,
// n of them kept; an answer is put down to first.
type progressSent struct{ first, last, n int64 }

// ask queues a progress request for s; h.mu is held.
func (up *upstream) ask(s *stream) {
	up.asked[s] = true
	up.askEtcd()
}

// askEtcd queues a progress request, unless the last request queued is
// one, or one sent a moment ago is still unanswered (above); h.mu is held.
func (up *upstream) askEtcd() {
	if n := len(up.out); n > 0 && up.out[n-1].GetProgressRequest() != nil {
		return
	}
	now := up.clock() // when it is queued: the writer sends it next
	if len(up.outstanding) > 0 && !up.heard && now.Sub(up.askedAt) < progressResend {
		if !up.held {
			up.held = true
			up.wakeWriter() // to ask again when the hold ends (heldFor)
		}
		return
	}
	up.held = false
	if !up.send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_ProgressRequest{ProgressRequest: &etcdserverpb.WatchProgressRequest{}}}) {
		return
	}
	up.askedAt, up.heard = now, false
	if k := len(up.outstanding); k >= maxOutstanding {
		last := &up.outstanding[k-1]
		last.last = up.seq
		last.n++
		return
	}
	up.outstanding = append(up.outstanding, progressSent{first: up.seq, last: up.seq, n: 1})
}

// answer passes etcd's answer to progress requests to the streams it is
// for; h.mu is held.
func (up *upstream) answer(resp *etcdserverpb.WatchResponse) {
	up.heard = true
	if len(up.outstanding) > 0 {
		oldest := &up.outstanding[0]
		up.answered = oldest.first
		if oldest.n--; oldest.n == 0 {
			up.outstanding = up.outstanding[1:]
		}
	}
	for s := range up.asked {
		if s.lastCreate < up.answered {
			up.post(s, &etcdserverpb.WatchResponse{Header: resp.Header, WatchId: clientv3.InvalidWatchID})
			delete(up.asked, s)
		}
	}
	if len(up.asked) > 0 {
		up.askEtcd()
	}
}

// settled lets go of the progress requests kept that were sent before
// request create: an event of the watch that request created has come, so
// etcd has answered or dropped them all (above). h.mu is held.
func (up *upstream) settled(create int64) {
	for len(up.outstanding) > 0 && up.outstanding[0].last < create {
		up.outstanding = up.outstanding[1:]
	}
}

// heldFor tells whether a progress request was held back, and how long
// until it may go (askHeld); h.mu is held.
func (up *upstream) heldFor() (time.Duration, bool) {
	if !up.held {
		return 0, false
	}
	return up.askedAt.Add(progressResend).Sub(up.clock()), true
}

// askHeld sends the progress request held back, if the streams that asked
// are still waiting; h.mu is held.
func (up *upstream) askHeld() {
	if up.held {
		up.held = false
		if len(up.asked) > 0 {
			up.askEtcd()
		}
	}
}

func (up *upstream) clock() time.Time {
	if up.now != nil {
		return up.now()
	}
	return time.Now()
}
