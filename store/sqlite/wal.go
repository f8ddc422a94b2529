package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"reflect"

	"modernc.org/libc"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

// The write-ahead log outlives the process.
//
// SQLite checkpoints the log into the database file when the last
// connection to it closes, and deletes it: two syncs (the log, then the
// database file). The next process that writes starts a new log, whose
// header it syncs, and its first sync of the log also syncs the directory
// that holds it. A short-lived command (silo tenant create) paid those
// four syncs on top of its own commits: more than its commits.
//
// So connections are opened with SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE: closing
// leaves state.db-wal in place, and the next process appends to it. No
// commit is less durable: every commit is synced in the log
// (synchronous=FULL) before it is reported, and SQLite reads the log back
// when it opens the database, as after a crash. The log is still
// checkpointed while it grows (every 1,000 pages by default, on the
// commit that crosses it), so it stays a few MiB; a schema migration is
// checkpointed at once, so the database file holds its schema.
// state.db-wal is part of the state from now on: a copy of state.db alone
// misses the commits since the last checkpoint (docs/operations.md says to
// copy the whole data dir).
//
// The other price is paid at open: the first connection of a process
// reads the log back to rebuild its index, about 2 ms more for a 3 MiB log
// than for a checkpointed one (BenchmarkOpenWithLog), once per process.
// Reads after that cost the same (docs/benchmarks.md, "Onboarding").

// connector opens connections through drv, whose hook turns the checkpoint
// at close off on each, and makes each keep its statements
// (stmtcache.go).
type connector struct {
	drv *sqlite.Driver
	dsn string
}

func (c connector) Connect(context.Context) (driver.Conn, error) {
	conn, err := c.drv.Open(c.dsn)
	if err != nil {
		return nil, err
	}
	return wrapConn(conn), nil
}

func (c connector) Driver() driver.Driver { return c.drv }

// openDB is sql.Open("sqlite", dsn) with the checkpoint at close turned off
// on every connection.
func openDB(dsn string) *sql.DB {
	drv := &sqlite.Driver{}
	drv.RegisterConnectionHook(func(c sqlite.ExecQuerierContext, _ string) error {
		noCheckpointOnClose(c)
		return nil
	})
	return sql.OpenDB(connector{drv: drv, dsn: dsn})
}

// noCheckpointOnClose sets SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE on the driver's
// connection c and reports whether it could. The driver does not export
// sqlite3_db_config, so the connection's handle is read from the fields of
// the driver's connection (db, tls); if a driver version names them
// otherwise, the connection keeps SQLite's default (a checkpoint at close:
// slower, as durable), and TestLogOutlivesClose fails.
func noCheckpointOnClose(c any) bool {
	v := reflect.ValueOf(c)
	if v.Kind() != reflect.Pointer || v.Elem().Kind() != reflect.Struct {
		return false
	}
	db, tls := v.Elem().FieldByName("db"), v.Elem().FieldByName("tls")
	if !db.IsValid() || db.Kind() != reflect.Uintptr || !tls.IsValid() || tls.Type() != reflect.TypeFor[*libc.TLS]() || tls.IsNil() {
		return false
	}
	t := (*libc.TLS)(tls.UnsafePointer())
	args := libc.Xmalloc(t, 16)
	if args == 0 {
		return false
	}
	defer libc.Xfree(t, args)
	rc := sqlite3.Xsqlite3_db_config(t, uintptr(db.Uint()), sqlite3.SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, libc.VaList(args, int32(1), uintptr(0)))
	return rc == sqlite3.SQLITE_OK
}
