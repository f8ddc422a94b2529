package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testDB opens a database through the store's connector on one
// connection, with a table of n rows (x = 1..n).
func testDB(t *testing.T, n int) (*sql.DB, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "state.db")
	db := openDB(path)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	if _, err := db.Exec(`CREATE TABLE t (x INTEGER PRIMARY KEY)`); err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= n; i++ {
		if _, err := db.Exec(`INSERT INTO t (x) VALUES (?)`, i); err != nil {
			t.Fatal(err)
		}
	}
	return db, path
}

// kept reports the connection's kept statements, how many it prepared to
// keep and how many runs they served.
func kept(t *testing.T, db *sql.DB) (stmts, prepared, runs int) {
	t.Helper()
	c, err := db.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	err = c.Raw(func(dc any) error {
		sc, ok := dc.(*stmtConn)
		if !ok {
			return fmt.Errorf("the connection is a %T, not a *stmtConn", dc)
		}
		stmts, prepared, runs = len(sc.stmts), sc.prepared, sc.runs
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return stmts, prepared, runs
}

// TestStatementsKept: a text run again is not prepared again, in and out
// of transactions, and a statement that failed (a constraint, a query's
// error) is reset and used again.
func TestStatementsKept(t *testing.T) {
	db, _ := testDB(t, 3)
	_, before, runs := kept(t, db)
	for i := range 20 {
		var x int
		if err := db.QueryRow(`SELECT x FROM t WHERE x = ?`, i%3+1).Scan(&x); err != nil || x != i%3+1 {
			t.Fatalf("read %d: %d, %v", i%3+1, x, err)
		}
		tx, err := db.Begin()
		if err != nil {
			t.Fatal(err)
		}
		if err := tx.QueryRow(`SELECT x FROM t WHERE x = ?`, i%3+1).Scan(&x); err != nil {
			t.Fatal(err)
		}
		if err := tx.Rollback(); err != nil {
			t.Fatal(err)
		}
	}
	if _, after, ran := kept(t, db); after != before+1 || ran != runs+40 {
		t.Fatalf("40 reads of one text prepared %d statements to keep and ran a kept one %d times, want 1 and 40", after-before, ran-runs)
	}

	// A failed insert (the key exists), then the same text succeeds on
	// the same statement.
	if _, err := db.Exec(`INSERT INTO t (x) VALUES (?)`, 1); err == nil || !strings.Contains(err.Error(), "UNIQUE") {
		t.Fatalf("insert of an existing key: %v, want a UNIQUE constraint error", err)
	}
	_, before, runs = kept(t, db)
	if _, err := db.Exec(`INSERT INTO t (x) VALUES (?)`, 4); err != nil {
		t.Fatalf("insert after a failed one: %v", err)
	}
	// A query that fails while it runs, then the same text answers.
	const div = `SELECT 10 / x FROM t WHERE x = ? AND abs(?) >= 0`
	var q int
	if err := db.QueryRow(div, 1, -9223372036854775808).Scan(&q); err == nil || !strings.Contains(err.Error(), "overflow") {
		t.Fatalf("query that overflows: %v, want an integer overflow error", err)
	}
	if err := db.QueryRow(div, 2, 1).Scan(&q); err != nil || q != 5 {
		t.Fatalf("same query after its failure: %d, %v; want 5", q, err)
	}
	if err := db.QueryRow(div, 2, 1).Scan(&q); err != nil || q != 5 {
		t.Fatalf("same query again: %d, %v; want 5", q, err)
	}
	if _, after, ran := kept(t, db); after != before+1 || ran != runs+4 {
		t.Fatalf("the insert again and a query run three times prepared %d statements to keep and ran a kept one %d times, want 1 (the query's) and 4", after-before, ran-runs)
	}
}

// TestNestedQuerySameText: while the rows of a query are open, the same
// text runs as a statement of its own; reusing the kept one would reset
// the rows being read and the outer loop would start over or stop.
func TestNestedQuerySameText(t *testing.T) {
	db, _ := testDB(t, 5)
	const q = `SELECT x FROM t WHERE x >= ? ORDER BY x`
	tx, err := db.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	rows, err := tx.Query(q, 1)
	if err != nil {
		t.Fatal(err)
	}
	var outer []int
	for rows.Next() {
		var x, first int
		if err := rows.Scan(&x); err != nil {
			t.Fatal(err)
		}
		outer = append(outer, x)
		if err := tx.QueryRow(q, x).Scan(&first); err != nil || first != x {
			t.Fatalf("nested query from %d: %d, %v", x, first, err)
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(outer) != "[1 2 3 4 5]" {
		t.Fatalf("outer rows %v, want [1 2 3 4 5]", outer)
	}
}

// TestStatementsBounded: a connection keeps at most maxStmts statements;
// texts past that still answer, each prepared for its run.
func TestStatementsBounded(t *testing.T) {
	db, _ := testDB(t, 1)
	for i := range maxStmts + 20 {
		var v int
		if err := db.QueryRow(fmt.Sprintf(`SELECT x + %d FROM t`, i)).Scan(&v); err != nil || v != i+1 {
			t.Fatalf("text %d: %d, %v", i, v, err)
		}
	}
	if n, _, _ := kept(t, db); n != maxStmts {
		t.Fatalf("the connection keeps %d statements, want %d", n, maxStmts)
	}
}

// TestCloseReleasesFile: closing a connection finalizes the statements it
// kept, so SQLite closes the database and its file. With a statement left
// unfinalized SQLite only marks the connection closed and keeps the file
// open: a process that opened and closed the store would keep it open.
func TestCloseReleasesFile(t *testing.T) {
	if _, err := os.Stat("/proc/self/fd"); err != nil {
		t.Skip("needs /proc/self/fd")
	}
	db, path := testDB(t, 3)
	var x int
	if err := db.QueryRow(`SELECT x FROM t WHERE x = ?`, 2).Scan(&x); err != nil {
		t.Fatal(err)
	}
	if n, _, _ := kept(t, db); n == 0 {
		t.Fatal("no statement kept before Close; the test proves nothing")
	}
	if open := openFiles(t, path); open == 0 {
		t.Fatal("the database file is not open before Close; the test proves nothing")
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if open := openFiles(t, path); open != 0 {
		t.Fatalf("%d descriptors of %s open after Close, want 0", open, filepath.Base(path))
	}
}

// openFiles counts this process's descriptors open on path or its -wal
// and -shm files.
func openFiles(t *testing.T, path string) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, path) {
			n++
		}
	}
	return n
}
