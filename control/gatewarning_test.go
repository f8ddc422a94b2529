package control_test

import (
	"context"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// A release that adds no violation and changes nothing a violation of the
// fleet involves (here a key record bound to the production account, and
// a release that changes tenants only) becomes current, with a
// release.gate_warning audit event naming the violation and its fix. The
// must-not twin: with a key of globex bound to acme, the same release
// changes what the key reaches and is refused; nothing is recorded.
func TestGatePassesAHotfixWithAWarning(t *testing.T) {
	ctx := context.Background()
	hotfix := func(s *spec.Stack) { f := s.Functions["f"]; f.Concurrency++; s.Functions["f"] = f }
	for _, tc := range []struct {
		name   string
		key    store.APIKey
		passes bool
	}{
		{"key on production, tenants' hotfix", store.APIKey{ID: "sk_production_0123456789abcdef", Account: silo.ProductionID}, true},
		{"globex's key on acme, tenants' hotfix", store.APIKey{ID: "sk_globex_0123456789abcdef", Account: "acme"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, st := open(t)
			good := release(t, st, nil)
			if err := p.SetCurrent(ctx, good); err != nil {
				t.Fatal(err)
			}
			if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
				t.Fatal(err)
			}
			k := tc.key
			k.Hash, k.Created = make([]byte, 32), time.Now()
			if err := st.Update(ctx, func(tx store.Tx) error { return tx.PutKey(k) }); err != nil {
				t.Fatal(err)
			}
			rel := release(t, st, hotfix)
			err := p.SetCurrent(ctx, rel)
			cur, cerr := p.CurrentRelease(ctx)
			if cerr != nil {
				t.Fatal(cerr)
			}
			var warnings []string
			if err := st.View(ctx, func(tx store.Tx) error {
				es, err := tx.Audit(0, 0)
				for _, e := range es {
					if e.Event.Action == "release.gate_warning" {
						warnings = append(warnings, string(e.Event.Detail))
					}
				}
				return err
			}); err != nil {
				t.Fatal(err)
			}
			if !tc.passes {
				if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), "the release changes what 1 of them involve") {
					t.Fatalf("SetCurrent = %v, want a refusal: the release changes what the key reaches", err)
				}
				if cur.ID != good.ID || len(warnings) != 0 {
					t.Fatalf("after a refusal: current %s (want %s), gate warnings %q (want none)", cur.ID, good.ID, warnings)
				}
				return
			}
			if err != nil || cur.ID != rel.ID {
				t.Fatalf("SetCurrent = %v, current %s; want the hotfix %s current", err, cur.ID, rel.ID)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], rel.ID) || !strings.Contains(warnings[0], "silo keys remove "+k.ID) {
				t.Fatalf("gate warnings %q; want one naming %s and silo keys remove %s", warnings, rel.ID, k.ID)
			}
		})
	}
}
