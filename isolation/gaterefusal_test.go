package isolation_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/spec"
)

// The gate's refusal tells the violations a release makes from those the
// fleet has already, whatever release it runs (here an API key bound to
// the production account), counts each and says what to do about each:
// fix silo.yaml for the release's, repair the fleet for the fleet's. The
// must: a sound release on a sound fleet passes.
func TestGateRefusalTellsTheReleaseFromTheFleet(t *testing.T) {
	ctx := context.Background()
	bad := testStack()
	fn := bad.Functions["list"]
	fn.Tables = map[string]spec.Access{"findings": spec.AccessRead, "globex/findings": spec.AccessRead}
	bad.Functions["list"] = fn
	badRel := engine.Release{ID: "r-bad", Stack: bad, Artifacts: testArtifacts}
	good := testRelease(t)
	sound := func() *isolation.Fleet { return testFleet(t, 3) }
	broken := func() *isolation.Fleet { // a key no release can fix
		f := testFleet(t, 3)
		f.Keys = append(f.Keys, isolation.Key{ID: "sk_production_0123456789abcdef", Account: silo.ProductionID})
		return f
	}
	deleting := func() *isolation.Fleet { // sound: an account mid-deletion reads production's exports
		f := testFleet(t, 3)
		acct(t, f, tenantName(2)).Account.State = silo.StateDeleting
		return f
	}
	// What each makes on its own, counted by the verifier directly.
	own, _ := isolation.Gate(ctx, badRel, sound())
	inFleet := isolation.Verify(ctx, broken())
	ownBeside, _ := isolation.Gate(ctx, badRel, deleting())
	if own.Violations == 0 || inFleet.Violations == 0 {
		t.Fatalf("fixture: the bad release makes %d violations and the broken fleet has %d; want some of each", own.Violations, inFleet.Violations)
	}
	for _, tc := range []struct {
		name    string
		rel     engine.Release
		fleet   func() *isolation.Fleet
		says    []string // "" passes
		notSays []string
	}{
		{"sound release, sound fleet", good, sound, nil, nil},
		{"the release's own", badRel, sound, []string{
			fmt.Sprintf("release r-bad refused: it would break isolation in %d place(s); first: I1: ", own.Violations),
			"globex", "fix silo.yaml and build again",
		}, []string{"already", "Repair"}},
		// The fleet's alone, untouched by the release: a hotfix, which
		// passes (TestGateHotfix has the warning and the probes).
		{"the fleet's alone", good, broken, nil, nil},
		{"sound release, an account being deleted", good, deleting, nil, nil},
		// Without production's resources the deleting account's export
		// grants are counterexamples; they are none under the release, so
		// they must not be taken for the fleet's.
		{"the release's own, an account being deleted", badRel, deleting, []string{
			fmt.Sprintf("release r-bad refused: it would break isolation in %d place(s); first: I1: ", ownBeside.Violations),
			"fix silo.yaml and build again",
		}, []string{"already", "adds no violation"}},
		{"both", badRel, broken, []string{
			fmt.Sprintf("release r-bad refused: it would break isolation in %d place(s); first: I1: ", own.Violations),
			"fix silo.yaml and build again",
			fmt.Sprintf("The fleet also breaks isolation in %d place(s) already, whatever release it runs; first: I2: API key sk_production_0123456789abcdef", inFleet.Violations),
			"Repair those too: silo verify lists every violation", "A fleet the isolation gate refuses",
		}, []string{"adds no violation"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := isolation.Gate(ctx, tc.rel, tc.fleet())
			if tc.says == nil {
				if err != nil {
					t.Fatalf("Gate = %v, want it to pass", err)
				}
				return
			}
			msg := silo.UserMessage(err)
			if silo.ErrorCode(err) != silo.CodeFailedCheck {
				t.Fatalf("Gate = %v, want failed_check", err)
			}
			for _, s := range tc.says {
				if !strings.Contains(msg, s) {
					t.Errorf("refusal %q does not say %q", msg, s)
				}
			}
			for _, s := range tc.notSays {
				if strings.Contains(msg, s) {
					t.Errorf("refusal %q says %q", msg, s)
				}
			}
		})
	}
}
