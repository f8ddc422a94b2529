package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// smokeRing is a rollout section whose tenants ring is gated on the
// scaffold's hello function answering its smoke check.
const smokeRing = `
rollout:
  rings:
    - name: tenants
      select: {kind: tenant}
      gates: {smoke: hello}
`

// After a deploy whose smoke gate failed and rolled it back, the CLI's
// advice leads somewhere: rolling back the failed rollout is refused and
// names the rollback that runs (of the deploy before it), which runs; and
// silo deploy --release rolls an earlier release out again without
// building silo.yaml (the twin: an unknown release is refused and starts
// nothing).
func TestRollbackAdviceAfterAFailedDeploy(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	withRing := string(src) + smokeRing
	if err := os.WriteFile(file, []byte(withRing), 0o644); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	releaseOf := func(id string) string {
		t.Helper()
		var a struct{ Account struct{ Release string } }
		if err := json.Unmarshal([]byte(c.ok("tenant", "show", id, "-o", "json")), &a); err != nil || a.Account.Release == "" {
			t.Fatalf("tenant show %s: no release (%v)", id, err)
		}
		return a.Account.Release
	}
	a := releaseOf("acme")
	if err := os.WriteFile(file, []byte(strings.Replace(withRing, "Hello, ", "Hi, ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	c.ok("deploy") // ro-000001, to b
	b := releaseOf("acme")
	hello := filepath.Join(filepath.Dir(file), "functions", "hello", "main.go")
	code, err := os.ReadFile(hello)
	if err != nil {
		t.Fatal(err)
	}
	broken := strings.Replace(string(code), "fn.JSON(200,", "fn.JSON(500,", 1)
	if broken == string(code) {
		t.Fatalf("%s answers no fn.JSON(200, …)", hello)
	}
	if err := os.WriteFile(hello, []byte(broken), 0o644); err != nil {
		t.Fatal(err)
	}
	c.fails("rollout ro-000002 failed", "deploy")
	if got := releaseOf("acme"); got != b {
		t.Fatalf("acme on %s after the failed deploy, want %s", got, b)
	}

	// rollout list marks the rollout a rollback undoes: not the failed one.
	for _, line := range strings.Split(c.ok("rollout", "list"), "\n") {
		marked := strings.Contains(line, "(silo rollout rollback undoes it)")
		if strings.HasPrefix(line, "ro-000001") != marked && line != "" {
			t.Errorf("rollout list line %q: marked %v, want only ro-000001 marked", line, marked)
		}
	}
	code2, _, errOut := c.run("rollout", "rollback", "ro-000002")
	if code2 != 1 || !strings.Contains(errOut, "nothing to roll back") {
		t.Fatalf("rollback of the failed rollout: exit %d, %s; want refused, nothing to roll back", code2, errOut)
	}
	m := regexp.MustCompile(`silo (rollout rollback ro-\d+)`).FindStringSubmatch(errOut)
	if m == nil || m[1] != "rollout rollback ro-000001" {
		t.Fatalf("the refusal %q advises %v; want silo rollout rollback ro-000001", errOut, m)
	}
	if out := c.ok(strings.Fields(m[1])...); !strings.Contains(out, "ro-000003") || !strings.Contains(out, "succeeded") {
		t.Errorf("the advised rollback: %s; want ro-000003 succeeded", out)
	}
	if got := releaseOf("acme"); got != a {
		t.Errorf("acme on %s after the advised rollback, want %s", got, a)
	}

	// Back to b: silo deploy --release, through the ring; an unknown
	// release starts nothing.
	before := c.ok("rollout", "list")
	c.fails(`no release "r-0000000000000000"; silo release list`, "deploy", "--release", "r-0000000000000000")
	if after := c.ok("rollout", "list"); after != before {
		t.Errorf("a refused deploy --release recorded a rollout:\n%s", after)
	}
	if out := c.ok("deploy", "--release", b); !strings.Contains(out, "ro-000004") || !strings.Contains(out, "→ "+b) {
		t.Errorf("deploy --release %s: %s; want rollout ro-000004 to it", b, out)
	}
	if got := releaseOf("acme"); got != b {
		t.Errorf("acme on %s after deploy --release %s", got, b)
	}
}

// Against a server, silo deploy --release starts a rollout of a release
// the server holds, with no silo.yaml and no installation on the client's
// side, and makes none; the twin, a plain deploy there, needs the
// silo.yaml.
func TestDeployReleaseAgainstAServer(t *testing.T) {
	t.Parallel()
	file, src := initProject(t)
	var first string
	f := startRemoteOn(t, file, func(f *remoteFixture) {
		f.local("tenant", "create", "acme") // makes the scaffold's release current
		var a struct{ Account struct{ Release string } }
		if err := json.Unmarshal([]byte(f.local("tenant", "show", "acme", "-o", "json")), &a); err != nil {
			t.Fatal(err)
		}
		first = a.Account.Release
		writeFile(t, file, strings.Replace(string(src), "Hello, ", "Hi, ", 1))
		f.local("deploy") // ro-000001
	})
	none := filepath.Join(t.TempDir(), "none")
	elsewhere := []string{"--data-dir", none, "--file", filepath.Join(t.TempDir(), "silo.yaml"), "--server", f.url, "--token", f.token}
	if code, _, errOut := f.exec([]string{"deploy", "--detach", "--data-dir", filepath.Join(t.TempDir(), "other"), "--file", filepath.Join(t.TempDir(), "silo.yaml"), "--server", f.url, "--token", f.token}); code == 0 || !strings.Contains(errOut, "silo.yaml") {
		t.Errorf("deploy without a silo.yaml: exit %d, %s; want it refused, naming silo.yaml", code, errOut)
	}
	code, out, errOut := f.exec(append([]string{"deploy", "--release", first, "--detach"}, elsewhere...))
	if code != 0 || !strings.Contains(out, "ro-000002") || !strings.Contains(out, "→ "+first) {
		t.Fatalf("deploy --release %s from elsewhere: exit %d\n%s%s", first, code, out, errOut)
	}
	if _, err := os.Stat(none); !os.IsNotExist(err) {
		t.Errorf("deploy --release through a server made a local data dir (%v); want none", err)
	}
}
