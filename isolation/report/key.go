package report

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
)

// KeyFile is the name of the installation's report signing key in the data
// dir.
const KeyFile = "report-signing.key"

// LoadOrCreateKey returns the installation's ed25519 signing key stored in
// dir/KeyFile, generating it on first use. The file holds the base64 seed and
// has mode 0600; it is written as temp file + fsync + link + directory fsync
// (internal/durable).
//
// # Errors
//
// CodeFailedCheck if the file is readable by others than its owner or is
// not a key; file system errors otherwise.
func LoadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	if k, err := LoadKey(path); err == nil || !errors.Is(err, os.ErrNotExist) {
		return k, err
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate report key: %w", err)
	}
	// Exclusive: if another process created the key meanwhile, keep theirs
	// and use it.
	err := durable.WriteFile(path, []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), durable.Options{Exclusive: true})
	if errors.Is(err, fs.ErrExist) {
		return LoadKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("write report key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// LoadKey reads a signing key file written by LoadOrCreateKey.
func LoadKey(path string) (ed25519.PrivateKey, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, silo.Errorf(silo.CodeFailedCheck, "report signing key %s is readable by other users (mode %v); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read report key: %w", err)
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, silo.Errorf(silo.CodeFailedCheck, "report signing key %s is damaged; restore it from a backup", path)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// PublicKey returns the base64 public key of k, as embedded in reports.
func PublicKey(k ed25519.PrivateKey) string {
	return base64.StdEncoding.EncodeToString(k.Public().(ed25519.PublicKey))
}

// RetiredFile is the name of the file in the data dir that keeps the public
// keys of signing keys replaced by RotateKey (PEM, oldest first), so that
// the installation keeps publishing them and reports they signed keep
// verifying. The private parts of retired keys are not kept.
const RetiredFile = "report-signing.retired.pem"

// PublishedKeys returns the public keys the installation in dir publishes:
// the current signing key (created on first use, as LoadOrCreateKey does)
// first, then the retired ones, newest first.
func PublishedKeys(dir string) ([]ed25519.PublicKey, error) {
	k, err := LoadOrCreateKey(dir)
	if err != nil {
		return nil, err
	}
	keys := []ed25519.PublicKey{k.Public().(ed25519.PublicKey)}
	b, err := os.ReadFile(filepath.Join(dir, RetiredFile))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read retired report keys: %w", err)
	}
	retired, err := parsePEM(b)
	if err != nil {
		return nil, silo.Errorf(silo.CodeFailedCheck, "%s in %s is damaged (%v); restore it from a backup", RetiredFile, dir, err)
	}
	for i := len(retired) - 1; i >= 0; i-- {
		if !contains(keys, retired[i]) {
			keys = append(keys, retired[i])
		}
	}
	return keys, nil
}

func contains(keys []ed25519.PublicKey, k ed25519.PublicKey) bool {
	for _, x := range keys {
		if x.Equal(k) {
			return true
		}
	}
	return false
}

// RotateKey replaces the installation's signing key in dir with a new one.
// The old public key is appended to RetiredFile (and synced) before the key
// file is replaced, so a crash between the two leaves the old key both
// current and listed as retired, never lost. Reports signed with the old key
// keep verifying against it.
func RotateKey(dir string) (old, nu ed25519.PublicKey, err error) {
	k, err := LoadOrCreateKey(dir)
	if err != nil {
		return nil, nil, err
	}
	old = k.Public().(ed25519.PublicKey)
	f, err := os.OpenFile(filepath.Join(dir, RetiredFile), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return nil, nil, fmt.Errorf("retire report key: %w", err)
	}
	_, err = f.Write(PublicPEM(old))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("retire report key: %w", err)
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, nil, fmt.Errorf("generate report key: %w", err)
	}
	if err := durable.WriteFile(filepath.Join(dir, KeyFile), []byte(base64.StdEncoding.EncodeToString(seed)+"\n"), durable.Options{}); err != nil {
		return nil, nil, fmt.Errorf("write report key: %w", err)
	}
	return old, ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), nil
}

// PublicPEM returns keys as PEM "PUBLIC KEY" blocks (PKIX, as openssl
// reads them), each after a comment line with its fingerprint: the file an
// operator publishes and a reviewer passes to silo report verify --key.
func PublicPEM(keys ...ed25519.PublicKey) []byte {
	var b strings.Builder
	for _, k := range keys {
		der, err := x509.MarshalPKIXPublicKey(k)
		if err != nil {
			continue // an ed25519.PublicKey always marshals
		}
		fmt.Fprintf(&b, "# silo report signing key, fingerprint %s\n", Fingerprint(k))
		b.Write(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
	}
	return []byte(b.String())
}

// ParsePin returns the fingerprints of the keys a reviewer trusts, given
// as one fingerprint (64 hex digits, optionally prefixed "sha256:") or as a
// file of PEM public keys written by PublicPEM.
//
// # Errors
//
// CodeInvalid when data is neither.
func ParsePin(data []byte) ([]string, error) {
	s := strings.ToLower(strings.TrimSpace(string(data)))
	s = strings.TrimPrefix(s, "sha256:")
	if len(s) == 64 {
		if _, err := hex.DecodeString(s); err == nil {
			return []string{s}, nil
		}
	}
	keys, err := parsePEM(data)
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "the key is not usable: %v", err)
	}
	if len(keys) == 0 {
		return nil, silo.Errorf(silo.CodeInvalid, "the key is neither a fingerprint (64 hex digits) nor a file of PEM public keys as silo report key prints")
	}
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = Fingerprint(k)
	}
	return out, nil
}

// parsePEM returns the ed25519 public keys of the PEM blocks in b.
func parsePEM(b []byte) ([]ed25519.PublicKey, error) {
	var keys []ed25519.PublicKey
	for {
		var blk *pem.Block
		blk, b = pem.Decode(b)
		if blk == nil {
			return keys, nil
		}
		if blk.Type != "PUBLIC KEY" {
			return nil, fmt.Errorf("a PEM block of type %q, not PUBLIC KEY", blk.Type)
		}
		k, err := x509.ParsePKIXPublicKey(blk.Bytes)
		if err != nil {
			return nil, fmt.Errorf("a PEM public key that does not parse")
		}
		pub, ok := k.(ed25519.PublicKey)
		if !ok {
			return nil, fmt.Errorf("a public key that is not ed25519")
		}
		keys = append(keys, pub)
	}
}
