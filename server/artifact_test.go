package server_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/server"
)

// TestArtifactNotWasmRefused: an artifact that is not a wasm module (an
// empty one, as a broken build leaves) is refused on upload and kept
// nowhere; one already in the artifact directory (left by an older
// server) cannot become part of a release, with an error naming the
// function; a wasm module uploads and makes a release (must).
func TestArtifactNotWasmRefused(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	const empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	arts := filepath.Join(f.dir, "artifacts")

	for _, body := range [][]byte{nil, []byte("MZ\x90\x00 not wasm")} {
		_, err := f.client.PutArtifact(ctx, body)
		if code(err) != silo.CodeInvalid || !strings.Contains(err.Error(), "not a wasm module") {
			t.Errorf("upload of %q: got %v, want invalid, not a wasm module", body, err)
		}
		sum := sha256.Sum256(body)
		if _, err := os.Stat(filepath.Join(arts, hex.EncodeToString(sum[:])+".wasm")); !os.IsNotExist(err) {
			t.Errorf("upload of %q refused but the artifact is stored (stat: %v)", body, err)
		}
	}

	// An empty artifact already on disk: the release naming it is refused,
	// and a repeated upload of it is refused too (not answered "stored").
	if err := os.MkdirAll(arts, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(arts, empty+".wasm"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := f.client.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": empty}})
	if code(err) != silo.CodeInvalid || !strings.Contains(err.Error(), `function "ingest" is not a wasm module`) {
		t.Errorf("release with an empty artifact: got %v, want invalid naming function ingest", err)
	}
	if _, err := f.client.PutArtifact(ctx, nil); code(err) != silo.CodeInvalid {
		t.Errorf("upload of an empty artifact already on disk: got %v, want invalid", err)
	}
	rels, err := f.client.Releases(ctx, 0, true)
	if err != nil {
		t.Fatal(err)
	}
	if len(rels) != 0 {
		t.Errorf("releases after refusals: %v, want none", rels)
	}

	// The control: a wasm module uploads (201, then 200 again) and makes a release.
	mod := wasmModule("ingest")
	for _, want := range []int{http.StatusCreated, http.StatusOK} {
		sum := sha256.Sum256(mod)
		req, _ := http.NewRequest(http.MethodPut, f.url+"/v1/artifacts/"+hex.EncodeToString(sum[:]), strings.NewReader(string(mod)))
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("upload of a wasm module: %s, want %d", resp.Status, want)
		}
	}
	d, err := f.client.PutArtifact(ctx, mod)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.client.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d}}); err != nil {
		t.Errorf("release with a wasm module: %v", err)
	}
}

// TestArtifactOtherBytesReplaced puts, at an artifact's path, a wasm
// module of the artifact's size with other bytes (damaged since its
// upload): a release naming it is refused, saying so, and an upload of
// the artifact replaces the file. Its twin: an intact artifact is answered
// as stored, its file kept as it is, and makes a release.
func TestArtifactOtherBytesReplaced(t *testing.T) {
	ctx := context.Background()
	good, other := wasmModule("ingest"), wasmModule("ingesx")
	sum := sha256.Sum256(good)
	d := hex.EncodeToString(sum[:])
	for _, tc := range []struct {
		name    string
		there   []byte
		damaged bool
	}{
		{"same size, other bytes", other, true},
		{"the artifact itself", good, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t)
			p := filepath.Join(f.dir, "artifacts", d+".wasm")
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, tc.there, 0o644); err != nil {
				t.Fatal(err)
			}
			before, _ := os.Stat(p)
			_, err := f.client.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d}})
			if tc.damaged != (err != nil) {
				t.Fatalf("release naming the artifact: got %v, want an error: %v", err, tc.damaged)
			}
			if tc.damaged && (code(err) != silo.CodeInvalid || !strings.Contains(err.Error(), "holds other bytes")) {
				t.Errorf("release naming the damaged artifact: got %v, want invalid saying its file holds other bytes", err)
			}
			if got, err := f.client.PutArtifact(ctx, good); err != nil || got != d {
				t.Fatalf("upload: %s, %v", got, err)
			}
			b, err := os.ReadFile(p)
			if err != nil || !bytes.Equal(b, good) {
				t.Errorf("after the upload the file holds %q (%v), want the artifact", b, err)
			}
			after, _ := os.Stat(p)
			if !tc.damaged && !os.SameFile(before, after) {
				t.Error("the intact artifact's file was replaced, want it kept as it is")
			}
			if _, err := f.client.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d}}); err != nil {
				t.Errorf("release after the upload: %v", err)
			}
		})
	}
}
