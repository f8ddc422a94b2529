package console

import (
	"fmt"
	"testing"

	silo "github.com/silo-run/silo"
)

// A loss names up to lossShown accounts and counts the rest.
func TestLossRows(t *testing.T) {
	accts := func(n int) []silo.AccountID {
		out := make([]silo.AccountID, n)
		for i := range out {
			out[i] = silo.AccountID(fmt.Sprintf("t%05d", i))
		}
		return out
	}
	for _, tc := range []struct {
		name        string
		n           int
		named, more int
	}{
		{"one account", 1, 1, 0},
		{"exactly the cap", lossShown, lossShown, 0},
		{"over the cap", lossShown + 7, lossShown, 7},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rows := lossRows([]silo.Loss{{Op: silo.OpDelete, Type: silo.TypeTable, Name: "notes", Accounts: accts(tc.n)}})
			if len(rows) != 1 {
				t.Fatalf("got %d rows, want 1", len(rows))
			}
			if len(rows[0].Accounts) != tc.named || rows[0].More != tc.more {
				t.Errorf("got %d named, %d more; want %d named, %d more", len(rows[0].Accounts), rows[0].More, tc.named, tc.more)
			}
		})
	}
}
