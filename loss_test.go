package silo_test

import (
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
)

// Losses names only the changes that destroy data, grouped per operation
// and resource with every account; the twins: a plan that only creates or
// updates, or deletes a function, loses nothing.
func TestLosses(t *testing.T) {
	ch := func(op silo.Op, typ silo.ResourceType, name string) silo.Change {
		return silo.Change{Op: op, Type: typ, Name: name}
	}
	plan := func(acct silo.AccountID, cs ...silo.Change) silo.Plan { return silo.Plan{Account: acct, Changes: cs} }
	for _, tc := range []struct {
		name  string
		plans []silo.Plan
		want  []silo.Loss
		text  string
	}{
		{"nothing planned", nil, nil, ""},
		{"creates and updates lose nothing", []silo.Plan{
			plan("acme", ch(silo.OpCreate, silo.TypeTable, "notes"), ch(silo.OpUpdate, silo.TypeBucket, "files")),
			plan("globex", ch(silo.OpDelete, silo.TypeFunction, "ingest")),
		}, nil, ""},
		{"a deleted table and a replaced secret", []silo.Plan{
			plan("acme", ch(silo.OpDelete, silo.TypeTable, "notes"), ch(silo.OpCreate, silo.TypeTable, "tasks")),
			plan("globex", ch(silo.OpDelete, silo.TypeTable, "notes"), ch(silo.OpReplace, silo.TypeSecret, "token")),
		}, []silo.Loss{
			{Op: silo.OpDelete, Type: silo.TypeTable, Name: "notes", Accounts: []silo.AccountID{"acme", "globex"}},
			{Op: silo.OpReplace, Type: silo.TypeSecret, Name: "token", Accounts: []silo.AccountID{"globex"}},
		}, "deletes table/notes in acme, globex; replaces secret/token in globex"},
		{"more than three accounts", []silo.Plan{
			plan("a1", ch(silo.OpDelete, silo.TypeBucket, "files")),
			plan("a2", ch(silo.OpDelete, silo.TypeBucket, "files")),
			plan("a3", ch(silo.OpDelete, silo.TypeBucket, "files")),
			plan("a4", ch(silo.OpDelete, silo.TypeBucket, "files")),
			plan("a5", ch(silo.OpDelete, silo.TypeBucket, "files")),
		}, []silo.Loss{
			{Op: silo.OpDelete, Type: silo.TypeBucket, Name: "files", Accounts: []silo.AccountID{"a1", "a2", "a3", "a4", "a5"}},
		}, "deletes bucket/files in a1, a2, a3, 2 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := silo.Losses(tc.plans)
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("Losses (-want +got):\n%s", diff)
			}
			if got := silo.DataLoss(tc.plans); got != tc.text {
				t.Errorf("DataLoss = %q, want %q", got, tc.text)
			}
		})
	}
}

// ShortList names at most n accounts and counts the rest; the twins: a
// list of n or fewer is named whole, with no count.
func TestShortList(t *testing.T) {
	ids := []silo.AccountID{"acme", "globex", "hooli", "initech"}
	for _, tc := range []struct {
		name string
		ids  []silo.AccountID
		n    int
		want string
	}{
		{"none", nil, 5, ""},
		{"fewer than n", ids[:2], 5, "acme, globex"},
		{"exactly n", ids, 4, "acme, globex, hooli, initech"},
		{"one more than n", ids, 3, "acme, globex, hooli, 1 more"},
		{"many more than n", ids, 1, "acme, 3 more"},
		{"n is 0", ids, 0, "4 more"},
		{"n is negative", ids, -1, "4 more"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := silo.ShortList(tc.ids, tc.n); got != tc.want {
				t.Errorf("ShortList(%v, %d) = %q, want %q", tc.ids, tc.n, got, tc.want)
			}
		})
	}
}
