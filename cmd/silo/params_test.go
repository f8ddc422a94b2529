package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// Editing the parameters of a deleted account is refused up front, in the
// words silo tenant suspend uses for a deleted account, with nothing
// recorded: not the parameters, not an audit entry. The twin: the same edit
// of a live account is applied and recorded.
func TestUpdateParamsOfDeletedAccount(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("env", "create", "gone1", "--kind", "test", "--ttl", "1h")
	c.ok("env", "create", "live1", "--kind", "test", "--ttl", "1h")
	c.ok("env", "delete", "gone1")

	before := stateOf(t, c)
	c.fails("silo: account gone1 was deleted; silo env create gone1 makes a new, empty environment under that ID\n", "tenant", "update", "gone1", "--param", "plan=pro")
	c.fails("silo: account gone1 was deleted; silo env create gone1 makes a new, empty environment under that ID\n", "tenant", "update", "gone1", "--name", "Gone")
	c.fails("silo: account gone1 was deleted; silo env create gone1 makes a new, empty environment under that ID\n", "tenant", "suspend", "gone1")
	if diff := cmp.Diff(before, stateOf(t, c)); diff != "" {
		t.Fatalf("a refused update changed the state (-before +after):\n%s", diff)
	}
	if out := c.ok("tenant", "show", "gone1"); strings.Contains(out, "plan=pro") {
		t.Errorf("tenant show gone1 after a refused update:\n%s", out)
	}

	if out := c.ok("tenant", "update", "live1", "--param", "plan=pro"); !strings.Contains(out, "updated live1: plan=pro") {
		t.Errorf("tenant update live1: %s", out)
	}
	if stateOf(t, c) == before {
		t.Fatal("an update of a live account changed nothing that stateOf sees")
	}
}

// A parameter given twice is refused as a wrong call (exit 2) naming the
// parameter, by every command that takes --param, with nothing recorded.
// The twin: two different parameters, or one given once, are applied.
func TestRepeatedParamIsRefused(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	before := stateOf(t, c)
	for _, args := range [][]string{
		{"tenant", "create", "globex", "--param", "plan=pro", "--param", "plan=free"},
		{"tenant", "update", "acme", "--param", "plan=pro", "--param", "plan=free"},
		{"env", "create", "e1", "--kind", "test", "--ttl", "1h", "--param", "plan=pro", "--param", "plan=free"},
	} {
		code, out, errOut := c.run(args...)
		refused(t, "--param plan is given twice (plan=pro and plan=free)", args, code, out, errOut)
		if code != 2 {
			t.Errorf("silo %s: exit %d, want 2", strings.Join(args, " "), code)
		}
	}
	if diff := cmp.Diff(before, stateOf(t, c)); diff != "" {
		t.Fatalf("a refused --param changed the state (-before +after):\n%s", diff)
	}
	if out := c.ok("tenant", "update", "acme", "--param", "plan=pro"); !strings.Contains(out, "updated acme: plan=pro") {
		t.Errorf("tenant update acme: %s", out)
	}
}
