package postgres

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestViewWhileWritersWait holds the audit log's head row from a connection
// of its own, as a long write on another server would, and starts as many
// audit appends as the store has writer connections, so that every writer
// connection waits on the row. A View must still complete (it runs on the
// reader pool); an Update cannot get a connection until the row is let go.
// Once it is, every append commits and a View begun after sees them all.
//
// The deadlines turn a wait that would otherwise hang into a failure; the
// test asserts on outcomes only.
func TestViewWhileWritersWait(t *testing.T) {
	dsn := pgtest.Fresh(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	appendOne := func(ctx context.Context, action string) error {
		return s.Update(ctx, func(tx store.Tx) error {
			_, err := tx.AppendAudit(store.AuditEvent{Actor: "server", Action: action})
			return err
		})
	}
	if err := appendOne(ctx, "test.first"); err != nil {
		t.Fatal(err)
	}

	holder, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	lock, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Rollback(ctx)
	if _, err := lock.Exec(ctx, `SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE`); err != nil {
		t.Fatal(err)
	}

	writers := int(s.pool.Config().MaxConns)
	done := make(chan error, writers)
	for i := range writers {
		go func() { done <- appendOne(ctx, fmt.Sprintf("test.blocked.%d", i)) }()
	}
	// Wait until every writer connection is taken by an append waiting on
	// the row (they cannot finish while it is held).
	for wait := time.Now(); s.pool.Stat().AcquiredConns() < int32(writers); {
		if time.Since(wait) > time.Minute {
			t.Fatalf("only %d of %d writer connections taken", s.pool.Stat().AcquiredConns(), writers)
		}
		time.Sleep(10 * time.Millisecond)
	}

	// Must not: the writers are starved, so another Update cannot even begin.
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	err = appendOne(short, "test.starved")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("an Update while every writer connection waits: got %v, want the deadline exceeded", err)
	}

	// Must: a View completes all the same.
	bounded, cancel := context.WithTimeout(ctx, 15*time.Second)
	var seen []store.AuditEntry
	err = s.View(bounded, func(tx store.Tx) error {
		var err error
		seen, err = tx.Audit(0, 0)
		return err
	})
	cancel()
	if err != nil {
		t.Fatalf("View while every writer connection waits on a locked row: %v", err)
	}
	if len(seen) != 1 || seen[0].Event.Action != "test.first" {
		t.Fatalf("View saw %d entries, want the one committed before the lock", len(seen))
	}

	// Let go of the row: every append commits, and a View begun after
	// returns sees each of them (read-your-writes across the two pools).
	if err := lock.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	for range writers {
		if err := <-done; err != nil {
			t.Fatalf("append after the row was let go: %v", err)
		}
	}
	if err := s.View(ctx, func(tx store.Tx) error {
		var err error
		seen, err = tx.Audit(0, 0)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1+writers {
		t.Fatalf("View after the appends saw %d entries, want %d", len(seen), 1+writers)
	}
}
