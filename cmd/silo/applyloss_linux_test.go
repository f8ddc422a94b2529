package main

import (
	"strings"
	"testing"
)

// TestApplyHoldsEachAccountToTheListShown: silo apply --all confirmed at a
// terminal plans each account again as it applies it; a tenant created
// after the answer was checked (sameLosses) and before the apply reaches
// it would lose a table nobody was shown, so that tenant is not changed
// and the apply fails naming it (must not), while the accounts shown are
// applied as confirmed (must).
func TestApplyHoldsEachAccountToTheListShown(t *testing.T) {
	c := scaffold(t) // acme and globex
	c.edit(dropVisits...)
	applyConfirmed = func() { c.ok("tenant", "create", "initech") }
	defer func() { applyConfirmed = func() {} }()
	args := []string{"--data-dir", c.dataDir, "--file", c.file, "apply", "--all"}
	code, out, errOut := atTerminal(t, args, nil, "yes")
	if !strings.Contains(out, "This apply destroys data, which cannot be undone:\n  deletes table/visits in acme, globex\n"+prompt) {
		t.Errorf("stdout %q, want the list and the prompt", out)
	}
	want := "initech: what would be lost changed since you confirmed: planned again to be applied, it deletes table/visits in initech, which was not shown; account initech was not changed. Run silo apply again to see the new list and confirm it"
	if code != 1 || !strings.Contains(out, "failed: "+want) || !strings.Contains(errOut, "1 account(s) failed to apply") {
		t.Fatalf("apply while a tenant was created after the answer: exit %d\nstdout: %s\nstderr: %s\nwant exit 1 and %q", code, out, errOut, want)
	}
	if out := c.ok("tenant", "show", "initech"); !hasVisits.MatchString(out) {
		t.Errorf("tenant show initech after the apply: %s; want visits kept", out)
	}
	for _, id := range []string{"acme", "globex"} {
		if out := c.ok("tenant", "show", id); hasVisits.MatchString(out) {
			t.Errorf("tenant show %s after the confirmed apply: %s; want visits gone", id, out)
		}
	}
}
