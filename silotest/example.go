package silotest

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	goruntime "runtime"
	"strings"
)

// CopyExample copies the example app (examples/findings) into a directory
// of the test's own, as a module of its own (example.com/findings) that
// requires this checkout of silo, and returns its path: a test may edit it
// (silo.yaml, a function) without touching the checkout. Test files are
// left out.
func CopyExample(t TB) string {
	t.Helper()
	_, file, _, ok := goruntime.Caller(0)
	if !ok {
		t.Fatalf("silotest: cannot tell where the silo checkout is")
	}
	root := filepath.Dir(filepath.Dir(file))
	src, dst := filepath.Join(root, "examples", "findings"), filepath.Join(t.TempDir(), "app")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		if strings.HasSuffix(path, "_test.go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		b = []byte(strings.ReplaceAll(string(b), "github.com/silo-run/silo/examples/findings/", "example.com/findings/"))
		return os.WriteFile(out, b, 0o644)
	})
	if err != nil {
		t.Fatalf("silotest: copy the example app: %v", err)
	}
	gomod := fmt.Sprintf("module example.com/findings\n\ngo 1.26.8\n\nrequire github.com/silo-run/silo v0.0.0\n\nreplace github.com/silo-run/silo => %s\n", root)
	if err := os.WriteFile(filepath.Join(dst, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatalf("silotest: write the example's go.mod: %v", err)
	}
	return dst
}
