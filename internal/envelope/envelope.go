// Package envelope owns silo's envelope encryption on the local provider: a
// master key kept in a file wraps one data key per account, and each data key
// encrypts that account's values. Both layers use AES-256-GCM with random
// 96-bit nonces, and both bind the account ID as additional data, so a
// ciphertext of account A neither unwraps nor opens as account B's.
//
// The master key file may hold several keys during a master-key rotation
// (AddMaster, then DropPreviousMasters); Rewrap moves a data key from one
// master key to another without exposing it.
//
// A fingerprint (a hex prefix of a SHA-256) names a key in logs and reports;
// no function of this package returns key material.
//
// It imports only the root silo package and the standard library; it must not
// import any provider, store or runtime package.
package envelope

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	silo "github.com/silo-run/silo"
)

const (
	// KeySize is the size of master and data keys in bytes (AES-256).
	KeySize = 32
	// NonceSize is the size of a GCM nonce in bytes (96 bits).
	NonceSize = 12
	// Overhead is how many bytes an envelope adds to its plaintext: a version
	// byte, the nonce and the GCM tag.
	Overhead = 1 + NonceSize + 16

	// Algorithm describes the scheme for KeyInfo.
	Algorithm = "AES-256-GCM, envelope"

	version = 1
	fpBytes = 8 // fingerprint: 8 bytes = 16 hex characters
)

// Domain-separation labels for the additional data of each layer, so that a
// wrapped key can never be opened as a value or the other way round.
const (
	labelWrap  = "silo/envelope/v1/wrap\x00"
	labelValue = "silo/envelope/v1/value\x00"
	labelMFP   = "silo/envelope/v1/master-fingerprint\x00"
)

// ErrDecrypt is returned (wrapped) when an envelope or wrapped key fails to
// open: it was altered, belongs to another account or label, or was sealed
// under another key. Callers cannot and should not tell these apart.
var ErrDecrypt = errors.New("envelope: message authentication failed")

// Master is a master key: it wraps and unwraps data keys. It is safe for
// concurrent use.
type Master struct {
	aead cipher.AEAD
	fp   string
}

// NewMaster returns a master key from KeySize bytes of key material. Most
// callers use LoadOrCreateMaster.
func NewMaster(key []byte) (*Master, error) {
	aead, err := newAEAD(key)
	if err != nil {
		return nil, fmt.Errorf("master key: %w", err)
	}
	h := sha256.New()
	h.Write([]byte(labelMFP))
	h.Write(key)
	return &Master{aead: aead, fp: hex.EncodeToString(h.Sum(nil)[:fpBytes])}, nil
}

// Fingerprint returns a short hex name of the master key: a prefix of a
// domain-separated SHA-256 of it. It reveals nothing usable about the key.
func (m *Master) Fingerprint() string { return m.fp }

// NewDataKey generates a fresh data key for account and returns it together
// with its wrapped form, the only form that may be stored.
func (m *Master) NewDataKey(account silo.AccountID) (*DataKey, []byte, error) {
	raw := make([]byte, KeySize)
	if _, err := rand.Read(raw); err != nil {
		return nil, nil, fmt.Errorf("generate data key for %s: %w", account, err)
	}
	wrapped, err := seal(m.aead, raw, wrapAD(account))
	if err != nil {
		return nil, nil, fmt.Errorf("wrap data key for %s: %w", account, err)
	}
	dk, err := newDataKey(account, raw, wrapped)
	if err != nil {
		return nil, nil, err
	}
	clear(raw)
	return dk, wrapped, nil
}

// Unwrap opens a wrapped data key of account.
//
// # Errors
//
// An error wrapping ErrDecrypt if wrapped was altered, was wrapped for
// another account or under another master key.
func (m *Master) Unwrap(account silo.AccountID, wrapped []byte) (*DataKey, error) {
	raw, err := open(m.aead, wrapped, wrapAD(account))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of %s: %w", account, err)
	}
	defer clear(raw)
	if len(raw) != KeySize {
		return nil, fmt.Errorf("unwrap data key of %s: %w", account, ErrDecrypt)
	}
	return newDataKey(account, raw, wrapped)
}

// Rewrap opens a wrapped data key of account and wraps the same key under
// to, for a master-key rotation. The data key itself does not change, so
// every value sealed under it still opens.
//
// # Errors
//
// An error wrapping ErrDecrypt if wrapped does not open under m.
func (m *Master) Rewrap(account silo.AccountID, wrapped []byte, to *Master) ([]byte, error) {
	raw, err := open(m.aead, wrapped, wrapAD(account))
	if err != nil {
		return nil, fmt.Errorf("unwrap data key of %s: %w", account, err)
	}
	defer clear(raw)
	if len(raw) != KeySize {
		return nil, fmt.Errorf("unwrap data key of %s: %w", account, ErrDecrypt)
	}
	out, err := seal(to.aead, raw, wrapAD(account))
	if err != nil {
		return nil, fmt.Errorf("wrap data key for %s: %w", account, err)
	}
	return out, nil
}

// DataKey is one account's data key, bound to that account: every value it
// seals carries the account ID as additional data. It is safe for concurrent
// use.
type DataKey struct {
	account silo.AccountID
	aead    cipher.AEAD
	fp      string
}

func newDataKey(account silo.AccountID, raw, wrapped []byte) (*DataKey, error) {
	aead, err := newAEAD(raw)
	if err != nil {
		return nil, fmt.Errorf("data key of %s: %w", account, err)
	}
	return &DataKey{account: account, aead: aead, fp: Fingerprint(wrapped)}, nil
}

// Account returns the account the key belongs to.
func (k *DataKey) Account() silo.AccountID { return k.account }

// Fingerprint returns the fingerprint of the key's wrapped form.
func (k *DataKey) Fingerprint() string { return k.fp }

// Seal encrypts plaintext under the key. The account ID and label (for
// example a secret's name) are bound as additional data: Open must be given
// the same label. The result is a new slice of len(plaintext)+Overhead bytes.
func (k *DataKey) Seal(label string, plaintext []byte) ([]byte, error) {
	env, err := seal(k.aead, plaintext, valueAD(k.account, label))
	if err != nil {
		return nil, fmt.Errorf("seal %q for %s: %w", label, k.account, err)
	}
	return env, nil
}

// Open decrypts an envelope made by Seal with the same label.
//
// # Errors
//
// An error wrapping ErrDecrypt if env was altered or truncated, was sealed
// for another account or label, or under another data key.
func (k *DataKey) Open(label string, env []byte) ([]byte, error) {
	pt, err := open(k.aead, env, valueAD(k.account, label))
	if err != nil {
		return nil, fmt.Errorf("open %q of %s: %w", label, k.account, err)
	}
	return pt, nil
}

// Fingerprint returns the fingerprint of a wrapped key: the first 8 bytes of
// its SHA-256, in hex.
func Fingerprint(wrapped []byte) string {
	sum := sha256.Sum256(wrapped)
	return hex.EncodeToString(sum[:fpBytes])
}

func newAEAD(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(block)
}

func wrapAD(account silo.AccountID) []byte {
	return append([]byte(labelWrap), account...)
}

func valueAD(account silo.AccountID, label string) []byte {
	ad := make([]byte, 0, len(labelValue)+len(account)+1+len(label))
	ad = append(ad, labelValue...)
	ad = append(ad, account...)
	ad = append(ad, 0)
	return append(ad, label...)
}

// seal returns version || nonce || GCM(plaintext, ad).
func seal(aead cipher.AEAD, plaintext, ad []byte) ([]byte, error) {
	out := make([]byte, 1+NonceSize, 1+NonceSize+len(plaintext)+aead.Overhead())
	out[0] = version
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	return aead.Seal(out, out[1:1+NonceSize], plaintext, ad), nil
}

func open(aead cipher.AEAD, env, ad []byte) ([]byte, error) {
	if len(env) < 1+NonceSize+aead.Overhead() || env[0] != version {
		return nil, ErrDecrypt
	}
	pt, err := aead.Open(nil, env[1:1+NonceSize], env[1+NonceSize:], ad)
	if err != nil {
		return nil, ErrDecrypt
	}
	return pt, nil
}
