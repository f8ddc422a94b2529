package platform_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/spec"
	"github.com/silo-run/silo/store"
)

// Modules framed as wasm (they pass the upload's layout check) that the
// runtime cannot run.
var (
	// badImport imports env.f, which silo does not provide.
	badImport = []byte("\x00asm\x01\x00\x00\x00" + "\x01\x04\x01\x60\x00\x00" + "\x02\x09\x01\x03env\x01f\x00\x00")
	// badBody has one function whose body adds with nothing on the stack.
	badBody = []byte("\x00asm\x01\x00\x00\x00" + "\x01\x04\x01\x60\x00\x00" + "\x03\x02\x01\x00" + "\x0a\x05\x01\x03\x00\x6a\x0b")
)

const brokenYAML = `version: 1
name: broken
functions:
  broken: {source: ./broken.wasm, timeout: 2s}
routes:
  - {method: GET, path: /broken, function: broken}
`

func digestOf(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// releases returns the IDs of the releases p stores.
func releases(t *testing.T, p *platform.Platform) []string {
	t.Helper()
	var ids []string
	err := p.Store.View(context.Background(), func(tx store.Tx) error {
		rs, err := tx.Releases(0, true)
		for _, r := range rs {
			ids = append(ids, r.ID)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return ids
}

// storeUnchecked stores a release of yaml whose functions' modules are
// mods as a server that checked nothing would have: the modules in the
// artifact directory, the release in the store.
func storeUnchecked(t *testing.T, p *platform.Platform, yaml string, mods map[string][]byte) engine.Release {
	t.Helper()
	arts := map[string]string{}
	for name, b := range mods {
		d := digestOf(b)
		arts[name] = d
		dir := filepath.Join(p.Config().DataDir, "artifacts")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, d+".wasm"), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	st, err := spec.Parse("silo.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	rel, stored, err := engine.NewRelease(st, arts, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Plane.PutRelease(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	return rel
}

// TestUploadRefusesModuleThatCannotRun uploads, through the control-plane
// API of a platform, modules that pass the layout check but that the
// runtime cannot run: each is refused with one error saying why, and is
// not stored; a release naming one already in the artifact directory (an
// older server's) is refused, naming the function. Its twin: a module of
// the findings app uploads, is kept compiled (no request compiles it
// again), and makes a release.
func TestUploadRefusesModuleThatCannotRun(t *testing.T) {
	ctx := context.Background()
	p := silotest.New(t)
	plat := p.Platform()
	c := apiClient(t, plat)
	arts := filepath.Join(plat.Config().DataDir, "artifacts")

	for _, tc := range []struct {
		name string
		mod  []byte
		why  string
	}{
		{"no silo exports", notLoadable, "does not export"},
		{"an import silo does not provide", badImport, "env.f"},
		{"a function body that does not validate", badBody, "function"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := c.PutArtifact(ctx, tc.mod)
			msg := silo.UserMessage(err)
			t.Logf("upload refused: %s", msg)
			if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(msg, "silo cannot run") || !strings.Contains(msg, tc.why) {
				t.Errorf("upload: got %v (code %s), want invalid, saying silo cannot run it and %q", err, silo.ErrorCode(err), tc.why)
			}
			if _, err := os.Stat(filepath.Join(arts, digestOf(tc.mod)+".wasm")); !os.IsNotExist(err) {
				t.Errorf("the refused module is stored (stat: %v)", err)
			}
		})
	}

	before := releases(t, plat)
	if err := os.MkdirAll(arts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(arts, digestOf(badImport)+".wasm"), badImport, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: brokenYAML, Artifacts: map[string]string{"broken": digestOf(badImport)}})
	if msg := silo.UserMessage(err); silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(msg, `function "broken"`) || !strings.Contains(msg, "env.f") {
		t.Errorf("release naming a module on disk that cannot run: got %v, want invalid naming function broken and env.f", err)
	}
	if after := releases(t, plat); len(after) != len(before) {
		t.Errorf("releases after the refusal: %v, want %v", after, before)
	}

	// Must: a module of the findings app uploads and is kept compiled.
	cache := t.TempDir()
	rel, err := platform.BuildRelease(ctx, filepath.Join(app, "silo.yaml"), cache, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	d := rel.Artifacts["ingest"]
	mod, err := os.ReadFile(platform.BuiltArtifact(cache, d))
	if err != nil {
		t.Fatal(err)
	}
	if plat.Runtime.Compiled(d) {
		t.Fatal("the module is compiled before its upload; the check below would prove nothing")
	}
	if got, err := c.PutArtifact(ctx, mod); err != nil || got != d {
		t.Fatalf("upload of a module of the findings app: %s, %v; want %s", got, err, d)
	}
	if !plat.Runtime.Compiled(d) {
		t.Error("the uploaded module is not kept compiled: its first request would compile it again")
	}
	if b, err := os.ReadFile(filepath.Join(arts, d+".wasm")); err != nil || digestOf(b) != d {
		t.Errorf("the uploaded module is not stored (%v)", err)
	}
}

// TestLocalBuildRefusesModuleThatCannotRun builds, on the data dir, an
// app whose function is a module the runtime cannot run: the build fails
// naming the function and stores no release. Its twin: the findings app
// builds and its release is stored.
func TestLocalBuildRefusesModuleThatCannotRun(t *testing.T) {
	ctx := context.Background()
	p := silotest.New(t)
	plat := p.Platform()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "silo.yaml"), []byte(brokenYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "broken.wasm"), badImport, 0o644); err != nil {
		t.Fatal(err)
	}
	before := releases(t, plat)
	_, err := plat.Build(ctx, dir)
	if msg := silo.UserMessage(err); silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(msg, `function "broken"`) || !strings.Contains(msg, "env.f") {
		t.Errorf("build of a module that cannot run: got %v, want invalid naming function broken and env.f", err)
	}
	if after := releases(t, plat); len(after) != len(before) {
		t.Errorf("releases after the failed build: %v, want %v", after, before)
	}

	rel, err := plat.Build(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	if after := releases(t, plat); len(after) != len(before)+1 || after[0] != rel.ID {
		t.Errorf("releases after building the findings app: %v, want %s added", after, rel.ID)
	}
}
