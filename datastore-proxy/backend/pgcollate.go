package backend

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// Why PostgreSQL's key column is checked: etcd's keys are compared byte by
// byte, and kine creates its table with `name text COLLATE "C"`, which
// does so. A table made by an older kine, or by hand, has the database's
// collation instead (kine's own change to "C" is a migration it runs only
// with KINE_SCHEMA_MIGRATION set), and a locale's collation orders keys
// otherwise: "/registry/B" after "/registry/a", punctuation weighed last.
// A tenant's range then missed keys inside it and took in keys outside it
// (the proxy drops those from lists and events, but a count counted them,
// other tenants' among them), and a list a page at a time skipped keys.
// So before serving, the proxy gives the column kine's collation, as
// kine's migration does: once, and again it is a no-op. The ALTER
// rebuilds the column's indexes, holding the table's writes while it runs
// (logged, with the time it took).

// byteOrderKeys gives the name column of kine's PostgreSQL table in db the
// "C" collation, unless it has it (or POSIX, the same).
func byteOrderKeys(ctx context.Context, db *sql.DB) error {
	var database string
	var collation sql.NullString
	err := db.QueryRowContext(ctx, `SELECT current_database(), collation_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name = 'kine' AND column_name = 'name'`).Scan(&database, &collation)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("postgres backend: kine's table has no name column")
	case err != nil:
		return fmt.Errorf("postgres backend: read the key column's collation: %w", err)
	case collation.String == "C" || collation.String == "POSIX":
		return nil
	}
	was := collation.String
	if !collation.Valid {
		was = "the database's default"
	}
	return alterKeyColumn(ctx, db, "postgres", database, was,
		`ALTER TABLE kine ALTER COLUMN name SET DATA TYPE TEXT COLLATE "C" USING name::TEXT COLLATE "C"`,
		`give kine's key column the "C" collation`, "comparing keys byte by byte as etcd does; this rebuilds its indexes once",
		`kine's key column has the "C" collation`)
}
