package backend

import (
	"context"
	"fmt"
	"time"

	"github.com/k3s-io/kine/pkg/server"
)

// Why a list at the latest revision on PostgreSQL and MySQL reads at a
// settled one:
//
// kine answers such a list with the rows visible at the query and, as its
// revision, the table's highest id. A write that took a lower id and had
// not committed yet is in neither the list nor, once it commits, the watch
// that starts after the list's revision (the poller passes it to live
// watches at its own id, below the watch's start): a reflector's list and
// watch lost that change until its next relist. etcd's list at revision R
// holds every change up to R.
//
// So a list at the latest revision first reads the highest id, waits until
// every id up to it is settled (a row, or a gap the poller has passed:
// gaps.go), and reads at that revision: everything committed before the
// list is in it (the write that was acknowledged before it was, at an id
// at or below the highest), and everything after reaches the watch. A gap
// is waited for at most settleWait (a transaction holding the id commits
// or ends, or the poller passes it); past that the list reads at the
// highest id, as kine does.

// settleWait bounds how long a list waits for the ids below the log's
// highest to settle.
const settleWait = 3 * time.Second

// settlePoll is how often the ids are read again while a list waits.
const settlePoll = 5 * time.Millisecond

// List is kine's list, at a settled revision on the backends whose rows
// can commit out of id order when the latest is asked for (above).
func (b *sqlBackend) List(ctx context.Context, key, end string, limit, revision int64, keysOnly bool) (int64, []*server.KeyValue, error) {
	if revision != 0 || !b.outOfOrder {
		return b.Backend.List(ctx, key, end, limit, revision, keysOnly)
	}
	rev, err := b.settledRevision(ctx)
	if err != nil {
		return 0, nil, err
	}
	_, kvs, err := b.Backend.List(ctx, key, end, limit, rev, keysOnly)
	return rev, kvs, err
}

// settledRevision is the log's highest id once every id up to it is
// settled, or after settleWait, as it is.
func (b *sqlBackend) settledRevision(ctx context.Context) (int64, error) {
	highest, err := b.HighestRevision(ctx)
	if err != nil {
		return 0, err
	}
	deadline := time.Now().Add(settleWait)
	var end int64 // the ids are contiguous up to it, as last read
	for {
		from := max(b.polled.Load(), end)
		if from >= highest {
			return highest, nil
		}
		if end, err = contiguousEnd(ctx, b.db, b.idsAfter, from); err != nil {
			return 0, err
		}
		if end >= highest || time.Now().After(deadline) {
			return highest, nil
		}
		select {
		case <-time.After(settlePoll):
		case <-ctx.Done():
			return 0, ctx.Err()
		}
	}
}

// HighestRevision is the log's highest id, read from the database
// (tenantbackend.HighestReviser): kine's CurrentRevision answers from a
// number it keeps in memory, which stays behind a write whose record lost
// a race with a concurrent one, and behind other replicas' writes until
// its poller reads them.
func (b *sqlBackend) HighestRevision(ctx context.Context) (int64, error) {
	var highest int64
	if err := b.db.QueryRowContext(ctx, "SELECT COALESCE(MAX(id), 0) FROM kine").Scan(&highest); err != nil {
		return 0, fmt.Errorf("read the log's highest id: %w", err)
	}
	return highest, nil
}
