package backend

import (
	"context"
	"database/sql"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	_ "github.com/mattn/go-sqlite3" // the "sqlite3" driver, the one kine's sqlite driver is built on
	"github.com/prometheus/client_golang/prometheus"
)

// walCheckpointEvery is how often the checkpointer copies SQLite's
// write-ahead log into the database file.
const walCheckpointEvery = 50 * time.Millisecond

// startCheckpointer keeps the write-ahead log of the SQLite database at
// path short from a connection of its own, until ctx ends.
//
// Left to itself, SQLite checkpoints in the commit that takes the log past
// 1000 pages: that write copies the log into the database file and syncs
// both, several milliseconds where a write takes 0.1-0.5 ms, and the
// proxy's one write slot makes every tenant's next write wait for it. A
// passive checkpoint from another connection takes no lock that writers
// or readers need; with the log copied back every 50 ms, the next writer
// starts the log over (when no reader still needs it) long before it
// reaches 1000 pages. (kine's checkpoint after each compaction is turned
// off in the DSN: it is a FULL one, which holds the write lock.)
func startCheckpointer(ctx context.Context, wg *sync.WaitGroup, path string, reg prometheus.Registerer) error {
	db, err := sql.Open("sqlite3", path+"?_busy_timeout=1000")
	if err != nil {
		return fmt.Errorf("sqlite checkpointer: %w", err)
	}
	db.SetMaxOpenConns(1)
	if err := db.PingContext(ctx); err != nil {
		_ = db.Close()
		return fmt.Errorf("sqlite checkpointer: %w", err)
	}
	took := prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "kplex_datastore_proxy_sqlite_checkpoint_duration_seconds",
		Help:    "Passive checkpoints of the SQLite write-ahead log that copied pages, by how long they took (they block no request).",
		Buckets: prometheus.ExponentialBuckets(0.0002, 2, 14),
	})
	if reg != nil {
		if err := reg.Register(took); err != nil {
			_ = db.Close()
			return fmt.Errorf("sqlite checkpointer metrics: %w", err)
		}
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer db.Close()
		t := time.NewTicker(walCheckpointEvery)
		defer t.Stop()
		var lastErr string
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			start := time.Now()
			var busy, logPages, copied int
			err := db.QueryRowContext(ctx, "PRAGMA wal_checkpoint(PASSIVE)").Scan(&busy, &logPages, &copied)
			switch {
			case err != nil && ctx.Err() == nil && err.Error() != lastErr:
				lastErr = err.Error()
				slog.Warn("sqlite checkpoint failed; writes will checkpoint themselves", "path", path, "err", err)
			case err == nil:
				lastErr = ""
				if copied > 0 {
					took.Observe(time.Since(start).Seconds())
				}
			}
		}
	}()
	return nil
}

// sqlitePath is the database file of a sqlite:// endpoint.
func sqlitePath(endpoint string) string {
	path, _, _ := strings.Cut(strings.TrimPrefix(endpoint, "sqlite://"), "?")
	return path
}
