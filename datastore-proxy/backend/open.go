// Package backend opens the shared store the proxy serves tenants from:
// kine's SQL drivers (embedded SQLite, PostgreSQL, MySQL/MariaDB) or an etcd
// cluster (etcdbackend), all behind kine's server.Backend interface.
package backend

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/k3s-io/kine/pkg/drivers"
	_ "github.com/k3s-io/kine/pkg/drivers/mysql"  // mysql://
	_ "github.com/k3s-io/kine/pkg/drivers/pgsql"  // postgres://
	_ "github.com/k3s-io/kine/pkg/drivers/sqlite" // sqlite://
	"github.com/k3s-io/kine/pkg/server"
	"github.com/prometheus/client_golang/prometheus"
)

// Kinds are the backends Open accepts.
var Kinds = []string{"sqlite", "etcd", "postgres", "mysql"}

// Config selects and tunes the backend.
type Config struct {
	Kind string // one of Kinds
	// DSN is the database address: for postgres and mysql a URL
	// (postgres://user@127.0.0.1:5432/db, mysql://root@tcp(127.0.0.1:3306)/db);
	// for sqlite a file path, default <DataDir>/state.db.
	DSN     string
	DataDir string
	// TLS files for the etcd backend's client connection (optional).
	CAFile, CertFile, KeyFile string
	// KeepaliveTimeout bounds how long a connection to the store (etcd,
	// PostgreSQL, MySQL) keeps data unacknowledged (TCP_USER_TIMEOUT; 0:
	// 10 s) before it is closed and dialed again (on etcd another
	// endpoint, if there are several; sqldial.go for SQL). With
	// KeepaliveTime (etcd only; 0: off; gRPC takes no time under 10 s;
	// the binary's default is 30 s), the proxy also pings etcd after that
	// long without a byte from it, and closes the connection when no
	// answer comes within KeepaliveTimeout: that finds a member that
	// stopped answering while its host still acknowledges.
	KeepaliveTime, KeepaliveTimeout time.Duration
	// CompactInterval is how often the proxy compacts the shared history,
	// each time to the revision current an interval before and keeping at
	// least CompactMinRetain revisions (etcdbackend's loop, kine's on SQL);
	// tenants' compaction requests do not compact it.
	CompactInterval  time.Duration
	CompactMinRetain int64
	Registerer       prometheus.Registerer
}

// Open connects to and starts the backend. The returned scheme is the kine
// driver's name.
func Open(ctx context.Context, wg *sync.WaitGroup, c Config) (server.Backend, string, error) {
	if c.CompactInterval == 0 {
		c.CompactInterval = 5 * time.Minute
	}
	if c.CompactMinRetain == 0 {
		c.CompactMinRetain = 1000
	}
	if c.KeepaliveTimeout == 0 {
		c.KeepaliveTimeout = 10 * time.Second
	}
	if c.Kind == "" {
		c.Kind = "sqlite"
	}
	if c.Kind == "etcd" {
		return openEtcd(ctx, wg, c)
	}
	endpoint, err := endpoint(c)
	if err != nil {
		return nil, "", err
	}
	if c.Kind != "sqlite" {
		setSQLUserTimeout(c.KeepaliveTimeout)
	}
	cfg := &drivers.Config{
		Endpoint:          endpoint,
		MetricsRegisterer: c.Registerer,
		CompactInterval:   c.CompactInterval,
		CompactTimeout:    5 * time.Second,
		CompactMinRetain:  c.CompactMinRetain,
		CompactBatchSize:  1000,
		PollBatchSize:     500,
		// How often watches poll the database for new rows.
		PollInterval: pollInterval,
	}
	_, b, err := drivers.New(ctx, wg, cfg)
	if err != nil {
		return nil, "", fmt.Errorf("open %s backend: %w", c.Kind, err)
	}
	sb, g, err := newSQLBackend(b, c.Kind)
	switch {
	case err != nil && c.Kind != "sqlite":
		// Without its guard a key would not be etcd's key (keys.go,
		// pgkeys.go): better not to serve.
		return nil, "", fmt.Errorf("open %s backend: kine's internals, needed to keep keys as etcd's: %w", c.Kind, err)
	case err != nil:
		slog.Warn("watches will read every tenant's history", "backend", c.Kind, "err", err)
	case c.Kind == "mysql":
		if err := mysqlKeysAsBytes(ctx, g); err != nil {
			return nil, "", err
		}
	case c.Kind == "postgres":
		if err := byteOrderKeys(ctx, g.DB); err != nil {
			return nil, "", err
		}
	}
	if err := b.Start(ctx); err != nil {
		return nil, "", fmt.Errorf("start %s backend: %w", c.Kind, err)
	}
	if c.Kind == "sqlite" {
		if err := startCheckpointer(ctx, wg, sqlitePath(endpoint), c.Registerer); err != nil {
			return nil, "", err
		}
	}
	if sb == nil {
		return b, cfg.Scheme, nil
	}
	served, err := sb.served(ctx, wg, c.Kind)
	if err != nil {
		return nil, "", fmt.Errorf("start %s backend: %w", c.Kind, err)
	}
	return served, cfg.Scheme, nil
}

// sqliteParams open the embedded database as kine does (WAL journal,
// normal sync: a commit is safe from a crash of the proxy, the log is
// synced at checkpoints; writes take the lock at BEGIN; prepared
// statements are kept per connection), with three differences: each
// connection has a cache of its own (a shared cache serialises readers
// behind the writer, and SQLite advises against it); the proxy
// checkpoints the log itself (checkpoint.go), so kine's checkpoint after
// compaction is turned off; and kine's VACUUM at start is too: it
// rewrote the whole file before the proxy served anyone (2.5 s for a
// 600 MiB file here, 2 ms without), with no way for a stop to end it,
// while the pages compaction frees are reused anyway.
const sqliteParams = "_journal=WAL&_synchronous=NORMAL&_busy_timeout=30000&_txlock=immediate&_stmt_cache_size=20&_kine_disable_compact_wal_checkpoint=1&_kine_disable_startup_vacuum=1"

func endpoint(c Config) (string, error) {
	switch c.Kind {
	case "sqlite", "":
		path := c.DSN
		if path == "" {
			if c.DataDir == "" {
				return "", fmt.Errorf("sqlite backend: --data-dir or --datastore-endpoint is required")
			}
			path = filepath.Join(c.DataDir, "state.db")
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return "", fmt.Errorf("sqlite backend: %w", err)
		}
		if !strings.Contains(path, "?") {
			path += "?" + sqliteParams
		}
		return "sqlite://" + path, nil
	case "postgres":
		if !strings.HasPrefix(c.DSN, "postgres://") && !strings.HasPrefix(c.DSN, "postgresql://") {
			return "", fmt.Errorf("postgres backend: --datastore-endpoint must be a postgres:// URL, got %q", c.DSN)
		}
		return c.DSN, nil
	case "mysql":
		if !strings.HasPrefix(c.DSN, "mysql://") {
			return "", fmt.Errorf("mysql backend: --datastore-endpoint must be a mysql:// URL such as mysql://root@tcp(127.0.0.1:3306)/kplex, got %q", c.DSN)
		}
		return c.DSN, nil
	default:
		return "", fmt.Errorf("backend %q: want one of %s", c.Kind, strings.Join(Kinds, ", "))
	}
}
