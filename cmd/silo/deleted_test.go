package main

import (
	"context"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/server"
)

// deletedEnv and deletedTenant are the one answer every action on a deleted
// account gets, with the command that makes a new one under its ID.
const (
	deletedEnv    = "silo: account gone1 was deleted; silo env create gone1 makes a new, empty environment under that ID\n"
	deletedTenant = "silo: account t1 was deleted; silo tenant create t1 makes a new, empty tenant under that ID\n"
)

// TestCommandsOnADeletedAccount: every command that acts on one account
// answers a deleted environment or tenant with the same sentence (exit 1),
// plans nothing for it (plan --all leaves it out) and changes nothing; the
// command the sentence names does make a new account under the ID. The
// twins: the same commands on a live tenant succeed.
func TestCommandsOnADeletedAccount(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("env", "create", "gone1", "--kind", "test", "--ttl", "1h")
	c.ok("tenant", "create", "t1")
	c.ok("env", "delete", "gone1")
	c.ok("tenant", "delete", "t1", "--yes")
	state := func() string { // the registry and the audit log
		return c.ok("tenant", "list", "--kind", "all", "--all", "-o", "json") + c.ok("audit", "list", "-o", "json")
	}
	before := state()

	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"plan", "gone1"}, deletedEnv},
		{[]string{"apply", "gone1"}, deletedEnv},
		{[]string{"drift", "gone1"}, deletedEnv},
		{[]string{"rotate", "data-key", "gone1"}, deletedEnv},
		{[]string{"limits", "set", "gone1", "--rate", "2"}, deletedEnv},
		{[]string{"limits", "show", "gone1"}, deletedEnv},
		{[]string{"tenant", "update", "gone1", "--param", "plan=pro"}, deletedEnv},
		{[]string{"tenant", "suspend", "gone1"}, deletedEnv},
		{[]string{"tenant", "resume", "gone1"}, deletedEnv},
		{[]string{"tenant", "delete", "gone1", "--yes"}, deletedEnv},
		{[]string{"env", "delete", "gone1"}, deletedEnv},
		{[]string{"keys", "create", "gone1"}, deletedEnv},
		{[]string{"report", "gone1"}, deletedEnv},
		{[]string{"logs", "gone1"}, deletedEnv}, // its logs went with it: never "no logs yet"
		{[]string{"plan", "t1"}, deletedTenant},
		{[]string{"logs", "t1"}, deletedTenant},
		{[]string{"tenant", "update", "t1", "--name", "T One"}, deletedTenant},
		{[]string{"tenant", "delete", "t1"}, deletedTenant},
		{[]string{"env", "delete", "t1"}, deletedTenant},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if code, out, errOut := c.run(tc.args...); code != 1 || errOut != tc.want || out != "" {
				t.Fatalf("silo %s: exit %d, stdout %q, stderr %q; want exit 1, %q", strings.Join(tc.args, " "), code, out, errOut, tc.want)
			}
		})
	}
	if out := c.ok("plan", "--all"); strings.Contains(out, "gone1") || strings.Contains(out, "t1") || !strings.Contains(out, "nothing to do") {
		t.Fatalf("plan --all:\n%s\nwant nothing to do, without the deleted accounts", out)
	}
	if after := state(); after != before {
		t.Fatalf("the refused commands changed the registry or the audit log:\nbefore %s\nafter  %s", before, after)
	}

	// The twins: a live tenant takes each of them.
	for _, args := range [][]string{
		{"plan", "acme"}, {"apply", "acme"}, {"drift", "acme"}, {"rotate", "data-key", "acme"},
		{"limits", "set", "acme", "--rate", "2"}, {"limits", "show", "acme"},
		{"tenant", "update", "acme", "--param", "plan=pro"}, {"tenant", "suspend", "acme"}, {"tenant", "resume", "acme"},
		{"keys", "create", "acme"}, {"report", "acme"}, {"logs", "acme"}, {"tenant", "delete", "acme", "--yes"},
	} {
		c.ok(args...)
	}
	// What the sentence says to run makes a new account under the ID.
	c.ok("env", "create", "gone1", "--kind", "test", "--ttl", "1h")
	c.ok("tenant", "create", "t1")
	c.ok("plan", "gone1")
	c.ok("tenant", "update", "t1", "--name", "T One")
}

// TestCommandsOnADeletedAccountTheProviderStillHolds: a deletion recorded
// while the provider still holds the account (one run from an older copy
// of the data dir on a shared store) leaves an ID that silo tenant create
// refuses; every command that acts on the account says so, and names the
// deletion that destroys what is left, never that a creation makes a new,
// empty tenant. The twins: once deleted again, the same commands give the
// answer that names the creation, and the creation works.
func TestCommandsOnADeletedAccountTheProviderStillHolds(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "h1")
	localtest.DeletedButHeld(t, c.dataDir, "h1", func() { c.ok("tenant", "delete", "h1", "--yes") })

	const (
		held = "silo: account h1 was deleted, but the provider still holds its data and data key (its deletion did not destroy them), so silo tenant create h1 is refused; silo tenant delete h1 destroys them, and then silo tenant create h1 makes a new, empty tenant under that ID\n"
		gone = "silo: account h1 was deleted; silo tenant create h1 makes a new, empty tenant under that ID\n"
	)
	commands := [][]string{
		{"plan", "h1"}, {"apply", "h1"}, {"drift", "h1"}, {"rotate", "data-key", "h1"},
		{"limits", "set", "h1", "--rate", "2"}, {"limits", "show", "h1"},
		{"tenant", "update", "h1", "--param", "plan=pro"}, {"tenant", "suspend", "h1"}, {"tenant", "resume", "h1"},
		{"env", "delete", "h1"}, {"keys", "create", "h1"}, {"report", "h1"}, {"logs", "h1"},
	}
	for _, want := range []string{held, gone} {
		for _, args := range commands {
			if code, out, errOut := c.run(args...); code != 1 || errOut != want || out != "" {
				t.Errorf("silo %s: exit %d, stdout %q, stderr %q; want exit 1, %q", strings.Join(args, " "), code, out, errOut, want)
			}
		}
		if want == held {
			c.fails("silo tenant delete h1 to destroy them, then create it again; nothing was created", "tenant", "create", "h1")
			c.ok("tenant", "delete", "h1", "--yes") // what the answer says destroys what is left
		}
	}
	c.ok("tenant", "create", "h1")
}

// TestCommandsOnADeletedAccountThroughAServer: through a server the deleted
// developer account gets the same one sentence (naming silo dev), from the
// API as from the CLI, and nothing changes; the twin, the live environment,
// takes the same commands.
func TestCommandsOnADeletedAccountThroughAServer(t *testing.T) {
	t.Parallel()
	f := startRemote(t) // holds the environment demo-acme
	ctx := context.Background()
	cl := server.NewClient(f.url, f.token, nil)
	if _, err := cl.CreateAccount(ctx, control.CreateRequest{ID: "dev-ann", Kind: silo.KindDeveloper, Name: "developer"}); err != nil {
		t.Fatal(err)
	}
	f.remote("env", "delete", "dev-ann", "--yes")
	const want = "account dev-ann was deleted; silo dev --user ann makes a new, empty developer account under that ID"
	state := func() string { // the registry and the audit log
		return f.remote("tenant", "list", "--kind", "all", "--all", "-o", "json") + f.remote("audit", "list", "-o", "json")
	}
	before := state()
	for _, args := range [][]string{
		{"plan", "dev-ann"}, {"drift", "dev-ann"},
		{"limits", "set", "dev-ann", "--rate", "2"}, {"limits", "show", "dev-ann"},
		{"tenant", "update", "dev-ann", "--param", "plan=pro"}, {"tenant", "suspend", "dev-ann"}, {"tenant", "resume", "dev-ann"},
		{"tenant", "delete", "dev-ann", "--yes"}, {"env", "delete", "dev-ann"},
		{"keys", "create", "dev-ann"}, {"report", "dev-ann"}, {"logs", "dev-ann"},
	} {
		if code, out, errOut := f.remoteRun(args...); code != 1 || errOut != "silo: "+want+"\n" || out != "" {
			t.Errorf("remote silo %s: exit %d, stdout %q, stderr %q; want exit 1, %q", strings.Join(args, " "), code, out, errOut, want)
		}
	}
	if err := cl.SetSecret(ctx, "dev-ann", "github-token", []byte("x")); silo.ErrorCode(err) != silo.CodeNotFound || silo.UserMessage(err) != want {
		t.Errorf("secret of a deleted account: %v; want not_found, %q", err, want)
	}
	if _, err := cl.SetLimitOverride(ctx, "dev-ann", silo.Limits{Rate: 2}); silo.ErrorCode(err) != silo.CodeNotFound || silo.UserMessage(err) != want {
		t.Errorf("limits of a deleted account: %v; want not_found, %q", err, want)
	}
	if after := state(); after != before {
		t.Fatalf("the refused commands changed the registry or the audit log:\nbefore %s\nafter  %s", before, after)
	}

	// The twin: the live environment takes them.
	for _, args := range [][]string{
		{"plan", "demo-acme"}, {"drift", "demo-acme"},
		{"limits", "set", "demo-acme", "--rate", "2"}, {"limits", "show", "demo-acme"},
		{"tenant", "update", "demo-acme", "--param", "plan=pro"}, {"tenant", "suspend", "demo-acme"}, {"tenant", "resume", "demo-acme"},
		{"keys", "create", "demo-acme"}, {"report", "demo-acme"}, {"logs", "demo-acme"},
	} {
		f.remote(args...)
	}
	if err := cl.SetSecret(ctx, "demo-acme", "github-token", []byte("x")); err != nil {
		t.Fatalf("secret of the live environment: %v", err)
	}
	f.remote("env", "delete", "demo-acme")
}
