package sqlite

import (
	"context"
	"database/sql"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/storetest"
)

// TestCopyCopiesEveryTable guards silo store migrate against a table it
// forgets: every table of a freshly created state database (read from
// sqlite_master, so a table a new migration adds is in it) must be one
// store.Copy counts (Copied.Tables), must hold a row in the source
// storetest.FillEveryTable makes (so the fixture is extended with the
// table), and must hold in the copy as many rows as in the source.
func TestCopyCopiesEveryTable(t *testing.T) {
	ctx := context.Background()
	src, dst := openTemp(t), openTemp(t)
	defer src.Close()
	defer dst.Close()
	storetest.FillEveryTable(t, src)
	n, err := store.Copy(ctx, dst, src)
	if err != nil {
		t.Fatalf("Copy: %v", err)
	}
	tables := tableNames(t, dst.path)
	copied := n.Tables()
	var counted []string
	for name := range copied {
		counted = append(counted, name)
	}
	slices.Sort(counted)
	if d := cmp.Diff(tables, counted); d != "" {
		t.Fatalf("the tables of the SQLite schema (-) and the tables store.Copy copies (+) differ; copy the new table in store.Copy and count it in Copied.Tables:\n%s", d)
	}
	for _, name := range tables {
		in, out := rowCount(t, src.path, name), rowCount(t, dst.path, name)
		if in == 0 {
			t.Errorf("table %s: the source holds no row; make storetest.FillEveryTable write one, so that its copy is tested", name)
		}
		if out != in || copied[name] != in {
			t.Errorf("table %s: %d rows in the source, %d in the copy, Copy counted %d", name, in, out, copied[name])
		}
	}
}

// tableNames lists the tables of the state database at path, but SQLite's
// own (sqlite_sequence).
func tableNames(t *testing.T, path string) []string {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\_%' ESCAPE '\' ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func rowCount(t *testing.T, path, table string) int {
	t.Helper()
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var n int
	// The name comes from sqlite_master.
	if err := db.QueryRow(`SELECT count(*) FROM "` + table + `"`).Scan(&n); err != nil {
		t.Fatalf("count rows of %s: %v", table, err)
	}
	return n
}
