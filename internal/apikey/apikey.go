// Package apikey issues and checks per-account API keys.
//
// A key has the form
//
//	sk_<account>_<keyid>_<secret>
//
// where <account> is the account ID (a DNS label, so it never contains '_'),
// <keyid> is 16 lower-case hex digits (64 random bits) and <secret> is 52
// lower-case base32 characters (256 random bits from crypto/rand). The public
// ID "sk_<account>_<keyid>" is stored in store.APIKey.ID and is safe to show
// and log; only the SHA-256 of the full key is stored (store.APIKey.Hash), so
// a leaked store does not leak usable keys.
//
// The package owns the key format and the comparison. It imports only the
// root silo package, store (for the APIKey record) and the standard library;
// it must not import the gateway, server or any storage implementation.
package apikey

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

const (
	prefix    = "sk_"
	idBytes   = 8 // random bytes in the key ID
	idLen     = 2 * idBytes
	secBytes  = 32 // random bytes in the secret
	secLen    = 52 // base32 without padding of 32 bytes
	maxKeyLen = len(prefix) + 63 + 1 + idLen + 1 + secLen
)

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New issues a key for account. It returns the plaintext, to be shown to the
// user once and never stored, and the record to store, whose Created is now.
//
// # Errors
//
// CodeInvalid if account is not a valid ID or names the production account
// (production is never reachable through the gateway); an internal error if
// the system's random source fails.
func New(account silo.AccountID) (plaintext string, k store.APIKey, err error) {
	if _, err := silo.ParseTenantID(string(account)); err != nil {
		return "", store.APIKey{}, err
	}
	var buf [idBytes + secBytes]byte
	if _, err := rand.Read(buf[:]); err != nil {
		return "", store.APIKey{}, fmt.Errorf("generate api key for %s: %w", account, err)
	}
	id := prefix + string(account) + "_" + hex.EncodeToString(buf[:idBytes])
	plaintext = id + "_" + b32.EncodeToString(buf[idBytes:])
	sum := sha256.Sum256([]byte(plaintext))
	return plaintext, store.APIKey{
		ID:      id,
		Account: account,
		Hash:    sum[:],
		Created: time.Now().UTC(),
	}, nil
}

var errMalformed = silo.Errorf(silo.CodeUnauthenticated, "malformed API key; send the key exactly as it was issued (it starts with %q)", prefix)

// Parse checks the shape of a plaintext key and returns its public ID, the
// value to look the stored key up by. It does not authenticate the key: call
// Check with the stored record for that.
//
// # Errors
//
// CodeUnauthenticated if plaintext is not a well-formed key. The message
// never echoes the input, which may be a mistyped secret.
func Parse(plaintext string) (id string, err error) {
	id, err = parse(plaintext)
	if err != nil {
		return "", err
	}
	return strings.Clone(id), nil // not a substring: the ID must not keep the secret in memory
}

// parse is Parse returning the ID as a substring of plaintext.
func parse(plaintext string) (id string, err error) {
	if len(plaintext) > maxKeyLen || !strings.HasPrefix(plaintext, prefix) {
		return "", errMalformed
	}
	rest := plaintext[len(prefix):]
	// From the right: the secret and the key ID have fixed lengths and
	// alphabets without '_'; what is left must be an account ID.
	if len(rest) < 1+1+idLen+1+secLen {
		return "", errMalformed
	}
	sec := rest[len(rest)-secLen:]
	rest = rest[:len(rest)-secLen]
	if rest[len(rest)-1] != '_' {
		return "", errMalformed
	}
	rest = rest[:len(rest)-1]
	kid := rest[len(rest)-idLen:]
	rest = rest[:len(rest)-idLen]
	if rest[len(rest)-1] != '_' {
		return "", errMalformed
	}
	acct := rest[:len(rest)-1]
	if _, err := silo.ParseID(acct); err != nil {
		return "", errMalformed
	}
	for i := 0; i < len(kid); i++ {
		if c := kid[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return "", errMalformed
		}
	}
	for i := 0; i < len(sec); i++ {
		if c := sec[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return "", errMalformed
		}
	}
	// The last base32 character of 256 bits carries 1 bit of padding: accept
	// only the canonical encoding so that one secret has one spelling.
	// 256 bits fill 51 characters and 1 bit of the 52nd, whose other 4
	// bits must be zero: 'a' (0) or 'q' (16).
	if last := sec[secLen-1]; last != 'a' && last != 'q' {
		return "", errMalformed
	}
	return plaintext[:len(prefix)+len(acct)+1+idLen], nil
}

// ErrRevoked is in the chain of Check's error for a revoked key presented
// with its right secret: the caller holds the key, so it may be told more
// about why the key stopped working (the account was deleted, say).
var ErrRevoked = errors.New("api key revoked")

// Check authenticates plaintext against the stored key k at time now. The
// hash comparison takes constant time. A key is revoked from the instant in
// k.Revoked on.
//
// # Errors
//
// CodeUnauthenticated if plaintext is malformed, is not the key k records, or
// k is revoked (ErrRevoked in its chain). Revocation is reported only to a
// caller holding the right secret, so the message cannot be used to probe
// key IDs.
func Check(k store.APIKey, plaintext string, now time.Time) error {
	id, err := parse(plaintext)
	if err != nil {
		return err
	}
	var buf [maxKeyLen]byte // parse bounds the length: hashed without an allocation
	sum := sha256.Sum256(buf[:copy(buf[:], plaintext)])
	clear(buf[:])
	match := subtle.ConstantTimeCompare(sum[:], k.Hash) == 1
	if !match || id != k.ID {
		return silo.Errorf(silo.CodeUnauthenticated, "invalid API key; check that the key is complete and has not been replaced")
	}
	if k.Revoked != nil && !now.Before(*k.Revoked) {
		return &silo.Error{Code: silo.CodeUnauthenticated, Message: "this API key was revoked; ask the account owner for a new key", Err: ErrRevoked}
	}
	return nil
}
