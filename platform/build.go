package platform

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/silo-run/silo/internal/build"
)

// artifactBuilder builds every function with the Go toolchain (its build
// cache makes an unchanged rebuild cost a link).
type artifactBuilder struct{ out string }

func (b *artifactBuilder) Build(ctx context.Context, source string) (string, error) {
	a, err := build.Function(ctx, source, b.out)
	if err != nil {
		return "", err
	}
	return a.Digest, nil
}

// cachedBuilder skips the Go toolchain for a function whose inputs are
// unchanged. The inputs are fingerprinted as: the toolchain (path, size and
// modification time of the go command, GOROOT, GOFLAGS), the content of the
// files of the function's own directory (a main package: nothing else can
// import it), and the name, size and modification time of every other
// non-test file of the enclosing module and of modules its go.mod replaces
// with local directories (shared packages, go.mod, go.sum; hidden
// directories, testdata and nested modules are skipped). So an
// edit to one function rebuilds only that function, and an edit to shared
// code rebuilds them all. A fingerprint maps to an artifact digest in
// cache/keys; the artifact itself is kept in cache/artifacts and linked or
// copied into the platform's artifact directory.
//
// Several processes may share the cache: every file is written to a temp
// file and renamed.
type cachedBuilder struct {
	cache string
	out   string
}

func (b *cachedBuilder) Build(ctx context.Context, source string) (string, error) {
	if strings.HasSuffix(source, ".wasm") {
		return (&artifactBuilder{out: b.out}).Build(ctx, source)
	}
	key, err := fingerprint(source)
	if err != nil {
		// Not in a module or unreadable: build without the cache.
		return (&artifactBuilder{out: b.out}).Build(ctx, source)
	}
	keyFile := filepath.Join(b.cache, "keys", key)
	arts := filepath.Join(b.cache, "artifacts")
	if d, err := os.ReadFile(keyFile); err == nil {
		digest := strings.TrimSpace(string(d))
		if validDigest(digest) && place(filepath.Join(arts, digest+".wasm"), filepath.Join(b.out, digest+".wasm")) == nil {
			return digest, nil
		}
	}
	a, err := build.Function(ctx, source, arts)
	if err != nil {
		return "", err
	}
	if err := place(a.Path, filepath.Join(b.out, a.Digest+".wasm")); err != nil {
		return "", err
	}
	if err := writeAtomic(keyFile, []byte(a.Digest+"\n")); err != nil {
		return "", err
	}
	return a.Digest, nil
}

// place makes dst hold the content of src (a hard link when possible),
// unless dst exists already.
func place(src, dst string) error {
	if _, err := os.Stat(dst); err == nil {
		return nil
	}
	if _, err := os.Stat(src); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	if err := os.Link(src, dst); err == nil || errors.Is(err, fs.ErrExist) {
		return nil
	}
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".place-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	os.Chmod(tmp.Name(), 0o644)
	return os.Rename(tmp.Name(), dst)
}

func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// fingerprint returns the cache key of the function whose Go main package is
// in dir (see cachedBuilder).
func fingerprint(dir string) (string, error) {
	dir, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	root, err := moduleRoot(dir)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "silo-build-v1\x00%s\x00%s\x00", toolchain(), filepath.ToSlash(mustRel(root, dir)))
	// The function's own files.
	ents, err := os.ReadDir(dir)
	if err != nil {
		return "", err
	}
	for _, e := range ents {
		if e.Type().IsRegular() && !strings.HasSuffix(e.Name(), "_test.go") {
			if err := hashFile(h, dir, filepath.Join(dir, e.Name())); err != nil {
				return "", err
			}
		}
	}
	h.Write([]byte{0xff})
	// Everything else in the module, and in modules it replaces with local
	// directories.
	trees := append([]string{root}, localReplaces(root)...)
	for _, tree := range trees {
		if err := hashTree(h, tree, dir); err != nil {
			return "", err
		}
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hashTree hashes the build inputs under root, except the files directly in
// skip.
func hashTree(h io.Writer, root, skip string) error {
	fmt.Fprintf(h, "tree\x00%s\x00", root)
	mains := map[string]bool{} // directories holding a main package: nothing imports them
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path == root {
				return nil
			}
			if strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules" {
				return filepath.SkipDir
			}
			if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
				return filepath.SkipDir // a nested module
			}
			mains[path] = isMain(path)
			return nil
		}
		if !d.Type().IsRegular() || filepath.Dir(path) == skip || mains[filepath.Dir(path)] || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") {
			return nil
		}
		if !buildInput(name) {
			return nil
		}
		// Outside the function's directory a file's size and modification
		// time stand for its content: reading every file of a large module
		// on each build would cost more than the build saves.
		info, err := d.Info()
		if err != nil {
			return nil // vanished while walking
		}
		fmt.Fprintf(h, "%s\x00%d\x00%d\x00", filepath.ToSlash(mustRel(root, path)), info.Size(), info.ModTime().UnixNano())
		return nil
	})
}

// localReplaces returns the directories that root's go.mod replaces modules
// with ("replace x => ../dir" or an absolute path).
func localReplaces(root string) []string {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil
	}
	var out []string
	inBlock := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		switch {
		case line == "replace (":
			inBlock = true
			continue
		case inBlock && line == ")":
			inBlock = false
			continue
		case strings.HasPrefix(line, "replace "):
			line = strings.TrimPrefix(line, "replace ")
		case !inBlock:
			continue
		}
		_, target, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		f := strings.Fields(target)
		if len(f) != 1 || !(strings.HasPrefix(f[0], ".") || filepath.IsAbs(f[0])) {
			continue // a module version, not a directory
		}
		d := f[0]
		if !filepath.IsAbs(d) {
			d = filepath.Join(root, d)
		}
		out = append(out, filepath.Clean(d))
	}
	return out
}

// buildInput reports whether a file outside the function's directory can
// affect a Go build: Go sources, assembly, module files and files a package
// may embed (anything but documentation and obvious data).
func buildInput(name string) bool {
	switch strings.ToLower(filepath.Ext(name)) {
	case ".md", ".txt", ".log", ".db", ".wasm", ".key", ".pem":
		return false
	}
	return true
}

func hashFile(h io.Writer, base, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(h, "%s\x00", filepath.ToSlash(mustRel(base, path)))
	n, err := io.Copy(h, f)
	fmt.Fprintf(h, "\x00%d\x00", n)
	return err
}

func mustRel(base, path string) string {
	r, err := filepath.Rel(base, path)
	if err != nil {
		return path
	}
	return r
}

// moduleRoot returns the directory of the go.mod enclosing dir.
func moduleRoot(dir string) (string, error) {
	for d := dir; ; {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		parent := filepath.Dir(d)
		if parent == d {
			return "", fmt.Errorf("%s is not inside a Go module", dir)
		}
		d = parent
	}
}

// toolchain identifies the go command build.Function will run.
func toolchain() string {
	path := ""
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			path = p
		}
	}
	if path == "" {
		p, err := exec.LookPath("go")
		if err != nil {
			return "no-go"
		}
		path = p
	}
	st, err := os.Stat(path)
	if err != nil {
		return path
	}
	return fmt.Sprintf("%s|%d|%d|%s|%s", path, st.Size(), st.ModTime().UnixNano(), os.Getenv("GOFLAGS"), os.Getenv("GOEXPERIMENT"))
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// isMain reports whether dir holds a Go main package (judged by the package
// clause of its first non-test Go file). Such a package cannot be imported,
// so its files are not inputs of any other function.
func isMain(dir string) bool {
	ents, err := os.ReadDir(dir)
	if err != nil {
		return false
	}
	for _, e := range ents {
		n := e.Name()
		if !e.Type().IsRegular() || !strings.HasSuffix(n, ".go") || strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(dir, n), nil, parser.PackageClauseOnly)
		if err != nil {
			return false
		}
		return f.Name.Name == "main"
	}
	return false
}
