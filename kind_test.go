package silo_test

import (
	"testing"

	silo "github.com/silo-run/silo"
)

// TestDeleteCommand: each kind's deleting command, and none for the
// production account.
func TestDeleteCommand(t *testing.T) {
	for _, c := range []struct {
		kind silo.Kind
		id   silo.AccountID
		want string
	}{
		{silo.KindTenant, "acme", "silo tenant delete acme"},
		{silo.KindDeveloper, "dev-ann", "silo env delete dev-ann"},
		{silo.KindEnvironment, "pr-7", "silo env delete pr-7"},
		{silo.KindProduction, silo.ProductionID, ""},
	} {
		if got := silo.DeleteCommand(c.kind, c.id); got != c.want {
			t.Errorf("DeleteCommand(%s, %s) = %q, want %q", c.kind, c.id, got, c.want)
		}
	}
}
