package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/providertest"
	"go.etcd.io/bbolt"
)

// BenchmarkPutConcurrent: 16 writers putting into one account's table,
// with group commit (the Provider's path), against one transaction per
// write (the baseline, the same Put run through runTx alone) in the same
// run; and 16 writers adding to one counter key (add-one-key, the
// scaffold's pattern: each Add reads, unseals and seals in the commit).
// Reported per write; writes/commit is the mean group size.
func BenchmarkPutConcurrent(b *testing.B) {
	for _, mode := range []string{"grouped", "one-txn-per-write", "add-one-key"} {
		b.Run(mode, func(b *testing.B) {
			ctx := context.Background()
			p := newTestProvider(b, Config{})
			if err := p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				b.Fatal(err)
			}
			providertest.ApplyAll(b, p, "acme", providertest.Stack(b))
			d, err := p.Data(ctx, "acme")
			if err != nil {
				b.Fatal(err)
			}
			if mode == "one-txn-per-write" {
				oneTxn = true
				b.Cleanup(func() { oneTxn = false })
			}
			c0, w0 := p.Commits()
			var n atomic.Int64
			b.SetParallelism(8) // 16 writers on 2 cores
			cpu0 := processCPU()
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					var err error
					if mode == "add-one-key" { // a counter every writer adds to (the scaffold's)
						n.Add(1)
						_, err = d.Add(ctx, "findings", "count", 1)
					} else {
						err = d.Put(ctx, "findings", fmt.Sprintf("k%d", n.Add(1)), make([]byte, 64))
					}
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			if w := n.Load(); w > 0 {
				b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(w), "cpu-µs/write")
			}
			if c, w := p.Commits(); c > c0 {
				b.ReportMetric(float64(w-w0)/float64(c-c0), "writes/commit")
			}
		})
	}
}

// processCPU is the user and system CPU time this process has used: a
// figure per write that the machine's load does not inflate the way it
// inflates wall time.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkFdatasync: one 4 KiB write into an allocated file and its
// fdatasync, the unit a commit pays twice (bbolt syncs a commit's pages,
// then its meta page). It bounds what sharing commits can reach on the
// machine: with n writers, at most n writes per two of these.
func BenchmarkFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "sync"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	const pages = 64
	if _, err := f.Write(make([]byte, pages*4096)); err != nil {
		b.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
	page := make([]byte, 4096)
	cpu0 := processCPU()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if _, err := f.WriteAt(page, int64(i%pages)*4096); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/sync")
}

// BenchmarkCommitSyncs: one small write committed the way a commit group
// commits it (bbolt's transaction and its two syncs: pages, then the meta
// page), against the same transaction committed without bbolt's syncs
// and followed by one 4 KiB write and fdatasync of a preallocated log
// file, what a write-ahead log of silo's own would pay per group. One
// writer, so each op is one commit's latency. The second mode is not
// durable as it stands (a power loss could leave the store's meta page on
// disk before the pages it points to); it measures what halving the
// syncs would give, on this disk, in the same run.
func BenchmarkCommitSyncs(b *testing.B) {
	for _, mode := range []string{"bbolt-two-syncs", "nosync-plus-log-sync"} {
		b.Run(mode, func(b *testing.B) {
			dir := b.TempDir()
			db, err := bbolt.Open(filepath.Join(dir, fileDB), fileMode, &bbolt.Options{
				NoFreelistSync: true,
				FreelistType:   bbolt.FreelistMapType,
				NoSync:         mode != "bbolt-two-syncs",
			})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bbolt.Tx) error {
				_, err := tx.CreateBucket([]byte("visits"))
				return err
			}); err != nil {
				b.Fatal(err)
			}
			const logSize = 4 << 20
			log, err := os.Create(filepath.Join(dir, "log"))
			if err != nil {
				b.Fatal(err)
			}
			defer log.Close()
			if _, err := log.Write(make([]byte, logSize)); err != nil {
				b.Fatal(err)
			}
			if err := log.Sync(); err != nil {
				b.Fatal(err)
			}
			page := make([]byte, 4096)
			value := make([]byte, 64)
			cpu0 := processCPU()
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				if err := db.Update(func(tx *bbolt.Tx) error {
					return tx.Bucket([]byte("visits")).Put([]byte("count"), value)
				}); err != nil {
					b.Fatal(err)
				}
				if mode == "bbolt-two-syncs" {
					continue
				}
				if _, err := log.WriteAt(page, int64(i)*4096%logSize); err != nil {
					b.Fatal(err)
				}
				if err := syscall.Fdatasync(int(log.Fd())); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(b.N), "cpu-µs/commit")
		})
	}
}
