package main

import (
	"strings"
	"testing"

	"github.com/silo-run/silo/store"
)

// silo doctor runs the isolation verifier over the fleet: on a sound
// fleet it says isolation holds and exits zero; with a key record bound to
// an account its ID does not name (planted past every command) it lists
// the counterexample with its fix and exits non-zero; once the record is
// removed as it says, it finds nothing again.
func TestDoctorRunsTheIsolationVerifier(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("tenant", "create", "globex")
	if out := c.ok("doctor"); !strings.Contains(out, "isolation: I1-I5 hold over 3 account(s)") || !strings.Contains(out, "no problem found in 3 account(s)") {
		t.Fatalf("doctor on a sound fleet: %s; want isolation to hold and no problem", out)
	}
	plantKey(t, c, store.APIKey{ID: "sk_globex_0123456789abcdef", Account: "acme"})
	code, out, _ := c.run("doctor")
	want := `isolation: I4: API key sk_globex_0123456789abcdef names account "globex" but is bound to acme: a key must be bound to exactly the one account it names; repair: silo keys remove sk_globex_0123456789abcdef`
	if code != 1 || !strings.Contains(out, want) || strings.Contains(out, "no problem found") || strings.Contains(out, "I1-I5 hold") {
		t.Fatalf("doctor with a planted key: exit %d, %s; want exit 1 and the line %q", code, out, want)
	}
	c.ok("keys", "remove", "sk_globex_0123456789abcdef")
	if out := c.ok("doctor"); !strings.Contains(out, "isolation: I1-I5 hold over 3 account(s)") {
		t.Fatalf("doctor after the repair: %s; want isolation to hold", out)
	}
}
