package local

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/providertest"
)

// TestStoreHeldByAnotherProcess: bbolt lets one process at a time open a
// store file, so a change that needs the table store of an account another
// process serves fails with one clear error that names the way out, and
// loses nothing; once the other process lets go, the same change works.
func TestStoreHeldByAnotherProcess(t *testing.T) {
	defer func(d time.Duration) { storeLockWait = d }(storeLockWait)
	storeLockWait = 50 * time.Millisecond
	ctx := context.Background()
	dir := t.TempDir()
	server := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour})
	cli := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour})
	if err := server.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, server, "acme", providertest.Stack(t)[:1])
	d, err := server.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	notes := silo.Change{Op: silo.OpCreate, Type: silo.TypeTable, Name: "notes", Desired: &silo.Resource{Type: silo.TypeTable, Name: "notes"}}
	err = cli.Apply(ctx, "acme", notes)
	if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(silo.UserMessage(err), "open in another silo process") || !strings.Contains(silo.UserMessage(err), "--server") {
		t.Fatalf("apply while another process holds the store: %v; want CodeUnavailable naming the other process and --server", err)
	}
	if rs, _ := cli.Resources(ctx, "acme"); slices.ContainsFunc(rs, func(r silo.Resource) bool { return r.Name == "notes" }) {
		t.Error("the failed apply recorded the table anyway")
	}
	// Must: once the serving process has closed the store, it works.
	server.Close()
	if err := cli.Apply(ctx, "acme", notes); err != nil {
		t.Fatalf("apply after the other process closed the store: %v", err)
	}
	dc, err := cli.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if v, err := dc.Get(ctx, "findings", "k"); err != nil || string(v) != "v" {
		t.Errorf("data after the retried apply: %q, %v; want v", v, err)
	}
}

// TestCacheSeesAnotherProvider: a change made by a second Provider on the
// same directory (another process: the CLI while silo up serves) to config,
// a secret (same size: only the file's identity tells), or the account
// itself (deleted, also for Get on the store file still open here;
// re-created with other values) is seen by the first at its next call if
// it checks at every call, and within CacheRecheck (polled for) if it
// serves from memory.
func TestCacheSeesAnotherProvider(t *testing.T) {
	for _, tc := range []struct {
		name    string
		recheck time.Duration
	}{
		{"every-call", -1},
		{"bound", 20 * time.Millisecond},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			p1 := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour, CacheRecheck: tc.recheck})
			p2 := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour})
			see := func(what string, f func() error) {
				t.Helper()
				if tc.recheck < 0 {
					if err := f(); err != nil {
						t.Fatalf("%s at the next call: %v", what, err)
					}
					return
				}
				eventually(t, what, f)
			}
			if err := p1.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			setConfig(t, p1, "acme", "plan", "pro")
			declareSecret(t, p1, "acme", "token")
			if err := p1.PutSecret(ctx, "acme", "token", []byte("tok-1")); err != nil {
				t.Fatal(err)
			}
			d1, err := p1.Data(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			providertest.ApplyAll(t, p1, "acme", providertest.Stack(t)[:1]) // table findings
			if err := d1.Put(ctx, "findings", "k", []byte("v")); err != nil {
				t.Fatal(err)
			}
			age(t, p1, "acme")
			wantConfig(t, d1, "plan", "pro")
			wantSecret(t, d1, "token", "tok-1")
			if !cached(p1, "acme", fileConfig) || !cached(p1, "acme", fileSecrets) || !cached(p1, "acme", fileDataKey) {
				t.Fatal("control: the account's files are not cached after a read")
			}

			setConfig(t, p2, "acme", "plan", "biz")
			if err := p2.PutSecret(ctx, "acme", "token", []byte("tok-2")); err != nil {
				t.Fatal(err)
			}
			see("config changed by the other provider", func() error { return configIs(d1, "plan", "biz") })
			see("secret changed by the other provider", func() error { return secretIs(d1, "token", "tok-2") })

			age(t, p1, "acme")
			wantConfig(t, d1, "plan", "biz")
			if _, err := p2.DeleteAccount(ctx, "acme"); err != nil {
				t.Fatal(err)
			}
			see("account deleted by the other provider: Config", func() error {
				_, err := d1.Config(ctx, "plan")
				return isCode(err, silo.CodeNotFound)
			})
			see("account deleted by the other provider: Secret", func() error {
				_, err := d1.Secret(ctx, "token")
				return isCode(err, silo.CodeNotFound)
			})
			see("account deleted by the other provider: Get, store file open here", func() error {
				_, err := d1.Get(ctx, "findings", "k")
				return isCode(err, silo.CodeNotFound)
			})

			if err := p2.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			setConfig(t, p2, "acme", "region", "eu")
			see("account re-created by the other provider", func() error { return configIs(d1, "region", "eu") })
			if _, err := d1.Config(ctx, "plan"); silo.ErrorCode(err) != silo.CodeNotFound {
				t.Errorf("config of the deleted account in the re-created one: %v, want CodeNotFound", err)
			}

			// The re-created account's store file is a new file: the one
			// still open here (unlinked) must no longer be read or written.
			// (bbolt locks a store file to one process at a time: the
			// other provider closes, as the CLI exits, before this one
			// opens the new file.)
			providertest.ApplyAll(t, p2, "acme", providertest.Stack(t)[:1])
			d2, err := p2.Data(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if err := d2.Put(ctx, "findings", "k", []byte("v2")); err != nil {
				t.Fatal(err)
			}
			p2.Close()
			see("re-created account's store: Get", func() error {
				v, err := d1.Get(ctx, "findings", "k")
				if err != nil || string(v) != "v2" {
					return fmt.Errorf("got %q, %v; want v2 from the new store file", v, err)
				}
				return nil
			})
			if err := d1.Put(ctx, "findings", "from-p1", []byte("v3")); err != nil {
				t.Fatal(err)
			}
			p1.Close()
			p3 := newTestProvider(t, Config{Dir: dir})
			d3, err := p3.Data(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if v, err := d3.Get(ctx, "findings", "from-p1"); err != nil || string(v) != "v3" {
				t.Errorf("a write through the first provider after the re-creation reads back as %q, %v; want v3 (written to the new store file)", v, err)
			}
		})
	}
}
