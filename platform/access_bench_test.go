package platform

import (
	"log/slog"
	"testing"
	"time"

	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/logs"
)

// BenchmarkAccessLogWrite measures what writing one access log line into
// an account's log costs, off the request path, in the gateway's batches.
func BenchmarkAccessLogWrite(b *testing.B) {
	st, err := logs.Open(logs.Config{Dir: b.TempDir(), MaxBytes: 64 << 20})
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	a := accessLog{logs: st, logger: slog.New(slog.DiscardHandler)}
	batch := make([]gateway.AccessEntry, 256)
	for i := range batch {
		batch[i] = gateway.AccessEntry{Time: time.Now(), Account: "acme", Method: "GET", Path: "/findings", Status: 200,
			Duration: 1234 * time.Microsecond, RequestID: "01HZX3J5Q8V7N2M4K6P9R0S1T2", Function: "list", Release: "r-0123456789ab"}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i += len(batch) {
		a.WriteAccess(batch[:min(len(batch), b.N-i)])
	}
}
