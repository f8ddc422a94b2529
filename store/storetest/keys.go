package storetest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func testKeys(t *testing.T, s store.Store) {
	create(t, s, tenant("acme", 0), tenant("other", 0))
	k1 := store.APIKey{ID: "sk_acme_1", Account: "acme", Hash: []byte("hash-1"), Name: "ci", Created: at(1)}
	k2 := store.APIKey{ID: "sk_acme_2", Account: "acme", Hash: []byte("hash-2"), Created: at(3)}
	k3 := store.APIKey{ID: "sk_acme_3", Account: "acme", Hash: []byte("hash-3"), Name: "laptop", Created: at(2)}
	ko := store.APIKey{ID: "sk_other_1", Account: "other", Hash: []byte("hash-o"), Created: at(4)}
	update(t, s, func(tx store.Tx) error {
		for _, k := range []store.APIKey{k1, k2, k3, ko} {
			if err := tx.PutKey(k); err != nil {
				return err
			}
		}
		return nil
	})
	keys := func(id silo.AccountID) []store.APIKey {
		t.Helper()
		var ks []store.APIKey
		view(t, s, func(tx store.Tx) error {
			var err error
			ks, err = tx.Keys(id)
			return err
		})
		return ks
	}
	if d := cmp.Diff([]store.APIKey{k2, k3, k1}, keys("acme"), cmpOpts...); d != "" {
		t.Errorf("Keys newest first (-want +got):\n%s", d)
	}

	rev := at(10)
	k3.Revoked = &rev
	update(t, s, func(tx store.Tx) error { return tx.PutKey(k3) })
	view(t, s, func(tx store.Tx) error {
		got, err := tx.Key("sk_acme_3")
		if err != nil {
			return err
		}
		if d := cmp.Diff(k3, got, cmpOpts...); d != "" {
			t.Errorf("revoked key (-want +got):\n%s", d)
		}
		// Must twin: the other keys are not revoked.
		got, err = tx.Key("sk_acme_1")
		if err != nil || got.Revoked != nil || string(got.Hash) != "hash-1" {
			t.Errorf("unrevoked key: got %+v, %v", got, err)
		}
		_, err = tx.Key("sk_nope")
		wantCode(t, "Key(missing)", err, silo.CodeNotFound)
		return nil
	})
	if d := cmp.Diff([]store.APIKey{k2, k3, k1}, keys("acme"), cmpOpts...); d != "" {
		t.Errorf("Keys still lists revoked keys (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]store.APIKey{ko}, keys("other"), cmpOpts...); d != "" {
		t.Errorf("other account's keys (-want +got):\n%s", d)
	}

	err := s.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutKey(store.APIKey{ID: "sk_acme_1", Account: "other", Hash: []byte("stolen")})
	})
	wantCode(t, "key ID reused by another account", err, silo.CodeConflict)
	err = s.Update(context.Background(), func(tx store.Tx) error {
		return tx.PutKey(store.APIKey{ID: "sk_x", Account: "nobody", Hash: []byte("h")})
	})
	wantCode(t, "key for a missing account", err, silo.CodeNotFound)

	// DeleteKey removes exactly the key named: the account's other keys
	// and the other account's stay.
	update(t, s, func(tx store.Tx) error { return tx.DeleteKey("sk_acme_2") })
	if d := cmp.Diff([]store.APIKey{k3, k1}, keys("acme"), cmpOpts...); d != "" {
		t.Errorf("Keys after DeleteKey(sk_acme_2) (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]store.APIKey{ko}, keys("other"), cmpOpts...); d != "" {
		t.Errorf("other account's keys after DeleteKey (-want +got):\n%s", d)
	}
	err = s.Update(context.Background(), func(tx store.Tx) error { return tx.DeleteKey("sk_acme_2") })
	wantCode(t, "DeleteKey of a key deleted already", err, silo.CodeNotFound)
}
