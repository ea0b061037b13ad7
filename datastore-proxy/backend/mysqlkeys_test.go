package backend_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"
	"time"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A MySQL database that an older proxy (or kine itself) set up, with keys
// compared case-insensitively, is changed once when the proxy opens it:
// its rows stay, keys that differ in case become different keys, and
// opening it again changes nothing.
func TestMySQLKeyColumnBecomesBinaryOnce(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, c backend.Config) {
		if c.Kind != "mysql" {
			t.Skipf("SKIPPED: only MySQL's table compares keys by a collation")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		db, err := sql.Open("mysql", strings.TrimPrefix(c.DSN, "mysql://"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		columnType := func() string {
			t.Helper()
			var typ string
			if err := db.QueryRowContext(ctx, `SELECT COLUMN_TYPE FROM information_schema.COLUMNS
				WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'kine' AND COLUMN_NAME = 'name'`).Scan(&typ); err != nil {
				t.Fatal(err)
			}
			return typ
		}

		openOnce(t, c) // kine's schema, then the change
		// Back to kine's own column, as an older proxy left it, with a row.
		if _, err := db.ExecContext(ctx, "ALTER TABLE kine MODIFY name VARCHAR(630) CHARACTER SET ascii"); err != nil {
			t.Fatal(err)
		}
		if _, err := db.ExecContext(ctx, `INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)
			VALUES ('/kplex/a/registry/roles/ns/Admin', 1, 0, 0, 0, 0, 'v', NULL)`); err != nil {
			t.Fatal(err)
		}
		var n int
		if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM kine WHERE name = '/kplex/a/registry/roles/ns/admin'").Scan(&n); err != nil || n != 1 {
			t.Fatalf("before: the lowercase key matches %d rows (err %v), want 1 (the collation this test undoes)", n, err)
		}

		openOnce(t, c)
		if typ := columnType(); typ != "varbinary(630)" {
			t.Fatalf("after opening: the key column is %s, want varbinary(630)", typ)
		}
		for key, want := range map[string]int{"/kplex/a/registry/roles/ns/Admin": 1, "/kplex/a/registry/roles/ns/admin": 0} {
			if err := db.QueryRowContext(ctx, "SELECT COUNT(*) FROM kine WHERE name = ?", key).Scan(&n); err != nil || n != want {
				t.Errorf("after: %q matches %d rows (err %v), want %d", key, n, err, want)
			}
		}
		openOnce(t, c) // a no-op: the column is binary already
		if typ := columnType(); typ != "varbinary(630)" {
			t.Fatalf("after opening again: the key column is %s", typ)
		}
	})
}

// openOnce opens c's store as the proxy does (which sets it up) and stops
// it again.
func openOnce(t *testing.T, c backend.Config) {
	t.Helper()
	_, stop := proxytest.OpenBackendToStop(t, c)
	stop()
}
