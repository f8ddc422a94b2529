package rollout_test

import (
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/spec"
)

// Unmoved reports the accounts no ring selects: with rings over tenants
// only, a developer account stays as it is; without rings (one ring over
// everyone) no account does; production is always moved.
func TestUnmoved(t *testing.T) {
	tenantsOnly := &spec.Stack{Rollout: spec.Rollout{Rings: []spec.Ring{{Name: "canary", Select: spec.Selector{Kind: silo.KindTenant, Percent: 100}}}}}
	everyone := &spec.Stack{}
	for _, tc := range []struct {
		name string
		st   *spec.Stack
		kind silo.Kind
		want bool
	}{
		{"tenant rings, developer", tenantsOnly, silo.KindDeveloper, true},
		{"tenant rings, tenant", tenantsOnly, silo.KindTenant, false},
		{"tenant rings, production", tenantsOnly, silo.KindProduction, false},
		{"no rings, developer", everyone, silo.KindDeveloper, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a := silo.Account{ID: "acct", Kind: tc.kind}
			if tc.kind == silo.KindProduction {
				a.ID = silo.ProductionID
			}
			if got := rollout.Unmoved(tc.st)(a); got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
		})
	}
}
