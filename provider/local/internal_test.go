package local

import (
	"context"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider/providertest"
)

func newTestProvider(t testing.TB, cfg Config) *Provider {
	t.Helper()
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

// TestIdleStoresClose shows that an idle account holds no open store file
// and that its handle keeps working after the close.
func TestIdleStoresClose(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Hour}) // the janitor stays out of the way
	for _, id := range []silo.AccountID{"acme", "globex"} {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
	}
	d, err := p.Data(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(ctx, "findings", "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got := p.openStores(); got != 2 {
		t.Errorf("open stores after use = %d, want 2", got)
	}
	p.closeIdle(time.Now()) // not idle long enough
	if got := p.openStores(); got != 2 {
		t.Errorf("open stores after early sweep = %d, want 2", got)
	}
	p.closeIdle(time.Now().Add(2 * time.Hour))
	if got := p.openStores(); got != 0 {
		t.Errorf("open stores after idle sweep = %d, want 0", got)
	}
	p.mu.Lock()
	n := len(p.accts)
	p.mu.Unlock()
	if n != 0 {
		t.Errorf("%d account states cached after idle sweep, want 0", n)
	}
	if v, err := d.Get(ctx, "findings", "k"); err != nil || string(v) != "v" {
		t.Errorf("Get after idle close = %q, %v; want v", v, err)
	}
	if got := p.openStores(); got != 1 {
		t.Errorf("open stores after reuse = %d, want 1", got)
	}
}

// TestMaxOpen shows that no more than MaxOpen store files stay open.
func TestMaxOpen(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Hour, MaxOpen: 3})
	ids := []silo.AccountID{"a1", "a2", "a3", "a4", "a5", "a6"}
	for _, id := range ids {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, id, providertest.Stack(t)[:1])
		if got := p.openStores(); got > 3 {
			t.Errorf("after %s: %d stores open, want at most 3", id, got)
		}
	}
	// Every account still works (and reopens).
	for _, id := range ids {
		d, _ := p.Data(ctx, id)
		if err := d.Put(ctx, "findings", "k", []byte(id)); err != nil {
			t.Errorf("Put in %s: %v", id, err)
		}
		if v, err := d.Get(ctx, "findings", "k"); err != nil || string(v) != string(id) {
			t.Errorf("Get in %s = %q, %v", id, v, err)
		}
	}
}

// TestConcurrent hammers one provider from many goroutines while stores are
// swept and accounts deleted; run with -race.
func TestConcurrent(t *testing.T) {
	ctx := context.Background()
	p := newTestProvider(t, Config{IdleTimeout: time.Millisecond, MaxOpen: 2})
	ids := []silo.AccountID{"c1", "c2", "c3", "c4"}
	for _, id := range ids {
		if err := p.CreateAccount(ctx, id, silo.KindTenant); err != nil {
			t.Fatal(err)
		}
		providertest.ApplyAll(t, p, id, providertest.Stack(t))
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			id := ids[g%len(ids)]
			d, err := p.Data(ctx, id)
			if err != nil {
				t.Error(err)
				return
			}
			for i := 0; i < 50; i++ {
				if err := d.Put(ctx, "findings", "k", []byte(id)); err != nil {
					t.Errorf("Put %s: %v", id, err)
					return
				}
				if v, err := d.Get(ctx, "findings", "k"); err != nil || string(v) != string(id) {
					t.Errorf("Get %s = %q, %v", id, v, err)
					return
				}
				if i%10 == 0 {
					p.closeIdle(time.Now().Add(time.Second))
				}
			}
		}()
	}
	// Deleting and recreating another account meanwhile.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; i < 5; i++ {
			p.CreateAccount(ctx, "churn", silo.KindTenant)
			providertest.ApplyAll(t, p, "churn", providertest.Stack(t)[:3])
			if _, err := p.DeleteAccount(ctx, "churn"); err != nil {
				t.Errorf("DeleteAccount: %v", err)
			}
		}
	}()
	wg.Wait()
}
