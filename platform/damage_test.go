package platform_test

import (
	"context"
	"encoding/binary"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
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
		"zeroed page": func(path string) error { // the root page of the findings table
			b, err := os.ReadFile(path)
			if err != nil {
				return err
			}
			at, err := tableRoot(b, "findings")
			if err != nil {
				return err
			}
			f, err := os.OpenFile(path, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt(make([]byte, 4096), at)
			return err
		},
	}
	for name, damage := range damages {
		for _, open := range []bool{false, true} {
			t.Run(name+map[bool]string{false: "/closed", true: "/open"}[open], func(t *testing.T) {
				p := silotest.New(t, silotest.WithConfig(func(c *platform.Config) {
					c.Local = local.Config{IdleTimeout: 20 * time.Millisecond}
				}))
				p.Deploy(t, app)
				acme, globex := p.Tenant(t, "acme"), p.Tenant(t, "globex")
				for range 150 { // a store of a few hundred pages, as in the run
					body := `{"severity":"high","app":"github","description":"` + strings.Repeat("x", 3000) + `"}`
					if resp := acme.POST(t, "/findings", body); resp.Status != http.StatusCreated {
						t.Fatalf("acme ingest: got %d, want 201", resp.Status)
					}
				}
				for _, tn := range []*silotest.Tenant{acme, globex} {
					if resp := tn.GET(t, "/findings"); resp.Status != http.StatusOK {
						t.Fatalf("before the damage: got %d, want 200", resp.Status)
					}
				}
				pp := p.Platform()
				// The janitor closes idle stores, which writes what their
				// log holds into data.db: the file damaged below holds
				// every write.
				for pp.Provider.(*local.Provider).OpenStores() > 0 {
					time.Sleep(10 * time.Millisecond)
				}
				if open { // opened again by a read
					if resp := acme.GET(t, "/findings"); resp.Status != http.StatusOK {
						t.Fatalf("before the damage: got %d, want 200", resp.Status)
					}
				}
				path := filepath.Join(localtest.AccountDir(pp.Config().DataDir, "acme"), "data.db")
				backup, err := os.ReadFile(path) // no commit is running: a consistent copy
				if err != nil {
					t.Fatal(err)
				}
				if err := damage(path); err != nil {
					t.Fatal(err)
				}
				for range 3 {
					resp := acme.GET(t, "/findings")
					if resp.Status != http.StatusServiceUnavailable {
						t.Fatalf("acme after the damage: got %d, want 503", resp.Status)
					}
					if !strings.Contains(string(resp.Body), "out of service") {
						t.Errorf("acme after the damage: got %.200s, want the platform's out-of-service answer", resp.Body)
					}
					if strings.Contains(string(resp.Body), "data.db") || strings.Contains(string(resp.Body), "accounts/") {
						t.Errorf("acme's client was told of the operator's files: %s", resp.Body)
					}
					if resp := globex.GET(t, "/findings"); resp.Status != http.StatusOK {
						t.Fatalf("globex after acme's damage: got %d, want 200", resp.Status)
					}
					if resp := globex.POST(t, "/findings", `{"severity":"low"}`); resp.Status != http.StatusCreated {
						t.Fatalf("globex ingest after acme's damage: got %d, want 201", resp.Status)
					}
				}
				if err := pp.Provider.(*local.Provider).Damaged("acme"); err == nil || !strings.Contains(err.Error(), "data.db") {
					t.Errorf("Damaged(acme) = %v, want the damage of data.db", err)
				}
				if err := pp.Provider.(*local.Provider).Damaged("globex"); err != nil {
					t.Errorf("Damaged(globex) = %v, want nil", err)
				}

				// Restoring the file (a new file renamed in place, as a
				// restore does) puts acme back in service, without a restart.
				tmp := path + ".restore"
				if err := os.WriteFile(tmp, backup, 0o600); err != nil {
					t.Fatal(err)
				}
				if err := os.Rename(tmp, path); err != nil {
					t.Fatal(err)
				}
				if resp := acme.GET(t, "/findings"); resp.Status != http.StatusOK {
					t.Fatalf("acme after the restore: got %d, want 200", resp.Status)
				}
			})
		}
	}
}

// tableRoot returns the offset of the root page of table in the bbolt
// store file b (4 KiB pages, the table's root not inline), reading the
// file's format directly: the meta page with the higher transaction ID,
// the root bucket's page, the table's entry in it.
func tableRoot(b []byte, table string) (int64, error) {
	le := binary.LittleEndian
	meta := 16 // page header
	if le.Uint64(b[4096+meta+48:]) > le.Uint64(b[meta+48:]) {
		meta += 4096
	}
	root := int(le.Uint64(b[meta+16:])) * 4096
	for i := range int(le.Uint16(b[root+10:])) {
		e := root + 16 + i*16
		pos, ks := int(le.Uint32(b[e+4:])), int(le.Uint32(b[e+8:]))
		if string(b[e+pos:e+pos+ks]) == table {
			if id := le.Uint64(b[e+pos+ks:]); id != 0 {
				return int64(id) * 4096, nil
			}
		}
	}
	return 0, errors.New("table " + table + " has no root page of its own")
}

// TestOpenFinishesInterruptedOnboarding: a tenant left provisioning by a
// create that stopped after its registry row (its intent settled as
// failed) is finished when the platform opens, with no command run; before
// the open it is provisioning (the twin).
func TestOpenFinishesInterruptedOnboarding(t *testing.T) {
	p := silotest.New(t)
	p.Deploy(t, app)
	p.Tenant(t, "acme")
	pp := p.Platform()
	ctx := context.Background()
	err := pp.Store.Update(ctx, func(tx store.Tx) error {
		now := time.Now()
		return tx.CreateAccount(silo.Account{ID: "t8", Kind: silo.KindTenant, State: silo.StateProvisioning, Created: now, Updated: now, Version: 1})
	})
	if err != nil {
		t.Fatal(err)
	}
	if a, err := pp.Plane.Account(ctx, "t8"); err != nil || a.State != silo.StateProvisioning {
		t.Fatalf("t8 before: %+v, %v; want provisioning", a, err)
	}
	cfg := pp.Config()
	cfg.Listen, cfg.APIListen = "127.0.0.1:0", ""
	p2, err := platform.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer p2.Close()
	if a, err := p2.Plane.Account(ctx, "t8"); err != nil || a.State != silo.StateActive || a.Release == "" {
		t.Fatalf("t8 after the platform opened: %+v, %v; want active on a release", a, err)
	}
}
