package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/store/sqlite"
)

// TestAuditVerifyOnlyReads: a lost witness stays lost. Neither silo audit
// verify nor another command that opens the installation recreates it, so
// the loss keeps being reported until the operator restarts the witness on
// purpose.
func TestAuditVerifyOnlyReads(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	witness := filepath.Join(c.dataDir, isolation.WitnessFile)
	if out := c.ok("audit", "verify"); !strings.Contains(out, "audit log intact") {
		t.Fatalf("twin, untouched: %s", out)
	}
	if err := os.Remove(witness); err != nil {
		t.Fatal(err)
	}
	c.fails("there is no witness", "audit", "verify")
	c.ok("tenant", "list")
	c.ok("tenant", "create", "globex") // a commit does not recreate it either
	c.fails("there is no witness", "audit", "verify")
	if _, err := os.Stat(witness); !os.IsNotExist(err) {
		t.Fatalf("a command recreated the witness (%v)", err)
	}
	c.ok("audit", "witness")
	c.ok("audit", "verify")
	c.fails("exists", "audit", "witness")
}

// TestAuditCheckpointCatchesAReplayedDataDir: an older copy of the whole
// data dir (log and witness together) is consistent by itself; only a
// checkpoint exported before it was put back shows it.
func TestAuditCheckpointCatchesAReplayedDataDir(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	backup := t.TempDir()
	copyStateFiles(t, c.dataDir, backup)
	c.ok("tenant", "create", "globex")
	c.ok("keys", "create", "acme")

	dir := t.TempDir()
	keyFile := filepath.Join(dir, "audit.key")
	seed := make([]byte, ed25519.SeedSize)
	seed[0] = 7
	if err := os.WriteFile(keyFile, []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cp := filepath.Join(dir, "cp.json")
	c.ok("audit", "checkpoint", "--key", keyFile, "--out", cp)
	c.fails("never overwritten", "audit", "checkpoint", "--key", keyFile, "--out", cp)
	pub := ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey)
	out := c.ok("audit", "verify", "--checkpoint", cp, "--checkpoint-key", fingerprint(pub))
	if !strings.Contains(out, "it extends the checkpoint of entry") {
		t.Fatalf("twin, untouched: %s", out)
	}
	c.fails("not by a key you trust", "audit", "verify", "--checkpoint", cp, "--checkpoint-key", strings.Repeat("ab", 32))

	copyStateFiles(t, backup, c.dataDir) // the old state put back
	c.ok("audit", "verify")
	c.fails("an older copy of the log was put back", "audit", "verify", "--checkpoint", cp)
}

func fingerprint(pub ed25519.PublicKey) string { return report.Fingerprint(pub) }

func copyStateFiles(t *testing.T, from, to string) {
	t.Helper()
	for _, name := range []string{"state.db", "state.db-wal", "state.db-shm", isolation.WitnessFile} {
		b, err := os.ReadFile(filepath.Join(from, name))
		if os.IsNotExist(err) {
			os.Remove(filepath.Join(to, name))
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

// TestAuditVerifySeesDeletedState: the whole control-plane state (log,
// accounts and witness) deleted while the provider still holds the
// accounts is reported, and verifying creates no state file.
func TestAuditVerifySeesDeletedState(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	for _, name := range []string{"state.db", "state.db-wal", "state.db-shm", isolation.WitnessFile} {
		os.Remove(filepath.Join(c.dataDir, name))
	}
	c.fails("the local provider holds", "audit", "verify")
	if _, err := os.Stat(filepath.Join(c.dataDir, "state.db")); !os.IsNotExist(err) {
		t.Fatalf("audit verify created a state file (%v)", err)
	}
	// A fresh, empty state put in its place: still reported.
	st, err := sqlite.Open(context.Background(), filepath.Join(c.dataDir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	st.Close()
	c.fails("the audit log is empty but the local provider holds 2 account(s)", "audit", "verify")
	// Twin: a data dir with nothing in it is not an installation.
	empty := newCLI(t)
	empty.fails("no silo installation in", "audit", "verify")
}

// TestAuditCheckpointKeyMessages: a checkpoint key the user names is judged
// as that (never as the report signing key, never "restore it from a
// backup"); without --key the checkpoint is made, with a note that does not
// read as an error. The twin, a good key, prints nothing on stderr.
func TestAuditCheckpointKeyMessages(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	dir := t.TempDir()
	write := func(name, content string, mode os.FileMode) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), mode); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.key", base64.StdEncoding.EncodeToString(make([]byte, ed25519.SeedSize))+"\n", 0o600)
	for _, tc := range []struct {
		name, key, want string
	}{
		{"not a key", write("bad.key", "hello\n", 0o600), "bad.key is not a checkpoint signing key: it must hold a base64 ed25519 seed (32 bytes); create one with: head -c 32 /dev/urandom"},
		{"readable by others", write("open.key", base64.StdEncoding.EncodeToString(make([]byte, ed25519.SeedSize)), 0o644), "open.key is readable by other users (mode -rw-r--r--); run chmod 600"},
		{"missing", filepath.Join(dir, "none.key"), "no signing key at"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := c.run("audit", "checkpoint", "--key", tc.key)
			if code != 1 || out != "" || !strings.Contains(errOut, tc.want) || strings.Contains(errOut, "report signing key") || strings.Contains(errOut, "backup") {
				t.Fatalf("audit checkpoint --key %s: exit %d, stdout %q, stderr %q; want exit 1 with %q", tc.key, code, out, errOut, tc.want)
			}
		})
	}
	code, out, errOut := c.run("audit", "checkpoint", "--key", good)
	if code != 0 || out == "" || errOut != "" {
		t.Fatalf("audit checkpoint --key good.key: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	code, out, errOut = c.run("audit", "checkpoint")
	if code != 0 || out == "" || !strings.HasPrefix(errOut, "note: signed with the report signing key") || strings.Contains(errOut, "silo:") {
		t.Fatalf("audit checkpoint without --key: exit %d, stdout %q, stderr %q; want the checkpoint and a note", code, out, errOut)
	}
}
