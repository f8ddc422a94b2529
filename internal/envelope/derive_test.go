package envelope

import (
	"bytes"
	"errors"
	"testing"

	silo "github.com/silo-run/silo"
)

// TestDeriveBindsAccountPurposeAndAD: a ciphertext opens only under the
// Sealer of the same storage key, account and purpose, with the same
// additional data, unaltered. Twin: the matching Sealer opens it.
func TestDeriveBindsAccountPurposeAndAD(t *testing.T) {
	root := NewStorageKey()
	mk := func(key []byte, acct, purpose string) *Sealer {
		s, err := Derive(key, silo.AccountID(acct), purpose)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := mk(root, "acme", PurposeTable)
	ad := []byte("table\x00findings\x00k")
	env, err := s.Seal([]byte("value"), ad)
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := mk(root, "acme", PurposeTable).Open(env, ad); err != nil || string(pt) != "value" {
		t.Fatalf("control: the same derivation opens %q, %v", pt, err)
	}
	flipped := bytes.Clone(env)
	flipped[len(flipped)-1] ^= 1
	for _, tc := range []struct {
		name string
		s    *Sealer
		env  []byte
		ad   []byte
	}{
		{"other account", mk(root, "globex", PurposeTable), env, ad},
		{"other purpose", mk(root, "acme", PurposeBlob), env, ad},
		{"other storage key", mk(NewStorageKey(), "acme", PurposeTable), env, ad},
		{"other key in the table", s, env, []byte("table\x00findings\x00k2")},
		{"other table", s, env, []byte("table\x00other\x00k")},
		{"altered", s, flipped, ad},
		{"truncated", s, env[:len(env)-1], ad},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if pt, err := tc.s.Open(tc.env, tc.ad); !errors.Is(err, ErrDecrypt) {
				t.Errorf("Open = %q, %v; want ErrDecrypt", pt, err)
			}
		})
	}
	if a, b := mk(root, "acme", PurposeLog).ID(), mk(root, "acme", PurposeLog).ID(); a != b {
		t.Errorf("ID of one key differs: %s, %s", a, b)
	}
	if a, b := mk(root, "acme", PurposeLog).ID(), mk(NewStorageKey(), "acme", PurposeLog).ID(); a == b {
		t.Errorf("two keys have one ID %s", a)
	}
	if _, err := Derive(root[:16], "acme", PurposeTable); err == nil {
		t.Error("Derive accepted a 16-byte storage key")
	}
}
