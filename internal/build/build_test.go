package build

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
)

func TestFunctionReproducible(t *testing.T) {
	ctx := context.Background()
	out1, out2 := t.TempDir(), t.TempDir()
	a, err := Function(ctx, filepath.Join("testdata", "hello"), out1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(a.Path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	if a.Digest != hex.EncodeToString(sum[:]) || a.Path != filepath.Join(out1, a.Digest+".wasm") || a.Size != int64(len(b)) {
		t.Errorf("artifact %+v does not match its file (%d bytes)", a, len(b))
	}
	if !bytes.HasPrefix(b, []byte("\x00asm")) {
		t.Error("artifact is not wasm")
	}
	// Same source, another output dir: same digest.
	a2, err := Function(ctx, filepath.Join("testdata", "hello"), out2)
	if err != nil {
		t.Fatal(err)
	}
	if a2.Digest != a.Digest {
		t.Errorf("rebuild digest %s, want %s", a2.Digest, a.Digest)
	}
	// A .wasm file is taken as it is.
	a3, err := Function(ctx, a.Path, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if a3.Digest != a.Digest {
		t.Errorf(".wasm digest %s, want %s", a3.Digest, a.Digest)
	}
}

func TestFunctionErrors(t *testing.T) {
	ctx := context.Background()
	_, err := Function(ctx, filepath.Join("testdata", "broken"), t.TempDir())
	if !errors.Is(err, silo.ErrInvalid) {
		t.Fatalf("broken source: got %v, want invalid", err)
	}
	if !strings.Contains(err.Error(), "main.go:4") || !strings.Contains(err.Error(), "undefinedThing") {
		t.Errorf("error does not carry the compiler output:\n%v", err)
	}
	// Not a package main: one sentence saying what a function is, not
	// Go's words about build modes (the twin: hello builds, in
	// TestFunctionReproducible).
	out := t.TempDir()
	_, err = Function(ctx, filepath.Join("testdata", "notmain"), out)
	if !errors.Is(err, silo.ErrInvalid) || !strings.Contains(err.Error(), "is not a package main: a function is a package main that calls fn.Handle") {
		t.Errorf("package notmain: got %v, want invalid, saying what a function is", err)
	} else if strings.Contains(err.Error(), "buildmode") {
		t.Errorf("package notmain: the error speaks of build modes: %v", err)
	}
	assertEmptyDir(t, out)
	_, err = Function(ctx, filepath.Join("testdata", "nosuch"), t.TempDir())
	if !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("missing dir: got %v, want not found", err)
	}
	_, err = Function(ctx, filepath.Join("testdata", "nosuch.wasm"), t.TempDir())
	if !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("missing wasm: got %v, want not found", err)
	}
}

// TestFunctionRefusesWhatIsNotWasm: a toolchain that exits 0 without
// writing a module (a go command that does nothing), and a .wasm file that
// is empty, give an error and leave nothing in outDir; the real toolchain's
// module, and that module given as a .wasm file, are kept (the twin is
// TestFunctionReproducible, which checks the bytes kept).
func TestFunctionRefusesWhatIsNotWasm(t *testing.T) {
	ctx := context.Background()
	empty := filepath.Join(t.TempDir(), "empty.wasm")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	out := t.TempDir()
	_, err := Function(ctx, empty, out)
	if !errors.Is(err, silo.ErrInvalid) || !strings.Contains(err.Error(), "not a wasm module") {
		t.Errorf("empty .wasm: got %v, want invalid, not a wasm module", err)
	}
	assertEmptyDir(t, out)

	// A go command that succeeds and writes nothing: a real process run
	// where the build runs the toolchain ($GOROOT/bin/go).
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin", "go"), []byte("#!/bin/sh\nexit 0\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("GOROOT", root)
	out = t.TempDir()
	_, err = Function(ctx, filepath.Join("testdata", "hello"), out)
	if err == nil || silo.ErrorCode(err) != silo.CodeInternal || !strings.Contains(err.Error(), "wrote no wasm module") {
		t.Errorf("toolchain that writes nothing: got %v, want internal, wrote no wasm module", err)
	}
	assertEmptyDir(t, out)
}

func assertEmptyDir(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		t.Errorf("%s holds %s after a refused build; it must hold nothing", dir, e.Name())
	}
}

// TestFunctionIntoARelativeDir builds with outDir relative to the working
// directory, as a data dir given as .silo makes it (the toolchain runs in
// the function's directory): the artifact lands in outDir under the
// working directory, and nothing is written into the function's source.
// The twin is TestFunctionReproducible's absolute outDir.
func TestFunctionIntoARelativeDir(t *testing.T) {
	src, err := filepath.Abs(filepath.Join("testdata", "hello"))
	if err != nil {
		t.Fatal(err)
	}
	wd := t.TempDir()
	t.Chdir(wd)
	a, err := Function(context.Background(), src, filepath.Join(".silo", "artifacts"))
	if err != nil {
		t.Fatalf("build into a relative dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(wd, ".silo", "artifacts", a.Digest+".wasm")); err != nil {
		t.Errorf("artifact not in the working directory's .silo/artifacts: %v", err)
	}
	if _, err := os.Stat(filepath.Join(src, ".silo")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the build wrote into the function's source (%s): %v", filepath.Join(src, ".silo"), err)
	}
}

// TestFunctionReplacesWhatIsNotTheArtifact puts, where the artifact goes,
// a file of the artifact's size whose bytes are not the artifact's (one
// byte written over): Function must replace it, saying so, and must keep
// a file that holds the artifact as it is.
func TestFunctionReplacesWhatIsNotTheArtifact(t *testing.T) {
	ctx := context.Background()
	built, err := Function(ctx, filepath.Join("testdata", "hello"), t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(built.Path)
	if err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte{}, good...)
	damaged[len(damaged)-1] ^= 0xff
	for _, tc := range []struct {
		name     string
		there    []byte
		replaced bool
	}{
		{"same size, other bytes", damaged, true},
		{"the artifact itself", good, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := t.TempDir()
			p := filepath.Join(out, built.Digest+".wasm")
			if err := os.WriteFile(p, tc.there, 0o644); err != nil {
				t.Fatal(err)
			}
			before, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			a, err := Function(ctx, built.Path, out)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := os.ReadFile(p); err != nil || !bytes.Equal(got, good) {
				t.Errorf("after Function, %s does not hold the artifact (%v)", p, err)
			}
			after, err := os.Stat(p)
			if err != nil {
				t.Fatal(err)
			}
			if tc.replaced {
				if !strings.Contains(a.Replaced, "holds other bytes") {
					t.Errorf("Replaced = %q, want it to say the file held other bytes", a.Replaced)
				}
				if os.SameFile(before, after) {
					t.Error("the damaged file was written in place, want a new file renamed over it")
				}
				return
			}
			if a.Replaced != "" || !os.SameFile(before, after) {
				t.Errorf("Replaced = %q, same file %v; want the intact artifact kept as it is", a.Replaced, os.SameFile(before, after))
			}
		})
	}
}
