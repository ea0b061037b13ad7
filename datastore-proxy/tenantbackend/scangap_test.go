package tenantbackend_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
	"kplex.dev/datastore-proxy/tenantconfig"
)

// A usage count on PostgreSQL or MySQL holds a write that took a lower id
// and commits after a higher one: its first page reads at a settled
// revision (backend/settle.go). It read at the highest id, without that
// write, and then dropped the write's own count as one at or below its
// revision: the tenant was a key short until the next recount.
func TestAUsageCountHoldsARowCommittedIntoAGap(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, cfg backend.Config) {
		if cfg.Kind != "postgres" && cfg.Kind != "mysql" {
			t.Skipf("SKIPPED: %s shows rows in id order", cfg.Kind)
		}
		inner := openShared(t, cfg)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		alpha := tenantOn(t, inner, "gapcount", tenantconfig.Limits{})
		if _, err := alpha.Create(ctx, "/registry/a", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		driver, dsn := "pgx", cfg.DSN
		if cfg.Kind == "mysql" {
			driver, dsn = "mysql", strings.TrimPrefix(cfg.DSN, "mysql://")
		}
		db, err := sql.Open(driver, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		tx, err := db.BeginTx(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback() }()
		q := `INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES (?, 1, 0, 0, 0, 0, ?, NULL)`
		if cfg.Kind == "postgres" {
			q = strings.NewReplacer("(?, 1", "($1, 1", "?, NULL", "$2, NULL").Replace(q)
		}
		if _, err := tx.ExecContext(ctx, q, "/kplex/gapcount//registry/held", []byte("v")); err != nil {
			t.Fatalf("insert the held row: %v", err)
		}
		if _, err := alpha.Create(ctx, "/registry/b", []byte("v"), 0); err != nil {
			t.Fatal(err)
		}
		type counted struct {
			keys int64
			err  error
		}
		done := make(chan counted, 1)
		go func() {
			keys, _, _, err := alpha.Scan(ctx, func(context.Context, int64, int) error { return nil })
			done <- counted{keys, err}
		}()
		time.Sleep(200 * time.Millisecond)
		if err := tx.Commit(); err != nil {
			t.Fatalf("commit the held row: %v", err)
		}
		got := <-done
		if got.err != nil || got.keys != 3 {
			t.Fatalf("usage count: %d keys, %v; want 3 (a, the held row, b)", got.keys, got.err)
		}
	})
}
