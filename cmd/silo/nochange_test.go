package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/silo-run/silo/store"
)

// stateOf is what a refused command must leave as it was: the audit log
// (every control-plane change appends to it), the current release, the
// stored releases, the registry and the rollouts.
func stateOf(t *testing.T, c *cli) string {
	t.Helper()
	g := &globals{dataDir: c.dataDir, stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	a, err := openApp(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	var out struct {
		Audit    []store.AuditEntry
		Current  string
		Rollouts string
		Accounts any
		Releases []string
	}
	if err := a.store.View(context.Background(), func(tx store.Tx) error {
		var err error
		if out.Audit, err = tx.Audit(0, 0); err != nil {
			return err
		}
		out.Current, _ = tx.CurrentRelease()
		n, err := tx.CountRollouts()
		if err != nil {
			return err
		}
		out.Rollouts = fmt.Sprint(n)
		if out.Accounts, err = tx.Accounts(store.Filter{IncludeDeleted: true}); err != nil {
			return err
		}
		rs, err := tx.Releases(0, true)
		for _, r := range rs {
			out.Releases = append(out.Releases, r.ID)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(out, "", " ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// Every command given a bad argument fails with one clear error and changes
// nothing: validation comes before any change. The twin: the same commands
// with good arguments do change the state.
func TestRefusedCommandsChangeNothing(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "app")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "silo.yaml")
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	c.ok("env", "create", "e2e-1", "--kind", "test", "--ttl", "1h")
	// The user edits silo.yaml: commands that build would make a new release.
	src, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, []byte(strings.Replace(string(src), "Hello, ", "Hi, ", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		want string
		args []string
	}{
		{`no account "nosuch"`, []string{"apply", "nosuch"}},
		{`no account "nosuch"`, []string{"plan", "nosuch"}},
		{`no account "nosuch"`, []string{"drift", "nosuch"}},
		{"name one account, or pass --all", []string{"apply", "acme", "--all"}},
		{`no rollout "nosuch"`, []string{"rollout", "pause", "nosuch"}},
		{`no rollout "nosuch"`, []string{"rollout", "resume", "nosuch"}},
		{`no rollout "nosuch"`, []string{"rollout", "abort", "nosuch"}},
		{`no rollout "nosuch"`, []string{"rollout", "rollback", "nosuch"}},
		{`no rollout "nosuch"`, []string{"rollout", "status", "nosuch"}},
		{"no rollout is active", []string{"rollout", "abort"}},
		{`no release "nosuch"`, []string{"release", "show", "nosuch"}},
		{`"nosuch"`, []string{"tenant", "delete", "nosuch"}},
		{`"nosuch"`, []string{"tenant", "update", "nosuch", "--param", "plan=pro"}},
		{`plan`, []string{"tenant", "update", "acme", "--param", "plan=gold"}},
		{`"nosuch"`, []string{"tenant", "suspend", "nosuch"}},
		{"exists already", []string{"tenant", "create", "acme"}},
		{`plan`, []string{"tenant", "create", "beta", "--param", "plan=gold"}},
		{`"nosuch"`, []string{"keys", "create", "nosuch"}},
		{`has no key "nosuch"`, []string{"keys", "revoke", "acme", "nosuch"}},
		{`has no key "nosuch"`, []string{"keys", "rotate", "acme", "nosuch"}},
		{"nosuch", []string{"rotate", "data-key", "nosuch"}},
		{"nosuch", []string{"env", "delete", "nosuch"}},
		{"--kind must be test or demo", []string{"env", "create", "e2e-2", "--kind", "prod", "--ttl", "1h"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			before := stateOf(t, c)
			c.fails(tc.want, tc.args...)
			if diff := cmp.Diff(before, stateOf(t, c)); diff != "" {
				t.Fatalf("silo %s changed the state (-before +after):\n%s", strings.Join(tc.args, " "), diff)
			}
		})
	}
	// Twin: with a good argument the same command changes the state, and
	// stateOf sees it.
	before := stateOf(t, c)
	c.ok("apply", "acme")
	if stateOf(t, c) == before {
		t.Fatal("silo apply acme changed nothing that stateOf sees")
	}
}
