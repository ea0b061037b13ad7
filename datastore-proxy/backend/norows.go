package backend

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
)

// empty is a database of the proxy's own whose every query answers with
// no rows (noRows): a driver of a few lines, with no connection to lose
// and no cgo to need.
var empty = sql.OpenDB(emptyConnector{})

// noRows returns rows that hold none.
func noRows() (*sql.Rows, error) {
	return empty.QueryContext(context.Background(), "")
}

var errEmptyWrite = errors.New("kplex: the empty database takes no writes")

type emptyConnector struct{}

func (emptyConnector) Connect(context.Context) (driver.Conn, error) { return emptyConn{}, nil }
func (emptyConnector) Driver() driver.Driver                        { return emptyDriver{} }

type emptyDriver struct{}

func (emptyDriver) Open(string) (driver.Conn, error) { return emptyConn{}, nil }

type emptyConn struct{}

func (emptyConn) Prepare(string) (driver.Stmt, error) { return emptyStmt{}, nil }
func (emptyConn) Close() error                        { return nil }
func (emptyConn) Begin() (driver.Tx, error)           { return nil, errEmptyWrite }

type emptyStmt struct{}

func (emptyStmt) Close() error                               { return nil }
func (emptyStmt) NumInput() int                              { return -1 }
func (emptyStmt) Exec([]driver.Value) (driver.Result, error) { return nil, errEmptyWrite }
func (emptyStmt) Query([]driver.Value) (driver.Rows, error)  { return emptyRows{}, nil }

type emptyRows struct{}

func (emptyRows) Columns() []string         { return nil }
func (emptyRows) Close() error              { return nil }
func (emptyRows) Next([]driver.Value) error { return io.EOF }
