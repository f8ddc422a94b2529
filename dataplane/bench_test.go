package dataplane_test

import (
	"context"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/store"
)

// BenchmarkCachedRequest is what one request reads of the directory once
// the account and its key are cached: the gateway's Key, Account and
// Routes and the invoker's Pin, production View and Unpin.
// Run: go test ./dataplane -run=^$ -bench=CachedRequest -benchmem
func BenchmarkCachedRequest(b *testing.B) {
	f := newFixture(b, map[silo.AccountID]silo.State{"acme": silo.StateActive})
	_, k, err := apikey.New("acme")
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if err := f.st.Update(ctx, func(tx store.Tx) error { return tx.PutKey(k) }); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.dir.Key(ctx, k.ID); err != nil {
			b.Fatal(err)
		}
		if _, err := f.dir.Account(ctx, "acme"); err != nil {
			b.Fatal(err)
		}
		if _, err := f.dir.Routes(ctx, "acme"); err != nil {
			b.Fatal(err)
		}
		if _, err := f.dir.Pin(ctx, "acme"); err != nil {
			b.Fatal(err)
		}
		if _, err := f.dir.View(ctx, silo.ProductionID); err != nil {
			b.Fatal(err)
		}
		f.dir.Unpin("acme")
	}
}
