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
