package platform_test

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/silotest"
)

// TestDamagedStoreFailsOneTenant damages acme's table store the two ways a
// reliability run did (truncated to 8 KiB; one 4 KiB page zeroed mid-file),
// each while the store is closed (as after a restart) and while it is open,
// and sends requests to both tenants over real HTTP: acme gets 503 with a
// message that says nothing of the operator's files, globex keeps getting
// 200 with its own data, and the test process lives. Before the damage
// both answer 200 (the twin).
func TestDamagedStoreFailsOneTenant(t *testing.T) {
	damages := map[string]func(path string) error{
		"truncated to 8 KiB": func(path string) error { return os.Truncate(path, 8192) },
		"zeroed page": func(path string) error {
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			fi, err := f.Stat()
			if err != nil {
				return err
			}
			_, err = f.WriteAt(make([]byte, 4096), fi.Size()/2&^4095)
			return err
		},
	}
	for name, damage := range damages {
		for _, open := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/closed", true: "/open"}[open], func(t *testing.T) {
				p := silotest.New(t, silotest.WithConfig(func(c *platform.Config) {
					c.Provider = local.Config{IdleTimeout: 20 * time.Millisecond}
				}))
				p.Deploy(t, app)
				acme, globex := p.Tenant(t, "acme"), p.Tenant(t, "globex")
				for range 150 { // a store of a few hundred pages, as in the run
					body := `{"severity":"high","app":"github","description":"` + strings.Repeat("x", 3000) + `"}`
					if resp := acme.POST(t, "/findings", body); resp.Status != http.StatusCreated {
						t.Fatalf("acme ingest: got %s, want 201", resp)
					}
				}
				for _, tn := range []*silotest.Tenant{acme, globex} {
					if resp := tn.GET(t, "/findings"); resp.Status != http.StatusOK {
						t.Fatalf("before the damage: got %s, want 200", resp)
					}
				}
				pp := p.Platform()
				if !open {
					for pp.Provider.OpenStores() > 0 { // the janitor closes idle stores
						time.Sleep(10 * time.Millisecond)
					}
				}
				path := filepath.Join(pp.Config().DataDir, "accounts", "accounts", "acme", "data.db")
				if err := damage(path); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					resp := acme.GET(t, "/findings")
					if resp.Status != http.StatusServiceUnavailable {
						t.Fatalf("acme after the damage: got %s, want 503", resp)
					}
					if strings.Contains(string(resp.Body), "data.db") || strings.Contains(string(resp.Body), "accounts/") {
						t.Errorf("acme's client was told of the operator's files: %s", resp.Body)
					}
					if resp := globex.GET(t, "/findings"); resp.Status != http.StatusOK {
						t.Fatalf("globex after acme's damage: got %s, want 200", resp)
					}
					if resp := globex.POST(t, "/findings", `{"severity":"low"}`); resp.Status != http.StatusCreated {
						t.Fatalf("globex ingest after acme's damage: got %s, want 201", resp)
					}
				}
				if err := pp.Provider.Damaged("acme"); err == nil || !strings.Contains(err.Error(), "data.db") {
					t.Errorf("Damaged(acme) = %v, want the damage of data.db", err)
				}
				if err := pp.Provider.Damaged("globex"); err != nil {
					t.Errorf("Damaged(globex) = %v, want nil", err)
				}
			})
		}
	}
}
