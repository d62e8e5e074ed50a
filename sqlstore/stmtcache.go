package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"reflect"
	"sync"
)

// A modernc.org/sqlite connection parses and plans the SQL of every Exec
// and Query call anew, even when the same text ran a moment before: at
// 1,000 msg/s that was about a tenth of `parley serve`'s CPU
// (docs/benchmarks.md, "Where the time goes"). Each connection opened by
// Open therefore keeps the statements it has prepared, by SQL text, and
// runs them again: Parley's stores use a fixed set of statements, so this
// is the prepared-statement set of every store without any store having to
// hold one. A statement whose rows are still being read is not shared: a
// nested query of the same text prepares a statement of its own.

// stmtCacheSize bounds the statements one connection keeps; texts beyond
// it are prepared for each call as before.
const stmtCacheSize = 512

// cachingConnector opens modernc.org/sqlite connections that keep their
// prepared statements.
type cachingConnector struct {
	dsn  string
	base driver.Driver
}

// registeredSQLite is the driver modernc.org/sqlite registers as "sqlite"
// (with the package-level functions and hooks; a constructed one has none).
func registeredSQLite() (driver.Driver, error) {
	db, err := sql.Open("sqlite", "")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return db.Driver(), nil
}

func (c cachingConnector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.base.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	sc, ok := conn.(sqliteConn)
	if !ok {
		conn.Close()
		return nil, errors.New("sqlstore: the sqlite driver's connection lacks a context method this package relies on")
	}
	return &stmtCacheConn{sqliteConn: sc, stmts: map[string]*cachedStmt{}}, nil
}

func (c cachingConnector) Driver() driver.Driver { return c.base }

// sqliteConn is what database/sql uses of a modernc.org/sqlite connection.
type sqliteConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// stmtCacheConn is one connection with its prepared statements. database/sql
// never uses one connection from two goroutines at once; the mutex keeps
// the map safe anyway (rows may be closed from a finalizer's goroutine).
type stmtCacheConn struct {
	sqliteConn
	mu    sync.Mutex
	stmts map[string]*cachedStmt
}

type cachedStmt struct {
	stmt  driver.Stmt
	inUse bool // rows of this statement are open
}

// take returns the connection's statement for query, prepared on first
// use, and marks it in use; nil when it is in use already or the cache is
// full (the caller then runs query the driver's own way).
func (c *stmtCacheConn) take(ctx context.Context, query string) (*cachedStmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	cs, ok := c.stmts[query]
	if ok {
		if cs.inUse {
			return nil, nil
		}
		cs.inUse = true
		return cs, nil
	}
	if len(c.stmts) >= stmtCacheSize {
		return nil, nil
	}
	st, err := c.sqliteConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	cs = &cachedStmt{stmt: st, inUse: true}
	c.stmts[query] = cs
	return cs, nil
}

func (c *stmtCacheConn) release(cs *cachedStmt) {
	c.mu.Lock()
	cs.inUse = false
	c.mu.Unlock()
}

// ExecContext runs query through the connection's prepared statement.
func (c *stmtCacheConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	cs, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.sqliteConn.ExecContext(ctx, query, args)
	}
	defer c.release(cs)
	return cs.stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

// QueryContext runs query through the connection's prepared statement;
// the statement is shared again once its rows are closed.
func (c *stmtCacheConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	cs, err := c.take(ctx, query)
	if err != nil {
		return nil, err
	}
	if cs == nil {
		return c.sqliteConn.QueryContext(ctx, query, args)
	}
	rows, err := cs.stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
	if err != nil {
		c.release(cs)
		return nil, err
	}
	return &cachedRows{Rows: rows, release: func() { c.release(cs) }}, nil
}

// Close finalizes the kept statements, then closes the connection.
func (c *stmtCacheConn) Close() error {
	c.mu.Lock()
	var errs []error
	for q, cs := range c.stmts {
		errs = append(errs, cs.stmt.Close())
		delete(c.stmts, q)
	}
	c.mu.Unlock()
	errs = append(errs, c.sqliteConn.Close())
	return errors.Join(errs...)
}

// cachedRows hands its statement back when closed and passes the column
// type questions database/sql may ask to the driver's rows.
type cachedRows struct {
	driver.Rows
	release func()
	once    sync.Once
}

func (r *cachedRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(r.release)
	return err
}

func (r *cachedRows) ColumnTypeDatabaseTypeName(i int) string {
	if t, ok := r.Rows.(driver.RowsColumnTypeDatabaseTypeName); ok {
		return t.ColumnTypeDatabaseTypeName(i)
	}
	return ""
}

func (r *cachedRows) ColumnTypeNullable(i int) (nullable, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeNullable); ok {
		return t.ColumnTypeNullable(i)
	}
	return false, false
}

func (r *cachedRows) ColumnTypeScanType(i int) reflect.Type {
	if t, ok := r.Rows.(driver.RowsColumnTypeScanType); ok {
		return t.ColumnTypeScanType(i)
	}
	return reflect.TypeFor[any]()
}

func (r *cachedRows) ColumnTypeLength(i int) (length int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypeLength); ok {
		return t.ColumnTypeLength(i)
	}
	return 0, false
}

func (r *cachedRows) ColumnTypePrecisionScale(i int) (precision, scale int64, ok bool) {
	if t, ok := r.Rows.(driver.RowsColumnTypePrecisionScale); ok {
		return t.ColumnTypePrecisionScale(i)
	}
	return 0, 0, false
}
