//go:build long

package sqlite

import (
	"context"
	"fmt"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// TestTenThousandAccounts is the full-size onboarding run: 10,000 accounts,
// each created (with its audit entry) in its own Update, then listed,
// counted and paged. Run with: go test -tags=long -run TenThousand ./store/sqlite/
func TestTenThousandAccounts(t *testing.T) {
	const n = 10000
	s := openTemp(t)
	ctx := context.Background()
	for i := range n {
		id := silo.AccountID(fmt.Sprintf("t%05d", i))
		err := s.Update(ctx, func(tx store.Tx) error {
			if err := tx.CreateAccount(silo.Account{ID: id, Kind: silo.KindTenant, State: silo.StateActive, Params: map[string]string{"plan": "pro"}}); err != nil {
				return err
			}
			_, err := tx.AppendAudit(store.AuditEvent{Actor: "test", Action: "tenant.create", Account: id})
			return err
		})
		if err != nil {
			t.Fatalf("create %s: %v", id, err)
		}
	}
	err := s.View(ctx, func(tx store.Tx) error {
		as, err := tx.Accounts(store.Filter{})
		if err != nil {
			return err
		}
		if len(as) != n {
			t.Errorf("listed %d accounts, want %d", len(as), n)
		}
		c, err := tx.CountAccounts(store.Filter{Kind: silo.KindTenant})
		if err != nil {
			return err
		}
		if c != n {
			t.Errorf("counted %d accounts, want %d", c, n)
		}
		got, after := 0, silo.AccountID("")
		for {
			page, err := tx.Accounts(store.Filter{After: after, Limit: 500})
			if err != nil {
				return err
			}
			if len(page) == 0 {
				break
			}
			got += len(page)
			after = page[len(page)-1].ID
		}
		if got != n {
			t.Errorf("paged through %d accounts, want %d", got, n)
		}
		es, err := tx.Audit(0, 0)
		if err != nil {
			return err
		}
		if k, err := store.VerifyChain("", 0, es); err != nil || k != n {
			t.Errorf("VerifyChain = %d, %v; want %d, nil", k, err, n)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
