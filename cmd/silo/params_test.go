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
