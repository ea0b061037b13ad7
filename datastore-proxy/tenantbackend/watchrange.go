package tenantbackend

import (
	"context"
	"sync"
)

// kine's server.Backend.Watch carries no key: kine asks the backend for
// every change after a revision and filters by the watch's key itself. On
// a shared store that makes every watch of every tenant read (when it
// starts from a past revision) and receive (live) the whole store's
// changes. WatchRanges carries the key ranges of a watch stream's create
// requests to the backend so that the shared store is asked for that range
// alone.
//
// The contract with kine v0.17 (server/watch.go): one stream's create
// requests reach Backend.Watch one at a time, in the order they were
// received, with the stream's context, and a request kine refuses before
// calling Backend.Watch (a client-chosen watch ID, a negative start
// revision) is never pushed (see Refused). Each Backend.Watch call takes
// the oldest pushed range; a range whose revision does not match the call's
// is not trusted and the whole tenant space is watched instead, which is
// always correct (kine filters by key again), only slower.

// WatchRange is the key range and start revision of one watch create
// request, in the tenant's own keys (kine's spelling: "" .. "" is every
// key, end "" a single key).
type WatchRange struct {
	Key, End string
	Revision int64
}

// WatchRanges is a FIFO of one watch stream's create requests.
type WatchRanges struct {
	mu      sync.Mutex
	pending []WatchRange
}

type watchRangesKey struct{}

// WithWatchRanges returns a context for a watch stream whose create requests
// are pushed to the returned queue.
func WithWatchRanges(ctx context.Context) (context.Context, *WatchRanges) {
	q := &WatchRanges{}
	return context.WithValue(ctx, watchRangesKey{}, q), q
}

// Refused reports whether kine refuses a create request before it calls
// Backend.Watch (such requests must not be pushed).
func Refused(watchID, startRevision int64) bool {
	return watchID != 0 || startRevision < 0
}

// Push records a create request, in the order the stream received them.
func (q *WatchRanges) Push(r WatchRange) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.pending = append(q.pending, r)
}

// pop takes the oldest create request of ctx's stream; ok is false when
// there is none or it does not match revision.
func popWatchRange(ctx context.Context, revision int64) (WatchRange, bool) {
	q, _ := ctx.Value(watchRangesKey{}).(*WatchRanges)
	if q == nil {
		return WatchRange{}, false
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) == 0 {
		return WatchRange{}, false
	}
	r := q.pending[0]
	q.pending = q.pending[1:]
	return r, r.Revision == revision
}
