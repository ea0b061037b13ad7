package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"

	"github.com/k3s-io/kine/pkg/logstructured"
	"github.com/k3s-io/kine/pkg/logstructured/sqllog"
	"github.com/k3s-io/kine/pkg/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// A list or get on SQL whose rows stop coming part way (the connection
// dropped, the database restarted, the query's context ended) must fail,
// not answer with the rows read so far. kine v0.17.5 reads them with
// sqllog.RowsToEvents, which loops on rows.Next and never asks rows.Err:
// Next returns false for a read cut short exactly as for the last row, so
// such a list reached the tenant as complete, its missing keys as absent
// (a reflector took them for deleted), and a get cut short before its row
// as "not found". kine's own ListStream checks rows.Err for that reason;
// its List and, through it, every Get do not. checkedLog is kine's SQL log
// with a List that does, put in place beneath kine's LogStructured.

// checkedLog is kine's SQL log with List reading its rows to the end or
// failing.
type checkedLog struct {
	logstructured.Log
	d server.Dialect
	// notify is the log's channel to its poller, told of a revision a
	// list saw, as kine's List tells it (another replica's writes are
	// then polled at once rather than at the next interval).
	notify chan int64
}

// List is kine's SQLLog.List, but for the rows.Err check.
func (l *checkedLog) List(ctx context.Context, key, end string, limit, revision int64, includeDeleted, keysOnly bool) (server.EventBatch, error) {
	key = l.d.TranslateStartKey(key)
	var batch server.EventBatch
	var rows *sql.Rows
	var err error
	if revision == 0 {
		rows, err = l.d.ListCurrent(ctx, key, end, limit, includeDeleted, keysOnly)
	} else {
		rows, err = l.d.List(ctx, key, end, limit, revision, includeDeleted, keysOnly)
	}
	if err != nil {
		return batch, err
	}
	batch, compact, err := rowsToEvents(rows, !keysOnly, false)
	if err != nil {
		return batch, err
	}
	switch { // kine's checkRevision
	case batch.CurrentRev == 0:
		return batch, server.ErrGRPCUnhealthy
	case revision > 0 && revision < compact:
		return batch, server.ErrCompacted
	case revision > batch.CurrentRev:
		return batch, server.ErrFutureRev
	}
	select {
	case l.notify <- batch.CurrentRev:
	default:
	}
	return batch, nil
}

// checkLists puts a checkedLog in place of the log beneath ls, before ls
// starts (nothing reads the field meanwhile), and returns it: the proxy's
// own reads of the log go through it too.
func checkLists(ls *logstructured.LogStructured, log logstructured.Log, d server.Dialect) (logstructured.Log, error) {
	notify, err := field[chan int64](reflect.ValueOf(log).Elem(), "notify")
	if err != nil {
		return nil, fmt.Errorf("kine's log: %w", err)
	}
	f, err := fieldOf[logstructured.Log](reflect.ValueOf(ls).Elem(), "log")
	if err != nil {
		return nil, fmt.Errorf("kine's LogStructured: %w", err)
	}
	checked := &checkedLog{Log: log, d: d, notify: notify}
	f.Set(reflect.ValueOf(checked))
	return checked, nil
}

// rowsToEvents is kine's sqllog.RowsToEvents, failing when the rows
// stopped coming before their end.
func rowsToEvents(rows *sql.Rows, val, prev bool) (server.EventBatch, int64, error) {
	batch, compact, err := sqllog.RowsToEvents(rows, val, prev)
	if err != nil {
		return batch, compact, err
	}
	err = rows.Err() // kept after RowsToEvents closed rows
	switch {
	case err == nil:
		return batch, compact, nil
	case errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded):
		// The read's own context ended: its caller gave up, or the watch
		// ended itself (WatchRange). Its status, and the error itself.
		return server.EventBatch{}, 0, fmt.Errorf("%w: %w", status.FromContextError(err).Err(), err)
	default:
		// Unavailable: etcd's client reads again, as from a member lost.
		return server.EventBatch{}, 0, status.Errorf(codes.Unavailable, "kplex: the database's answer to a read was cut short after %d rows: %v", len(batch.Events), err)
	}
}
