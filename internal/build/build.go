// Package build turns a function's source into a content-addressed wasm
// artifact: it runs the Go toolchain with GOOS=wasip1 GOARCH=wasm
// -buildmode=c-shared -trimpath and names the result by the SHA-256 of its
// bytes.
//
// It imports only the standard library, the root silo package and its
// leaves; it must not import wazero or the runtime: it checks that what it
// keeps is framed as a wasm module (internal/wasmfile), and the runtime
// validates the module in full at Compile.
package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/internal/wasmfile"

	silo "github.com/silo-run/silo"
)

// Artifact is a built function module.
type Artifact struct {
	Digest string // lower-case hex SHA-256 of the module bytes
	Path   string // <outDir>/<Digest>.wasm
	Size   int64
	// Replaced says why the file at Path, found there before the build,
	// was replaced ("" if it was not there or held the module): it did
	// not hold the bytes its name is the SHA-256 of (damaged or written
	// over). The caller warns with it.
	Replaced string
}

// Function builds the Go main package in dir (or takes the .wasm file dir
// names as it is) and writes it to outDir as <digest>.wasm. The same source
// and toolchain give the same digest: the build is -trimpath, without VCS
// stamping, and Go's build cache makes an unchanged rebuild cheap. An
// artifact already in outDir is not rewritten when its content hashes to
// its name; one that does not is replaced (Artifact.Replaced says so).
//
// # Errors
//
// CodeInvalid with the compiler's output (trimmed to its first lines) when
// the source does not build, saying what a function is when it is not a
// package main, or when a .wasm file is not a wasm module;
// CodeInternal when the toolchain succeeds but its output is not a wasm
// module (nothing is kept: a broken build never reaches outDir);
// CodeNotFound when dir does not exist; internal errors for I/O failures. Function is safe for concurrent use with
// distinct or equal outDirs.
func Function(ctx context.Context, dir, outDir string) (Artifact, error) {
	if strings.HasSuffix(dir, ".wasm") {
		b, err := os.ReadFile(dir)
		if errors.Is(err, os.ErrNotExist) {
			return Artifact{}, silo.Errorf(silo.CodeNotFound, "function module %s does not exist", dir)
		}
		if err != nil {
			return Artifact{}, fmt.Errorf("read %s: %w", dir, err)
		}
		if err := wasmfile.Check(b); err != nil {
			return Artifact{}, silo.Errorf(silo.CodeInvalid, "function module %s is not a wasm module: %v; build it with GOOS=wasip1 GOARCH=wasm -buildmode=c-shared", dir, err)
		}
		return store(b, outDir)
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return Artifact{}, silo.Errorf(silo.CodeNotFound, "function source directory %s does not exist", dir)
	}
	// The toolchain runs in dir: a relative outDir (a data dir given as
	// .silo) would name a directory inside the function's source.
	outDir, err := filepath.Abs(outDir)
	if err != nil {
		return Artifact{}, fmt.Errorf("resolve %s: %w", outDir, err)
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Artifact{}, fmt.Errorf("create %s: %w", outDir, err)
	}
	tmp, err := os.CreateTemp(outDir, ".build-*.wasm")
	if err != nil {
		return Artifact{}, fmt.Errorf("create temp in %s: %w", outDir, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())

	cmd := exec.CommandContext(ctx, goTool(), "build", "-buildmode=c-shared", "-trimpath", "-buildvcs=false", "-o", tmp.Name(), ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GOOS=wasip1", "GOARCH=wasm", "CGO_ENABLED=0")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Artifact{}, fmt.Errorf("build %s: %w", dir, ctx.Err())
		}
		if strings.Contains(out.String(), "requires exactly one main package") {
			return Artifact{}, silo.Errorf(silo.CodeInvalid, "function in %s is not a package main: a function is a package main that calls fn.Handle (see docs/spec.md, functions)", dir)
		}
		return Artifact{}, silo.Errorf(silo.CodeInvalid, "function in %s does not build:\n%s", dir, trim(out.String()))
	}
	b, err := os.ReadFile(tmp.Name())
	if err != nil {
		return Artifact{}, fmt.Errorf("read build output: %w", err)
	}
	if err := wasmfile.Check(b); err != nil {
		return Artifact{}, silo.Errorf(silo.CodeInternal, "building the function in %s: %s exited successfully but wrote no wasm module (%v); nothing was kept: check the Go toolchain (go version, GOROOT, GOFLAGS) and build again", dir, goTool(), err)
	}
	return store(b, outDir)
}

// store writes b to outDir/<digest>.wasm (temp file, fsync, rename) unless
// that file holds b already: one that holds other bytes (damaged, or written
// over with a file of the same size) is replaced, and Replaced says why.
func store(b []byte, outDir string) (Artifact, error) {
	sum := sha256.Sum256(b)
	a := Artifact{Digest: hex.EncodeToString(sum[:]), Size: int64(len(b))}
	a.Path = filepath.Join(outDir, a.Digest+".wasm")
	if _, err := os.Lstat(a.Path); err == nil {
		if a.Replaced = Mismatch(a.Path, a.Digest); a.Replaced == "" {
			return a, nil
		}
	}
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return Artifact{}, fmt.Errorf("create %s: %w", outDir, err)
	}
	if err := durable.WriteFile(a.Path, b, durable.Options{Perm: 0o644}); err != nil {
		return Artifact{}, fmt.Errorf("store artifact %s: %w", a.Digest, err)
	}
	return a, nil
}

// Mismatch returns "" if the file at path holds the bytes whose SHA-256 is
// digest (lower-case hex), else why not, in a phrase that follows the
// file's name: "is missing", "cannot be read: …", "holds other bytes (…)".
// It reads the whole file.
func Mismatch(path, digest string) string {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return "is missing"
	}
	if err != nil {
		return fmt.Sprintf("cannot be read: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return fmt.Sprintf("cannot be read: %v", err)
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != digest {
		return fmt.Sprintf("holds other bytes (%d bytes whose SHA-256 is %.12s, not %.12s)", n, got, digest)
	}
	return ""
}

// goTool returns the go command of the running toolchain if it is there,
// else "go" from PATH.
func goTool() string {
	if root := os.Getenv("GOROOT"); root != "" {
		if p := filepath.Join(root, "bin", "go"); fileExists(p) {
			return p
		}
	}
	return "go"
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// trim keeps the first 30 lines of compiler output.
func trim(s string) string {
	s = strings.TrimSpace(s)
	lines := strings.Split(s, "\n")
	if len(lines) > 30 {
		lines = append(lines[:30], fmt.Sprintf("... (%d more lines)", len(lines)-30))
	}
	return strings.Join(lines, "\n")
}
