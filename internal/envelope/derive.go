package envelope

import (
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	silo "github.com/silo-run/silo"
)

// Labels of the keys derived from a storage key, one per kind of data.
const (
	PurposeTable = "table"
	PurposeBlob  = "blob"
	PurposeLog   = "log"
)

const (
	labelDerive = "silo/envelope/v1/derive\x00"
	labelID     = "silo/envelope/v1/derived-key-id\x00"
)

// NewStorageKey returns KeySize fresh random bytes: the root of an account's
// data-at-rest keys. It is stored only sealed under the account's data key
// (DataKey.Seal), so destroying the data key destroys it.
func NewStorageKey() []byte {
	k := make([]byte, KeySize)
	rand.Read(k) // never fails (crypto/rand)
	return k
}

// Sealer encrypts one kind of an account's data (PurposeTable, PurposeBlob,
// PurposeLog) with AES-256-GCM under a key derived from the account's storage
// key with HKDF-SHA256; the account ID and the purpose are part of the
// derivation, so a ciphertext of one account or kind opens under no other.
// It is safe for concurrent use.
type Sealer struct {
	aead cipher.AEAD
	id   string
}

// Derive returns the Sealer of purpose for account from its storage key.
//
// # Errors
//
// An error if storageKey is not KeySize bytes.
func Derive(storageKey []byte, account silo.AccountID, purpose string) (*Sealer, error) {
	if len(storageKey) != KeySize {
		return nil, fmt.Errorf("derive %s key of %s: storage key is %d bytes, want %d", purpose, account, len(storageKey), KeySize)
	}
	info := labelDerive + purpose + "\x00" + string(account)
	raw, err := hkdf.Key(sha256.New, storageKey, nil, info, KeySize)
	if err != nil {
		return nil, fmt.Errorf("derive %s key of %s: %w", purpose, account, err)
	}
	defer clear(raw)
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, fmt.Errorf("derive %s key of %s: %w", purpose, account, err)
	}
	h := sha256.New()
	h.Write([]byte(labelID))
	h.Write(raw)
	return &Sealer{aead: aead, id: hex.EncodeToString(h.Sum(nil)[:fpBytes])}, nil
}

// ID names the derived key: a domain-separated hash of it, which reveals
// nothing usable about it. Two Sealers have the same ID iff they have the
// same key, so a reader can tell data sealed under a previous incarnation of
// an account from its own.
func (s *Sealer) ID() string { return s.id }

// Seal returns version || nonce || GCM(plaintext, ad): len(plaintext) +
// Overhead bytes. ad is bound to the ciphertext: Open must be given the same.
func (s *Sealer) Seal(plaintext, ad []byte) ([]byte, error) {
	return seal(s.aead, plaintext, ad)
}

// Open decrypts what Seal returned for the same ad.
//
// # Errors
//
// ErrDecrypt if env was altered or truncated, or sealed under another key
// or another ad.
func (s *Sealer) Open(env, ad []byte) ([]byte, error) {
	return open(s.aead, env, ad)
}
