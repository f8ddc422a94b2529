package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
)

// blockAccount makes the local provider unable to say whether it holds
// account id, with a real error: a file stands where its directory goes.
func blockAccount(t *testing.T, c *cli, id string) {
	t.Helper()
	dir := filepath.Join(c.dataDir, "accounts", "accounts")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, id), nil, 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestFailedFirstTenantSaysProductionStays: on a fresh installation, a
// tenant create whose tenant the provider cannot create (after the
// request's checks passed: here the provider cannot say whether it
// already holds the ID, which refuses the tenant before it is registered)
// stored the release built from silo.yaml, made it current and made the
// production account on it first; that account and the current release
// stay, and the error says so, naming the release (must). A tenant that
// fails later, on an installation whose production account was there
// before, says nothing of production (must not).
func TestFailedFirstTenantSaysProductionStays(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	blockAccount(t, c, "acme")
	code, _, errOut := c.run("tenant", "create", "acme")
	var rels []struct {
		ID      string
		Current bool
	}
	if err := json.Unmarshal([]byte(c.ok("release", "list", "-o", "json")), &rels); err != nil {
		t.Fatal(err)
	}
	if len(rels) != 1 || !rels[0].Current {
		t.Fatalf("releases after the failed first create: %+v; want one, current, as the error says", rels)
	}
	rel := rels[0].ID
	want := "silo: the production account was created on release " + rel + " and stays, and " + rel + " stays the current release (they serve every account of the installation); tenant acme was not created: the provider cannot say whether it already holds an account named acme, so nothing was created: the local files of account acme are damaged"
	if code != 1 || !strings.HasPrefix(errOut, want) {
		t.Fatalf("first tenant create that fails: exit %d, stderr %q; want exit 1 and %q...", code, errOut, want)
	}
	if st := accountState(t, c, silo.ProductionID); st != silo.StateActive {
		t.Errorf("the production account is %s after the failed create, want active, as the error says", st)
	}
	c.fails(`no account "acme"`, "tenant", "show", "acme")

	blockAccount(t, c, "beta")
	code, _, errOut = c.run("tenant", "create", "beta")
	if code != 1 || !strings.HasPrefix(errOut, "silo: the provider cannot say whether it already holds an account named beta, so nothing was created: ") || strings.Contains(errOut, "production") {
		t.Fatalf("a later tenant create that fails: exit %d, stderr %q; want exit 1, beta's failure and no word of production", code, errOut)
	}

	// Once the cause is gone, the tenant is created on the production
	// account that stayed.
	if err := os.Remove(localtest.AccountDir(c.dataDir, "acme")); err != nil {
		t.Fatal(err)
	}
	c.ok("tenant", "create", "acme")
	if st := accountState(t, c, "acme"); st != silo.StateActive {
		t.Errorf("acme is %s after silo tenant create acme, want active", st)
	}
}
