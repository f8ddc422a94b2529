package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
)

// cli runs the silo CLI in-process, as a user would, against one data dir.
type cli struct {
	t       *testing.T
	dataDir string
	file    string
}

func newCLI(t *testing.T) *cli {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: filepath.Join(wd, "..", "..", "examples", "findings", "silo.yaml")}
}

// run runs one command and returns its exit code, stdout and stderr.
func (c *cli) run(args ...string) (int, string, string) {
	c.t.Helper()
	var out, errOut bytes.Buffer
	full := append([]string{"--data-dir", c.dataDir, "--file", c.file}, args...)
	code := run(context.Background(), full, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// ok runs a command that must succeed.
func (c *cli) ok(args ...string) string {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	if code != 0 {
		c.t.Fatalf("silo %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// fails runs a command that must fail with one clear line on stderr
// containing want, and nothing that looks like a stack trace or raw SQL.
func (c *cli) fails(want string, args ...string) {
	c.t.Helper()
	code, out, errOut := c.run(args...)
	refused(c.t, want, args, code, out, errOut)
}

// refused checks that a command (args) that ran failed with one clear line
// on stderr containing want, and nothing that looks like a stack trace or
// raw SQL.
func refused(t *testing.T, want string, args []string, code int, out, errOut string) {
	t.Helper()
	if code == 0 {
		t.Fatalf("silo %s succeeded, want failure %q\nstdout: %s", strings.Join(args, " "), want, out)
	}
	if !strings.Contains(errOut, want) {
		t.Fatalf("silo %s: stderr %q, want it to contain %q", strings.Join(args, " "), errOut, want)
	}
	for _, bad := range []string{"goroutine ", "panic:", ".go:", "SQL logic", "constraint failed", "SQLSTATE", "sql: "} {
		if strings.Contains(errOut, bad) {
			t.Fatalf("silo %s: stderr leaks internals (%q): %s", strings.Join(args, " "), bad, errOut)
		}
	}
}

func TestTenantLifecycleThroughTheCLI(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	out := c.ok("tenant", "create", "acme", "--param", "plan=pro")
	if !strings.Contains(out, "created tenant acme") || !strings.Contains(out, "API key (shown once") {
		t.Fatalf("create output: %s", out)
	}
	c.ok("tenant", "create", "globex")

	if out := c.ok("plan", "--all"); !strings.Contains(out, "nothing to do") {
		t.Fatalf("plan --all after creating: %s; want nothing to do", out)
	}

	var list []silo.Account
	if err := json.Unmarshal([]byte(c.ok("tenant", "list", "-o", "json")), &list); err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].ID != "acme" || list[1].ID != "globex" || list[0].Params["plan"] != "pro" {
		t.Fatalf("tenant list = %+v; want acme (plan=pro) and globex", list)
	}
	if out := c.ok("tenant", "list"); !strings.Contains(out, "acme") || !strings.Contains(out, "STATE") {
		t.Fatalf("tenant list table: %s", out)
	}

	show := c.ok("tenant", "show", "acme")
	acmeDir := localtest.AccountDir(c.dataDir, "acme")
	for _, want := range []string{"Account    acme (kind tenant)", "State      active", "Provider   local " + acmeDir, "plan=pro", "table     findings", "applied", "Data key"} {
		if !strings.Contains(show, want) {
			t.Errorf("tenant show lacks %q:\n%s", want, show)
		}
	}

	// Suspend and resume, with their audit trail.
	if out := c.ok("tenant", "suspend", "acme"); !strings.Contains(out, "suspended") {
		t.Fatalf("suspend: %s", out)
	}
	c.ok("tenant", "resume", "acme")
	c.ok("tenant", "update", "acme", "--param", "plan=free")
	c.fails(`"platinum"`, "tenant", "update", "acme", "--param", "plan=platinum")

	// Secrets are write-only: the value goes in, and is never printed.
	var out2, errOut bytes.Buffer
	code := run(context.Background(), []string{"--data-dir", c.dataDir, "--file", c.file, "secret", "set", "acme", "github-token"}, strings.NewReader("canary-s3cret\n"), &out2, &errOut)
	if code != 0 || strings.Contains(out2.String(), "canary-s3cret") {
		t.Fatalf("secret set: exit %d, stdout %q, stderr %q", code, out2.String(), errOut.String())
	}
	show = c.ok("tenant", "show", "acme", "-o", "json")
	if strings.Contains(show, "canary-s3cret") {
		t.Fatal("tenant show prints a secret value")
	}
	var detail struct {
		Ref struct{ Provider, ID string }
	}
	if err := json.Unmarshal([]byte(show), &detail); err != nil || detail.Ref.Provider != "local" || detail.Ref.ID != acmeDir {
		t.Errorf("tenant show -o json: ref = %+v, %v; want local %s", detail.Ref, err, acmeDir)
	}

	out = c.ok("tenant", "delete", "globex", "--yes")
	if !strings.Contains(out, "data key destroyed") {
		t.Fatalf("delete output: %s", out)
	}
	if out := c.ok("tenant", "list"); strings.Contains(out, "globex") {
		t.Fatalf("globex still listed after delete:\n%s", out)
	}
	if out := c.ok("audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify: %s", out)
	}
	if out := c.ok("verify"); !strings.Contains(out, "proved") {
		t.Fatalf("verify: %s", out)
	}
}

func TestBadInputGetsOneClearError(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	before := c.ok("tenant", "list", "-o", "json")

	c.fails("invalid ID \"Acme\"", "tenant", "create", "Acme")
	c.fails("starts or ends with '-'", "tenant", "create", "acme-")
	c.fails("reserved", "tenant", "create", "production")
	devName := `invalid ID "dev-x": names starting with "dev-" are kept for developer accounts (silo dev makes dev-NAME for each developer); choose another name`
	c.fails(devName, "tenant", "create", "dev-x")
	c.fails(devName, "env", "create", "dev-x", "--ttl", "2h")
	c.fails("exists already", "tenant", "create", "acme")
	c.fails("production account cannot be deleted", "tenant", "delete", "production")
	c.fails("--kind must be test or demo", "env", "create", "x", "--kind", "production")
	c.fails("no account \"nope\"", "tenant", "show", "nope")
	c.fails("is not NAME=VALUE", "tenant", "create", "beta", "--param", "plan")

	// Nothing stored was lost or changed by the refused commands.
	if after := c.ok("tenant", "list", "-o", "json"); after != before {
		t.Fatalf("refused commands changed the registry:\nbefore %s\nafter  %s", before, after)
	}
	if out := c.ok("env", "list"); strings.Contains(out, "dev-x") {
		t.Fatalf("the refused env create dev-x made it:\n%s", out)
	}
	// Twin of dev-x: a name that only looks like it is taken.
	c.ok("tenant", "create", "devx", "--no-key")

	// A malformed silo.yaml: every problem with file:line:col, nothing applied.
	bad := filepath.Join(t.TempDir(), "silo.yaml")
	os.WriteFile(bad, []byte("version: 1\nname: demo\nfunctons: {}\ntables: {t: {}}\nroutes:\n  - {method: GET, path: /x, function: nope}\n"), 0o644)
	c.file = bad
	code, _, errOut := c.run("apply", "--all")
	if code == 0 || !strings.Contains(errOut, "silo.yaml:3:1") || !strings.Contains(errOut, "did you mean") || !strings.Contains(errOut, "silo.yaml:6:") {
		t.Fatalf("apply with a bad spec: exit %d, stderr:\n%s", code, errOut)
	}

	// A data dir that is not writable (a path under a regular file).
	file := filepath.Join(t.TempDir(), "f")
	os.WriteFile(file, nil, 0o644)
	c2 := newCLI(t)
	c2.dataDir = filepath.Join(file, "data")
	c2.fails("choose a writable --data-dir", "tenant", "list")

	// A corrupted state file is refused with what to do, and left as it was.
	c3 := newCLI(t)
	os.MkdirAll(c3.dataDir, 0o700)
	junk := bytes.Repeat([]byte("not a database "), 400)
	os.WriteFile(filepath.Join(c3.dataDir, "state.db"), junk, 0o600)
	c3.fails("corrupted", "tenant", "list")
	if got, _ := os.ReadFile(filepath.Join(c3.dataDir, "state.db")); !bytes.Equal(got, junk) {
		t.Fatal("the corrupted state file was modified")
	}
}

// TestInitOutsideACheckout scaffolds a project where no silo checkout is at
// hand: it must build offline against the SDK the binary carries, and the
// quick start must work in it.
func TestInitOutsideACheckout(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c := &cli{t: t, dataDir: filepath.Join(dir, "demo", ".silo"), file: filepath.Join(dir, "demo", "silo.yaml")}
	c.ok("init", "demo")
	if b, err := os.ReadFile(filepath.Join(dir, "demo", "go.mod")); err != nil || !strings.Contains(string(b), "=> ./.silo-sdk") {
		t.Fatalf("go.mod = %s, %v; want a replace onto the written SDK", b, err)
	}
	t.Chdir(filepath.Join(dir, "demo"))
	c.ok("tenant", "create", "acme", "--param", "plan=pro")
	if out := c.ok("plan", "--all"); !strings.Contains(out, "nothing to do") {
		t.Fatalf("plan --all: %s", out)
	}
	// Running init again keeps what is there.
	if out := c.ok("init", "."); !strings.Contains(out, "kept    silo.yaml") {
		t.Fatalf("second init: %s", out)
	}
}

// TestRotateKeys rotates a tenant's data key and the master key through
// the CLI: fingerprints change, the audit log records both and stays intact.
func TestRotateKeys(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	var before, after struct {
		DataKey struct{ Fingerprint string } `json:"data_key"`
	}
	json.Unmarshal([]byte(c.ok("tenant", "show", "acme", "-o", "json")), &before)
	if out := c.ok("rotate", "data-key", "acme"); !strings.Contains(out, "data key of acme rotated: "+before.DataKey.Fingerprint+" -> ") {
		t.Fatalf("rotate data-key: %s", out)
	}
	json.Unmarshal([]byte(c.ok("tenant", "show", "acme", "-o", "json")), &after)
	if after.DataKey.Fingerprint == "" || after.DataKey.Fingerprint == before.DataKey.Fingerprint {
		t.Fatalf("data key fingerprint %q -> %q; want a new one", before.DataKey.Fingerprint, after.DataKey.Fingerprint)
	}
	if out := c.ok("rotate", "master-key"); !strings.Contains(out, "master key rotated") {
		t.Fatalf("rotate master-key: %s", out)
	}
	c.fails(`no account "nobody"; silo tenant list shows the accounts`, "rotate", "data-key", "nobody")
	if out := c.ok("audit", "verify"); !strings.Contains(out, "intact") {
		t.Fatalf("audit verify after rotation: %s", out)
	}
}
