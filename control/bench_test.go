package control_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/store/sqlite"
)

// BenchmarkOnboarding compares what the per-account isolation gate costs
// (GateAccount: one read of the production account, the account's
// resources under its release, a proof over the two) with a whole
// onboarding that runs it (CreateAccount on SQLite and the local
// provider).
//
//	go test -run '^$' -bench Onboarding -benchtime 200x ./control
func BenchmarkOnboarding(b *testing.B) {
	ctx := context.Background()
	dir := b.TempDir()
	st, err := sqlite.Open(ctx, filepath.Join(dir, "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		b.Fatal(err)
	}
	defer prov.Close()
	p := control.New(control.Config{Store: st, Provider: prov})
	rel := release(b, st, withPlan)
	if err := p.SetCurrent(ctx, rel); err != nil {
		b.Fatal(err)
	}
	if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: "first"}); err != nil {
		b.Fatal(err)
	}
	b.Run("gate-account", func(b *testing.B) {
		a := silo.Account{ID: "newcomer", Kind: silo.KindTenant, Params: map[string]string{"plan": "pro"}}
		for b.Loop() {
			if err := p.GateAccount(ctx, rel, a); err != nil {
				b.Fatal(err)
			}
		}
	})
	i := 0 // across runs of the sub-benchmark (-count): every ID is new
	b.Run("create-account", func(b *testing.B) {
		for b.Loop() {
			i++
			if _, err := p.CreateAccount(ctx, control.CreateRequest{ID: fmt.Sprintf("t%d", i), Params: map[string]string{"plan": "pro"}}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
