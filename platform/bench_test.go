package platform_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"syscall"
	"testing"
	"time"

	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/silotest"
)

// listTenant deploys the example app with one tenant, acme, holding one
// finding.
func listTenant(b *testing.B) (*silotest.Platform, *silotest.Tenant) {
	p := silotest.New(b)
	p.Deploy(b, app)
	acme := p.Tenant(b, "acme")
	acme.POST(b, "/findings", `{"severity":"high","app":"github"}`)
	return p, acme
}

// BenchmarkGatewayList measures a request through the whole platform: HTTP,
// tenant resolution, key check, routing, a warm instance of the example's
// list function reading the tenant's table, and back. Compare with the
// bench harness's bare net/http baseline for a ratio.
func BenchmarkGatewayList(b *testing.B) {
	p, acme := listTenant(b)
	req, err := http.NewRequest("GET", p.URL()+"/findings", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = "acme.localhost"
	req.Header.Set("Authorization", "Bearer "+acme.Key)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}

// BenchmarkInvokeList measures the platform's invoke path in process: the
// directory's pin, the artifact check, the degraded checks, the production
// view, the guarded host and the usage tracker around a warm instance of
// the example's list function reading the tenant's table. HTTP, the
// gateway's key check, routing and metering are not in it.
func BenchmarkInvokeList(b *testing.B) {
	p, acme := listTenant(b)
	plat := p.Platform()
	ctx := context.Background()
	req := gateway.Request{Method: "GET", Path: "/findings", Header: http.Header{}, RequestID: "01HZX3J5Q8V7N2M4K6P9R0S1T2"}
	if resp, err := plat.Invoke(ctx, acme.ID, "list", req); err != nil || resp.Status != 200 {
		b.Fatalf("list: %d, %v; want 200", resp.Status, err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := plat.Invoke(ctx, acme.ID, "list", req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEntry measures what one request costs the platform's handler
// (the gateway, the platform's invoker and the runtime) in process, without
// the HTTP exchange that a bare net/http hello pays as well: go is a warm
// Go guest whose handler returns a constant (the bench harness's entry
// scenario), noroute the gateway alone (authenticated, no route matches),
// write the silo init scaffold's hello (one durable table Add per request:
// the harness's writes scenario at function concurrency 16) and nowrite
// the same request without its write. It runs from 16 goroutines, as the
// harness's 16 clients, and reports the process's CPU time per request
// (cpu-ns/op), which moves far less than ns/op on a busy machine, the
// instances the runtime started meanwhile (instances: a request that waits
// for a write holds its instance, so more of them take turns), and for
// write the mean number of writes per commit group (writes/commit).
//
//	go test ./platform -run '^$' -bench Entry -benchmem
func BenchmarkEntry(b *testing.B) {
	p := silotest.New(b, silotest.WithConfig(func(c *platform.Config) {
		c.Gateway = gateway.Config{RatePerSecond: 1e6, Burst: 1e6, MaxConcurrent: 1024} // as the bench harness
	}))
	p.Deploy(b, "testdata/entry")
	acme := p.Tenant(b, "acme")
	h := p.Platform().Handler()
	for _, v := range []struct {
		name, path string
		want       int
	}{{"go", "/go", 200}, {"noroute", "/no-such-route", 404}, {"write", "/hello", 200}, {"nowrite", "/nowrite", 200}} {
		b.Run(v.name, func(b *testing.B) {
			newReq := func() *http.Request {
				req := httptest.NewRequest("GET", "http://acme.localhost"+v.path, nil)
				req.Header.Set("Authorization", "Bearer "+acme.Key)
				req.Header.Set("User-Agent", "Go-http-client/1.1")
				req.Header.Set("Accept-Encoding", "gzip")
				return req
			}
			w := &discardWriter{h: http.Header{}}
			if h.ServeHTTP(w, newReq()); w.status != v.want {
				b.Fatalf("GET %s: status %d, want %d", v.path, w.status, v.want)
			}
			b.SetParallelism(8)
			b.ReportAllocs()
			b.ResetTimer()
			commits0, writes0 := committed(p)
			inst0 := p.Platform().Runtime.Stats().Instances
			cpu0 := processCPU()
			b.RunParallel(func(pb *testing.PB) {
				req := newReq()
				w := &discardWriter{h: http.Header{}}
				for pb.Next() {
					clear(w.h)
					w.status, w.body = 0, w.body[:0]
					h.ServeHTTP(w, req)
					if w.status != v.want {
						b.Errorf("GET %s: status %d, want %d: %s", v.path, w.status, v.want, w.body)
						return
					}
				}
			})
			b.ReportMetric(float64(processCPU()-cpu0)/float64(b.N), "cpu-ns/op")
			b.ReportMetric(float64(p.Platform().Runtime.Stats().Instances-inst0), "instances")
			if commits, writes := committed(p); commits > commits0 {
				b.ReportMetric(float64(writes-writes0)/float64(commits-commits0), "writes/commit")
			}
		})
	}
}

// committed returns the commit groups and writes of p's local provider
// (local.Provider.Commits), or zeros on another provider.
func committed(p *silotest.Platform) (commits, writes int64) {
	if prov, ok := p.Platform().Provider.(*local.Provider); ok {
		return prov.Commits()
	}
	return 0, 0
}

// discardWriter is an http.ResponseWriter that keeps the status and
// discards the body, as cheap as a benchmark's writer can be.
type discardWriter struct {
	h      http.Header
	status int
	body   []byte // of an error response, for the failure's message
}

func (w *discardWriter) Header() http.Header { return w.h }

func (w *discardWriter) WriteHeader(s int) {
	if w.status == 0 {
		w.status = s
	}
}

func (w *discardWriter) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	if w.status != http.StatusOK && len(w.body) < 512 {
		w.body = append(w.body, b...)
	}
	return len(b), nil
}

// processCPU is the user and system CPU time this process has used.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
