package postgres

import (
	"context"
	"fmt"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// BenchmarkCreateAccount creates one account per Update, as onboarding does.
func BenchmarkCreateAccount(b *testing.B) {
	for _, audit := range []bool{false, true} {
		b.Run(fmt.Sprintf("audit=%v", audit), func(b *testing.B) {
			s := openFresh(b)
			i := 0
			for b.Loop() {
				id := silo.AccountID(fmt.Sprintf("t%07d", i))
				i++
				err := s.Update(context.Background(), func(tx store.Tx) error {
					if err := tx.CreateAccount(silo.Account{ID: id, Kind: silo.KindTenant, State: silo.StateActive, Params: map[string]string{"plan": "pro"}}); err != nil {
						return err
					}
					if audit {
						_, err := tx.AppendAudit(store.AuditEvent{Actor: "bench", Action: "tenant.create", Account: id})
						return err
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAccounts10k lists and counts 10,000 accounts.
func BenchmarkAccounts10k(b *testing.B) {
	s := openFresh(b)
	now := time.Now()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for i := range 10000 {
			a := silo.Account{ID: silo.AccountID(fmt.Sprintf("t%07d", i)), Kind: silo.KindTenant, State: silo.StateActive,
				Name: "Tenant", Params: map[string]string{"plan": "pro", "ring": "2"}, Release: "rel-abcdef", StackHash: "0123456789abcdef", Created: now, Updated: now}
			if err := tx.CreateAccount(a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("list", func(b *testing.B) {
		for b.Loop() {
			err := s.View(context.Background(), func(tx store.Tx) error {
				as, err := tx.Accounts(store.Filter{})
				if len(as) != 10000 {
					return fmt.Errorf("got %d accounts", len(as))
				}
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("count", func(b *testing.B) {
		for b.Loop() {
			err := s.View(context.Background(), func(tx store.Tx) error {
				_, err := tx.CountAccounts(store.Filter{})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
