package backend

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/query"
)

// A prepare of the poller's read that fails gives its connection back to
// the pool (kine's kept it out for good: one connection a failure), and
// returns only after the pause, as a failed read does.
func TestAFailedPollPrepareGivesItsConnectionBack(t *testing.T) {
	db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	g := &generic.Generic{
		DB:                db,
		AfterAllOldValSQL: query.New("SELECT id FROM no_such_table WHERE id > ?", "?", false, "after"),
		ErrCode:           func(error) string { return "" },
	}
	d := &pacedDialect{Dialect: g, g: g, pause: 50 * time.Millisecond}
	ctx := context.Background()
	for range 5 {
		start := time.Now()
		if stmt, err := d.PrepareAfter(ctx, 500); err == nil {
			stmt.Close()
			t.Fatal("prepared a read of a table that is not there")
		}
		if took := time.Since(start); took < d.pause {
			t.Errorf("a failed prepare returned after %s; want the pause, %s", took, d.pause)
		}
	}
	if n := db.Stats().InUse; n != 0 {
		t.Fatalf("%d connections kept out of the pool after 5 failed prepares; want 0", n)
	}
	start := time.Now()
	if _, err := d.QueryAfter(ctx, &query.Stmt{Named: g.AfterAllOldValSQL, Stmt: mustPrepare(t, db)}, 0); err == nil {
		t.Fatal("a read through a closed statement did not fail")
	}
	if took := time.Since(start); took < d.pause {
		t.Errorf("a failed read returned after %s; want the pause, %s", took, d.pause)
	}
}

// mustPrepare is a statement that fails when used: prepared, then closed.
func mustPrepare(t *testing.T, db *sql.DB) *sql.Stmt {
	t.Helper()
	s, err := db.Prepare("SELECT 1 WHERE 1 > ?")
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	return s
}
