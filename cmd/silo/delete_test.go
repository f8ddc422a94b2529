package main

import (
	"context"
	"regexp"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/server"
)

// createDeveloper registers a developer account on the CLI's data dir, as
// silo up and silo dev do.
func createDeveloper(t *testing.T, c *cli, id string) {
	t.Helper()
	g := &globals{dataDir: c.dataDir, file: c.file, stdout: &strings.Builder{}, stderr: &strings.Builder{}}
	a, err := openApp(context.Background(), g)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if _, err := a.plane.CreateAccount(context.Background(), control.CreateRequest{ID: id, Kind: silo.KindDeveloper, Name: "developer"}); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
}

// accountState reads an account's state from the CLI's data dir.
func accountState(t *testing.T, c *cli, id silo.AccountID) silo.State {
	t.Helper()
	_, st := releaseOf(t, c, id)
	return st
}

// TestDeleteGoesByKind: silo tenant delete deletes tenants only and silo
// env delete environments and developer accounts only; each refuses the
// other's accounts (and the production account) with one sentence naming
// the command that deletes it, exit status 1, and nothing deleted. The
// twins: each deletes its own kinds.
func TestDeleteGoesByKind(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("env", "create", "e2e-1", "--kind", "test", "--ttl", "1h")
	createDeveloper(t, c, "dev-ann")
	before := stateOf(t, c)

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"tenant delete of a developer account", []string{"tenant", "delete", "dev-ann", "--yes"},
			"silo: dev-ann is a developer account, not a tenant; delete it with silo env delete dev-ann\n"},
		{"tenant delete of a developer account without --yes", []string{"tenant", "delete", "dev-ann"},
			"silo: dev-ann is a developer account, not a tenant; delete it with silo env delete dev-ann\n"},
		{"tenant delete of an environment", []string{"tenant", "delete", "e2e-1", "--yes"},
			"silo: e2e-1 is an environment, not a tenant; delete it with silo env delete e2e-1\n"},
		{"env delete of a tenant", []string{"env", "delete", "acme"},
			"silo: acme is a tenant, not an environment or a developer account; delete it with silo tenant delete acme\n"},
		{"env delete of the production account", []string{"env", "delete", "production"},
			"silo: the production account cannot be deleted; it holds the resources every tenant reads\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := c.run(tc.args...)
			if code != 1 || out != "" || errOut != tc.want {
				t.Errorf("silo %s: exit %d, stdout %q, stderr %q; want exit 1, no output, stderr %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
			}
		})
	}
	if after := stateOf(t, c); after != before {
		t.Errorf("the refusals changed the control plane:\nbefore: %s\nafter:  %s", before, after)
	}

	// The twins: each command deletes its own kinds.
	if out := c.ok("tenant", "delete", "acme", "--yes"); !strings.Contains(out, "deleted acme") {
		t.Errorf("tenant delete acme: %s", out)
	}
	// silo env list shows what env delete takes: the environment and the
	// developer account, not the tenant.
	list := c.ok("env", "list")
	if !regexp.MustCompile(`(?m)^dev-ann +developer `).MatchString(list) || !strings.Contains(list, "e2e-1") || strings.Contains(list, "acme") {
		t.Errorf("env list:\n%s\nwant e2e-1 and dev-ann (developer), not acme", list)
	}
	// A developer account is deleted only when confirmed (--yes, or its
	// name typed at a terminal); an environment goes without asking.
	c.fails("deleting the developer account dev-ann destroys its account and all its data, which cannot be undone; nothing was changed. Rerun with --yes to confirm", "env", "delete", "dev-ann")
	if st := accountState(t, c, "dev-ann"); st != silo.StateActive {
		t.Errorf("dev-ann after an unconfirmed env delete: %s, want active", st)
	}
	for _, args := range [][]string{{"e2e-1"}, {"dev-ann", "--yes"}} {
		id := args[0]
		if out := c.ok(append([]string{"env", "delete"}, args...)...); out != "deleted "+id+"; verified: the provider holds nothing of it\n" {
			t.Errorf("env delete %s: %q", id, out)
		}
	}
	for _, id := range []silo.AccountID{"acme", "e2e-1", "dev-ann"} {
		if st := accountState(t, c, id); st != silo.StateDeleted {
			t.Errorf("%s after its delete: %s, want deleted", id, st)
		}
	}
}

// TestDeleteGoesByKindThroughAServer: the API refuses the same way, so
// silo tenant delete --server (DELETE /v1/accounts/{id}) refuses a
// developer account and an environment, and silo env delete --server
// refuses a tenant; the twins delete each.
func TestDeleteGoesByKindThroughAServer(t *testing.T) {
	t.Parallel()
	f := startRemote(t) // holds the environment demo-acme
	ctx := context.Background()
	cl := server.NewClient(f.url, f.token, nil)
	if _, err := cl.CreateAccount(ctx, control.CreateRequest{ID: "dev-ann", Kind: silo.KindDeveloper, Name: "developer"}); err != nil {
		t.Fatal(err)
	}
	f.remote("tenant", "create", "acme")

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"tenant", "delete", "dev-ann", "--yes"}, "silo: dev-ann is a developer account, not a tenant; delete it with silo env delete dev-ann\n"},
		{[]string{"tenant", "delete", "demo-acme", "--yes"}, "silo: demo-acme is an environment, not a tenant; delete it with silo env delete demo-acme\n"},
		{[]string{"env", "delete", "acme"}, "silo: acme is a tenant, not an environment or a developer account; delete it with silo tenant delete acme\n"},
	} {
		if code, _, errOut := f.remoteRun(tc.args...); code != 1 || errOut != tc.want {
			t.Errorf("remote silo %s: exit %d, stderr %q; want exit 1, %q", strings.Join(tc.args, " "), code, errOut, tc.want)
		}
	}
	for _, id := range []silo.AccountID{"dev-ann", "demo-acme", "acme"} {
		if d, err := cl.Show(ctx, id); err != nil || d.Account.State != silo.StateActive {
			t.Errorf("%s after the refusals: %s, %v; want active", id, d.Account.State, err)
		}
	}

	f.remote("tenant", "delete", "acme", "--yes")
	f.remote("env", "delete", "dev-ann", "--yes")
	f.remote("env", "delete", "demo-acme")
	for _, id := range []silo.AccountID{"dev-ann", "demo-acme", "acme"} {
		if d, err := cl.Show(ctx, id); err != nil || d.Account.State != silo.StateDeleted {
			t.Errorf("%s after its delete: %s, %v; want deleted", id, d.Account.State, err)
		}
	}
}
