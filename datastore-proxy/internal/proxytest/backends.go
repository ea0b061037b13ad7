package proxytest

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	_ "github.com/jackc/pgx/v5/stdlib"

	"kplex.dev/datastore-proxy/backend"
	"kplex.dev/datastore-proxy/internal/embedetcd"
)

// The shared SQL servers of the development and CI machines. A machine
// without them skips those backends, saying so.
const (
	PostgresAddr = "127.0.0.1:5432"
	MySQLAddr    = "127.0.0.1:3306"
)

// ForEachBackend runs f as a subtest per backend: sqlite and etcd (a real
// etcd server in-process) always; postgres
// and mysql on a fresh database of their server at PostgresAddr/MySQLAddr,
// dropped afterwards, or skipped with the reason when the server is not
// reachable.
func ForEachBackend(t *testing.T, f func(t *testing.T, b backend.Config)) {
	t.Run("sqlite", func(t *testing.T) { f(t, backend.Config{Kind: "sqlite"}) })
	t.Run("etcd", func(t *testing.T) { f(t, backend.Config{Kind: "etcd", DSN: startEtcd(t)}) })
	forEachSQLServer(t, f)
}

// ForEachSQLBackend is ForEachBackend on the backends kine's drivers
// serve (sqlite, postgres, mysql), for what etcd does itself (a watch's
// history, its watch streams); no etcd is started.
func ForEachSQLBackend(t *testing.T, f func(t *testing.T, b backend.Config)) {
	t.Run("sqlite", func(t *testing.T) { f(t, backend.Config{Kind: "sqlite"}) })
	forEachSQLServer(t, f)
}

// forEachSQLServer runs f on a fresh database of PostgreSQL and of MySQL,
// each skipped with the reason when its server is not reachable.
func forEachSQLServer(t *testing.T, f func(t *testing.T, b backend.Config)) {
	t.Run("postgres", func(t *testing.T) {
		db := fmt.Sprintf("kplex_test_%d", rand.Uint32())
		requireServer(t, "postgres", PostgresAddr)
		t.Cleanup(func() {
			drop(t, "pgx", "postgres://postgres@"+PostgresAddr+"/postgres?sslmode=disable", `DROP DATABASE IF EXISTS "`+db+`" WITH (FORCE)`)
		})
		f(t, backend.Config{Kind: "postgres", DSN: "postgres://postgres@" + PostgresAddr + "/" + db + "?sslmode=disable"})
	})
	t.Run("mysql", func(t *testing.T) {
		db := fmt.Sprintf("kplex_test_%d", rand.Uint32())
		requireServer(t, "mysql", MySQLAddr)
		t.Cleanup(func() { drop(t, "mysql", "root@tcp("+MySQLAddr+")/", "DROP DATABASE IF EXISTS `"+db+"`") })
		f(t, backend.Config{Kind: "mysql", DSN: "mysql://root@tcp(" + MySQLAddr + ")/" + db})
	})
}

func requireServer(t *testing.T, name, addr string) {
	c, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if err != nil {
		t.Skipf("SKIPPED: no %s server at %s (%v); start one to test this backend", name, addr, err)
	}
	c.Close()
}

func drop(t *testing.T, driver, dsn, stmt string) {
	db, err := sql.Open(driver, dsn)
	if err != nil {
		t.Errorf("cleanup: open %s: %v", driver, err)
		return
	}
	defer db.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, stmt); err != nil {
		t.Errorf("cleanup: %s: %v", stmt, err)
	}
}

// startEtcd runs a real single-member etcd in-process until the test ends
// and returns its client URL.
func startEtcd(t *testing.T) string {
	t.Helper()
	url, stop, err := embedetcd.Start(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	return url
}
