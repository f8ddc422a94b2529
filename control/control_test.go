package control_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

const stack = `version: 1
name: demo
functions:
  f:
    source: ./f.wasm
    tables: {t: read-write}
tables: {t: {}}
routes:
  - {method: GET, path: /x, function: f}
`

func open(t *testing.T) (*control.Plane, store.Store) {
	t.Helper()
	p, st, _ := openWithProvider(t)
	return p, st
}

// openWithProvider is open, also returning the local provider.
func openWithProvider(t *testing.T) (*control.Plane, store.Store, *local.Provider) {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { prov.Close(); st.Close() })
	return control.New(control.Config{Store: st, Provider: prov}), st, prov
}

// release builds a release of the test stack, changed by mutate, and
// stores it.
func release(t testing.TB, st store.Store, mutate func(*spec.Stack)) engine.Release {
	t.Helper()
	stk, err := spec.Parse("silo.yaml", []byte(stack))
	if err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(stk)
	}
	arts := map[string]string{}
	for name := range stk.Functions {
		arts[name] = "sha256:aa"
	}
	for name := range stk.Production.Functions {
		arts[engine.ArtifactKey(true, name)] = "sha256:aa"
	}
	rel, stored, err := engine.NewRelease(stk, arts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutRelease(stored) }); err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestGateRefusesAReleaseThatCrossesAccounts: a release whose function is
// granted a name that reaches outside its account (the spec parser would
// refuse it; here it is built directly, as a bug or a hostile upload might)
// is refused before it becomes current, and the fleet keeps its release.
func TestGateRefusesAReleaseThatCrossesAccounts(t *testing.T) {
	ctx := context.Background()
	p, st := open(t)
	good := release(t, st, nil)
	if err := p.SetCurrent(ctx, good); err != nil {
		t.Fatalf("good release refused: %v", err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "globex"}); err != nil {
		t.Fatal(err)
	}
	for name, mutate := range map[string]func(*spec.Stack){
		"traversal into another account": func(s *spec.Stack) {
			f := s.Functions["f"]
			f.Tables = map[string]spec.Access{"../globex/t": spec.AccessReadWrite}
			s.Functions["f"] = f
		},
		"wildcard table": func(s *spec.Stack) {
			f := s.Functions["f"]
			f.Tables = map[string]spec.Access{"*": spec.AccessRead}
			s.Functions["f"] = f
		},
	} {
		t.Run(name, func(t *testing.T) {
			err := p.SetCurrent(ctx, release(t, st, mutate))
			if silo.ErrorCode(err) != silo.CodeFailedCheck {
				t.Fatalf("SetCurrent: got %v, want a failed isolation check", err)
			}
			cur, err := p.CurrentRelease(ctx)
			if err != nil || cur.ID != good.ID {
				t.Fatalf("current release = %s, %v; want the good one kept (%s)", cur.ID, err, good.ID)
			}
		})
	}
	// The audit log recorded the good release only.
	var n int
	err := st.View(ctx, func(tx store.Tx) error {
		es, err := tx.Audit(0, 0)
		for _, e := range es {
			if e.Event.Action == "release.current" {
				n++
			}
		}
		return err
	})
	if err != nil || n != 1 {
		t.Fatalf("release.current audit events = %d, %v; want 1", n, err)
	}
}

func TestKeysAreShownOnceAndRevocable(t *testing.T) {
	ctx := context.Background()
	p, st := open(t)
	if err := p.SetCurrent(ctx, release(t, st, nil)); err != nil {
		t.Fatal(err)
	}
	c, err := p.CreateAccount(ctx, control.CreateRequest{ID: "acme", WithKey: true})
	if err != nil || c.Key == "" {
		t.Fatalf("create with key: %+v, %v", c, err)
	}
	keys, err := p.Keys(ctx, "acme")
	if err != nil || len(keys) != 1 || keys[0].Revoked != nil || len(keys[0].Hash) == 0 {
		t.Fatalf("keys = %+v, %v; want one active, hashed key", keys, err)
	}
	if err := p.RevokeKey(ctx, "acme", keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if err := p.RevokeKey(ctx, "globex", keys[0].ID); !errors.Is(err, silo.ErrNotFound) {
		t.Fatalf("revoking acme's key as globex: got %v, want not found", err)
	}
	keys, _ = p.Keys(ctx, "acme")
	if keys[0].Revoked == nil {
		t.Fatal("key not revoked")
	}
	if _, _, err := p.IssueKey(ctx, silo.ProductionID, "x"); silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), "takes no API keys") {
		t.Fatalf("key for production: got %v, want invalid, saying it takes no API keys", err)
	}
}

// TestDeveloperPrefixIsKept: a new tenant or environment account may not
// be named dev-NAME, the developer account of developer NAME; a developer
// account must be, and other names stay free. A tenant named dev-NAME
// before the rule keeps working.
func TestDeveloperPrefixIsKept(t *testing.T) {
	ctx := context.Background()
	p, st := open(t)
	rel := release(t, st, nil)
	if err := p.SetCurrent(ctx, rel); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		req  control.CreateRequest
		want string // "" for created
	}{
		{control.CreateRequest{ID: "dev-ann"}, `invalid ID "dev-ann": names starting with "dev-" are kept for developer accounts (silo dev makes dev-NAME for each developer); choose another name`},
		{control.CreateRequest{ID: "dev-ann", Kind: silo.KindEnvironment, TTL: time.Hour}, `names starting with "dev-" are kept for developer accounts`},
		{control.CreateRequest{ID: "dev-ann", Kind: silo.KindDeveloper}, ""},
		{control.CreateRequest{ID: "devops"}, ""},
		{control.CreateRequest{ID: "acme-dev-1"}, ""},
	} {
		_, err := p.CreateAccount(ctx, tc.req)
		if tc.want == "" {
			if err != nil {
				t.Errorf("create %s of kind %q: %v; want created", tc.req.ID, tc.req.Kind, err)
			}
			continue
		}
		if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), tc.want) {
			t.Errorf("create %s of kind %q: %v; want invalid, %q", tc.req.ID, tc.req.Kind, err, tc.want)
		}
		if err := control.CheckCreate(rel, tc.req); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("CheckCreate(%s of kind %q) = %v; want the same refusal", tc.req.ID, tc.req.Kind, err)
		}
	}
	// A tenant named dev-old before the rule: still read, keyed, deleted.
	if _, err := p.Engine.CreateAccount(ctx, silo.Account{ID: "dev-old", Kind: silo.KindTenant}, rel); err != nil {
		t.Fatal(err)
	}
	if a, err := p.Account(ctx, "dev-old"); err != nil || a.Kind != silo.KindTenant {
		t.Fatalf("the tenant dev-old made before the rule: %+v, %v", a, err)
	}
	if _, _, err := p.IssueKey(ctx, "dev-old", "k"); err != nil {
		t.Errorf("a key for the tenant dev-old made before the rule: %v", err)
	}
}
