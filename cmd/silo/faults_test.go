package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/internal/localtest"
)

func (c *cli) accountFile(id, name string) string {
	return filepath.Join(localtest.AccountDir(c.dataDir, id), name)
}

// TestLostStateRefusesToStart: with the control-plane state gone and the
// accounts still on disk, commands refuse with how to restore instead of
// showing an empty fleet, and silo doctor says the same; before, the same
// commands list the tenants (the twin).
func TestLostStateRefusesToStart(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	if out := c.ok("tenant", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "globex") {
		t.Fatalf("tenant list before: %s", out)
	}
	if out := c.ok("doctor"); !strings.Contains(out, "no problem found in 3 account(s)") {
		t.Fatalf("doctor before: %s", out)
	}
	for _, f := range []string{"state.db", "state.db-wal", "state.db-shm"} {
		if err := os.Remove(filepath.Join(c.dataDir, f)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{{"tenant", "list"}, {"drift", "--all"}, {"verify"}} {
		c.fails("holds no accounts, but the provider holds 3", args...)
	}
	code, out, _ := c.run("doctor")
	if code == 0 || !strings.Contains(out, "restore") || !strings.Contains(out, "holds no accounts") {
		t.Fatalf("doctor after: exit %d, %s; want the lost registry and how to restore", code, out)
	}
}

// TestFleetCommandsGoOnPastABadAccount: acme's resource manifest is
// truncated and initech's table store too; drift --all and doctor report
// both with what to do and still report globex's drift (which sorts
// between them); before the damage both report nothing (the twin).
func TestFleetCommandsGoOnPastABadAccount(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for _, id := range []string{"acme", "globex", "initech"} {
		c.ok("tenant", "create", id)
	}
	if out := c.ok("drift", "--all"); !strings.Contains(out, "no drift in 4 account(s)") {
		t.Fatalf("drift before: %s", out)
	}
	// A new account's manifest is held in its account file (data.key) until
	// it is first written as its own file, as a key rotation does.
	c.ok("rotate", "data-key", "--all")
	// acme: a truncated manifest.
	m := c.accountFile("acme", "resources.json")
	b, err := os.ReadFile(m)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(m, b[:len(b)/2], 0o600); err != nil {
		t.Fatal(err)
	}
	// globex: the provider lost one resource (drift).
	g := c.accountFile("globex", "resources.json")
	var entries map[string]json.RawMessage
	if b, err = os.ReadFile(g); err != nil || json.Unmarshal(b, &entries) != nil {
		t.Fatalf("read %s: %v", g, err)
	}
	delete(entries, "config/plan")
	if b, err = json.Marshal(entries); err != nil || os.WriteFile(g, b, 0o600) != nil {
		t.Fatal("rewrite globex's manifest")
	}

	// initech: a table store truncated to 8 KiB.
	if err := os.Truncate(c.accountFile("initech", "data.db"), 8192); err != nil {
		t.Fatal(err)
	}

	code, out, errOut := c.run("drift", "--all")
	for _, want := range []string{"acme: account acme is out of service: its file resources.json is damaged", "globex: config/plan missing", "initech: account initech is out of service: its file data.db is damaged"} {
		if !strings.Contains(out, want) {
			t.Errorf("drift --all: stdout %q, want it to contain %q", out, want)
		}
	}
	if code == 0 || !strings.Contains(errOut, "2 problem(s)") {
		t.Errorf("drift --all: exit %d, stderr %q; want a failure counting the problem", code, errOut)
	}
	code, out, _ = c.run("doctor")
	if code == 0 || !strings.Contains(out, "resources.json") || !strings.Contains(out, "silo apply globex restores") || !strings.Contains(out, "initech: account initech is out of service: its file data.db is damaged") {
		t.Errorf("doctor: exit %d, %s; want acme's and initech's damage and globex's drift", code, out)
	}
}

// TestRotateAllGoesOnPastABadAccount: with acme's key ring damaged,
// rotate data-key --all rotates globex (after acme) and production, lists
// acme as not rotated with why, and exits non-zero; with nothing damaged
// every account is rotated (the twin).
func TestRotateAllGoesOnPastABadAccount(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	for _, id := range []string{"acme", "globex"} {
		c.ok("tenant", "create", id)
	}
	if out := c.ok("rotate", "data-key", "--all"); strings.Count(out, " rotated: ") != 3 {
		t.Fatalf("rotate --all before the damage: %s; want 3 accounts rotated", out)
	}
	k := c.accountFile("acme", "data.key")
	b, err := os.ReadFile(k)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-5] ^= 0xff
	if err := os.WriteFile(k, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := c.run("rotate", "data-key", "--all")
	if code == 0 || !strings.Contains(out, "data key of globex rotated") || !strings.Contains(out, "data key of acme NOT rotated") || !strings.Contains(out, "data.key is damaged") {
		t.Fatalf("rotate --all: exit %d\nstdout: %s\nstderr: %s\nwant globex rotated and acme listed as damaged", code, out, errOut)
	}
}

// TestDriftListsAccountsTheRegistryLost: with state.db restored from a
// backup older than the accounts (globex was created after it), drift
// --all and doctor list globex as held by the provider but not in the
// registry; with the matching state.db they list nothing (the twin).
func TestDriftListsAccountsTheRegistryLost(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	state := filepath.Join(c.dataDir, "state.db")
	old, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(state + "-wal"); err == nil {
		t.Skip("state.db keeps a WAL after the command ended; the copy would not be whole")
	}
	c.ok("tenant", "create", "globex")
	if out := c.ok("drift", "--all"); strings.Contains(out, "not in the registry") {
		t.Fatalf("drift with the matching state: %s", out)
	}
	if err := os.WriteFile(state, old, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, cmd := range []string{"drift", "doctor"} {
		args := []string{cmd}
		if cmd == "drift" {
			args = append(args, "--all")
		}
		code, out, _ := c.run(args...)
		if code == 0 || !strings.Contains(out, "globex: held by the provider but not in the registry") || strings.Contains(out, "acme: held") {
			t.Errorf("%s after restoring an older state.db: exit %d, %s; want globex listed, acme not", cmd, code, out)
		}
	}
}
