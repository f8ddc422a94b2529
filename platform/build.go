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
	"sort"
	"strings"
	"time"

	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/internal/wasmfile"
)

// BuildRelease builds the app whose silo.yaml is at path into a release
// without an installation: no data dir, store or provider is opened. It is
// what a client of a remote server builds before uploading the release.
// cache is a build cache directory (see Config.BuildCache; it may be shared
// with platforms): the artifacts are kept in it, at BuiltArtifact, and an
// unchanged function is not rebuilt. A cache entry that no longer holds
// the module it names is rebuilt, with a warning line written to warn.
func BuildRelease(ctx context.Context, path, cache string, warn io.Writer) (engine.Release, error) {
	b := &cachedBuilder{cache: cache, out: filepath.Join(cache, "artifacts"), warn: func(msg string) { fmt.Fprintf(warn, "silo: warning: %s\n", msg) }}
	return control.Build(ctx, b, path, time.Now)
}

// BuiltArtifact is where BuildRelease with cache keeps the artifact digest.
func BuiltArtifact(cache, digest string) string {
	return filepath.Join(cache, "artifacts", digest+".wasm")
}

// loadingBuilder is a platform's builder: it compiles every module given
// as a .wasm file (Platform.load: once, kept compiled for the requests to
// come), so that one the runtime cannot run fails its build, naming the
// function, before any release naming it is stored. A module the Go
// toolchain built is not compiled here: the toolchain's output is valid
// wasm, its handler is checked (control.CheckHandlers), and compiling it
// would make every plan after an edit wait seconds for the compiler.
type loadingBuilder struct {
	control.Builder
	p *Platform
}

func (b loadingBuilder) Build(ctx context.Context, source string) (string, error) {
	d, err := b.Builder.Build(ctx, source)
	if err != nil || !strings.HasSuffix(source, ".wasm") {
		return d, err
	}
	if err := b.p.load(ctx, d); err != nil {
		return "", err
	}
	return d, nil
}

// artifactBuilder builds every function with the Go toolchain (its build
// cache makes an unchanged rebuild cost a link). warn, if set, is told of
// an artifact file that held other bytes than its name says and was
// replaced.
type artifactBuilder struct {
	out  string
	warn func(msg string)
}

func (b *artifactBuilder) Build(ctx context.Context, source string) (string, error) {
	a, err := build.Function(ctx, source, b.out)
	if err != nil {
		return "", err
	}
	if a.Replaced != "" && b.warn != nil {
		b.warn(fmt.Sprintf("the artifact file %s %s; replaced it with the module built from %s", a.Path, a.Replaced, source))
	}
	return a.Digest, nil
}

// Module returns the artifact digest that Build wrote.
func (b *artifactBuilder) Module(digest string) ([]byte, error) { return readArtifact(b.out, digest) }

// Module returns the artifact digest that Build wrote.
func (b *cachedBuilder) Module(digest string) ([]byte, error) { return readArtifact(b.out, digest) }

// readArtifact reads the artifact digest from dir.
func readArtifact(dir, digest string) ([]byte, error) {
	if !validDigest(digest) {
		return nil, fmt.Errorf("read artifact %q: not a digest", digest)
	}
	b, err := os.ReadFile(filepath.Join(dir, digest+".wasm"))
	if err != nil {
		return nil, fmt.Errorf("read artifact %.12s: %w", digest, err)
	}
	return b, nil
}

// cachedBuilder skips the Go toolchain for a function whose inputs are
// unchanged. The inputs are fingerprinted by content: the toolchain (path,
// size and modification time of the go command, GOROOT, GOFLAGS), go.mod and
// go.sum of the module and of the modules its go.mod replaces with local
// directories, and every non-test file of the function's package and of each
// package it imports from those modules, transitively (imports are read from
// every Go file, whatever its build constraints, so the set is a superset of
// what the build reads). The standard library and modules from the module
// cache are covered by the toolchain and go.sum. So an edit to one function
// rebuilds only that function, an edit to a shared package rebuilds the
// functions that import it, and an edit elsewhere in the module rebuilds
// nothing. A fingerprint maps to an artifact digest in
// cache/keys; the artifact itself is kept in cache/artifacts and linked or
// copied into the platform's artifact directory.
//
// An entry is used only if its artifact is still a wasm module whose
// SHA-256 is its name; any other (an empty file, a damaged one) is a miss:
// the function is built again, the entry replaced, and warn says so.
//
// Several processes may share the cache: every file is written to a temp
// file and renamed.
type cachedBuilder struct {
	cache string
	out   string
	warn  func(msg string)
}

func (b *cachedBuilder) Build(ctx context.Context, source string) (string, error) {
	if strings.HasSuffix(source, ".wasm") {
		return (&artifactBuilder{out: b.out, warn: b.warn}).Build(ctx, source)
	}
	key, err := fingerprint(source)
	if err != nil {
		// Not in a module or unreadable: build without the cache.
		return (&artifactBuilder{out: b.out, warn: b.warn}).Build(ctx, source)
	}
	keyFile := filepath.Join(b.cache, "keys", key)
	arts := filepath.Join(b.cache, "artifacts")
	if d, err := os.ReadFile(keyFile); err == nil {
		digest := strings.TrimSpace(string(d))
		if validDigest(digest) && b.cached(source, filepath.Join(arts, digest+".wasm")) &&
			b.place(filepath.Join(arts, digest+".wasm"), filepath.Join(b.out, digest+".wasm")) == nil {
			return digest, nil
		}
	}
	a, err := build.Function(ctx, source, arts)
	if err != nil {
		return "", err
	}
	b.replaced(a)
	if err := b.place(a.Path, filepath.Join(b.out, a.Digest+".wasm")); err != nil {
		return "", err
	}
	if err := writeAtomic(keyFile, []byte(a.Digest+"\n")); err != nil {
		return "", err
	}
	return a.Digest, nil
}

// replaced warns when the build of a found a damaged file in its place.
func (b *cachedBuilder) replaced(a build.Artifact) {
	if a.Replaced != "" && b.warn != nil {
		b.warn(fmt.Sprintf("the build cache's artifact file %s %s; replaced it with the module built again", a.Path, a.Replaced))
	}
}

// place is the package's place, warning when it replaced dst.
func (b *cachedBuilder) place(src, dst string) error {
	why, err := place(src, dst)
	if why != "" && b.warn != nil {
		b.warn(fmt.Sprintf("the artifact file %s %s; replaced it with the build cache's copy", dst, why))
	}
	return err
}

// cached reports whether the cached artifact at path is usable: a wasm
// module whose SHA-256 is its name. One that is there but is not is
// removed, with a warning, so that the build replaces it; one that is
// missing is a plain miss.
func (b *cachedBuilder) cached(source, path string) bool {
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	digest := strings.TrimSuffix(filepath.Base(path), ".wasm")
	sum := sha256.Sum256(data)
	why := ""
	if err := wasmfile.Check(data); err != nil {
		why = "is not a wasm module: " + err.Error()
	} else if got := hex.EncodeToString(sum[:]); got != digest {
		why = fmt.Sprintf("does not match its name (its SHA-256 is %.12s)", got)
	}
	if why == "" {
		return true
	}
	os.Remove(path)
	if b.warn != nil {
		b.warn(fmt.Sprintf("the build cache's artifact %.12s for %s %s; building it again (cache %s)", digest, source, why, b.cache))
	}
	return false
}

// place makes dst, named <digest>.wasm, hold the content of src (a hard
// link when possible), unless dst holds the module already. A dst that holds
// other bytes (damaged, or written over) is replaced by a copy (temp file,
// fsync, rename), and replaced says why, for a warning.
func place(src, dst string) (replaced string, err error) {
	if _, err := os.Lstat(dst); err == nil {
		if replaced = build.Mismatch(dst, strings.TrimSuffix(filepath.Base(dst), ".wasm")); replaced == "" {
			return "", nil
		}
	}
	if _, err := os.Stat(src); err != nil {
		return "", err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return "", err
	}
	if replaced == "" {
		if err := os.Link(src, dst); err == nil || errors.Is(err, fs.ErrExist) {
			return "", nil
		}
	}
	in, err := os.Open(src)
	if err != nil {
		return "", err
	}
	defer in.Close()
	tmp, err := os.CreateTemp(filepath.Dir(dst), ".place-*")
	if err != nil {
		return "", err
	}
	defer os.Remove(tmp.Name())
	if _, err := io.Copy(tmp, in); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", err
	}
	if err := tmp.Close(); err != nil {
		return "", err
	}
	os.Chmod(tmp.Name(), 0o600)
	return replaced, os.Rename(tmp.Name(), dst)
}

// writeAtomic writes a build cache entry; the directory is not synced: a
// lost entry is a build again.
func writeAtomic(path string, b []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return durable.WriteFile(path, b, durable.Options{NoDirSync: true})
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
	mods, err := localModules(root)
	if err != nil {
		return "", err
	}
	h := sha256.New()
	fmt.Fprintf(h, "silo-build-v2\x00%s\x00%s\x00", toolchain(), filepath.ToSlash(mustRel(root, dir)))
	for _, m := range mods {
		fmt.Fprintf(h, "module\x00%s\x00%s\x00", m.path, m.dir)
		for _, f := range []string{"go.mod", "go.sum", "go.work"} {
			if fileExists(filepath.Join(m.dir, f)) {
				if err := hashFile(h, m.dir, filepath.Join(m.dir, f)); err != nil {
					return "", err
				}
			}
		}
	}
	seen := map[string]bool{}
	var visit func(pkg string) error
	visit = func(pkg string) error {
		if seen[pkg] {
			return nil
		}
		seen[pkg] = true
		ents, err := os.ReadDir(pkg)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "package\x00%s\x00", pkg)
		for _, e := range ents {
			name := e.Name()
			if e.IsDir() && !strings.HasPrefix(name, ".") && !hasGo(filepath.Join(pkg, name)) {
				// An asset tree the package may embed.
				if err := hashAssets(h, filepath.Join(pkg, name)); err != nil {
					return err
				}
				continue
			}
			if !e.Type().IsRegular() || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, ".") {
				continue
			}
			path := filepath.Join(pkg, name)
			// Every file of the package counts (Go sources, assembly, files
			// it may embed), whatever its build constraints.
			if err := hashFile(h, pkg, path); err != nil {
				return err
			}
			if !strings.HasSuffix(name, ".go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.ImportsOnly)
			if err != nil {
				continue // the build reports it
			}
			for _, im := range f.Imports {
				ip := strings.Trim(im.Path.Value, "`\"")
				if d := resolveImport(mods, ip); d != "" {
					if err := visit(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := visit(dir); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// hasGo reports whether dir holds Go files (a package of its own).
func hasGo(dir string) bool {
	m, _ := filepath.Glob(filepath.Join(dir, "*.go"))
	return len(m) > 0
}

// hashAssets hashes every regular file under dir, except in directories
// that hold Go packages of their own (they are hashed when imported).
func hashAssets(h io.Writer, dir string) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if path != dir && (strings.HasPrefix(d.Name(), ".") || hasGo(path)) {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		return hashFile(h, dir, path)
	})
}

// localModule is a module whose sources are on the local disk: the main
// module and those its go.mod replaces with directories.
type localModule struct{ path, dir string }

// localModules returns the main module at root and its local replacements,
// longest module path first.
func localModules(root string) ([]localModule, error) {
	b, err := os.ReadFile(filepath.Join(root, "go.mod"))
	if err != nil {
		return nil, err
	}
	var mods []localModule
	inBlock := false
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if i := strings.Index(line, "//"); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if m, ok := strings.CutPrefix(line, "module "); ok {
			mods = append(mods, localModule{path: strings.Trim(strings.TrimSpace(m), `"`), dir: root})
			continue
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
		from, to, ok := strings.Cut(line, "=>")
		if !ok {
			continue
		}
		ff, tf := strings.Fields(from), strings.Fields(to)
		if len(ff) == 0 || len(tf) != 1 || !(strings.HasPrefix(tf[0], ".") || filepath.IsAbs(tf[0])) {
			continue // a module version, not a directory
		}
		d := tf[0]
		if !filepath.IsAbs(d) {
			d = filepath.Join(root, d)
		}
		mods = append(mods, localModule{path: ff[0], dir: filepath.Clean(d)})
	}
	if len(mods) == 0 || mods[0].dir != root {
		return nil, fmt.Errorf("%s/go.mod has no module line", root)
	}
	sort.SliceStable(mods, func(i, j int) bool { return len(mods[i].path) > len(mods[j].path) })
	return mods, nil
}

// resolveImport returns the directory of an import path inside a local
// module, or "" for the standard library and modules from the module cache
// (go.sum and the toolchain stand for those).
func resolveImport(mods []localModule, ip string) string {
	for _, m := range mods {
		if ip == m.path {
			return m.dir
		}
		if rest, ok := strings.CutPrefix(ip, m.path+"/"); ok {
			return filepath.Join(m.dir, filepath.FromSlash(rest))
		}
	}
	return ""
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
