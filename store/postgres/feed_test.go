package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestFeedCrossesStores announces on one Store and receives on another
// Store of the same schema (two servers), while a Store of another schema
// (another installation in the same database) hears nothing of it.
func TestFeedCrossesStores(t *testing.T) {
	dsn := pgtest.Fresh(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func(dsn string) *Store {
		s, err := Open(ctx, dsn)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}
	a, b, other := open(dsn), open(dsn), open(pgtest.Fresh(t))
	listen := func(s *Store) (<-chan store.Change, <-chan error) {
		got, done := make(chan store.Change, 16), make(chan error, 1)
		go func() { done <- s.Listen(ctx, func(c store.Change) { got <- c }) }()
		if c := <-got; c.What != store.ChangeResync {
			t.Fatalf("first change: got %+v, want a resync", c)
		}
		return got, done
	}
	onB, doneB := listen(b)
	onOther, _ := listen(other)

	want := []store.Change{{Account: "acme", What: "key"}, {What: "release"}}
	for _, c := range want {
		if err := a.Announce(ctx, c); err != nil {
			t.Fatalf("Announce: %v", err)
		}
	}
	var got []store.Change
	for range want {
		select {
		case c := <-onB:
			got = append(got, c)
		case <-time.After(10 * time.Second):
			t.Fatalf("b received %v, want %v", got, want)
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("b received (-want +got):\n%s", diff)
	}
	// The other schema's listener is connected (it got its resync); an
	// announcement on its own schema reaches it, and a's did not before.
	if err := other.Announce(ctx, store.Change{Account: "globex", What: "state"}); err != nil {
		t.Fatalf("Announce: %v", err)
	}
	select {
	case c := <-onOther:
		if c.Account != "globex" {
			t.Errorf("the other schema's listener got %+v, want only its own change (globex)", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the other schema's listener got nothing of its own schema")
	}
	cancel()
	if err := <-doneB; err != context.Canceled {
		t.Errorf("Listen after cancel: got %v, want context.Canceled", err)
	}
}

// TestFeedResyncsAfterALostConnection kills the listening connection on the
// server side: Listen connects again and delivers a resync (announcements
// sent meanwhile are lost, so the receiver must drop its cache), and then
// receives announcements again.
func TestFeedResyncsAfterALostConnection(t *testing.T) {
	s := openFresh(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan store.Change, 16)
	go s.Listen(ctx, func(c store.Change) { got <- c })
	if c := <-got; c.What != store.ChangeResync {
		t.Fatalf("first change: got %+v, want a resync", c)
	}
	var killed int
	err := s.pool.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query = $1`,
		"LISTEN "+pgx.Identifier{s.channel()}.Sanitize()).Scan(&killed)
	if err != nil || killed != 1 {
		t.Fatalf("terminate the listening connection: killed %d, %v; want 1", killed, err)
	}
	select {
	case c := <-got:
		if c.What != store.ChangeResync {
			t.Fatalf("after the lost connection: got %+v, want a resync first", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no resync after the lost connection")
	}
	if err := s.Announce(ctx, store.Change{Account: "acme", What: "state"}); err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-got:
		if c.Account != "acme" {
			t.Errorf("after reconnecting: got %+v, want acme's change", c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no announcement received after reconnecting")
	}
}
