package backend

import (
	"context"

	"github.com/k3s-io/kine/pkg/server"
)

// catchUp reads the rows of [key, end) after revision up to the first gap
// in the log's ids above where the poller has been (gaps.go); the batch's
// revision is the end of the contiguous ids. A revision the log has not
// reached is server.ErrFutureRev, with the log's revision in the batch.
func (b *sqlBackend) catchUp(ctx context.Context, key, end string, revision int64) (server.EventBatch, error) {
	// Read before the ids: settled then, so visible to the reads below.
	// From the compact revision at least, as far as it is known: a watch
	// may start there (after), and an id at or below it may be missing
	// for compaction's sake (a key deleted at it), not a live gap.
	settled := b.polled.Load()
	upTo, err := contiguousEnd(ctx, b.db, b.idsAfter, max(revision, settled, b.compacted.Load()))
	if err != nil {
		return server.EventBatch{}, err
	}
	batch, err := b.after(ctx, key, end, revision)
	if err != nil || batch.CurrentRev <= upTo {
		return batch, err
	}
	kept := batch.Events[:0]
	for _, ev := range batch.Events {
		if ev.KV.ModRevision <= upTo {
			kept = append(kept, ev)
		}
	}
	return server.EventBatch{CurrentRev: upTo, Events: kept}, nil
}

// after is kine's SQLLog.After (the rows of [key, end) after revision,
// with their previous values) with etcd's bounds for a watch's start and
// for previous values. A watch from revision r reads after r-1, and etcd
// lets it start at the compact revision itself: compaction keeps each
// key's latest revision at or below it (of a key deleted at it, nothing,
// in etcd as in kine) and removes the revisions those replaced. kine
// refuses a read after any revision below the compact one, so a watch
// from exactly the compact revision was told it was compacted, and its
// client, told to start there, was refused again. So the read is refused
// only after a revision more than one below it. The compact revision read
// is kept (compacted).
func (b *sqlBackend) after(ctx context.Context, key, end string, revision int64) (server.EventBatch, error) {
	rows, err := b.dialect.After(ctx, key, end, revision, 0)
	if err != nil {
		return server.EventBatch{}, err
	}
	batch, compact, err := rowsToEvents(rows, true, true)
	b.sawCompacted(compact)
	switch {
	case err != nil:
		return batch, err
	case batch.CurrentRev == 0: // no revision row: as kine answers
		return batch, server.ErrGRPCUnhealthy
	case revision+1 < compact:
		return batch, server.ErrCompacted
	case revision > batch.CurrentRev:
		return batch, server.ErrFutureRev
	}
	// etcd reads an event's previous value at the revision before the
	// event's, so an event at the compact revision or below has none (that
	// read is compacted), and one above it has it however old it is. kine
	// keeps it in the event's own row, and its After drops it when it is
	// older than the compact revision: kube-apiserver then ended the watch
	// on the update ("PrevKv=nil"), and its client relisted.
	for _, ev := range batch.Events {
		if ev.PrevKV != nil && ev.KV.ModRevision <= compact {
			ev.PrevKV = nil
		}
	}
	return batch, nil
}

// sawCompacted records a compact revision read from the log: compaction
// only moves it on.
func (b *sqlBackend) sawCompacted(rev int64) {
	for {
		old := b.compacted.Load()
		if rev <= old || b.compacted.CompareAndSwap(old, rev) {
			return
		}
	}
}
