package server_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/proxytest"
)

// A write the database refuses is an error, never a success nor a compare
// that failed: kine read a refused create of a new key back as created (a
// put acknowledged and never applied), and a refused update or delete as
// a compare that failed, which kube-apiserver and the proxy's own put and
// delete would try again for ever. PostgreSQL can be made read-only under
// a running proxy (its database's default, and its sessions ended so that
// kine opens new ones), so this runs there; then writable again, the same
// writes succeed.
func TestAWriteTheDatabaseRefusesIsAnError(t *testing.T) {
	proxytest.ForEachBackend(t, func(t *testing.T, b backend.Config) {
		if b.Kind != "postgres" {
			t.Skipf("only PostgreSQL is made read-only under a running proxy here (not %s)", b.Kind)
		}
		px := proxytest.Start(t, b)
		c := px.Client(t, "alpha")
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		const k, gone, fresh = "/registry/refused/k", "/registry/refused/gone", "/registry/refused/new"
		put, err := c.Put(ctx, k, "v")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Put(ctx, gone, "v"); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Delete(ctx, gone); err != nil {
			t.Fatal(err)
		}

		readOnly(t, ctx, c, b.DSN, true)
		type write struct {
			name string
			do   func() error
			want string // in the error the database refused it with
		}
		writes := []write{
			{"a put of a new key", func() error { _, err := c.Put(ctx, fresh, "v"); return err }, "read-only"},
			{"a put over a deletion", func() error { _, err := c.Put(ctx, gone, "v"); return err }, "read-only"},
			{"an update at the key's revision", func() error {
				resp, err := c.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(k), "=", put.Header.Revision)).
					Then(clientv3.OpPut(k, "v2")).Else(clientv3.OpGet(k)).Commit()
				if err == nil && !resp.Succeeded {
					return errors.New("answered as a compare that failed")
				}
				return err
			}, "did not take the update"},
			{"a delete", func() error { _, err := c.Delete(ctx, k); return err }, "did not take the delete"},
		}
		for _, w := range writes {
			if err := w.do(); err == nil || !strings.Contains(err.Error(), w.want) {
				t.Errorf("%s, refused by the database: %v; want an error with %q", w.name, err, w.want)
			}
		}
		if got, err := c.Get(ctx, fresh); err != nil || len(got.Kvs) != 0 {
			t.Errorf("get %s after its refused put: %v, %v; want nothing", fresh, got, err)
		}

		readOnly(t, ctx, c, b.DSN, false)
		for _, w := range writes {
			if err := w.do(); err != nil {
				t.Errorf("%s, the database writable again: %v", w.name, err)
			}
		}
	})
}

// readOnly makes the PostgreSQL database of dsn read-only or writable: the
// default of its new sessions, and the sessions of others ended so that
// their pools open new ones. It returns once c has read through the proxy
// in three bursts of 16 reads at once with no error (a session ended fails
// its next query once).
func readOnly(t *testing.T, ctx context.Context, c *clientv3.Client, dsn string, on bool) {
	t.Helper()
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	name := strings.TrimPrefix(u.Path, "/")
	u.Path = "/postgres"
	db, err := sql.Open("pgx", u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	mode := "off"
	if on {
		mode = "on"
	}
	for _, stmt := range []string{
		`ALTER DATABASE "` + name + `" SET default_transaction_read_only = ` + mode,
		`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '` + name + `' AND pid <> pg_backend_pid()`,
	} {
		if _, err := db.ExecContext(ctx, stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	// Reads at once, so that every session in the proxy's pool (the
	// writes' too; a recount may have opened more) is tried.
	for ok := 0; ok < 3; {
		var wg sync.WaitGroup
		var failed atomic.Pointer[error]
		for range 16 {
			wg.Go(func() {
				if _, err := c.Get(ctx, "/registry/refused/k"); err != nil {
					failed.Store(&err)
				}
			})
		}
		wg.Wait()
		if err := failed.Load(); err != nil {
			ok = 0
			if ctx.Err() != nil {
				t.Fatalf("reads through the proxy after its database's sessions ended: %v", *err)
			}
			continue
		}
		ok++
	}
}
