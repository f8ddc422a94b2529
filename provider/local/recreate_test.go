package local

import (
	"context"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/providertest"
)

// TestBlobAfterAnotherProcessRecreated: another process deletes and
// re-creates acme while this one holds acme's keys in its cache (for an
// hour, here). A blob this one then writes is sealed under the new
// account's keys, so the new account reads it. Twin: before the re-create,
// the same write reads back in both processes.
func TestBlobAfterAnotherProcessRecreated(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	a := newTestProvider(t, Config{Dir: dir, CacheRecheck: time.Hour})
	b := newTestProvider(t, Config{Dir: dir, CacheRecheck: time.Hour})
	if err := a.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, a, "acme", providertest.Stack(t))
	da, _ := a.Data(ctx, "acme")
	db, _ := b.Data(ctx, "acme")
	check := func(when, value string) {
		t.Helper()
		if err := da.PutBlob(ctx, "uploads", "x", []byte(value)); err != nil {
			t.Fatalf("%s: PutBlob: %v", when, err)
		}
		for name, d := range map[string]interface {
			GetBlob(context.Context, string, string) ([]byte, error)
		}{"writer": da, "other": db} {
			if v, err := d.GetBlob(ctx, "uploads", "x"); err != nil || string(v) != value {
				t.Errorf("%s: %s process reads %q, %v; want %q", when, name, v, err, value)
			}
		}
	}
	check("before", "v1") // warms both caches

	if _, err := b.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	providertest.ApplyAll(t, b, "acme", providertest.Stack(t))
	check("after re-create", "v2")
}
