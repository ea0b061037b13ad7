package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/k3s-io/kine/pkg/drivers/generic"
	"github.com/k3s-io/kine/pkg/server"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Why MySQL's key column is changed: kine creates its table with
// `name VARCHAR(630) CHARACTER SET ascii`, whose default collation
// (ascii_general_ci) compares names case-insensitively and pads them with
// spaces. A tenant's "/registry/roles/ns/Admin" and ".../admin" were one
// key (creating the second answered that it existed, and reading it
// returned the first), so were "a" and "a ", and a key with a byte past
// 0x7f failed with a collation error. etcd's keys are bytes compared byte
// by byte, as SQLite's and PostgreSQL's (COLLATE "C") are in kine's other
// tables. binaryKeyColumn makes the column VARBINARY(630): the same bytes,
// compared as bytes, in kine's own queries unchanged.
//
// It runs once per database, before the proxy serves from it, and again
// is a no-op. The ALTER rewrites the table: on an existing large table it
// holds the table's writes for as long as that takes (logged, with the
// time it took), as any migration of kine's schema would.

// mysqlKeysAsBytes makes kine's MySQL table and dialect (g) keep and
// compare keys as bytes, before kine serves anything: the column
// (binaryKeyColumn) and a range's start (below).
func mysqlKeysAsBytes(ctx context.Context, g *generic.Generic) error {
	if err := binaryKeyColumn(ctx, g.DB); err != nil {
		return err
	}
	// kine also rewrites a range's start that ends in "\x00" (the least
	// key after another: kube-apiserver's continue, and etcdctl's) to end
	// in "#", as its collation sorted "\x00" before the key it follows: a
	// list a page at a time skipped every key that follows the last one
	// with a byte below '#' (" ", "!", control bytes). On the binary column
	// the start goes as it is. PostgreSQL's kine has the same rewrite
	// (pgkeys.go).
	g.TranslateStartKeyFunc = nil
	return nil
}

// binaryKeyColumn changes the name column of kine's MySQL table in db to
// VARBINARY, unless it is already.
func binaryKeyColumn(ctx context.Context, db *sql.DB) error {
	var database, typ string
	err := db.QueryRowContext(ctx, `SELECT DATABASE(), DATA_TYPE FROM information_schema.COLUMNS
		WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = 'kine' AND COLUMN_NAME = 'name'`).Scan(&database, &typ)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("mysql backend: kine's table has no name column")
	case err != nil:
		return fmt.Errorf("mysql backend: read the key column's type: %w", err)
	case strings.EqualFold(typ, "varbinary"):
		return nil
	}
	return alterKeyColumn(ctx, db, "mysql", database, typ, "ALTER TABLE kine MODIFY name VARBINARY(630)",
		"make kine's key column VARBINARY", "compared byte by byte as etcd's keys; this rewrites the table once",
		"kine's key column is VARBINARY")
}

// alterKeyColumn runs alter, the change of kine's key column in kind's
// database that what says (the column was was), logging it before (with
// why) and after (done, with the time it took): a change that holds the
// table's writes while it runs.
func alterKeyColumn(ctx context.Context, db *sql.DB, kind, database, was, alter, what, why, done string) error {
	log := slog.With("backend", kind, "database", database, "was", was)
	log.Info(what + ", " + why)
	start := time.Now()
	if _, err := db.ExecContext(ctx, alter); err != nil {
		return fmt.Errorf("%s backend: %s: %w", kind, what, err)
	}
	log.Info(done, "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// mysqlKeyBytes is how long a key kine's MySQL column holds.
const mysqlKeyBytes = 630

// errLongKey refuses a key the column cannot hold: a server in strict mode
// (MariaDB's default) refuses it too, and one without would store the
// key's first mysqlKeyBytes bytes, the name of another key.
var errLongKey = status.Error(codes.InvalidArgument, fmt.Sprintf("kplex: the mysql backend keeps keys of at most %d bytes, the tenant's prefix included", mysqlKeyBytes))

// binaryKeys is a MySQL backend that refuses to write a key longer than
// its column. A longer key never exists there, so reads and deletes of
// one find nothing as they are.
type binaryKeys struct {
	*sqlBackend
}

func (b binaryKeys) Create(ctx context.Context, key string, value []byte, lease int64) (int64, error) {
	if len(key) > mysqlKeyBytes {
		return 0, errLongKey
	}
	return b.sqlBackend.Create(ctx, key, value, lease)
}

func (b binaryKeys) Update(ctx context.Context, key string, value []byte, revision, lease int64) (int64, *server.KeyValue, bool, error) {
	if len(key) > mysqlKeyBytes {
		return 0, nil, false, errLongKey
	}
	return b.sqlBackend.Update(ctx, key, value, revision, lease)
}
