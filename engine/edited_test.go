package engine_test

import (
	"context"
	"testing"

	silo "github.com/silo-run/silo"
)

// A plan applied without one of its changes (a delete edited out) does not
// leave the account looking current: the next plan diffs it in full and
// finds the delete again. The twin: the whole plan applied leaves an
// empty next plan (the content-hash shortcut holds).
func TestAppliedPartOfAPlanIsPlannedAgain(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		name   string
		edit   bool
		wantOp silo.Op
	}{{"edited plan", true, silo.OpDelete}, {"whole plan", false, ""}} {
		t.Run(tc.name, func(t *testing.T) {
			e := open(t, t.TempDir(), nil)
			v1 := release(t, stackV1, "sha256:aaaa")
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction}, v1); err != nil {
				t.Fatal(err)
			}
			if _, err := e.eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant, Params: map[string]string{"plan": "pro"}}, v1); err != nil {
				t.Fatal(err)
			}
			v2 := release(t, stackV2, "sha256:aaaa") // deletes bucket/raw
			p, err := e.eng.PlanAccount(ctx, account(t, e, "acme"), v2)
			if err != nil {
				t.Fatal(err)
			}
			if tc.edit {
				var keep []silo.Change
				for _, c := range p.Changes {
					if c.Op != silo.OpDelete {
						keep = append(keep, c)
					}
				}
				p.Changes = keep
			}
			if err := e.eng.Apply(ctx, p); err != nil {
				t.Fatal(err)
			}
			next, err := e.eng.PlanAccount(ctx, account(t, e, "acme"), v2)
			if err != nil {
				t.Fatal(err)
			}
			var ops []silo.Op
			for _, c := range next.Changes {
				ops = append(ops, c.Op)
			}
			if tc.wantOp == "" && len(ops) != 0 || tc.wantOp != "" && (len(ops) != 1 || ops[0] != tc.wantOp || next.Changes[0].Key() != "bucket/raw") {
				t.Errorf("next plan: %v, want %q of bucket/raw only", next.Changes, tc.wantOp)
			}
		})
	}
}
