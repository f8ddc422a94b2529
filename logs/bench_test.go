package logs

import (
	"fmt"
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
// 16 goroutines each Append lines of one of 4 accounts; ns/op is per line.
// Run: go test ./logs -run=^$ -bench=AppendParallel
func BenchmarkAppendParallel(b *testing.B) {
	k, accts := benchAccounts(b, 4)
	s, err := Open(Config{Dir: b.TempDir(), Keys: k.get, MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	var next atomic.Int64
	b.SetParallelism(8)
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := processCPU()
	b.RunParallel(func(pb *testing.PB) {
		acct := accts[next.Add(1)%int64(len(accts))]
		for pb.Next() {
			if err := s.Append(Entry{Account: acct, Function: "ingest", RequestID: "K7Q2ZJ4XW3M5N6P7R8S9T0V1AB", Msg: "stored 12 findings", Attrs: map[string]string{"batch": "7"}}); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/line")
	b.ReportMetric(float64(s.writes)/float64(b.N), "writes/line")
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
