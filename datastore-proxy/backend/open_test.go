package backend

import (
	"context"
	"database/sql"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/server"

	"kplex.dev/datastore-proxy/tenantbackend"
)

func TestBadConfigsGiveClearErrors(t *testing.T) {
	tests := []struct {
		name string
		c    Config
		want string
	}{
		{"unknown kind", Config{Kind: "cassandra"}, `want one of sqlite, etcd, postgres, mysql`},
		{"postgres without URL", Config{Kind: "postgres", DSN: "127.0.0.1:5432"}, "must be a postgres:// URL"},
		{"mysql without URL", Config{Kind: "mysql", DSN: "root@tcp(127.0.0.1:3306)/x"}, "must be a mysql:// URL"},
		{"sqlite without a place", Config{Kind: "sqlite"}, "--data-dir or --datastore-endpoint is required"},
		{"etcd without endpoints", Config{Kind: "etcd"}, "must list the cluster's URLs"},
		{"etcd with a missing CA", Config{Kind: "etcd", DSN: "https://127.0.0.1:1", CAFile: "/nonexistent/ca.crt", CertFile: "/nonexistent/c"}, "etcd backend TLS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			var wg sync.WaitGroup
			_, _, err := Open(ctx, &wg, tt.c)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v, want it to say %q", err, tt.want)
			}
		})
	}
}

// The SQL backends watch one key range: a watch's catch-up and live events
// hold only its range's keys (kine's own Watch reads every key).
func TestSQLiteWatchesOneRange(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	b, _, err := Open(ctx, &wg, Config{Kind: "sqlite", DataDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rw, ok := b.(tenantbackend.RangeWatcher)
	if !ok {
		t.Fatalf("the sqlite backend (%T) cannot watch a key range", b)
	}
	put := func(key string) int64 {
		t.Helper()
		rev, err := b.Create(ctx, key, []byte("v"), 0)
		if err != nil {
			t.Fatalf("create %s: %v", key, err)
		}
		return rev
	}
	start := put("/a/1")
	put("/b/1")
	put("/a/2")
	w := rw.WatchRange(ctx, "/a/", "/a0", start, tenantbackend.WatchHooks{})
	got := keys(t, w.Eventc, 2)
	put("/b/2")
	put("/a/3")
	got = append(got, keys(t, w.Eventc, 1)...)
	if want := "/a/1 /a/2 /a/3"; strings.Join(got, " ") != want {
		t.Fatalf("watch of /a/ from revision %d saw %v, want %s", start, got, want)
	}
	single := rw.WatchRange(ctx, "/b/1", "", start, tenantbackend.WatchHooks{})
	if got := keys(t, single.Eventc, 1); got[0] != "/b/1" {
		t.Fatalf("watch of the single key /b/1 saw %v", got)
	}
}

// keys reads n events' keys from c, skipping batches with none.
func keys(t *testing.T, c <-chan server.EventBatch, n int) []string {
	t.Helper()
	var out []string
	timeout := time.After(10 * time.Second)
	for len(out) < n {
		select {
		case batch, ok := <-c:
			if !ok {
				t.Fatalf("watch closed after %v", out)
			}
			for _, ev := range batch.Events {
				out = append(out, ev.KV.Key)
			}
		case <-timeout:
			t.Fatalf("got %v, waited for %d events", out, n)
		}
	}
	return out
}

// The embedded SQLite database is not vacuumed at start (kine vacuums it
// by default): the pages it has free stay free, for new data, rather than
// the whole file being rewritten while every tenant waits.
func TestSQLiteIsNotVacuumedAtStart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "state.db")
	db, err := sql.Open("sqlite3", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, stmt := range []string{
		"CREATE TABLE scratch (v BLOB)",
		"WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i+1 FROM n WHERE i < 200) INSERT INTO scratch SELECT zeroblob(8192) FROM n",
		"DROP TABLE scratch",
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	free := func() (n int) {
		t.Helper()
		if err := db.QueryRow("PRAGMA freelist_count").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	before := free()
	if before < 200 {
		t.Fatalf("%d free pages after dropping 1.6 MiB; want 200 or more", before)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	if _, _, err := Open(ctx, &wg, Config{Kind: "sqlite", DataDir: dir}); err != nil {
		cancel()
		t.Fatal(err)
	}
	cancel()
	wg.Wait()
	if after := free(); after < before/2 {
		t.Fatalf("%d free pages after the backend's start, %d before: the file was vacuumed", after, before)
	}
}
