package postgres

import (
	"context"
	"testing"

	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// BenchmarkFeed measures one change announced by one Store until another
// Store of the same schema (another server) has received it, against the
// baseline of one committed update (an API call's write) on the same
// database, measured in the same run:
//
//	go test ./store/postgres -run '^$' -bench Feed -benchtime 2000x
func BenchmarkFeed(b *testing.B) {
	dsn := pgtest.Fresh(b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	open := func() *Store {
		s, err := Open(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		return s
	}
	a, other := open(), open()
	b.Run("update-baseline", func(b *testing.B) {
		for b.Loop() {
			if err := a.Update(ctx, func(tx store.Tx) error { return tx.PutSetting("bench", "x") }); err != nil {
				b.Fatal(err)
			}
		}
	})
	got := make(chan store.Change, 1)
	go other.Listen(ctx, func(c store.Change) { got <- c })
	<-got // the resync: listening
	b.Run("announce-to-other-store", func(b *testing.B) {
		for b.Loop() {
			if err := a.Announce(ctx, store.Change{Account: "acme", What: "key"}); err != nil {
				b.Fatal(err)
			}
			<-got
		}
	})
}
