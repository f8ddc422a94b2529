package report

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	silo "github.com/silo-run/silo"
)

// KeyFile is the name of the installation's report signing key in the data
// dir.
const KeyFile = "report-signing.key"

// LoadOrCreateKey returns the installation's ed25519 signing key stored in
// dir/KeyFile, generating it on first use. The file holds the base64 seed and
// has mode 0600; it is written as temp file + fsync + rename.
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
	f, err := os.CreateTemp(dir, ".report-key-*")
	if err != nil {
		return nil, fmt.Errorf("write report key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.WriteString(base64.StdEncoding.EncodeToString(seed) + "\n")
	if err == nil {
		err = f.Chmod(0o600)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("write report key: %w", err)
	}
	// Link, not rename: if another process created the key meanwhile, keep
	// theirs and use it.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, os.ErrExist) {
			return LoadKey(path)
		}
		return nil, fmt.Errorf("write report key: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
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
