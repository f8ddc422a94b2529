package usage

import (
	"strconv"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// BenchmarkMeterAdd is the meter's cost on the request path: one Add from
// parallel goroutines over 100 accounts.
func BenchmarkMeterAdd(b *testing.B) {
	m, err := New(Config{Store: openStoreB(b)})
	if err != nil {
		b.Fatal(err)
	}
	accts := make([]silo.AccountID, 100)
	for i := range accts {
		accts[i] = silo.AccountID("tenant-" + strconv.Itoa(i))
	}
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			m.Add(accts[i%len(accts)], "ingest", Sample{At: now, Duration: time.Millisecond, MemoryMiB: 64, BytesIn: 10, BytesOut: 100})
			i++
		}
	})
}
