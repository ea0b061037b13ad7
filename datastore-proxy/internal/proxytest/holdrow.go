package proxytest

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"kplex.dev/datastore-proxy/backend"
)

// HoldRow has a writer of the test's own insert a row of key (a stored
// key, tenant prefix included) into the log of c's database (PostgreSQL or
// MySQL), taking the next id, and hold its commit: a row that will commit
// into a gap below rows committed meanwhile. The transaction is rolled
// back when the test ends, if it is still open.
func HoldRow(t testing.TB, ctx context.Context, c backend.Config, key string) *sql.Tx {
	t.Helper()
	driver, dsn := "pgx", c.DSN
	if c.Kind == "mysql" {
		driver, dsn = "mysql", strings.TrimPrefix(c.DSN, "mysql://")
	}
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback() })
	if _, err := tx.ExecContext(ctx, placeholders(c.Kind, `INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value) VALUES (?, 1, 0, 0, 0, 0, ?, NULL)`), key, []byte("v")); err != nil {
		t.Fatalf("insert the held row: %v", err)
	}
	return tx
}

// placeholders spells q's "?" placeholders as kind's driver takes them.
func placeholders(kind, q string) string {
	if kind != "postgres" {
		return q
	}
	for i := 1; strings.Contains(q, "?"); i++ {
		q = strings.Replace(q, "?", "$"+string(rune('0'+i)), 1)
	}
	return q
}
