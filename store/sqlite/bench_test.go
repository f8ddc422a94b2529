package sqlite

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// BenchmarkCreateAccount creates one account per Update (one fsync'd commit
// each), as onboarding does.
func BenchmarkCreateAccount(b *testing.B) {
	for _, audit := range []bool{false, true} {
		b.Run(fmt.Sprintf("audit=%v", audit), func(b *testing.B) {
			s, err := Open(context.Background(), b.TempDir()+"/state.db")
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
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

func fill(b *testing.B, s store.Store, n int) {
	b.Helper()
	now := time.Now()
	err := s.Update(context.Background(), func(tx store.Tx) error {
		for i := range n {
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
}

// BenchmarkAccounts10k lists and counts 10,000 accounts.
func BenchmarkAccounts10k(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir()+"/state.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill(b, s, 10000)
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
	b.Run("page100", func(b *testing.B) {
		for b.Loop() {
			err := s.View(context.Background(), func(tx store.Tx) error {
				_, err := tx.Accounts(store.Filter{After: "t0005000", Limit: 100})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkDirectoryRead10k reads one account and its resources in a View,
// as the gateway's directory does on a tenant's first request, cycling
// through 10,000 accounts so that the reader's page cache cannot hold them
// all (parallel: several reader connections at once).
func BenchmarkDirectoryRead10k(b *testing.B) {
	s, err := Open(context.Background(), b.TempDir()+"/state.db")
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	fill(b, s, 10000)
	var next atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			id := silo.AccountID(fmt.Sprintf("t%07d", next.Add(7919)%10000))
			err := s.View(context.Background(), func(tx store.Tx) error {
				if _, err := tx.Account(id); err != nil {
					return err
				}
				_, err := tx.Resources(id)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
}
