package main

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

// TestStateFileCheckedByDoctor: a command opens state.db by reading its
// header and schema only, so damage to a page it does not read goes
// unnoticed by it, and silo doctor and silo audit verify, which read every
// page, refuse the file with what to do. Damage to the pages a command
// reads is refused by that command. Each on an intact copy first: the
// controls.
func TestStateFileCheckedByDoctor(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	os.MkdirAll(c.dataDir, 0o700)
	c.ok("tenant", "list") // creates the state file, every table empty
	state := filepath.Join(c.dataDir, "state.db")
	intact, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	const page = 4096
	if len(intact)%page != 0 || len(intact) < 4*page {
		t.Fatalf("state.db is %d bytes, want whole %d-byte pages, at least 4", len(intact), page)
	}
	damage := func(from, to int) []byte {
		b := bytes.Clone(intact)
		for i := from; i < to; i++ {
			b[i] = byte(i*7 + 1)
		}
		if err := os.WriteFile(state, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, cmd := range [][]string{{"tenant", "list"}, {"doctor"}, {"audit", "verify"}} {
		c.ok(cmd...)
	}

	// The last page: a table tenant list does not read.
	b := damage(len(intact)-page, len(intact))
	c.ok("tenant", "list")
	c.fails("is corrupted", "doctor")
	c.fails("is corrupted", "audit", "verify")
	if got, _ := os.ReadFile(state); !bytes.Equal(got, b) {
		t.Fatal("the damaged state file was modified")
	}

	// Every page but the first (header and schema): tenant list meets it.
	b = damage(page, len(intact))
	c.fails("is corrupted", "tenant", "list")
	c.fails("is corrupted", "doctor")
	if got, _ := os.ReadFile(state); !bytes.Equal(got, b) {
		t.Fatal("the damaged state file was modified")
	}
}
