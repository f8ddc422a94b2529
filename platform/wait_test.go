package platform_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// TestWaitForAnotherServerIsNamed runs two platforms on one PostgreSQL
// database and one data dir. a keeps acme's table file open (an hour after
// its last use), so a request for acme through b waits for it past its
// function's timeout (2 s, less than the provider's wait for the file):
// the client is told that the account's data is in use by another server
// and where to read about it, not that the function is slow. acme through a
// and globex (whose file a does not hold) through b are served.
func TestWaitForAnotherServerIsNamed(t *testing.T) {
	dsn := pgtest.Fresh(t)
	dir := filepath.Join(t.TempDir(), "silo")
	a := sharedPlatform(t, dsn, dir, func(c *platform.Config) { c.Local.IdleTimeout = time.Hour })
	b := sharedPlatform(t, dsn, dir)
	deployShared(t, a, b)
	onA := a.Tenant(t, "acme")
	globex := b.Tenant(t, "globex")
	if resp := onA.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Fatalf("acme through a: got %s, want 200", resp)
	}
	if resp := globex.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Fatalf("globex through b: got %s, want 200", resp)
	}

	resp := b.Client(onA.ID, onA.Key).GET(t, "/findings")
	body := string(resp.Body)
	for _, want := range []string{"another silo server on this data dir", "retry", "docs/operations.md#several-servers-behind-a-load-balancer"} {
		if !strings.Contains(body, want) {
			t.Errorf("acme through b while a holds its table file: got %s, want a message with %q", resp, want)
		}
	}
	if resp.Status != http.StatusServiceUnavailable || strings.Contains(body, "make it faster") {
		t.Errorf("acme through b: got %s, want 503 not blaming the function", resp)
	}
	if resp := onA.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Errorf("acme through a afterwards: got %s, want 200", resp)
	}
}
