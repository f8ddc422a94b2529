package local

import (
	"context"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
)

// TestForgetSeesAnotherProvider changes an account's config and secret
// through a second Provider on the same directory while the first serves
// them from memory for an hour: the first still serves the old values
// (the cache is in use), and serves the new ones at the very next call
// after Forget of the account, or of every account ("").
func TestForgetSeesAnotherProvider(t *testing.T) {
	for _, tc := range []struct {
		name   string
		forget silo.AccountID
	}{
		{"account", "acme"},
		{"every-account", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			p1 := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour, CacheRecheck: time.Hour})
			p2 := newTestProvider(t, Config{Dir: dir, IdleTimeout: time.Hour})
			if err := p1.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
				t.Fatal(err)
			}
			setConfig(t, p1, "acme", "plan", "free")
			declareSecret(t, p1, "acme", "token")
			if err := p1.PutSecret(ctx, "acme", "token", []byte("tok-1")); err != nil {
				t.Fatal(err)
			}
			d1, err := p1.Data(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			wantConfig(t, d1, "plan", "free")
			wantSecret(t, d1, "token", "tok-1")

			setConfig(t, p2, "acme", "plan", "pro")
			if err := p2.PutSecret(ctx, "acme", "token", []byte("tok-2")); err != nil {
				t.Fatal(err)
			}
			// Control: without Forget, the copies in memory are served.
			wantConfig(t, d1, "plan", "free")
			wantSecret(t, d1, "token", "tok-1")

			p1.Forget(tc.forget)
			wantConfig(t, d1, "plan", "pro")
			wantSecret(t, d1, "token", "tok-2")
		})
	}
}
