package backend

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"path/filepath"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" driver
	"github.com/sirupsen/logrus"

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
	d := &mendedDialect{Dialect: g, g: g, pause: 50 * time.Millisecond}
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

// A commit or rollback of kine's that fails (a compaction's, when its
// context ends or its connection is lost) is logged: kine's MustCommit
// and MustRollback ended the process, every tenant's proxy.
func TestAFailedCommitOrRollbackOfKinesLeavesTheProcessUp(t *testing.T) {
	exit := logrus.StandardLogger().ExitFunc
	logrus.StandardLogger().ExitFunc = func(code int) { panic(fmt.Sprintf("kine ended the process (exit %d)", code)) }
	defer func() { logrus.StandardLogger().ExitFunc = exit }()
	fatal := func(t *testing.T, f func()) {
		t.Helper()
		defer func() {
			if r := recover(); r != nil {
				t.Fatal(r)
			}
		}()
		f()
	}

	t.Run("a commit after the context ended", func(t *testing.T) {
		db, err := sql.Open("sqlite3", filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		g := &generic.Generic{DB: db}
		d := &mendedDialect{Dialect: g, g: g}
		ctx, cancel := context.WithCancel(context.Background())
		tx, err := d.BeginTx(ctx, &sql.TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		fatal(t, tx.MustCommit)
		fatal(t, tx.MustRollback)
	})

	t.Run("a rollback on a lost connection", func(t *testing.T) {
		if c, err := net.DialTimeout("tcp", "127.0.0.1:5432", 2*time.Second); err != nil {
			t.Skipf("SKIPPED: no postgres server at 127.0.0.1:5432 (%v)", err)
		} else {
			c.Close()
		}
		const app = "kplex_rollback_test"
		db, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable&application_name="+app)
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		g := &generic.Generic{DB: db}
		d := &mendedDialect{Dialect: g, g: g}
		ctx := context.Background()
		tx, err := d.BeginTx(ctx, &sql.TxOptions{})
		if err != nil {
			t.Fatal(err)
		}
		admin, err := sql.Open("pgx", "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable")
		if err != nil {
			t.Fatal(err)
		}
		defer admin.Close()
		var ended int
		if err := admin.QueryRowContext(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1", app).Scan(&ended); err != nil || ended != 1 {
			t.Fatalf("ended %d connections of the transaction's (%v); want its one", ended, err)
		}
		fatal(t, tx.MustRollback)
	})
}
