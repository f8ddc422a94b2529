package sqlite

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// TestLogOutlivesClose: closing the store leaves the commits in
// state.db-wal, not checkpointed (no syncs at close, none for a new log at
// the next open: wal.go), and every commit is there when the store is
// opened again, by the next process as by this one; the next commits
// append to the log. Without the hook the log is checkpointed and deleted
// at close and this test fails.
func TestLogOutlivesClose(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "state.db")
	create := func(s *Store, from, to int) {
		t.Helper()
		for i := from; i < to; i++ {
			err := s.Update(ctx, func(tx store.Tx) error {
				return tx.CreateAccount(silo.Account{ID: silo.AccountID(fmt.Sprintf("t%03d", i)), Kind: silo.KindTenant, State: silo.StateActive})
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	count := func(s *Store) int {
		t.Helper()
		var n int
		err := s.View(ctx, func(tx store.Tx) error {
			as, err := tx.Accounts(store.Filter{})
			n = len(as)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	walSize := func() int64 {
		t.Helper()
		st, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatalf("after Close: %v; want the log kept", err)
		}
		return st.Size()
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	create(s, 0, 10)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	first := walSize()
	if first <= 32 { // the log's header alone
		t.Fatalf("state.db-wal is %d bytes after 10 commits and Close; want the commits in it", first)
	}

	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if n := count(s); n != 10 {
		t.Errorf("after reopening: %d accounts, want 10", n)
	}
	create(s, 10, 20)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if second := walSize(); second <= first {
		t.Errorf("state.db-wal is %d bytes after 10 more commits, was %d; want them appended", second, first)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if n := count(s); n != 20 {
		t.Errorf("after reopening again: %d accounts, want 20", n)
	}
	if err := s.Check(ctx); err != nil {
		t.Error(err)
	}
}

// BenchmarkOpenWithLog opens the store, reads one account and closes it, as
// a short command does, on a database whose log holds about 3 MiB of
// commits left by the process before (log=left: SQLite reads the whole log
// back and rebuilds its index at the first open) against the same database
// with its log checkpointed (log=checkpointed, the baseline: what a
// checkpoint at close left before the log outlived the process).
func BenchmarkOpenWithLog(b *testing.B) {
	ctx := context.Background()
	for _, left := range []bool{false, true} {
		name := "log=checkpointed"
		if left {
			name = "log=left"
		}
		b.Run(name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), "state.db")
			s, err := Open(ctx, path)
			if err != nil {
				b.Fatal(err)
			}
			logSize := func() int64 {
				st, err := os.Stat(path + "-wal")
				if err != nil {
					return 0
				}
				return st.Size()
			}
			for i := 0; logSize() < 3<<20; i++ {
				err := s.Update(ctx, func(tx store.Tx) error {
					for j := range 500 {
						id := silo.AccountID(fmt.Sprintf("t%07d", i*500+j))
						if err := tx.CreateAccount(silo.Account{ID: id, Kind: silo.KindTenant, State: silo.StateActive, Params: map[string]string{"plan": "pro"}}); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			if !left {
				if _, err := s.w.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
					b.Fatal(err)
				}
			}
			if err := s.Close(); err != nil {
				b.Fatal(err)
			}
			log := logSize()
			for b.Loop() {
				s, err := Open(ctx, path)
				if err != nil {
					b.Fatal(err)
				}
				err = s.View(ctx, func(tx store.Tx) error {
					_, err := tx.Accounts(store.Filter{Limit: 1})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				if err := s.Close(); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(log)/(1<<20), "MiB-log")
		})
	}
}
