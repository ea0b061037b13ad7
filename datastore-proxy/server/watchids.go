package server

import (
	"sync"

	clientv3 "go.etcd.io/etcd/client/v3"
)

// watchIDs gives a tenant's watch stream on the SQL backends its own watch
// IDs, as etcd numbers a stream's watches: kine takes each watch's ID from
// one counter for the whole process, so the gap between two IDs of a
// tenant's told it how many watches the other tenants had opened
// meanwhile. A watch's ID is the stream's next one when its first
// response (its created answer) goes out, and is let go with its canceled
// answer.
type watchIDs struct {
	mu    sync.Mutex
	next  int64
	local map[int64]int64 // kine's ID -> the stream's
	kine  map[int64]int64 // the stream's ID -> kine's
}

// fromKine is the stream's ID for kine's id in a response (the watch's
// last when canceled). A watch gets its ID with its created answer; a
// response of a watch that has none (kine's goroutine of a canceled watch
// with progress notifications sends empty responses until it ends) is not
// the stream's: ok is false, and the response is dropped. Each used to
// get a new ID, which its client then canceled, in vain, for good.
func (w *watchIDs) fromKine(id int64, created, canceled bool) (_ int64, ok bool) {
	if id == clientv3.InvalidWatchID {
		return id, true
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	l, ok := w.local[id]
	if !ok {
		if !created {
			return 0, false
		}
		l = w.next
		w.next++
		w.local[id], w.kine[l] = l, id
	}
	if canceled {
		delete(w.local, id)
		delete(w.kine, l)
	}
	return l, true
}

// toKine is kine's ID for the stream's id in a cancel request; an ID the
// stream has not in use is one no watch has.
func (w *watchIDs) toKine(id int64) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if k, ok := w.kine[id]; ok {
		return k
	}
	return clientv3.InvalidWatchID
}
