package silotest_test

import (
	"net/http"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/silotest"
)

func TestClockDrivesExpiry(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	env := p.Env(t, "e2e-1", platform.EnvTest, time.Hour)
	if resp := env.GET(t, "/findings"); resp.Status != 200 {
		t.Fatalf("fresh environment: got %s, want 200", resp)
	}
	if got := p.Clock().Now(); !got.Equal(silotest.Start) {
		t.Errorf("clock before Advance: got %s, want %s", got, silotest.Start)
	}
	if gone := p.Clock().Advance(time.Hour); len(gone) != 1 || gone[0] != "e2e-1" {
		t.Errorf("after the TTL: reaped %v, want [e2e-1]", gone)
	}
	if resp := env.GET(t, "/findings"); resp.Status == http.StatusOK {
		t.Errorf("expired environment still answers: %s", resp)
	}
}

func TestTenantKindsAndKeys(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	dev := p.Tenant(t, "dev-alice", silotest.Kind(silo.KindDeveloper))
	acme := p.Tenant(t, "acme")
	a, err := p.Platform().Plane.Account(t.Context(), dev.ID)
	if err != nil || a.Kind != silo.KindDeveloper {
		t.Fatalf("developer account: got %+v, %v", a, err)
	}
	if resp := dev.GET(t, "/findings"); resp.Status != 200 {
		t.Errorf("developer's own key: got %s, want 200", resp)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(dev.Key)); resp.Status != http.StatusForbidden {
		t.Errorf("developer's key on acme: got %s, want 403", resp)
	}
	if resp := p.Client("acme", acme.Key).GET(t, "/findings", silotest.ByPath()); resp.Status != 200 {
		t.Errorf("acme by path: got %s, want 200", resp)
	}
}

// BenchmarkNewDeploy measures what every test pays: starting the platform
// and deploying the example app, after the first build (cached).
func BenchmarkNewDeploy(b *testing.B) {
	warm := silotest.New(b)
	warm.Deploy(b, "../examples/findings")
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		tb := &subTB{TB: b}
		b.StartTimer()
		p := silotest.New(tb)
		p.Deploy(tb, "../examples/findings")
		b.StopTimer()
		tb.cleanup()
		b.StartTimer()
	}
}

// subTB runs cleanups per iteration instead of at the end of the benchmark.
type subTB struct {
	testing.TB
	fns []func()
}

func (s *subTB) Cleanup(f func()) { s.fns = append(s.fns, f) }
func (s *subTB) cleanup() {
	for i := len(s.fns) - 1; i >= 0; i-- {
		s.fns[i]()
	}
	s.fns = nil
}
