package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/logstructured"
	"github.com/k3s-io/kine/pkg/query"
	"github.com/k3s-io/kine/pkg/server"
)

// mendedDialect is kine's SQL dialect (v0.17.5) with what kine's log does
// through it mended, put beneath the log by mendDialect:
//
// kine's poller (SQLLog.poll) reads the log's new rows for every watch of
// every tenant. After a full batch (500 rows) it polls again at once, and
// after a failed poll it goes round again without waiting if the batch
// before was full. So a database lost under load, when the poller reads
// full batches, had it retry as fast as each attempt failed: a core of
// the proxy busy and an error logged each time, for as long as the
// outage lasted. Its prepare also kept the connection it took from the
// pool when preparing failed, out of the pool for good. Here a failed
// call of the poller's returns only after pollRetryPause, and a failed
// prepare gives its connection back.
//
// The same loop asks whether its context has ended only after a read that
// was not full, so a stop in that state (a busy store's) sent it round
// and round on its failing calls for ever, and the proxy's stop waited for
// it for ever. Once the context has ended, the two calls succeed instead,
// with no rows (noRows; kine closes the store's database): the loop's next
// question then ends it.
//
// kine's compaction commits with MustCommit and rolls back with
// MustRollback, which end the process (logrus.Fatalf) when the database
// answers with an error: a connection lost during a compaction (every
// five minutes), or a stop during one, took every tenant's proxy down.
// Here they log the error instead (mendedTx).
type mendedDialect struct {
	server.Dialect
	g     *generic.Generic
	pause time.Duration
}

// pollInterval is how often kine's poller reads the log when no write of
// this replica's tells it to; pollRetryPause, how long after a failure its
// next attempt comes at the soonest: a quarter of the interval, so that a
// watch resumes within about that of the database's return, and the
// poller tries and logs four times a second while it is away.
const (
	pollInterval   = time.Second
	pollRetryPause = pollInterval / 4
)

// mendDialect puts a mendedDialect in place of the dialect beneath kine's
// SQL log, before the log starts (nothing reads the field meanwhile).
func mendDialect(log logstructured.Log, g *generic.Generic) error {
	f, err := fieldOf[server.Dialect](reflect.ValueOf(log).Elem(), "d")
	if err != nil {
		return fmt.Errorf("kine's log: %w", err)
	}
	f.Set(reflect.ValueOf(&mendedDialect{Dialect: g, g: g, pause: pollRetryPause}))
	return nil
}

// PrepareAfter is kine's, but for the pause on failure, the connection
// given back, and a statement for no rows once ctx has ended.
func (d *mendedDialect) PrepareAfter(ctx context.Context, limit int64) (*query.Stmt, error) {
	stmt, err := d.prepareAfter(ctx, limit)
	if err != nil && ctx.Err() != nil {
		return &query.Stmt{Named: d.g.AfterAllOldValSQL}, nil // QueryAfter reads no rows with it
	}
	if err != nil {
		d.wait(ctx)
	}
	return stmt, err
}

func (d *mendedDialect) prepareAfter(ctx context.Context, limit int64) (*query.Stmt, error) {
	q := d.g.AfterAllOldValSQL
	if limit > 0 {
		q = q.Appendf("LIMIT %d", limit)
	}
	conn, err := d.g.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	stmt, err := conn.PrepareContext(ctx, q.Query)
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &query.Stmt{Named: q, Conn: conn, Stmt: stmt}, nil
}

// QueryAfter is kine's, but for the pause on failure, and no rows once
// ctx has ended.
func (d *mendedDialect) QueryAfter(ctx context.Context, stmt *query.Stmt, rev int64) (*sql.Rows, error) {
	if ctx.Err() != nil {
		return noRows()
	}
	rows, err := d.Dialect.QueryAfter(ctx, stmt, rev)
	if err != nil && ctx.Err() != nil {
		return noRows()
	}
	if err != nil {
		d.wait(ctx)
	}
	return rows, err
}

// BeginTx is kine's, with MustCommit and MustRollback that log an error
// rather than end the process.
func (d *mendedDialect) BeginTx(ctx context.Context, opts *sql.TxOptions) (server.Transaction, error) {
	tx, err := d.Dialect.BeginTx(ctx, opts)
	if err != nil {
		return nil, err
	}
	return mendedTx{tx}, nil
}

// mendedTx is kine's transaction, its Must methods mended.
type mendedTx struct {
	server.Transaction
}

// MustCommit commits, or logs why not: the transaction's work is then
// not done (kine's compaction finds so at its next turn, and does it
// again).
func (t mendedTx) MustCommit() {
	if err := t.Commit(); err != nil {
		slog.Error("a transaction of kine's failed to commit; its work is not done", "err", err)
	}
}

// MustRollback rolls back, or logs why not: a transaction the database
// lost with its connection is no more.
func (t mendedTx) MustRollback() {
	if err := t.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		slog.Warn("a transaction of kine's failed to roll back", "err", err)
	}
}

// wait returns after the pause, or when ctx ends.
func (d *mendedDialect) wait(ctx context.Context) {
	t := time.NewTimer(d.pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
