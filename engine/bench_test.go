package engine_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/store"
)

// BenchmarkPlanNoChange measures a no-change plan over a fleet of 1,000
// accounts whose recorded stack hash matches the release (ns/op is per
// fleet; divide by 1,000 for the per-account cost).
func BenchmarkPlanNoChange(b *testing.B) {
	ctx := context.Background()
	e := open(b, b.TempDir(), nil)
	rel := release(b, stackV1, "sha256:aaaa")
	now := time.Now()
	const n = 1000
	err := e.store.Update(ctx, func(tx store.Tx) error {
		for i := 0; i < n; i++ {
			a := silo.Account{ID: silo.AccountID(fmt.Sprintf("t%d", i)), Kind: silo.KindTenant, State: silo.StateActive, Params: map[string]string{"plan": "pro"}, Created: now, Updated: now, Version: 1}
			d, err := engine.Desired(rel.Stack, rel.Artifacts, a)
			if err != nil {
				return err
			}
			a.StackHash, a.Release = silo.SetHash(d), rel.ID
			if err := tx.CreateAccount(a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		changed := 0
		err := e.eng.PlanFleet(ctx, rel, store.Filter{}, func(p silo.Plan, err error) error {
			if err != nil {
				return err
			}
			if p.Touches() {
				changed++
			}
			return nil
		})
		if err != nil || changed != 0 {
			b.Fatalf("plan: %v, %d changed", err, changed)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/account")
}
