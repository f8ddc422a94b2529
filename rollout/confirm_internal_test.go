package rollout

import (
	"fmt"
	"testing"

	silo "github.com/silo-run/silo"
)

// A preview's digest covers every account of every loss, is stable, and
// names an empty list too (so that "nothing would be destroyed" can be
// confirmed); nil and empty lists are the same list.
func TestLossDigest(t *testing.T) {
	accts := func(n int) []silo.AccountID {
		out := make([]silo.AccountID, n)
		for i := range out {
			out[i] = silo.AccountID(fmt.Sprintf("t%05d", i))
		}
		return out
	}
	notes := func(n int) []silo.Loss {
		return []silo.Loss{{Op: silo.OpDelete, Type: silo.TypeTable, Name: "notes", Accounts: accts(n)}}
	}
	for _, tc := range []struct {
		name string
		a, b []silo.Loss
		same bool
	}{
		{"the same list", notes(60), notes(60), true},
		{"one account more, past any page's cap", notes(60), notes(61), false},
		{"replaced, not deleted", notes(1), []silo.Loss{{Op: silo.OpReplace, Type: silo.TypeTable, Name: "notes", Accounts: accts(1)}}, false},
		{"nothing and something", nil, notes(1), false},
		{"nil and empty", nil, []silo.Loss{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, b := lossDigest(tc.a), lossDigest(tc.b)
			if len(a) != digestLen || len(b) != digestLen {
				t.Fatalf("digests %q, %q: want %d hex digits each", a, b, digestLen)
			}
			if (a == b) != tc.same {
				t.Errorf("got %s and %s, want the same: %v", a, b, tc.same)
			}
		})
	}
}
