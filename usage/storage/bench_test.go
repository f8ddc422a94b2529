package storage_test

import (
	"context"
	"strconv"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/usage/storage"
)

// BenchmarkPut is what counting stored bytes adds to a table write: the
// local provider's Put alone (the baseline) and through a tracker with a
// limit, in the same run, overwriting 100 keys of 1 KiB.
//
//	go test ./usage/storage -run '^$' -bench Put -benchtime 2000x -count 3
func BenchmarkPut(b *testing.B) {
	ctx := context.Background()
	v := make([]byte, 1024)
	for _, tracked := range []bool{false, true} {
		name := "provider"
		if tracked {
			name = "tracked"
		}
		b.Run(name, func(b *testing.B) {
			_, d := open(b, "acme")
			if tracked {
				tr := storage.New(storage.Config{Limit: func(context.Context, silo.AccountID) (storage.Limit, error) {
					return storage.Limit{Bytes: 1 << 30}, nil
				}})
				d = tr.Data("acme", d)
			}
			i := 0
			for b.Loop() {
				if err := d.Put(ctx, "findings", "k"+strconv.Itoa(i%100), v); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}

// BenchmarkGet is the read the tracker adds before each write (the old
// value's size), on the same provider.
func BenchmarkGet(b *testing.B) {
	ctx := context.Background()
	_, d := open(b, "acme")
	for i := range 100 {
		if err := d.Put(ctx, "findings", "k"+strconv.Itoa(i), make([]byte, 1024)); err != nil {
			b.Fatal(err)
		}
	}
	i := 0
	for b.Loop() {
		if _, err := d.Get(ctx, "findings", "k"+strconv.Itoa(i%100)); err != nil {
			b.Fatal(err)
		}
		i++
	}
}
