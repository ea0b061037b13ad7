package tenantbackend

import (
	"context"

	"github.com/k3s-io/kine/pkg/server"
)

// kine's server.Backend.Watch carries no key: kine asks the backend for
// every change after a revision and filters by the watch's key itself. On
// a shared store that makes every watch of every tenant read (when it
// starts from a past revision) and receive (live) the whole store's
// changes. The proxy's own watch streams on the SQL backends (localwatch,
// through Backend.WatchStream) therefore ask the shared store for each
// watch's key range alone, where it can (RangeWatcher).

// RangeWatcher is implemented by shared backends that can watch one key
// range (the SQL backends): a tenant's watch then reads and carries
// only the events of the range it asked for, instead of everyone's,
// filtered here.
type RangeWatcher interface {
	// WatchRange streams the changes of stored keys in [key, end) (end "":
	// the single key) after revision, like Backend.Watch, each event passed
	// through h.Own on its way (OwnBatch).
	WatchRange(ctx context.Context, key, end string, revision int64, h WatchHooks) server.WatchResult
}

// WatchHooks are what a shared backend's range watch does for the tenant
// that asked for it, so that its events go from the backend's own
// goroutine straight to the watch's reader: every watch of every tenant
// used to have one more goroutine here only to copy its events across, a
// quarter of the goroutines and memory an idle watch held in the proxy.
type WatchHooks struct {
	// Own returns an event as the tenant sees it, or nil to drop it;
	// nil: events as they are. It must not change the event it is given,
	// which other watches of the shared backend may hold too.
	Own func(*server.Event) *server.Event
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
