// Package pgtest gives tests outside store/postgres a PostgreSQL schema of
// their own on the database named by SILO_TEST_POSTGRES. It is for tests
// only; it imports pgx (it lives under store/postgres, which owns that
// dependency) and no silo package.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// DSN returns SILO_TEST_POSTGRES, or skips the test when it is not set.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("SILO_TEST_POSTGRES")
	if dsn == "" {
		t.Skip("set SILO_TEST_POSTGRES=postgres://... to run tests on PostgreSQL")
	}
	return dsn
}

// Fresh creates a schema of its own for one test, drops it when the test
// ends, and returns a DSN whose search_path selects it. It skips the test
// when SILO_TEST_POSTGRES is not set.
func Fresh(t testing.TB) string {
	t.Helper()
	dsn := DSN(t)
	var b [6]byte
	rand.Read(b[:])
	schema := "silo_test_" + hex.EncodeToString(b[:])
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to SILO_TEST_POSTGRES: %v", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+schema); err != nil {
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("connect to drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA "+schema+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return WithSearchPath(t, dsn, schema)
}

// WithSearchPath returns dsn with search_path set to schema.
func WithSearchPath(t testing.TB, dsn, schema string) string {
	t.Helper()
	if strings.Contains(dsn, "://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatalf("parse SILO_TEST_POSTGRES: %v", err)
		}
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		return u.String()
	}
	return dsn + " search_path=" + schema
}

// Exec runs one SQL statement on dsn, for tests that set up a state silo
// would not write itself (a schema version from a newer silo, say).
func Exec(t testing.TB, dsn, sql string) {
	t.Helper()
	withConn(t, dsn, func(ctx context.Context, conn *pgx.Conn) {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("exec %q: %v", sql, err)
		}
	})
}

// Tables counts the tables in the schema dsn's search_path selects.
func Tables(t testing.TB, dsn string) int {
	t.Helper()
	var n int
	QueryRow(t, dsn, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`, &n)
	return n
}

// QueryRow runs one query on dsn and scans its one row into dest, for tests
// that check what silo wrote.
func QueryRow(t testing.TB, dsn, sql string, dest ...any) {
	t.Helper()
	withConn(t, dsn, func(ctx context.Context, conn *pgx.Conn) {
		if err := conn.QueryRow(ctx, sql).Scan(dest...); err != nil {
			t.Fatalf("query %q: %v", sql, err)
		}
	})
}

// withConn calls fn with a connection to dsn, closed after.
func withConn(t testing.TB, dsn string, fn func(context.Context, *pgx.Conn)) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer conn.Close(ctx)
	fn(ctx, conn)
}

// FreshDatabase creates a database of its own for one test, drops it
// (with FORCE) when the test ends if the test has not dropped it, and
// returns a DSN that names it and its name, for tests that drop the
// database under a running silo. It skips the test when SILO_TEST_POSTGRES
// is not set.
func FreshDatabase(t testing.TB) (dsn, name string) {
	t.Helper()
	admin := DSN(t)
	var b [6]byte
	rand.Read(b[:])
	name = "silo_test_" + hex.EncodeToString(b[:])
	Exec(t, admin, "CREATE DATABASE "+name)
	t.Cleanup(func() {
		withConn(t, admin, func(ctx context.Context, conn *pgx.Conn) {
			if _, err := conn.Exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
				t.Errorf("drop database %s: %v", name, err)
			}
		})
	})
	if !strings.Contains(admin, "://") {
		return admin + " dbname=" + name, name
	}
	u, err := url.Parse(admin)
	if err != nil {
		t.Fatalf("parse SILO_TEST_POSTGRES: %v", err)
	}
	u.Path = "/" + name
	return u.String(), name
}

// DropDatabase drops the database name (see FreshDatabase), ending the
// connections other clients hold to it.
func DropDatabase(t testing.TB, name string) {
	t.Helper()
	Exec(t, DSN(t), "DROP DATABASE "+name+" WITH (FORCE)")
}

// Hold runs sql (a lock: LOCK TABLE, pg_advisory_xact_lock) in a
// transaction of its own connection to dsn and keeps the transaction open
// until the returned func (or the test's end) rolls it back, so that a test
// can make silo wait on that lock at a point of its choosing.
func Hold(t testing.TB, dsn, sql string) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	tx, err := conn.Begin(ctx)
	if err == nil {
		_, err = tx.Exec(ctx, sql)
	}
	if err != nil {
		conn.Close(ctx)
		t.Fatalf("hold %q: %v", sql, err)
	}
	done := false
	release = func() {
		if done {
			return
		}
		done = true
		tx.Rollback(ctx)
		conn.Close(ctx)
	}
	t.Cleanup(release)
	return release
}
