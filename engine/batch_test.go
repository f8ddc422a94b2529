package engine_test

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store/sqlite"
)

// oneByOne is the local provider seen through the provider contract alone:
// it has no ApplyBatch, as a provider that does not batch.
type oneByOne struct{ provider.Provider }

// TestCreateAccountBatchedOrOneByOne: creating an account through a provider
// that applies the whole stack in one batch and through one applied change
// by change leaves the same resources in the provider and in state, the
// account active, and the engine's hook called once per change either way.
func TestCreateAccountBatchedOrOneByOne(t *testing.T) {
	ctx := context.Background()
	rel := release(t, stackV1, "sha256:aaaa")
	got := map[string][]silo.Resource{}
	for _, tc := range []struct {
		name  string
		batch bool
	}{{"batch", true}, {"one-by-one", false}} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
			if err != nil {
				t.Fatal(err)
			}
			lp, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { lp.Close(); st.Close() })
			var prov provider.Provider = lp
			if !tc.batch {
				prov = oneByOne{lp}
			}
			steps := 0
			eng := engine.New(engine.Config{Store: st, Provider: prov, Hook: func(s engine.Step) {
				if s.Point == "provider" && s.Change != nil {
					steps++
				}
			}})
			a, err := eng.CreateAccount(ctx, silo.Account{ID: "acme", Kind: silo.KindTenant}, rel)
			if err != nil || a.State != silo.StateActive {
				t.Fatalf("CreateAccount = %+v, %v; want active", a, err)
			}
			rs, err := lp.Resources(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if len(rs) == 0 || steps != len(rs) {
				t.Fatalf("%d resources in the provider, %d provider steps; want as many steps as resources, and some", len(rs), steps)
			}
			got[tc.name] = rs
		})
	}
	if !reflect.DeepEqual(got["batch"], got["one-by-one"]) {
		t.Fatalf("provider resources differ:\nbatch:      %v\none by one: %v", got["batch"], got["one-by-one"])
	}
}
