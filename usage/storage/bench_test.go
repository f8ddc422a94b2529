package storage_test

import (
	"context"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/provider/local"
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

// BenchmarkAddConcurrent is the scaffold's table write: 16 writers adding
// to one counter key of one account, the local provider's Add alone (the
// baseline) and through a tracker with a limit (the platform's path: the
// size of the old value is metered), in the same run. Reported per write:
// the process's CPU (steadier than wall time on a loaded machine) and the
// mean number of writes a commit carried.
//
//	go test ./usage/storage -run '^$' -bench AddConcurrent -benchtime 20000x -count 3
func BenchmarkAddConcurrent(b *testing.B) {
	ctx := context.Background()
	concurrentWrites(b, func(d provider.Data, i int64) error {
		_, err := d.Add(ctx, "findings", "count", 1)
		return err
	}, func(b *testing.B, d provider.Data, n int64) {
		got, err := d.Get(ctx, "findings", "count")
		if err != nil || string(got) != strconv.FormatInt(n, 10) {
			b.Fatalf("count after %d adds: got %q, %v", n, got, err)
		}
	})
}

// BenchmarkPutConcurrent: 16 writers overwriting 100 keys of one table
// with 64-byte values, the provider alone and through a tracker, as
// BenchmarkAddConcurrent.
//
//	go test ./usage/storage -run '^$' -bench PutConcurrent -benchtime 20000x -count 3
func BenchmarkPutConcurrent(b *testing.B) {
	ctx := context.Background()
	v := make([]byte, 64)
	concurrentWrites(b, func(d provider.Data, i int64) error {
		return d.Put(ctx, "findings", "k"+strconv.FormatInt(i%100, 10), v)
	}, nil)
}

// concurrentWrites runs write from 16 goroutines, on the provider alone
// and through a tracker, and reports CPU per write and writes per commit;
// check, if not nil, checks the data after n writes.
func concurrentWrites(b *testing.B, write func(d provider.Data, i int64) error, check func(b *testing.B, d provider.Data, n int64)) {
	for _, tracked := range []bool{false, true} {
		name := "provider"
		if tracked {
			name = "tracked"
		}
		b.Run(name, func(b *testing.B) {
			p, d := open(b, "acme")
			if tracked {
				tr := storage.New(storage.Config{Limit: func(context.Context, silo.AccountID) (storage.Limit, error) {
					return storage.Limit{Bytes: 1 << 30}, nil
				}})
				d = tr.Data("acme", d)
			}
			lp := p.(*local.Provider)
			c0, w0 := lp.Commits()
			var n atomic.Int64
			b.SetParallelism(8) // 16 writers on 2 cores
			cpu0 := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := write(d, n.Add(1)); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if w := n.Load(); w > 0 {
				b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(w), "cpu-µs/write")
			}
			if c, w := lp.Commits(); c > c0 {
				b.ReportMetric(float64(w-w0)/float64(c-c0), "writes/commit")
			}
			if check != nil {
				check(b, d, n.Load())
			}
		})
	}
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
