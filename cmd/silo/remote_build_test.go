package main

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestDeployThroughAServerOpensNoLocalStore deploys and plans with --server
// from the data dir whose control plane silo store migrate moved to
// PostgreSQL (its SQLite state is refused) and from a data dir that does
// not exist (a CI runner): the release is built here and uploaded, and the
// local control-plane store is never opened. The local commands on the
// moved data dir stay refused, and the data dir that did not exist still
// does not.
func TestDeployThroughAServerOpensNoLocalStore(t *testing.T) {
	dsn := pgtest.Fresh(t)
	file, src := initProject(t)
	// greet makes the app greet with word: a new release.
	greet := func(word string) {
		t.Helper()
		if err := os.WriteFile(file, []byte(strings.Replace(string(src), "Hello, ", word+", ", 1)), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f := startRemoteOn(t, file, func(f *remoteFixture) {
		f.local("tenant", "create", "acme")
		f.local("store", "migrate", "--to", dsn)
		f.store = dsn
	})
	// remoteFrom runs a command against the server from data dir dir, with
	// no --store: what a CI runner or the project directory runs.
	remoteFrom := func(dir string, args ...string) string {
		t.Helper()
		code, out, errOut := f.exec(append(args, "--data-dir", dir, "--file", file, "--server", f.url, "--token", f.token))
		if code != 0 {
			t.Fatalf("silo %s --server from %s: exit %d\n%s%s", strings.Join(args, " "), dir, code, out, errOut)
		}
		return out
	}

	// Must: from the moved data dir, plan and deploy go through the server.
	greet("Hi")
	if out := remoteFrom(f.dir, "plan", "--all"); !strings.Contains(out, "acme") {
		t.Errorf("plan --all from the moved data dir: %s; want acme's change", out)
	}
	// The fixture's server runs no rollouts (it does not serve): each is
	// started and aborted.
	if out := remoteFrom(f.dir, "deploy", "--detach"); !strings.Contains(out, "ro-000001") {
		t.Errorf("deploy from the moved data dir: %s; want rollout ro-000001 started", out)
	}
	remoteFrom(f.dir, "rollout", "abort", "ro-000001")

	// Must: from a data dir that does not exist, likewise, and it is not
	// made (nor is one for the build, without $SILO_CACHE_DIR).
	t.Setenv("SILO_CACHE_DIR", "")
	greet("Hey")
	if out := remoteFrom(f.client, "plan", "acme"); !strings.Contains(out, "acme") {
		t.Errorf("plan acme from no data dir: %s; want acme's change", out)
	}
	if out := remoteFrom(f.client, "deploy", "--detach"); !strings.Contains(out, "ro-000002") {
		t.Errorf("deploy from no data dir: %s; want rollout ro-000002 started", out)
	}
	if _, err := os.Lstat(f.client); !os.IsNotExist(err) {
		t.Errorf("deploying through the server made the data dir %s: %v", f.client, err)
	}
	if out := remoteFrom(f.client, "release", "list"); len(regexp.MustCompile(`(?m)^r-`).FindAllString(out, -1)) != 3 {
		t.Errorf("release list through the server: %s; want the first release and the two deployed", out)
	}

	// Must not: on the moved data dir without a server, the local
	// commands are still refused, deploy and plan included.
	for _, args := range [][]string{{"tenant", "list"}, {"deploy"}, {"plan", "--all"}} {
		code, out, errOut := f.exec(append(args, "--data-dir", f.dir, "--file", file))
		if code == 0 || !strings.Contains(out+errOut, "pass --store or set SILO_STORE") {
			t.Errorf("local silo %s on the moved data dir: exit %d\n%s%s; want the moved-state refusal", strings.Join(args, " "), code, out, errOut)
		}
	}
}
