package logs

import (
	"fmt"
	"slices"
	"strconv"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// BenchmarkAppendAccessLines compares writing a batch of access-log-like
// lines (sealed, 8 accounts) one Append at a time with one AppendAll; ns/op
// and allocs/op are per line. Run: go test ./logs -run=^$ -bench=AccessLines
func BenchmarkAppendAccessLines(b *testing.B) {
	k, accts := benchAccounts(b, 8)
	batch := make([]Entry, 256)
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	for i := range batch {
		batch[i] = Entry{
			Time: t0.Add(time.Duration(i) * time.Millisecond), Level: "INFO", Account: accts[i%len(accts)],
			Function: "list", RequestID: "K7Q2ZJ4XW3M5N6P7R8S9T0V1AB", Msg: fmt.Sprintf("GET /findings/%d 200", i),
			Attrs: map[string]string{"source": "gateway", "status": "200", "release": "r12", "duration_ms": "0.084"},
		}
	}
	for _, mode := range []string{"Append", "AppendAll"} {
		b.Run(mode, func(b *testing.B) {
			s, err := Open(Config{Dir: b.TempDir(), Keys: k.get, MaxBytes: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				if i%len(batch) != 0 {
					continue
				}
				// Each len(batch)-th iteration writes the whole batch, so
				// that b.N counts lines.
				if mode == "AppendAll" {
					if err := s.AppendAll(batch); err != nil {
						b.Fatal(err)
					}
					continue
				}
				for _, e := range batch {
					if err := s.Append(e); err != nil {
						b.Fatal(err)
					}
				}
			}
		})
	}
}

// BenchmarkAppendParallel is function logs from concurrent invocations:
// 16 goroutines each log lines of one of 4 accounts, sealed; ns/op is per
// line, cpu-ns/line the process's CPU per line (the writer goroutine's
// included). "Append" writes each line before it returns (the Handler's
// path before its lines were queued), "queued" is the Handler's path: the
// line is queued and written in batches (the last batch is in the figure;
// every 1,024th line also writes what is queued, as the writer goroutine
// would between requests, so that a loop faster than any function drops
// no line: a dropped line fails the benchmark).
// Run: go test ./logs -run=^$ -bench=AppendParallel
func BenchmarkAppendParallel(b *testing.B) {
	k, accts := benchAccounts(b, 4)
	for _, mode := range []string{"Append", "queued"} {
		b.Run(mode, func(b *testing.B) {
			var failed atomic.Int64
			s, err := Open(Config{Dir: b.TempDir(), Keys: k.get, MaxBytes: 64 << 20, Failed: func(error) { failed.Add(1) }})
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			var lines atomic.Int64
			add := s.Append
			if mode == "queued" {
				add = func(e Entry) error {
					if lines.Add(1)%1024 == 0 {
						s.queue.Flush()
					}
					return s.enqueue(e)
				}
			}
			var next atomic.Int64
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				acct := accts[next.Add(1)%int64(len(accts))]
				for pb.Next() {
					if err := add(Entry{Account: acct, Function: "ingest", RequestID: "K7Q2ZJ4XW3M5N6P7R8S9T0V1AB", Msg: "stored 12 findings", Attrs: map[string]string{"batch": "7"}}); err != nil {
						b.Error(err)
						return
					}
				}
			})
			s.queue.Flush()
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/line")
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d batches failed or dropped lines", n)
			}
			s.mu.Lock()
			b.ReportMetric(float64(s.writes)/float64(b.N), "writes/line")
			s.mu.Unlock()
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

// benchAccounts makes n accounts with keys.
func benchAccounts(b *testing.B, n int) (keys, []silo.AccountID) {
	k := keys{}
	var accts []silo.AccountID
	for i := range n {
		a := silo.AccountID("tenant" + strconv.Itoa(i))
		k.add(b, a)
		accts = append(accts, a)
	}
	return k, accts
}

// BenchmarkReadSealed is what silo logs costs per line read: 20,000 sealed
// lines of one account, written in batches whose times interleave as
// concurrent requests' do, read back whole ("read": open, decode and sort)
// and the time-order sort alone ("sort", on the entries read); ns/op is
// per read of the whole log, ns/line per line.
// Run: go test ./logs -run=^$ -bench=ReadSealed
func BenchmarkReadSealed(b *testing.B) {
	const n = 20000
	k, accts := benchAccounts(b, 1)
	s, err := Open(Config{Dir: b.TempDir(), Keys: k.get, MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	t0 := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	batch := make([]Entry, 0, 256)
	for i := range n {
		// Every other line is a few ms older than the one before it: an
		// access line stamped at its request's start, after its
		// function's line.
		at := t0.Add(time.Duration(i) * time.Millisecond)
		if i%2 == 1 {
			at = at.Add(-time.Duration(1+i%5) * time.Millisecond)
		}
		batch = append(batch, Entry{Time: at, Level: "INFO", Account: accts[0], Function: "list",
			RequestID: "K7Q2ZJ4XW3M5N6P7R8S9T0V1AB", Msg: "GET /findings 200", Attrs: map[string]string{"status": "200"}})
		if len(batch) == cap(batch) || i == n-1 {
			if err := s.AppendAll(batch); err != nil {
				b.Fatal(err)
			}
			batch = batch[:0]
		}
	}
	es, err := s.Read(accts[0], Query{})
	if err != nil || len(es) != n {
		b.Fatalf("read %d lines, %v; want %d", len(es), err, n)
	}
	perLine := func(b *testing.B) {
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/line")
	}
	b.Run("read", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.Read(accts[0], Query{}); err != nil {
				b.Fatal(err)
			}
		}
		perLine(b)
	})
	b.Run("sort", func(b *testing.B) {
		unsorted := slices.Clone(es)
		for b.Loop() {
			b.StopTimer()
			copy(unsorted, es)
			for j := 1; j < len(unsorted); j += 2 { // the file's order again
				unsorted[j-1], unsorted[j] = unsorted[j], unsorted[j-1]
			}
			b.StartTimer()
			byTime(unsorted)
		}
		perLine(b)
	})
}
