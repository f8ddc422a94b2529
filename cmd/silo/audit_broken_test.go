package main

import (
	"database/sql"
	"path/filepath"
	"strings"
	"testing"

	_ "github.com/silo-run/silo/store/sqlite" // registers the "sqlite" driver
)

// TestBrokenAuditLogIsSaid: with the audit log intact, silo doctor finds
// nothing and the isolation report says the log verified up to its last
// entry. After an entry is edited in state.db (silo stopped, as someone
// who can write the data dir would), doctor reports the broken log and
// exits non-zero, and the report, still made and signed, says the log is
// NOT intact instead.
func TestBrokenAuditLogIsSaid(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	if out := c.ok("doctor"); !strings.Contains(out, "no problem found") {
		t.Fatalf("doctor on an intact log: %s", out)
	}
	out := c.ok("report", "acme")
	if !strings.Contains(out, "which was verified intact, up to its last recorded entry, when this report was made") || strings.Contains(out, "NOT intact") {
		t.Errorf("report on an intact log says:\n%s", out)
	}

	db, err := sql.Open("sqlite", filepath.Join(c.dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`UPDATE audit SET actor = 'cli:mallory' WHERE seq = 2`)
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 1 {
		t.Fatalf("edited %d audit rows, want 1", n)
	}

	code, stdout, _ := c.run("doctor")
	if code != 1 || !strings.Contains(stdout, "audit log is not intact: audit entry 2: content does not match its hash") {
		t.Errorf("doctor on a broken log: exit %d, %s; want exit 1 naming the edited entry", code, stdout)
	}
	out = c.ok("report", "acme")
	if !strings.Contains(out, "The operators' audit log is NOT intact: when this report was made, the check of its hash chain failed") || strings.Contains(out, "verified intact") {
		t.Errorf("report on a broken log says:\n%s", out)
	}
}
