package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestStoreMigrateRefusedOnceMoved: once silo store migrate moved the
// data dir to PostgreSQL (store-moved.json), its state.db is out of date,
// and a second migrate into another, empty database is refused with one
// sentence naming the database the data dir moved to and what to do, and
// writes nothing there nor changes the record (must not); with the record
// removed on purpose (the documented way back), the same migrate copies
// the SQLite state as it was at the first migration (must).
func TestStoreMigrateRefusedOnceMoved(t *testing.T) {
	t.Parallel()
	first, second := pgtest.Fresh(t), pgtest.Fresh(t)
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("store", "migrate", "--to", first)
	c.ok("--store", first, "tenant", "create", "hooli") // on PostgreSQL only
	record := filepath.Join(c.dataDir, platform.StoreMovedFile)
	before, err := os.ReadFile(record)
	if err != nil {
		t.Fatal(err)
	}

	c.fails("the data dir "+c.dataDir+" already moved to PostgreSQL (postgres://postgres@127.0.0.1", "store", "migrate", "--to", second)
	_, _, errOut := c.run("store", "migrate", "--to", second)
	for _, want := range []string{"its state.db is out of date", "pass --store (or set $SILO_STORE) to that database", "follow docs/operations.md (removing store-moved.json)"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("second store migrate: %q, want %q", errOut, want)
		}
	}
	if strings.Count(strings.TrimSpace(errOut), "\n") != 0 {
		t.Errorf("second store migrate: %q, want one line", errOut)
	}
	if n := pgtest.Tables(t, second); n != 0 {
		t.Errorf("the refused migrate made %d tables in the second database, want none", n)
	}
	if after, err := os.ReadFile(record); err != nil || string(after) != string(before) {
		t.Errorf("%s after the refused migrate: %q (%v), want it unchanged: %q", platform.StoreMovedFile, after, err, before)
	}

	// Going back on purpose: without the record the data dir's state is
	// the fleet at the first migration, and migrating it works again.
	if err := os.Remove(record); err != nil {
		t.Fatal(err)
	}
	if out := c.ok("store", "migrate", "--to", second); !strings.Contains(out, "2 accounts") { // production and acme, not hooli
		t.Errorf("store migrate with %s removed: %s, want the 2 accounts of the SQLite state", platform.StoreMovedFile, out)
	}
	if out := c.ok("--store", second, "tenant", "list"); !strings.Contains(out, "acme") || strings.Contains(out, "hooli") {
		t.Errorf("tenant list on the second database: %s, want acme and not hooli (created on the first after the move)", out)
	}
}
