package platform_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/silotest"
)

// TestSeedRefusesUndeclared: seeding an existing account with a table or
// bucket its stack does not declare is refused before anything is
// written, naming them and the declared ones; the twin, the declared
// table alone, is written.
func TestSeedRefusesUndeclared(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
	pp := p.Platform()
	ctx := context.Background()
	dir := t.TempDir()
	write := func(name, data string) {
		t.Helper()
		f := filepath.Join(dir, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(f), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(f, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("tables/findings.json", `{"seeded":{"title":"from the seed","severity":"high","app":"github"}}`)
	write("tables/nosuch.json", `{"k":"v"}`)
	err := pp.Seed(ctx, acme.ID, dir)
	if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), `(the one acme runs): "nosuch" (tables/nosuch.json) (declared tables: findings)`) {
		t.Fatalf("seed with an undeclared table: got %v, want it refused, naming nosuch and findings", err)
	}
	data, err := pp.Provider.Data(ctx, acme.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := data.Get(ctx, "findings", "seeded"); err == nil {
		t.Fatalf("a refused seed wrote the declared table's key")
	}
	if err := os.Remove(filepath.Join(dir, "tables", "nosuch.json")); err != nil {
		t.Fatal(err)
	}
	if err := pp.Seed(ctx, acme.ID, dir); err != nil {
		t.Fatalf("seed with the declared table alone: %v", err)
	}
	if _, err := data.Get(ctx, "findings", "seeded"); err != nil {
		t.Errorf("the declared table after seeding: %v", err)
	}
}
