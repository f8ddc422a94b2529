package isolation_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
)

// A release that drops a production export is refused while an account
// its rollout leaves alone (here a developer account on its own build, no
// ring selecting it) is granted that export, naming the account, the
// export and what to do. The twins pass: the same release when the
// rollout moves the account, and a release that keeps the export.
func TestGateKeepingRefusesADroppedExportAKeptAccountGrants(t *testing.T) {
	ctx := context.Background()
	f := testFleet(t, 1)
	dev := silo.Account{ID: "dev-tester", Kind: silo.KindDeveloper, State: silo.StateActive, Name: "developer", Release: "r-own"}
	rs, err := engine.Desired(testStack(), testArtifacts, dev)
	if err != nil {
		t.Fatal(err)
	}
	f.Accounts = append(f.Accounts, isolation.AccountState{Account: dev, Resources: rs, HasDataKey: true})

	drops := testStack() // production no longer exports "rules", and no function is granted it
	delete(drops.Production.Exports, "rules")
	lst := drops.Functions["list"]
	lst.Exports = slices.DeleteFunc(slices.Clone(lst.Exports), func(e string) bool { return e == "rules" })
	drops.Functions["list"] = lst
	keeps := testStack() // the functions lose the grant; production still exports it
	keeps.Functions["list"] = lst

	developers := func(a silo.Account) bool { return a.Kind == silo.KindDeveloper }
	for _, tc := range []struct {
		name  string
		rel   engine.Release
		keep  func(silo.Account) bool
		wants []string // none: the gate passes
	}{
		{"dropped export, account kept", engine.Release{ID: "r-drops", Stack: drops, Artifacts: testArtifacts}, developers,
			[]string{`release r-drops refused: it removes export "rules" from production`, "developer account dev-tester", "runs release r-own whose function list is granted it", "Remove the grant from that developer's silo.yaml", "select dev-tester in a ring", "nothing was changed"}},
		{"dropped export, account moved", engine.Release{ID: "r-drops", Stack: drops, Artifacts: testArtifacts}, nil, nil},
		{"export kept, account kept", engine.Release{ID: "r-keeps", Stack: keeps, Artifacts: testArtifacts}, developers, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := isolation.GateKeeping(ctx, tc.rel, f, tc.keep)
			if len(tc.wants) == 0 {
				if err != nil {
					t.Fatalf("got %v, want the release to pass", err)
				}
				return
			}
			if silo.ErrorCode(err) != silo.CodeFailedCheck {
				t.Fatalf("got %v, want a refusal", err)
			}
			for _, w := range tc.wants {
				if !strings.Contains(silo.UserMessage(err), w) {
					t.Errorf("got %q, want it to contain %q", silo.UserMessage(err), w)
				}
			}
		})
	}
}
