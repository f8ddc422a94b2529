package platform_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/silotest"
)

// BenchmarkInvokeList measures the platform's invoke path in process: the
// directory's pin, the artifact check, the degraded checks, the production
// view, the guarded host and the usage tracker around a warm instance of
// the example's list function reading the tenant's table. HTTP, the
// gateway's key check, routing and metering are not in it.
func BenchmarkInvokeList(b *testing.B) {
	p := silotest.New(b)
	p.Deploy(b, app)
	acme := p.Tenant(b, "acme")
	acme.POST(b, "/findings", `{"severity":"high","app":"github"}`)
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
