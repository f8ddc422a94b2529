package silo_test

import (
	"testing"

	silo "github.com/silo-run/silo"
)

// Unconfirmed names what a plan destroys beyond the losses confirmed for
// its account; what was confirmed there, or for another account only,
// and changes that destroy nothing are told apart.
func TestUnconfirmed(t *testing.T) {
	del := silo.Change{Op: silo.OpDelete, Type: silo.TypeTable, Name: "visits"}
	add := silo.Change{Op: silo.OpCreate, Type: silo.TypeTable, Name: "notes"}
	plan := silo.Plan{Account: "acme", Changes: []silo.Change{add, del}}
	confirmed := silo.Losses([]silo.Plan{{Account: "acme", Changes: []silo.Change{del}}})
	for _, tc := range []struct {
		name      string
		plan      silo.Plan
		confirmed []silo.Loss
		want      int
	}{
		{"confirmed for the account", plan, confirmed, 0},
		{"nothing confirmed", plan, nil, 1},
		{"confirmed for another account", silo.Plan{Account: "globex", Changes: plan.Changes}, confirmed, 1},
		{"destroys nothing", silo.Plan{Account: "acme", Changes: []silo.Change{add}}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := silo.Unconfirmed(tc.plan, tc.confirmed); len(got) != tc.want || tc.want == 1 && got[0].Key() != "table/visits" {
				t.Errorf("Unconfirmed = %v, want %d change(s)", got, tc.want)
			}
		})
	}
}
