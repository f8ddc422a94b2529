package local

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
)

// WrappedKeys returns the wrapped data keys in the key ring of the account
// directory dir, the current one first.
func WrappedKeys(dir string) ([][]byte, error) {
	b, err := os.ReadFile(filepath.Join(dir, fileDataKey))
	if err != nil {
		return nil, err
	}
	r, err := decodeRing(b)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(r))
	for i, e := range r {
		out[i] = e.wrapped
	}
	return out, nil
}

// SecretEnvelope returns the envelope in a secrets.json value.
func SecretEnvelope(v string) ([]byte, error) {
	_, env, err := decodeSecret(v)
	return env, err
}

// DecodeWrappedKeys returns the wrapped data keys in the bytes of a data.key
// file, the current one first.
func DecodeWrappedKeys(b []byte) ([][]byte, error) {
	r, err := decodeRing(b)
	if err != nil {
		return nil, err
	}
	out := make([][]byte, len(r))
	for i, e := range r {
		out[i] = e.wrapped
	}
	return out, nil
}

// CountSyncs records the paths under dir that the provider syncs until the
// returned function is called, which returns them. One count at a time.
func CountSyncs(dir string) (stop func() []string) {
	var mu sync.Mutex
	var paths []string
	f := func(path string) {
		if rel, err := filepath.Rel(dir, path); err == nil && !strings.HasPrefix(rel, "..") {
			mu.Lock()
			paths = append(paths, rel)
			mu.Unlock()
		}
	}
	onSync.Store(&f)
	return func() []string {
		onSync.Store(nil)
		mu.Lock()
		defer mu.Unlock()
		return paths
	}
}
