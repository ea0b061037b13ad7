package backend

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/logstructured"
	"github.com/k3s-io/kine/pkg/query"
	"github.com/k3s-io/kine/pkg/server"
)

// kine's poller (SQLLog.poll, v0.17.5) reads the log's new rows for every
// watch of every tenant. After a full batch (500 rows) it polls again at
// once, and after a failed poll it goes round again without waiting if
// the batch before was full. So a database lost under load, when the
// poller reads full batches, had it retry as fast as each attempt failed:
// a core of the proxy busy and an error logged each time, for as long as
// the outage lasted. Its prepare also kept the connection it took from
// the pool when preparing failed, out of the pool for good. pacedDialect
// is kine's dialect with the poller's two calls mended: a failed one
// returns only after pollRetryPause, and a failed prepare gives its
// connection back.
//
// The same loop asks whether its context has ended only after a read that
// was not full, so a stop in that state (a busy store's) sent it round
// and round on its failing calls for ever, and the proxy's stop waited for
// it for ever. Once the context has ended, the two calls succeed instead,
// with no rows (read from a database of the proxy's own, as kine closes
// the store's): the loop's next question then ends it.
type pacedDialect struct {
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

// pacePoller puts a pacedDialect in place of the dialect beneath kine's
// SQL log, before the log starts (nothing reads the field meanwhile).
func pacePoller(log logstructured.Log, g *generic.Generic) error {
	f, err := fieldOf[server.Dialect](reflect.ValueOf(log).Elem(), "d")
	if err != nil {
		return fmt.Errorf("kine's log: %w", err)
	}
	f.Set(reflect.ValueOf(&pacedDialect{Dialect: g, g: g, pause: pollRetryPause}))
	return nil
}

// PrepareAfter is kine's, but for the pause on failure and the connection
// given back.
func (d *pacedDialect) PrepareAfter(ctx context.Context, limit int64) (*query.Stmt, error) {
	stmt, err := d.prepareAfter(ctx, limit)
	if err != nil && ctx.Err() != nil {
		return &query.Stmt{Named: d.g.AfterAllOldValSQL}, nil // QueryAfter reads no rows with it
	}
	if err != nil {
		d.wait(ctx)
	}
	return stmt, err
}

func (d *pacedDialect) prepareAfter(ctx context.Context, limit int64) (*query.Stmt, error) {
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

// QueryAfter is kine's, but for the pause on failure.
func (d *pacedDialect) QueryAfter(ctx context.Context, stmt *query.Stmt, rev int64) (*sql.Rows, error) {
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

// empty is an in-memory SQLite database of the proxy's own, opened the
// first time a poller stops (noRows).
var empty struct {
	once sync.Once
	db   *sql.DB
	err  error
}

// noRows returns rows that hold none.
func noRows() (*sql.Rows, error) {
	empty.once.Do(func() { empty.db, empty.err = sql.Open("sqlite3", ":memory:") })
	if empty.err != nil {
		return nil, fmt.Errorf("open an empty database: %w", empty.err)
	}
	return empty.db.QueryContext(context.Background(), "SELECT 1 WHERE 0")
}

// wait returns after the pause, or when ctx ends.
func (d *pacedDialect) wait(ctx context.Context) {
	t := time.NewTimer(d.pause)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}
