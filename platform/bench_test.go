package platform_test

import (
	"context"
	"io"
	"net/http"
	"testing"

	"github.com/silo-run/silo/gateway"
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
