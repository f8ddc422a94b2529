package sqlite

import (
	"context"
	"database/sql/driver"
	"errors"
)

// Each connection keeps the statements it ran.
//
// The driver parses and plans every statement it is given (prepare), and
// database/sql hands it a statement's text on every query of a
// transaction, so a point read such as the gateway's limit override was
// about half preparing: a read of a tenant's limits on its first request
// after an idle spell spent 0.14 of its 0.26 ms of CPU in the parser.
//
// So every connection is a stmtConn: it keeps the statements it prepared,
// by their text, and runs one again after the driver reset it (bindings
// cleared, no lock held). A statement kept is used by one query at a time:
// while the rows of a query are open, the same text runs as a statement
// of its own (prepared and finalized as before), so a nested query of the
// same text never resets the rows being read. A connection keeps at most
// maxStmts statements (the store has about 50 texts, a few of them built
// from a filter's fields); past that it prepares each new text every
// time, as before. Closing the connection finalizes what it kept first, so
// that SQLite really closes it (a connection with statements left open is
// only marked closed and keeps its file open).

// maxStmts is how many statements one connection keeps.
const maxStmts = 128

// driverConn is what database/sql uses of the driver's connection.
type driverConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
}

// driverStmt is what a kept statement is run through.
type driverStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
}

// stmtConn is a driver connection that keeps its prepared statements.
// database/sql makes one call at a time on a connection, under its own
// lock (closing a query's rows from the goroutine that watches the
// query's context included), so it needs no lock of its own.
type stmtConn struct {
	driverConn
	stmts map[string]*keptStmt
	// for tests: statements prepared to be kept, and runs of a kept one
	prepared, runs int
}

type keptStmt struct {
	s    driverStmt
	busy bool // a query's rows are open on it
}

// wrapConn returns c keeping its statements, or c itself if the driver's
// connection lacks an interface database/sql would use.
func wrapConn(c driver.Conn) driver.Conn {
	dc, ok := c.(driverConn)
	if !ok {
		return c
	}
	return &stmtConn{driverConn: dc, stmts: map[string]*keptStmt{}}
}

// take returns q's kept statement, marked busy, preparing and keeping it
// if need be; nil (and no error) if q must run as a statement of its own:
// its statement is busy, or the connection keeps enough already.
func (c *stmtConn) take(ctx context.Context, q string) (*keptStmt, error) {
	k := c.stmts[q]
	if k == nil {
		if len(c.stmts) >= maxStmts {
			return nil, nil
		}
		s, err := c.PrepareContext(ctx, q)
		if err != nil {
			return nil, err
		}
		ds, ok := s.(driverStmt)
		if !ok {
			s.Close()
			return nil, nil
		}
		k = &keptStmt{s: ds}
		c.stmts[q] = k
		c.prepared++
	}
	if k.busy {
		return nil, nil
	}
	k.busy = true
	c.runs++
	return k, nil
}

func (c *stmtConn) ExecContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Result, error) {
	k, err := c.take(ctx, q)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return c.driverConn.ExecContext(ctx, q, args)
	}
	defer func() { k.busy = false }()
	return k.s.ExecContext(ctx, args)
}

func (c *stmtConn) QueryContext(ctx context.Context, q string, args []driver.NamedValue) (driver.Rows, error) {
	k, err := c.take(ctx, q)
	if err != nil {
		return nil, err
	}
	if k == nil {
		return c.driverConn.QueryContext(ctx, q, args)
	}
	r, err := k.s.QueryContext(ctx, args)
	if err != nil {
		k.busy = false
		return nil, err
	}
	return &keptRows{Rows: r, k: k}, nil
}

// Close finalizes the kept statements, then closes the connection.
func (c *stmtConn) Close() error {
	var errs []error
	for q, k := range c.stmts {
		errs = append(errs, k.s.Close())
		delete(c.stmts, q)
	}
	return errors.Join(append(errs, c.driverConn.Close())...)
}

// keptRows frees its statement for the next query when closed (the
// driver resets the statement then).
type keptRows struct {
	driver.Rows
	k *keptStmt
}

func (r *keptRows) Close() error {
	err := r.Rows.Close()
	r.k.busy = false
	return err
}
