package isolation

import (
	"context"

	silo "github.com/silo-run/silo"
)

// KeyProblems returns what Verify finds wrong with the record of key k
// bound to account a (nil: no such account): the counterexamples about the
// key itself (bound to an account its ID does not name, to the production
// account, to no existing account, or live on a deleted account), none
// for a sound key. What is wrong with account a itself is left out. It is
// the one check of a key record, shared by the verifier and by the
// command that removes such a record (control.Plane.RemoveKey).
func KeyProblems(ctx context.Context, k Key, a *silo.Account) []Counterexample {
	f := &Fleet{Keys: []Key{k}}
	if a != nil {
		f.Accounts = []AccountState{{Account: *a}}
	}
	var out []Counterexample
	for _, c := range Verify(ctx, f).Counterexamples {
		if aboutKey(c) == k.ID {
			out = append(out, c)
		}
	}
	return out
}

// aboutKey returns the ID of the API key a counterexample is about (its
// path starts at the key and goes no further), or "".
func aboutKey(c Counterexample) string {
	if len(c.Path) != 1 || c.Path[0].From.Kind != NodeKey {
		return ""
	}
	return c.Path[0].From.Name
}
