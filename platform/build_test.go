package platform

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func write(t *testing.T, path, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFingerprint checks what invalidates a function's cached build: its
// own files, packages it imports (transitively), its embedded assets, go.mod
// and go.sum must; tests, other functions and unrelated packages must not.
func TestFingerprint(t *testing.T) {
	root := t.TempDir()
	write(t, filepath.Join(root, "go.mod"), "module example.com/app\n\ngo 1.26\n")
	write(t, filepath.Join(root, "fn/a/main.go"), "package main\n\nimport _ \"example.com/app/lib\"\n\nfunc main() {}\n")
	write(t, filepath.Join(root, "fn/a/static/index.html"), "hi")
	write(t, filepath.Join(root, "fn/b/main.go"), "package main\n\nfunc main() {}\n")
	write(t, filepath.Join(root, "lib/lib.go"), "package lib\n\nimport _ \"example.com/app/lib/deep\"\n")
	write(t, filepath.Join(root, "lib/deep/deep.go"), "package deep\n")
	write(t, filepath.Join(root, "other/other.go"), "package other\n")
	fnA := filepath.Join(root, "fn/a")
	base, err := fingerprint(fnA)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		file    string
		changes bool
	}{
		{"own source", "fn/a/main.go", true},
		{"embedded asset", "fn/a/static/index.html", true},
		{"imported package", "lib/lib.go", true},
		{"transitive import", "lib/deep/deep.go", true},
		{"go.mod", "go.mod", true},
		{"new go.sum", "go.sum", true},
		{"own test", "fn/a/main_test.go", false},
		{"another function", "fn/b/main.go", false},
		{"unrelated package", "other/other.go", false},
		{"docs", "README.md", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(root, tc.file)
			old, _ := os.ReadFile(p)
			write(t, p, string(old)+"\n// edited\n")
			got, err := fingerprint(fnA)
			if err != nil {
				t.Fatal(err)
			}
			if (got != base) != tc.changes {
				t.Errorf("editing %s: fingerprint changed = %v, want %v", tc.file, got != base, tc.changes)
			}
			if old == nil {
				os.Remove(p)
			} else {
				write(t, p, string(old))
			}
			if again, _ := fingerprint(fnA); again != base {
				t.Errorf("restoring %s did not restore the fingerprint", tc.file)
			}
		})
	}
}

// TestBuildCacheRefusesWhatIsNotWasm: a cache entry whose artifact is not
// a wasm module (the empty file a broken build once left), or does not
// match its name, is a miss: the function is built again, the entry
// replaced and a warning written; a good entry is used as it is, without
// a warning (must).
func TestBuildCacheRefusesWhatIsNotWasm(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join("..", "internal", "build", "testdata", "hello")
	cache := t.TempDir()
	var warnings []string
	b := &cachedBuilder{cache: cache, out: t.TempDir(), warn: func(msg string) { warnings = append(warnings, msg) }}
	good, err := b.Build(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	key, err := fingerprint(src)
	if err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(cache, "keys", key)
	art := func(d string) string { return filepath.Join(cache, "artifacts", d+".wasm") }

	// Must: the good entry is used as it is.
	again, err := b.Build(ctx, src)
	if err != nil || again != good || len(warnings) != 0 {
		t.Fatalf("second build: %s, %v, warnings %q; want %s from the cache, no warning", again, err, warnings, good)
	}

	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	goodBytes, err := os.ReadFile(art(good))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		digest  string
		content []byte
		warning string
	}{
		{"empty artifact", empty, nil, "is not a wasm module"},
		{"artifact not matching its name", good, append(append([]byte{}, goodBytes[:len(goodBytes)-1]...), 0xff), "does not match its name"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			warnings = nil
			write(t, keyFile, tc.digest+"\n")
			os.Remove(art(tc.digest)) // a new file, as another process writes one, not the linked one
			write(t, art(tc.digest), string(tc.content))
			got, err := b.Build(ctx, src)
			if err != nil {
				t.Fatal(err)
			}
			if got != good {
				t.Errorf("build with a bad cache entry: %s, want the rebuilt %s", got, good)
			}
			if len(warnings) != 1 || !strings.Contains(warnings[0], tc.warning) || !strings.Contains(warnings[0], "building it again") {
				t.Errorf("warnings %q, want one saying the entry %s and is built again", warnings, tc.warning)
			}
			if k, _ := os.ReadFile(keyFile); strings.TrimSpace(string(k)) != good {
				t.Errorf("cache key names %q after the rebuild, want %s", k, good)
			}
			if b, err := os.ReadFile(art(good)); err != nil || !bytes.Equal(b, goodBytes) {
				t.Errorf("cached artifact %s after the rebuild is not the module built (%v)", good, err)
			}
			if tc.digest != good {
				if _, err := os.Stat(art(tc.digest)); !os.IsNotExist(err) {
					t.Errorf("the bad artifact %s is still in the cache (stat: %v)", tc.digest, err)
				}
			}
		})
	}
}

// TestBuildCachePlaceReplacesWhatIsNotTheArtifact puts, at the artifact's
// path in the platform's artifact directory, a file of its size whose bytes
// are not the artifact's: a build served from the build cache must replace
// it with the cache's copy, with a warning, and keep an intact one as it
// is, without one.
func TestBuildCachePlaceReplacesWhatIsNotTheArtifact(t *testing.T) {
	ctx := context.Background()
	src := filepath.Join("..", "internal", "build", "testdata", "hello")
	cache := t.TempDir()
	var warnings []string
	b := &cachedBuilder{cache: cache, out: t.TempDir(), warn: func(msg string) { warnings = append(warnings, msg) }}
	digest, err := b.Build(ctx, src)
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(filepath.Join(cache, "artifacts", digest+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte{}, good...)
	damaged[len(damaged)/2] ^= 0xff
	for _, tc := range []struct {
		name  string
		there []byte
		warn  bool
	}{
		{"same size, other bytes", damaged, true},
		{"the artifact itself", good, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			warnings = nil
			b.out = t.TempDir()
			p := filepath.Join(b.out, digest+".wasm")
			write(t, p, string(tc.there))
			got, err := b.Build(ctx, src)
			if err != nil || got != digest {
				t.Fatalf("Build = %s, %v; want %s from the cache", got, err, digest)
			}
			if now, err := os.ReadFile(p); err != nil || !bytes.Equal(now, good) {
				t.Errorf("after the build, %s does not hold the artifact (%v)", p, err)
			}
			warned := len(warnings) == 1 && strings.Contains(warnings[0], "holds other bytes")
			if warned != tc.warn || (!tc.warn && len(warnings) != 0) {
				t.Errorf("warnings %q, want a warning that it held other bytes: %v", warnings, tc.warn)
			}
		})
	}
}
