package aws

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
)

// A function's deployment package is one zip: the host as "bootstrap", the
// module as "function.wasm", the spec as "function.json" and, when the
// package is built on linux on the function's architecture, the module
// prepared ahead by the host itself ("bootstrap prepare", cmd/silo-lambda):
// under "prepared/" the module validated and instrumented, its skeleton
// (runtime.Runtime.PrepareCode), its machine code (a wazero compilation
// cache) and a manifest naming the host's build. The host then loads that
// code at start instead of validating and compiling the module (docs/aws.md,
// "The package"). The archive is deterministic (fixed times and order; the
// host's compiler output is deterministic), so the same inputs give the
// same bytes and the same version tag.

// packageBudget bounds the bytes of the packages kept (packages.get): a
// rollout packages the same function for every tenant.
const packageBudget = 192 << 20

// packages builds deployment packages and keeps the last ones built, by
// their inputs. Preparing a module takes seconds of CPU; a package is
// built once for a whole fleet. It is safe for concurrent use; concurrent
// calls for the same inputs build once.
type packages struct {
	mu    sync.Mutex
	built map[[32]byte]*builtPackage
	order [][32]byte // oldest first
	size  int
}

type builtPackage struct {
	ready chan struct{}
	pkg   []byte
	err   error
}

// get returns the package of host, wasm and spec for Lambda architecture
// arch.
func (ps *packages) get(ctx context.Context, arch string, host, wasm, spec []byte) ([]byte, error) {
	k := sha256.New()
	for _, b := range [][]byte{[]byte(arch), host, wasm, spec} {
		sum := sha256.Sum256(b)
		k.Write(sum[:])
	}
	var key [32]byte
	k.Sum(key[:0])
	ps.mu.Lock()
	if ps.built == nil {
		ps.built = map[[32]byte]*builtPackage{}
	}
	if b := ps.built[key]; b != nil {
		ps.mu.Unlock()
		select {
		case <-b.ready:
			return b.pkg, b.err
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	b := &builtPackage{ready: make(chan struct{})}
	ps.built[key] = b
	ps.mu.Unlock()

	b.pkg, b.err = bundle(ctx, arch, host, wasm, spec)
	close(b.ready)
	ps.mu.Lock()
	defer ps.mu.Unlock()
	if b.err != nil {
		delete(ps.built, key)
		return nil, b.err
	}
	ps.order = append(ps.order, key)
	ps.size += len(b.pkg)
	for ps.size > packageBudget && len(ps.order) > 1 {
		old := ps.order[0]
		ps.order = ps.order[1:]
		ps.size -= len(ps.built[old].pkg)
		delete(ps.built, old)
	}
	return b.pkg, nil
}

// bundle builds the deployment package, prepared when this machine can
// run the host (linux on arch). A host that cannot be run here (say, a
// temporary directory mounted noexec) gives a package without the
// prepared part; a module the host refuses, an error.
func bundle(ctx context.Context, arch string, host, wasm, spec []byte) ([]byte, error) {
	files := []pkgFile{{"bootstrap", 0o755, host}, {"function.json", 0o644, spec}, {"function.wasm", 0o644, wasm}}
	if canPrepare(arch) {
		prepared, err := prepare(ctx, host, wasm, spec)
		if err != nil {
			return nil, err
		}
		files = append(files, prepared...)
	}
	return zipFiles(files)
}

// canPrepare reports whether this machine can run the host built for
// Lambda architecture arch, and so prepare its packages.
var canPrepare = func(arch string) bool {
	return goruntime.GOOS == "linux" && arch == lambdaArchOf(goruntime.GOARCH)
}

// lambdaArchOf is the Lambda architecture of GOARCH goarch ("" if none).
func lambdaArchOf(goarch string) string {
	switch goarch {
	case "amd64":
		return "x86_64"
	case "arm64":
		return "arm64"
	}
	return ""
}

type pkgFile struct {
	name string
	mode uint32
	data []byte
}

// prepare runs "bootstrap prepare" on the package's files in a temporary
// directory and returns the files it wrote; none if the host does not run.
func prepare(ctx context.Context, host, wasm, spec []byte) ([]pkgFile, error) {
	dir, err := os.MkdirTemp("", "silo-package-")
	if err != nil {
		return nil, nil
	}
	defer os.RemoveAll(dir)
	for _, f := range []pkgFile{{"bootstrap", 0o755, host}, {"function.json", 0o644, spec}, {"function.wasm", 0o644, wasm}} {
		if err := os.WriteFile(filepath.Join(dir, f.name), f.data, os.FileMode(f.mode)); err != nil {
			return nil, nil
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(dir, "bootstrap"), "prepare", dir)
	cmd.Env = []string{"TMPDIR=" + dir}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return nil, nil
	}
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 1 {
			return nil, silo.Errorf(silo.CodeInvalid, "the silo Lambda host refuses the module: %s", strings.TrimPrefix(strings.TrimSpace(stderr.String()), "silo-lambda prepare: "))
		}
		return nil, fmt.Errorf("prepare the module with the silo Lambda host: %w", err)
	}
	var files []pkgFile
	err = filepath.WalkDir(filepath.Join(dir, "prepared"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		files = append(files, pkgFile{filepath.ToSlash(rel), 0o644, b})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the prepared module: %w", err)
	}
	return files, nil
}

// zipFiles writes files into a zip in their order, with fixed times.
func zipFiles(files []pkgFile) ([]byte, error) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, f := range files {
		h := &zip.FileHeader{Name: f.name, Method: zip.Deflate, Modified: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)}
		h.SetMode(0o644)
		h.ExternalAttrs = (f.mode | 0o100000) << 16
		h.CreatorVersion = 3 << 8 // Unix, so the mode bits count
		w, err := zw.CreateHeader(h)
		if err != nil {
			return nil, err
		}
		if _, err := w.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := zw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
