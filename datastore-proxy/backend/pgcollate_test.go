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

// A PostgreSQL table whose key column has a locale's collation (an older
// kine's, or one made by hand) is given the "C" collation once when the
// proxy opens it: its rows stay, and keys sort byte by byte, as etcd's.
func TestPostgresKeyColumnComparesBytes(t *testing.T) {
	proxytest.ForEachSQLBackend(t, func(t *testing.T, c backend.Config) {
		if c.Kind != "postgres" {
			t.Skipf("SKIPPED: only PostgreSQL's key column takes a collation")
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		// No statements kept: the column's collation changes under them.
		db, err := sql.Open("pgx", c.DSN+"&default_query_exec_mode=simple_protocol")
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		order := func() string {
			t.Helper()
			rows, err := db.QueryContext(ctx, "SELECT name FROM kine WHERE name >= '/kplex/a/' AND name < '/kplex/a0' ORDER BY name")
			if err != nil {
				t.Fatal(err)
			}
			defer rows.Close()
			var names []string
			for rows.Next() {
				var n string
				if err := rows.Scan(&n); err != nil {
					t.Fatal(err)
				}
				names = append(names, strings.TrimPrefix(n, "/kplex/a/"))
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			return strings.Join(names, ",")
		}

		openOnce(t, c) // kine's schema
		var icu int
		if err := db.QueryRowContext(ctx, `SELECT count(*) FROM pg_collation WHERE collname = 'und-x-icu'`).Scan(&icu); err != nil || icu == 0 {
			t.Skipf("SKIPPED: this PostgreSQL has no ICU collation to give the column (%v)", err)
		}
		if _, err := db.ExecContext(ctx, `ALTER TABLE kine ALTER COLUMN name SET DATA TYPE TEXT COLLATE "und-x-icu"`); err != nil {
			t.Fatal(err)
		}
		for _, k := range []string{"/kplex/a/registry/B", "/kplex/a/registry/a"} {
			if _, err := db.ExecContext(ctx, `INSERT INTO kine(name, created, deleted, create_revision, prev_revision, lease, value, old_value)
				VALUES ($1, 1, 0, 0, 0, 0, 'v', NULL)`, k); err != nil {
				t.Fatal(err)
			}
		}
		if got := order(); got != "registry/a,registry/B" {
			t.Fatalf("before: keys in the order %s; want the locale's, registry/a,registry/B", got)
		}

		openOnce(t, c)
		if got := order(); got != "registry/B,registry/a" {
			t.Fatalf("after opening: keys in the order %s; want bytes', registry/B,registry/a", got)
		}
		openOnce(t, c) // a no-op now
		if got := order(); got != "registry/B,registry/a" {
			t.Fatalf("after opening again: keys in the order %s", got)
		}
	})
}
