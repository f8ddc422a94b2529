package platform

import (
	"os"
	"path/filepath"
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
