package gateway

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func TestRoutesChangeTakeEffect(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	key := f.keys["acme"]
	if r := f.do(call{host: "acme.localhost", path: "/reports", key: key}); r.status != 404 {
		t.Fatalf("before: got %d, want 404", r.status)
	}
	err := f.st.Update(context.Background(), func(tx store.Tx) error {
		res, err := silo.NewResource(silo.TypeRoute, "reports", Route{Method: "GET", Path: "/reports", Function: "reports"})
		if err != nil {
			return err
		}
		return tx.PutResource("acme", res)
	})
	if err != nil {
		t.Fatal(err)
	}
	if r := f.do(call{host: "acme.localhost", path: "/reports", key: key}); r.status != 200 || !strings.Contains(string(r.body), `"reports"`) {
		t.Fatalf("after: got %d %s, want the new route", r.status, r.body)
	}
	// Another account's routes are its own.
	if r := f.do(call{host: "beta.localhost", path: "/reports", key: f.keys["beta"]}); r.status != 404 {
		t.Fatalf("beta: got %d, want 404", r.status)
	}
}

func TestDirectoryDown(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	key := f.keys["acme"]
	if r := f.do(call{host: "acme.localhost", path: "/findings", key: key}); r.status != 200 {
		t.Fatalf("control: got %d", r.status)
	}
	f.st.Close()
	r := f.do(call{host: "acme.localhost", path: "/findings", key: key})
	if r.status != 503 || r.errCode() != silo.CodeUnavailable {
		t.Fatalf("got %d %s, want 503 unavailable", r.status, r.body)
	}
	if strings.Contains(strings.ToLower(string(r.body)), "sql") || strings.Contains(string(r.body), "closed") {
		t.Fatalf("internal detail leaked: %s", r.body)
	}
	if !strings.Contains(f.logs.String(), "look up key") {
		t.Fatalf("directory failure not logged:\n%s", f.logs)
	}
	// Without a key nothing is looked up, so the answer does not change.
	if r := f.do(call{host: "acme.localhost", path: "/findings"}); r.status != 401 {
		t.Fatalf("no key: got %d, want 401", r.status)
	}
}

// TestImports keeps the package's dependencies to what its doc comment
// allows.
func TestImports(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").Output()
	if err != nil {
		t.Skipf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		first, _, _ := strings.Cut(dep, "/")
		if strings.Contains(first, ".") && !strings.HasPrefix(dep, "github.com/silo-run/silo") {
			t.Errorf("gateway depends on third-party package %s", dep)
		}
		switch {
		case dep == "github.com/silo-run/silo", dep == "github.com/silo-run/silo/store", dep == "github.com/silo-run/silo/internal/apikey", dep == "github.com/silo-run/silo/sdk/jsonstr", dep == "github.com/silo-run/silo/internal/batch", dep == "github.com/silo-run/silo/gateway":
		case strings.HasPrefix(dep, "github.com/silo-run/silo"):
			t.Errorf("gateway depends on %s", dep)
		}
	}
}
