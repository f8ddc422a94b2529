package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
)

// TestPlanCountsResourceChanges: after a release whose only change is a
// function's code, the tenant's resources change and the production
// account (which carries the shared offers, not the stack) only moves to
// the release. plan --all counts the tenant as changing (must) and not
// production, which it shows as running the release with no resource
// changes (must not); silo plan ACCOUNT says the same of each account, and
// the API's plan endpoint (silo plan --server) says what the local plan
// says.
func TestPlanCountsResourceChanges(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	f := startRemoteOn(t, filepath.Join(dir, "silo.yaml"), func(f *remoteFixture) {
		f.local("tenant", "create", "acme")
	})
	from := f.local("tenant", "show", "production", "-o", "json")
	var before struct{ Account silo.Account }
	if err := json.Unmarshal([]byte(from), &before); err != nil || before.Account.Release == "" {
		t.Fatalf("tenant show production: %v\n%s", err, from)
	}
	// The user changes the function's code, and nothing else.
	code := filepath.Join(dir, "functions", "hello", "main.go")
	src, err := os.ReadFile(code)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(src), `"visits": n}`, `"visits": n, "ok": true}`, 1)
	if edited == string(src) {
		t.Fatalf("the scaffold's function has no visits reply:\n%s", src)
	}
	if err := os.WriteFile(code, []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}

	var sum planSummary
	if err := json.Unmarshal([]byte(f.same("plan", "--all", "-o", "json")), &sum); err != nil {
		t.Fatal(err)
	}
	if sum.Accounts != 2 || sum.Changed != 1 || sum.ReleaseOnly != 1 || len(sum.Plans) != 2 {
		t.Fatalf("plan --all: %d account(s), %d changed, %d release only, %d plan(s); want 2, 1 (acme), 1 (production), 2", sum.Accounts, sum.Changed, sum.ReleaseOnly, len(sum.Plans))
	}
	rel, was := sum.Release, before.Account.Release
	if rel == was {
		t.Fatalf("the edited function built into the same release %s", rel)
	}
	moves := fmt.Sprintf("production (production): would run release %s (was %s), no resource changes\n", rel, was)
	for _, tc := range []struct {
		args       []string
		want, lack []string
	}{
		{[]string{"plan", "--all"},
			[]string{"acme (tenant): " + was + " → " + rel + "\n  ~   update function/hello\n", moves,
				"release " + rel + ": 1 of 2 account(s) would change; 1 would run it with no resource changes\n"},
			[]string{"2 of 2"}},
		{[]string{"plan", "acme"},
			[]string{"update function/hello", "release " + rel + ": 1 of 1 account(s) would change\n"},
			[]string{"production", "no resource changes"}},
		{[]string{"plan", "production"},
			[]string{moves, "release " + rel + ": 0 of 1 account(s) would change; 1 would run it with no resource changes\n"},
			[]string{"acme", "→", "1 of 1"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			out := f.same(tc.args...)
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("silo %s:\n%s\nwant %q", strings.Join(tc.args, " "), out, w)
				}
			}
			for _, l := range tc.lack {
				if strings.Contains(out, l) {
					t.Errorf("silo %s:\n%s\nwant no %q", strings.Join(tc.args, " "), out, l)
				}
			}
		})
	}

	// apply --all says the same of what it did, and then nothing is left.
	out := f.local("apply", "--all")
	for _, w := range []string{
		fmt.Sprintf("production (production): runs release %s (was %s), no resource changes\n", rel, was),
		"acme (tenant): " + was + " → " + rel,
		"release " + rel + " is current; 1 account(s) changed, 1 moved to it with no resource changes\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("apply --all:\n%s\nwant %q", out, w)
		}
	}
	if out := f.same("plan", "--all"); !strings.Contains(out, "nothing to do: 2 account(s) current with release "+rel) {
		t.Errorf("plan --all after apply --all:\n%s", out)
	}
}

// TestPlanWithoutSpecSaysSo: silo plan where there is no silo.yaml (run
// from another directory) plans the current release, and says so before
// its "nothing to do", so a user in the wrong directory is not told their
// change needs nothing; its twin, a plan of the silo.yaml given, says
// nothing of the kind.
func TestPlanWithoutSpecSaysSo(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app, err := filepath.Abs("../../examples/findings/silo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if out, errOut, err := runCLI(t, "tenant", "create", "acme", "--data-dir", dir, "--file", app); err != nil {
		t.Fatalf("tenant create: %v\n%s%s", err, out, errOut)
	}
	const note = "there is no "
	for _, tc := range []struct {
		name string
		file string
		note bool
	}{
		{"the project's silo.yaml", app, false},
		{"no silo.yaml", filepath.Join(t.TempDir(), "silo.yaml"), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, errOut, err := runCLI(t, "plan", "--all", "--data-dir", dir, "--file", tc.file)
			if err != nil {
				t.Fatalf("plan --all: %v\n%s%s", err, out, errOut)
			}
			if !strings.Contains(out, "nothing to do") {
				t.Errorf("plan --all printed %q, want nothing to do (the fleet runs the current release)", out)
			}
			if got := strings.Contains(errOut, note+tc.file+" here: planning the current release instead"); got != tc.note {
				t.Errorf("plan --all with %s: said %q on stderr; want the no-silo.yaml note: %v", tc.name, errOut, tc.note)
			}
		})
	}
}
