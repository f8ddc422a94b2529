package aws

import (
	"archive/zip"
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/build"
)

// zipNames lists the files of a package.
func zipNames(t *testing.T, pkg []byte) []string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	return names
}

// unzippedSize returns the bytes of pkg's files, unzipped, and logs each
// file of its prepared part.
func unzippedSize(t *testing.T, pkg []byte) uint64 {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(pkg), int64(len(pkg)))
	if err != nil {
		t.Fatal(err)
	}
	var n uint64
	for _, f := range zr.File {
		n += f.UncompressedSize64
		if strings.HasPrefix(f.Name, "prepared/") {
			t.Logf("  %s: %d bytes, %d zipped", f.Name, f.UncompressedSize64, f.CompressedSize64)
		}
	}
	return n
}

// TestLambdaPackagePreparedOnItsArchitecture: packaged on a machine of the
// function's architecture, the package holds the module prepared by the
// host and its machine code, and two builds give the same bytes (so an
// unchanged apply or a rollback publishes nothing). The twin: packaged for
// the other architecture, it holds the host, module and spec only.
func TestLambdaPackagePreparedOnItsArchitecture(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and an example function")
	}
	host, err := lambdaHost()
	if err != nil {
		t.Fatal(err)
	}
	wasm, err := os.ReadFile(example(t, "list").Path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	spec := []byte(`{"artifact":"x"}`)
	pkg, err := bundle(ctx, lambdaArch(), host, wasm, spec)
	if err != nil {
		t.Fatal(err)
	}
	names := zipNames(t, pkg)
	for _, want := range []string{"bootstrap", "function.json", "function.wasm", "prepared/manifest.json", "prepared/function.wasm", "prepared/skeleton.wasm"} {
		if !slices.Contains(names, want) {
			t.Errorf("the package holds %v, want %s", names, want)
		}
	}
	if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "prepared/code/wazero-") }) {
		t.Errorf("the package holds %v, want machine code under prepared/code", names)
	}
	again, err := bundle(ctx, lambdaArch(), host, wasm, spec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pkg, again) {
		t.Error("two packages of the same inputs differ")
	}
	t.Logf("package: %d bytes zipped, %d unzipped (host %d, module %d)", len(pkg), unzippedSize(t, pkg), len(host), len(wasm))

	other := "arm64"
	if lambdaArch() == "arm64" {
		other = "x86_64"
	}
	pkg, err = bundle(ctx, other, host, wasm, spec)
	if err != nil {
		t.Fatal(err)
	}
	if names := zipNames(t, pkg); !slices.Equal(names, []string{"bootstrap", "function.json", "function.wasm"}) {
		t.Errorf("the package for %s holds %v, want the host, spec and module only", other, names)
	}

	// A module the host refuses fails the deploy with the host's reason.
	_, err = bundle(ctx, lambdaArch(), host, []byte("\x00asm not really"), spec)
	if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), "the silo Lambda host refuses the module: function module is not valid wasm") {
		t.Errorf("packaging a broken module: %v, want CodeInvalid with the host's reason", err)
	}
}

// TestLambdaHostStartsFromThePackagesCode deploys the example's list
// function and runs its package as Lambda would: the host says it serves
// from the package's machine code. The twins: the same package without
// its prepared part (as packaged on a machine of another architecture),
// and with its machine code damaged, are served correctly, on the
// interpreter first.
func TestLambdaHostStartsFromThePackagesCode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and the example's functions")
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	arts := map[string]build.Artifact{"ingest": example(t, "ingest"), "list": example(t, "list")}
	o := newFnOrg(t, arts)
	key := o.deployFindings(t, "acme", arts)
	for _, c := range []struct {
		name     string
		unpacked func(t testing.TB, root string)
		want     string
	}{
		{"as packaged", nil, `"code":"precompiled"`},
		{"packaged on another architecture", func(t testing.TB, root string) { os.RemoveAll(filepath.Join(root, "prepared")) }, `"code":"interpreter"`},
		{"damaged machine code", func(t testing.TB, root string) {
			files, _ := filepath.Glob(filepath.Join(root, "prepared", "code", "*", "*"))
			for _, f := range files {
				if b, _ := os.ReadFile(f); len(b) > 1<<20 {
					b[len(b)/2] ^= 0xff
					os.WriteFile(f, b, 0o644)
				}
			}
		}, `"code":"interpreter"`},
	} {
		t.Run(c.name, func(t *testing.T) {
			stop, out := o.startHostWith(t, "acme", "list", hostOptions{unpacked: c.unpacked})
			if r := o.callReady(t, "acme", "GET", "/findings", key, ""); r.status != http.StatusOK {
				t.Fatalf("GET /findings: %d %s, want 200", r.status, r.body)
			}
			stop()
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("the host's output lacks %s:\n%s", c.want, out)
			}
		})
	}
}
