package gateway

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/store"
)

// Run: go test ./gateway -run=^$ -bench='Gateway|BareNetHTTP' -benchtime=3s
// and compare req/s of BenchmarkGateway with BenchmarkBareNetHTTP from the
// same run.

var hello = InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
	return Response{Body: []byte("hello\n")}, nil
})

// staticDirectory serves one account, key and route set from memory, so
// that BenchmarkGateway measures the gateway rather than a database.
type staticDirectory struct {
	acct   silo.Account
	key    store.APIKey
	routes []Route
}

func (d *staticDirectory) Account(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	if id != d.acct.ID {
		return silo.Account{}, silo.ErrNotFound
	}
	return d.acct, nil
}

func (d *staticDirectory) Key(ctx context.Context, id string) (store.APIKey, error) {
	if id != d.key.ID {
		return store.APIKey{}, silo.ErrNotFound
	}
	return d.key, nil
}

func (d *staticDirectory) Routes(ctx context.Context, id silo.AccountID) ([]Route, error) {
	return d.routes, nil
}

// benchHTTP drives h over loopback HTTP/1.1 with keep-alive from
// GOMAXPROCS×4 client goroutines and reports requests per second.
func benchHTTP(b *testing.B, h http.Handler, host, path, key string) {
	srv := httptest.NewServer(h)
	defer srv.Close()
	tr := &http.Transport{MaxIdleConnsPerHost: 256, MaxConnsPerHost: 256}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	b.SetParallelism(4)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		req.Host = host
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		for pb.Next() {
			resp, err := client.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("got %d", resp.StatusCode)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "req/s")
}

func BenchmarkBareNetHTTP(b *testing.B) {
	benchHTTP(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("hello\n"))
	}), "localhost", "/hello", "")
}

func BenchmarkGateway(b *testing.B) {
	plain, k, err := apikey.New("acme")
	if err != nil {
		b.Fatal(err)
	}
	dir := &staticDirectory{
		acct:   silo.Account{ID: "acme", Kind: silo.KindTenant, State: silo.StateActive},
		key:    k,
		routes: []Route{{Method: "GET", Path: "/hello", Function: "hello"}, {Method: "GET", Path: "/findings/{id}", Function: "get"}},
	}
	gw, err := New(Config{RatePerSecond: 1e9, MaxConcurrent: 1 << 20}, dir, hello)
	if err != nil {
		b.Fatal(err)
	}
	benchHTTP(b, gw, "acme.localhost", "/hello", plain)
}

// BenchmarkGatewaySQLite is BenchmarkGateway with the directory read from
// the real SQLite store on every request (no cache).
func BenchmarkGatewaySQLite(b *testing.B) {
	f := newFixture(b, Config{RatePerSecond: 1e9, MaxConcurrent: 1 << 20}, hello)
	benchHTTP(b, f.gw, "acme.localhost", "/findings", f.keys["acme"])
}

// BenchmarkGatewayHandler is the gateway's own cost per request, without the
// network: ServeHTTP on a recorder.
func BenchmarkGatewayHandler(b *testing.B) {
	plain, k, err := apikey.New("acme")
	if err != nil {
		b.Fatal(err)
	}
	dir := &staticDirectory{
		acct:   silo.Account{ID: "acme", Kind: silo.KindTenant, State: silo.StateActive},
		key:    k,
		routes: []Route{{Method: "GET", Path: "/hello", Function: "hello"}},
	}
	gw, err := New(Config{RatePerSecond: 1e9, MaxConcurrent: 1 << 20}, dir, hello)
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
}

// BenchmarkErrorBody compares the hand-written error body with
// encoding/json for the same bytes (TestErrorBodyMatchesJSON).
func BenchmarkErrorBody(b *testing.B) {
	msg := "no route matches this path; check the path against the tenant's routes"
	b.Run("json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			buf, _ := json.Marshal(errorBody{Error: errorDetail{Code: silo.CodeNotFound, Message: msg}})
			_ = append(buf, '\n')
		}
	})
	b.Run("append", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = appendErrorBody(make([]byte, 0, 40+len(msg)+len(msg)/8), silo.CodeNotFound, msg, "rid")
		}
	})
}
