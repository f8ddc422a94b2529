package gateway

import (
	"context"
	"net/http/httptest"
	"path/filepath"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/store/sqlite"
	"github.com/silo-run/silo/usage"
)

// usageMeter hands the gateway's records to a usage.Meter, as the platform
// does (without the function's memory).
type usageMeter struct{ m *usage.Meter }

func (u usageMeter) Record(acct silo.AccountID, fn string, r Record) {
	u.m.Add(acct, fn, usage.Sample{At: time.Now(), Duration: r.Duration, BytesIn: r.BytesIn, BytesOut: r.BytesOut, Error: r.Error})
}

// BenchmarkGatewayHandlerMeter is BenchmarkGatewayHandler without and with
// a usage meter: the meter's cost on the gateway's own path, where it is
// largest relative to the rest (no network, no function). Compare off and
// on from the same run: go test -run '^$' -bench HandlerMeter -count 6 ./gateway
func BenchmarkGatewayHandlerMeter(b *testing.B) {
	plain, k, err := apikey.New("acme")
	if err != nil {
		b.Fatal(err)
	}
	dir := &staticDirectory{
		acct:   silo.Account{ID: "acme", Kind: silo.KindTenant, State: silo.StateActive},
		key:    k,
		routes: []Route{{Method: "GET", Path: "/hello", Function: "hello"}},
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "state.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	m, err := usage.New(usage.Config{Store: st})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		meter Meter
	}{{"off", nil}, {"on", usageMeter{m}}} {
		b.Run(tc.name, func(b *testing.B) {
			gw, err := New(Config{RatePerSecond: 1e9, MaxConcurrent: 1 << 20, Meter: tc.meter}, dir, hello)
			if err != nil {
				b.Fatal(err)
			}
			req := httptest.NewRequest("GET", "http://acme.localhost/hello", nil)
			req.Header.Set("Authorization", "Bearer "+plain)
			b.ReportAllocs()
			for b.Loop() {
				w := httptest.NewRecorder()
				gw.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatalf("got %d", w.Code)
				}
			}
		})
	}
	if n, _ := m.Pending("acme", time.Time{}); n == 0 {
		b.Fatal("the meter recorded nothing")
	}
}
