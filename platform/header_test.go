package platform_test

import (
	"slices"
	"testing"

	"github.com/silo-run/silo/silotest"
)

// TestMultiValuedResponseHeaders: every value of a field a function sets
// reaches the client, in order, through the real runtime and gateway
// (must); a field the function may not set reaches it with none (must not).
func TestMultiValuedResponseHeaders(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, "testdata/headers")
	r := p.Tenant(t, "acme").GET(t, "/multi")
	if r.Status != 200 {
		t.Fatalf("GET /multi: %s", r)
	}
	for k, want := range map[string][]string{"Vary": {"Accept", "Origin"}, "X-Multi": {"one", "two", "three"}} {
		if got := r.Header.Values(k); !slices.Equal(got, want) {
			t.Errorf("%s: got %q, want %q", k, got, want)
		}
	}
	if got := r.Header.Values("Set-Cookie"); len(got) != 0 {
		t.Errorf("Set-Cookie reached the client: %q", got)
	}
}
