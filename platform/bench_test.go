package platform_test

import (
	"io"
	"net/http"
	"testing"

	"github.com/silo-run/silo/silotest"
)

// BenchmarkGatewayList measures a request through the whole platform: HTTP,
// tenant resolution, key check, routing, a warm instance of the example's
// list function reading the tenant's table, and back. Compare with the
// bench harness's bare net/http baseline for a ratio.
func BenchmarkGatewayList(b *testing.B) {
	p := silotest.New(b)
	p.Deploy(b, app)
	acme := p.Tenant(b, "acme")
	acme.POST(b, "/findings", `{"severity":"high","app":"github"}`)
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
