package tenantbackend

import (
	"context"

	"github.com/k3s-io/kine/pkg/server"
)

// kine's server.Backend.Watch carries no key: kine asks the backend for
// every change after a revision and filters by the watch's key itself. On
// a shared store that makes every watch of every tenant read (when it
// starts from a past revision) and receive (live) the whole store's
// changes. The proxy's watch stream therefore hands each create request's
// key range to the backend in the context kine passes to Backend.Watch
// (WithWatchRange), and the shared store is asked for that range alone.
//
// The contract with kine v0.17 (server/watch.go): kine reads a create
// request and calls Create(ws.Context(), request) right after, in the same
// goroutine, and that context (or one derived from it) reaches
// Backend.Watch. A context without a range, or with a range whose revision
// is not the one Backend.Watch is called with, is not trusted: the whole
// tenant space is watched instead, which is always correct (kine filters
// by key again), only slower; kplex_datastore_proxy_watches_total counts
// both kinds.

// WatchRange is the key range and start revision of one watch create
// request, in the tenant's own keys (kine's spelling: "" .. "" is every
// key, end "" a single key).
type WatchRange struct {
	Key, End string
	Revision int64
}

type watchRangeKey struct{}

// WithWatchRange returns ctx carrying the range of a watch create request.
func WithWatchRange(ctx context.Context, r WatchRange) context.Context {
	return context.WithValue(ctx, watchRangeKey{}, r)
}

type watchStartKey struct{}

// WithWatchStart returns ctx carrying f, which Backend.Watch calls before
// anything else. kine calls Backend.Watch once for each create request it
// starts (not for those it refuses at once), while it holds the lock that
// keeps create answers in order, just before it sends the created answer:
// f can tie something of the request to that answer.
func WithWatchStart(ctx context.Context, f func()) context.Context {
	return context.WithValue(ctx, watchStartKey{}, f)
}

// watchStarts calls the function ctx carries for WithWatchStart, if any.
func watchStarts(ctx context.Context) {
	if f, ok := ctx.Value(watchStartKey{}).(func()); ok {
		f()
	}
}

// watchRange returns the range ctx carries for a watch from revision.
func watchRange(ctx context.Context, revision int64) (WatchRange, bool) {
	r, ok := ctx.Value(watchRangeKey{}).(WatchRange)
	return r, ok && r.Revision == revision
}

// RangeWatcher is implemented by shared backends that can watch one key
// range (the SQL backends): a tenant's watch then reads and carries
// only the events of the range it asked for, instead of everyone's,
// filtered here.
type RangeWatcher interface {
	// WatchRange streams the changes of stored keys in [key, end) (end "":
	// the single key) after revision, like Backend.Watch, each event passed
	// through h.Own on its way (OwnBatch), and calls h.Done once Eventc
	// is closed, however the watch ends, even when it is returned closed.
	WatchRange(ctx context.Context, key, end string, revision int64, h WatchHooks) server.WatchResult
}

// WatchHooks are what a shared backend's range watch does for the tenant
// that asked for it, so that its events go from the backend's own
// goroutine straight to kine's bridge: every watch of every tenant used to
// have one more goroutine here only to copy its events across, a quarter
// of the goroutines and memory an idle watch held in the proxy.
type WatchHooks struct {
	// Own returns an event as the tenant sees it, or nil to drop it;
	// nil: events as they are. It must not change the event it is given,
	// which other watches of the shared backend may hold too.
	Own func(*server.Event) *server.Event
	// Done, if set, is called once, when the watch's Eventc is closed.
	Done func()
}

// Ended calls h.Done, if set.
func (h WatchHooks) Ended() {
	if h.Done != nil {
		h.Done()
	}
}

// OwnBatch is batch with its events passed through own (nil: as they
// are), those it returns nil for dropped; the batch keeps its revision even
// with no event left, so that progress notifications stay current.
func OwnBatch(batch server.EventBatch, own func(*server.Event) *server.Event) server.EventBatch {
	if own == nil {
		return batch
	}
	out := server.EventBatch{CurrentRev: batch.CurrentRev}
	for _, ev := range batch.Events {
		if e := own(ev); e != nil {
			out.Events = append(out.Events, e)
		}
	}
	return out
}
