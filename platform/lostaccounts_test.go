package platform_test

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/silotest"
)

// TestServerRefusesChangesOnceItsAccountsDirIsLost: with the local
// provider, a serving platform looks at each Recover (the reaper's tick)
// that the data dir still holds the installation's accounts, as it does
// with an AWS organization. The accounts directory moved away under it
// (a wrong mount), the next tick finds none of the live accounts held,
// and every change is refused with one failed check naming the cause and
// the remedy, and silo doctor's report (fleet drift) says so. Putting the
// directory back lifts the refusal at the next tick. The twin: one
// account's directory lost is that account's problem only: the tick
// passes, and the other tenants take changes.
func TestServerRefusesChangesOnceItsAccountsDirIsLost(t *testing.T) {
	ctx := context.Background()
	p := silotest.New(t)
	p.Deploy(t, silotest.CopyExample(t))
	pl := p.Platform()
	api := apiClient(t, pl)
	acme := p.Tenant(t, "acme")
	p.Tenant(t, "globex")
	p.Tenant(t, "initech")
	dataDir := pl.Config().DataDir
	accounts := filepath.Dir(localtest.AccountDir(dataDir, "acme"))

	// Twin: acme's directory lost; the others are held.
	acmeDir := localtest.AccountDir(dataDir, "acme")
	if err := os.Rename(acmeDir, acmeDir+".away"); err != nil {
		t.Fatal(err)
	}
	if _, err := pl.Recover(ctx); err != nil {
		t.Fatalf("a tick with one account's directory lost: %v", err)
	}
	if _, err := api.UpdateParams(ctx, "globex", map[string]string{"plan": "pro"}, ""); err != nil {
		t.Errorf("update globex while acme's directory is lost: %v", err)
	}
	if d, err := api.Drift(ctx, ""); err != nil || d.Provider != "" {
		t.Errorf("fleet drift with one account lost: provider %q, %v; want no provider finding", d.Provider, err)
	}
	if resp := acme.GET(t, "/findings"); resp.Status == http.StatusOK {
		t.Errorf("acme's request with its directory lost: %s; want it refused", resp)
	}
	if err := os.Rename(acmeDir+".away", acmeDir); err != nil {
		t.Fatal(err)
	}

	// The whole accounts directory moved away.
	if err := os.Rename(accounts, accounts+".away"); err != nil {
		t.Fatal(err)
	}
	_, err := pl.Recover(ctx)
	const want = "(acme, globex, initech, production): its accounts directory (accounts) in the data dir "
	const fix = "was removed, moved or replaced (a wrong mount?); put it back, or restore it from the backup of the data dir that matches the data dir's control-plane state (state.db) (docs/operations.md); no account needs deleting or applying; until it holds them again this server refuses to create, change or delete accounts"
	says := func(msg string) bool {
		return strings.HasPrefix(msg, "the local provider no longer holds any of the 4 live account(s) of ") && strings.Contains(msg, want) && strings.Contains(msg, fix)
	}
	if silo.ErrorCode(err) != silo.CodeFailedCheck || !says(silo.UserMessage(err)) {
		t.Fatalf("the tick after the accounts directory was moved: %v; want %q ... %q", err, want, fix)
	}
	refused := func(what string, err error) {
		t.Helper()
		if silo.ErrorCode(err) != silo.CodeFailedCheck || !says(silo.UserMessage(err)) {
			t.Errorf("%s without the accounts directory: %v; want the failed check", what, err)
		}
	}
	_, err = api.CreateAccount(ctx, control.CreateRequest{ID: "hooli"})
	refused("create hooli", err)
	_, err = api.UpdateParams(ctx, "globex", map[string]string{"plan": "free"}, "")
	refused("update globex", err)
	refused("set acme's secret", api.SetSecret(ctx, "acme", "github-token", []byte("x")))
	_, err = api.DeleteAccount(ctx, "initech")
	refused("delete initech", err)
	if _, err := os.Stat(localtest.AccountDir(dataDir, "hooli")); !os.IsNotExist(err) {
		t.Errorf("hooli's directory after its refused creation: %v; want none", err)
	}
	if d, err := api.Drift(ctx, ""); err != nil || !says(d.Provider) {
		t.Errorf("fleet drift (silo doctor) without the accounts directory: provider %q, %v; want the failed check", d.Provider, err)
	}

	// Put back: the next tick lifts the refusal.
	if err := os.RemoveAll(accounts); err != nil { // whatever the refused changes may have left
		t.Fatal(err)
	}
	if err := os.Rename(accounts+".away", accounts); err != nil {
		t.Fatal(err)
	}
	if _, err := pl.Recover(ctx); err != nil {
		t.Fatalf("a tick once the accounts directory is back: %v", err)
	}
	if _, err := api.UpdateParams(ctx, "globex", map[string]string{"plan": "free"}, ""); err != nil {
		t.Errorf("update globex once the accounts directory is back: %v", err)
	}
	if d, err := api.Drift(ctx, ""); err != nil || d.Provider != "" {
		t.Errorf("fleet drift once the accounts directory is back: provider %q, %v; want no provider finding", d.Provider, err)
	}
	if resp := acme.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Errorf("acme's request once the accounts directory is back: %s; want 200", resp)
	}
}
