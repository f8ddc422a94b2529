package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// stateFiles are the control-plane state files of a SQLite data dir: what
// a restore of "state.db from a backup" puts back.
var stateFiles = []string{"state.db", "state.db-wal", "state.db-shm", "audit.witness"}

// copyState copies the control-plane state files of data dir from into
// data dir to, removing those to has and from has not.
func copyState(t *testing.T, from, to string) {
	t.Helper()
	for _, name := range stateFiles {
		if err := os.Remove(filepath.Join(to, name)); err != nil && !os.IsNotExist(err) {
			t.Fatal(err)
		}
		b, err := os.ReadFile(filepath.Join(from, name))
		if os.IsNotExist(err) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(to, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// dataKeyOf returns the fingerprint of account id's data key (silo tenant
// show).
func dataKeyOf(c *cli, id string) string {
	c.t.Helper()
	var d struct {
		DataKey struct {
			Fingerprint string `json:"fingerprint"`
		} `json:"data_key"`
	}
	if err := json.Unmarshal([]byte(c.ok("tenant", "show", id, "-o", "json")), &d); err != nil || d.DataKey.Fingerprint == "" {
		c.t.Fatalf("tenant show %s: no data key fingerprint (%v)", id, err)
	}
	return d.DataKey.Fingerprint
}

// TestCreateRefusesAnOrphan: after restoring an older state.db, the
// provider holds an account (zed) the registry does not know. silo doctor
// names it with both ways out; creating a tenant or an environment under
// its ID is refused with one sentence, and changes neither the registry,
// the audit log nor zed's files (it never adopts the old account's data
// key). silo orphan destroy refuses without --yes and for an account the
// registry knows; with --yes it destroys zed, audited, and then (the
// must twin) silo tenant create zed makes a new account with a new data
// key, and doctor is clean.
func TestCreateRefusesAnOrphan(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "first")
	backup := t.TempDir()
	copyState(t, c.dataDir, backup)
	c.ok("tenant", "create", "zed")
	oldKey := dataKeyOf(c, "zed")
	copyState(t, backup, c.dataDir) // the restore: zed is now an orphan
	keyFile := filepath.Join(localtest.AccountDir(c.dataDir, "zed"), "data.key")
	files := func() string {
		b, err := os.ReadFile(keyFile)
		if err != nil {
			t.Fatalf("zed's data key file: %v", err)
		}
		return string(b)
	}
	state := func() string { // the registry, the audit log and zed's files
		return c.ok("tenant", "list", "--kind", "all", "--all", "-o", "json") + c.ok("audit", "list", "-o", "json") + files()
	}

	code, out, _ := c.run("doctor")
	const fix = "zed: held by the provider but not in the registry; restore the control-plane state that has it (docs/operations.md), or, if its data is not wanted, destroy it with silo orphan destroy zed --yes"
	if code == 0 || !strings.Contains(out, fix) {
		t.Fatalf("doctor with the orphan zed: exit %d\n%s\nwant %q", code, out, fix)
	}
	before := state()
	const refusal = "silo: the provider already holds an account named zed that the registry does not know: restore the control-plane state that has it (docs/operations.md), or destroy the orphan with silo orphan destroy zed --yes; nothing was created\n"
	for _, args := range [][]string{
		{"tenant", "create", "zed"},
		{"tenant", "create", "zed", "--no-key"},
		{"env", "create", "zed", "--kind", "test", "--ttl", "1h"},
	} {
		if code, out, errOut := c.run(args...); code != 1 || errOut != refusal || out != "" {
			t.Errorf("silo %s with the orphan zed: exit %d, stdout %q, stderr %q; want exit 1, %q", strings.Join(args, " "), code, out, errOut, refusal)
		}
	}
	c.fails("which cannot be undone; nothing was changed. Rerun with --yes to confirm", "orphan", "destroy", "zed")
	c.fails("account first is in the registry (active), so it is not an orphan; delete it with silo tenant delete first", "orphan", "destroy", "first", "--yes")
	c.fails("account production is the registry's production account, not an orphan; it cannot be deleted", "orphan", "destroy", "production", "--yes")
	c.fails("the provider holds no account named nosuch, so there is nothing to destroy; silo doctor lists the orphans", "orphan", "destroy", "nosuch", "--yes")
	if after := state(); after != before {
		t.Fatalf("the refused commands changed the registry, the audit log or zed's files:\nbefore %s\nafter  %s", before, after)
	}

	// The way out: destroy the orphan, audited.
	if out := c.ok("orphan", "destroy", "zed", "--yes"); out != "destroyed orphan zed: account destroyed, data key destroyed\n" {
		t.Errorf("orphan destroy zed: %q", out)
	}
	if _, err := os.Stat(keyFile); !os.IsNotExist(err) {
		t.Errorf("zed's data key file after orphan destroy: %v; want it gone", err)
	}
	if audit := c.ok("audit", "list", "--account", "zed", "-o", "json"); !strings.Contains(audit, `"account.destroy-orphan"`) {
		t.Errorf("the audit log of zed has no account.destroy-orphan:\n%s", audit)
	}
	if out := c.ok("doctor"); !strings.Contains(out, "no problem found") {
		t.Errorf("doctor after the orphan was destroyed:\n%s", out)
	}
	// Must: the ID is free again, for a new account with a new data key.
	c.ok("tenant", "create", "zed")
	if newKey := dataKeyOf(c, "zed"); newKey == oldKey {
		t.Errorf("the new zed has the orphan's data key %s", oldKey)
	}
	c.fails("account zed is in the registry (active), so it is not an orphan; delete it with silo tenant delete zed", "orphan", "destroy", "zed", "--yes")
}

// TestOlderDataDirCopyOnASharedStore: a copy of the data dir taken before
// n1 and n2 were created, on the installation's shared PostgreSQL store.
// Its silo doctor says the data dir may be an older copy and what to
// check, and never advises a delete first; a delete from it, which the
// provider there cannot carry out, says that nothing was destroyed. On the
// real data dir doctor and verify then name the remedy (deleting n1 again),
// create refuses n1, and the remedy destroys the data key, audited: verify
// proves, doctor is clean, and n1 can be created anew. The must twins: a
// normal delete says the key was destroyed; a delete of an account deleted
// and destroyed is still refused.
func TestOlderDataDirCopyOnASharedStore(t *testing.T) {
	dsn := pgtest.Fresh(t)
	real := newCLI(t)
	with := func(args ...string) []string { return append([]string{"--store", dsn}, args...) }
	real.ok(with("tenant", "create", "acme")...)
	old := &cli{t: t, dataDir: real.dataDir + "-old", file: real.file}
	localtest.CopyTree(t, real.dataDir, old.dataDir)
	real.ok(with("tenant", "create", "n1")...)
	real.ok(with("tenant", "create", "n2")...)

	code, out, _ := old.run(with("doctor")...)
	if code == 0 || !strings.Contains(out, "data dir: this data dir may be an older copy of the installation's: the 2 account(s) it lacks (n1, n2) are exactly the ones created after the newest it holds") ||
		!strings.Contains(out, "check that --data-dir (or $SILO_DATA_DIR) is the data dir the installation's servers use before acting on any line below, and delete nothing until you have") {
		t.Fatalf("doctor on the older copy: exit %d\n%s\nwant the older-copy line first", code, out)
	}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if i := strings.Index(line, "silo tenant delete"); i >= 0 && (!strings.Contains(line[:i], "first check that this is the data dir the installation's servers use") || !strings.Contains(line[:i], "only if no backup has it")) {
			t.Errorf("doctor on the older copy advises a delete before checking the data dir: %s", line)
		}
	}
	if !strings.HasPrefix(out, "data dir: ") {
		t.Errorf("doctor on the older copy does not say first that the data dir may be older:\n%s", out)
	}

	// An operator deletes n1 from the older copy anyway: the provider there
	// holds nothing of it, and the message says that nothing was destroyed.
	if out := old.ok(with("tenant", "delete", "n1", "--yes")...); out != "deleted n1 in the registry, its API keys revoked: the provider held no account under that ID, so nothing was destroyed\n" {
		t.Errorf("delete from the older copy: %q", out)
	}

	// On the real data dir n1's data and key are still there.
	code, out, _ = real.run(with("doctor")...)
	if want := "n1: it was deleted, but the provider still holds its data and data key (its deletion did not destroy them); run silo tenant delete n1 to destroy them"; code == 0 || !strings.Contains(out, want) {
		t.Errorf("doctor on the real data dir: exit %d\n%s\nwant %q", code, out, want)
	}
	if strings.Contains(out, "not in the registry") {
		t.Errorf("doctor on the real data dir calls the deleted n1 unknown to the registry:\n%s", out)
	}
	code, out, _ = real.run(with("verify")...)
	if want := "deleted account n1 still has a data key in the provider: its data is recoverable; run silo tenant delete n1 again, which destroys it"; code == 0 || !strings.Contains(out, want) {
		t.Errorf("verify on the real data dir: exit %d\n%s\nwant %q", code, out, want)
	}
	real.fails("account n1 was deleted, but the provider still holds its data and data key: its deletion did not destroy them; run silo tenant delete n1 to destroy them, then create it again; nothing was created", with("tenant", "create", "n1")...)
	real.fails("n1 was deleted, but the provider still holds its data and data key", with("tenant", "delete", "n1")...) // off a terminal: needs --yes

	// The remedy verify names works.
	if out := real.ok(with("tenant", "delete", "n1", "--yes")...); out != "deleted n1: account destroyed, data key destroyed\n" {
		t.Errorf("delete of the deleted n1 the provider still held: %q", out)
	}
	if audit := real.ok(with("audit", "list", "--account", "n1", "-o", "json")...); !strings.Contains(audit, "the account was deleted, but the provider still held it") {
		t.Errorf("the audit log does not record the second deletion of n1:\n%s", audit)
	}
	real.ok(with("verify")...)
	if out := real.ok(with("doctor")...); !strings.Contains(out, "no problem found") {
		t.Errorf("doctor after the remedy:\n%s", out)
	}
	// Must twins: a deleted account the provider no longer holds is still
	// refused; a normal delete says the key was destroyed; n1 is free.
	real.fails("account n1 was deleted; silo tenant create n1 makes a new, empty tenant under that ID", with("tenant", "delete", "n1", "--yes")...)
	if out := real.ok(with("tenant", "delete", "n2", "--yes")...); out != "deleted n2: account destroyed, data key destroyed\n" {
		t.Errorf("delete of n2: %q", out)
	}
	real.ok(with("tenant", "create", "n1")...)
}

// TestDoctorWithoutAnOlderCopy is the twin of the older-copy line: an
// account older than others the data dir holds lost its files; doctor
// reports that account, checking the data dir first, without calling the
// data dir an older copy.
func TestDoctorWithoutAnOlderCopy(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	if err := os.RemoveAll(localtest.AccountDir(c.dataDir, "acme")); err != nil {
		t.Fatal(err)
	}
	code, out, _ := c.run("doctor")
	want := "acme: the provider holds no account for it (its data and data key are not here); first check that this is the data dir the installation's servers use (not an older copy or another machine's); if it is, restore the account from a backup of the data dir (docs/operations.md); only if no backup has it, run silo tenant delete acme to record it deleted"
	if code == 0 || !strings.Contains(out, want) || strings.Contains(out, "older copy of the installation's") {
		t.Errorf("doctor with acme's files lost: exit %d\n%s\nwant %q and no older-copy line", code, out, want)
	}
}

// TestOrphanAndDeletionOnAWS, on the emulated organization: silo tenant
// delete says what KMS did to the data key (scheduled for deletion, not
// destroyed); after an older state.db is restored, the member account zed
// is an orphan that silo tenant create refuses, and silo orphan destroy
// closes it, after which (the must twin) zed is created anew.
func TestOrphanAndDeletionOnAWS(t *testing.T) {
	awsEnv(t, true)
	emulateAWS(t)
	aws := []string{"--provider", "aws", "--aws-region", "eu-west-1", "--aws-email", "aws@example.com"}
	c := newCLI(t)
	c.ok(append(aws, "tenant", "create", "acme", "--no-key")...)
	const scheduled = "data key scheduled for deletion (unusable from now on; AWS KMS deletes it after its 7-day waiting period)"
	if out := c.ok("tenant", "delete", "acme", "--yes"); out != "deleted acme: account destroyed, "+scheduled+"\n" {
		t.Errorf("tenant delete acme on AWS: %q", out)
	}

	backup := t.TempDir()
	copyState(t, c.dataDir, backup)
	c.ok("tenant", "create", "zed", "--no-key")
	copyState(t, backup, c.dataDir)
	before := c.ok("tenant", "list", "--kind", "all", "--all", "-o", "json") + c.ok("audit", "list", "-o", "json")
	c.fails("the provider already holds an account named zed that the registry does not know: restore the control-plane state that has it (docs/operations.md), or destroy the orphan with silo orphan destroy zed --yes; nothing was created", "tenant", "create", "zed", "--no-key")
	if after := c.ok("tenant", "list", "--kind", "all", "--all", "-o", "json") + c.ok("audit", "list", "-o", "json"); after != before {
		t.Fatalf("the refused create changed the registry or the audit log:\nbefore %s\nafter  %s", before, after)
	}
	if out := c.ok("orphan", "destroy", "zed", "--yes"); out != "destroyed orphan zed: account destroyed, "+scheduled+"\n" {
		t.Errorf("orphan destroy zed on AWS: %q", out)
	}
	c.ok("tenant", "create", "zed", "--no-key")
	c.ok("verify")
}
