package gateway

import (
	"context"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/store"
)

// A caller holding the right secret of a revoked key is told why the key
// stopped working when its account is gone: deleted, or an environment
// past its time to live; and a caller holding a live key of an expired
// environment is told it expired. The twins: a revoked key of a live
// account says revoked, and a wrong secret says only that the key is
// invalid, whatever became of the account.
func TestRevokedKeySaysWhetherTheAccountIsGone(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	past := time.Now().Add(-time.Hour)
	f.addAccount("live", silo.KindTenant, silo.StateActive, nil)
	f.addAccount("gone", silo.KindTenant, silo.StateActive, nil)
	f.addAccount("env-old", silo.KindEnvironment, silo.StateActive, &past)
	f.addAccount("env-old-live-key", silo.KindEnvironment, silo.StateActive, &past)
	for _, id := range []silo.AccountID{"live", "gone", "env-old"} {
		f.revoke(id)
	}
	f.setState("gone", silo.StateDeleting)
	f.setState("gone", silo.StateDeleted)
	forged := f.keys["gone"][:len(f.keys["gone"])-4] + "aaaa"

	for _, tc := range []struct {
		acct silo.AccountID
		key  string
		want int
		msg  string
	}{
		{"gone", f.keys["gone"], 401, msgKeyDeleted},
		{"env-old", f.keys["env-old"], 401, msgKeyExpired},
		{"env-old-live-key", f.keys["env-old-live-key"], 404, msgKeyExpired},
		{"live", f.keys["live"], 401, "this API key was revoked; ask the account owner for a new key"},
		{"gone", forged, 401, "invalid API key"},
	} {
		r := f.do(call{host: string(tc.acct) + ".localhost", path: "/findings", key: tc.key})
		if r.status != tc.want || !strings.Contains(string(r.body), tc.msg) {
			t.Errorf("%s: got %d %s, want %d saying %q", tc.acct, r.status, r.body, tc.want, tc.msg)
		}
	}
}

// revoke revokes the account's key a minute ago.
func (f *fixture) revoke(id silo.AccountID) {
	f.t.Helper()
	err := f.st.Update(context.Background(), func(tx store.Tx) error {
		kid, _ := apikey.Parse(f.keys[id])
		k, err := tx.Key(kid)
		if err != nil {
			return err
		}
		at := time.Now().Add(-time.Minute)
		k.Revoked = &at
		return tx.PutKey(k)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}
