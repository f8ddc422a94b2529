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
	_, err = Function(ctx, filepath.Join("testdata", "nosuch"), t.TempDir())
	if !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("missing dir: got %v, want not found", err)
	}
	_, err = Function(ctx, filepath.Join("testdata", "nosuch.wasm"), t.TempDir())
	if !errors.Is(err, silo.ErrNotFound) {
		t.Errorf("missing wasm: got %v, want not found", err)
	}
}
