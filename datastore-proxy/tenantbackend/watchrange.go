package tenantbackend

import "context"

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

// watchRange returns the range ctx carries for a watch from revision.
func watchRange(ctx context.Context, revision int64) (WatchRange, bool) {
	r, ok := ctx.Value(watchRangeKey{}).(WatchRange)
	return r, ok && r.Revision == revision
}
