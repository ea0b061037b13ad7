package watchhub

import (
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

// maxOutstanding bounds the progress requests kept unanswered; past it, a
// request is sent without a number, and an answer is put down to the last
// number it had, which is older. etcd drops the requests it cannot answer
// (a watch of the stream catching up) and never answers them later, so
// each drop leaves a number that the next answer is put down to: a
// stream that asks after D drops waits for D more answers than it needs,
// at most this many (it was 256, and a tenant whose watches caught up
// often left its apiserver's progress requests hundreds of answers behind).
const maxOutstanding = 8

// ask queues a progress request for s; h.mu is held.
func (up *upstream) ask(s *stream) {
	up.asked[s] = true
	up.askEtcd()
}

// askEtcd queues a progress request, unless the last request queued is
// one; h.mu is held.
func (up *upstream) askEtcd() {
	if n := len(up.out); n > 0 && up.out[n-1].GetProgressRequest() != nil {
		return
	}
	if up.send(&etcdserverpb.WatchRequest{RequestUnion: &etcdserverpb.WatchRequest_ProgressRequest{ProgressRequest: &etcdserverpb.WatchProgressRequest{}}}) &&
		len(up.outstanding) < maxOutstanding {
		up.outstanding = append(up.outstanding, up.seq)
	}
}

// answer passes etcd's answer to progress requests to the streams it is
// for; h.mu is held.
func (up *upstream) answer(resp *etcdserverpb.WatchResponse) {
	if len(up.outstanding) > 0 {
		up.answered = up.outstanding[0]
		up.outstanding = up.outstanding[1:]
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
