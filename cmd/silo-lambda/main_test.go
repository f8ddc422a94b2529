package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/silo-run/silo/internal/build"
)

// TestSetupSaysWhatIsWrong starts the host from task roots with one thing
// wrong each: it refuses to start with one line naming the tenant, the
// function and the step. The twin: a well-formed package starts.
func TestSetupSaysWhatIsWrong(t *testing.T) {
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEMULATED")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "emulated")
	cache := os.Getenv("SILO_TEST_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "silo-test-cache")
	}
	guest, err := build.Function(context.Background(), filepath.Join("..", "..", "runtime", "testdata", "guest"), filepath.Join(cache, "builds"))
	if err != nil {
		t.Fatal(err)
	}
	good, err := os.ReadFile(guest.Path)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envAccount: "acme", envFunction: "ingest", envAWSAccount: "123456789012"}
	tests := []struct {
		name    string
		wasm    []byte
		spec    string
		env     map[string]string
		wantErr string // "" starts
	}{
		{"a well-formed package", good, `{"artifact":"x","timeout":1000000000}`, env, ""},
		{"a module that does not compile", []byte("\x00asm not really"), `{}`, env, "function ingest of account acme: compile its module"},
		{"no spec", good, "", env, "function ingest of account acme: its package holds no spec"},
		{"a spec that does not decode", good, `{"timeout":"soon"}`, env, "function ingest of account acme: its spec does not decode"},
		{"no account", good, `{}`, map[string]string{envFunction: "ingest"}, "SILO_ACCOUNT and SILO_FUNCTION are not set"},
		{"no AWS account ID", good, `{}`, map[string]string{envAccount: "acme", envFunction: "ingest"}, "12-digit AWS account ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			os.WriteFile(filepath.Join(root, "function.wasm"), tt.wasm, 0o644)
			if tt.spec != "" {
				os.WriteFile(filepath.Join(root, "function.json"), []byte(tt.spec), 0o644)
			}
			getenv := func(k string) string {
				if k == "LAMBDA_TASK_ROOT" {
					return root
				}
				return tt.env[k]
			}
			var stdout, stderr bytes.Buffer
			h, code := setup(context.Background(), getenv, &stdout, &stderr)
			if h != nil {
				defer h.close(context.Background())
			}
			switch {
			case tt.wantErr == "" && (h == nil || code != 0):
				t.Fatalf("setup failed (%d): %s", code, stderr.String())
			case tt.wantErr != "" && (h != nil || code != 1):
				t.Fatalf("setup started (%d), want it to refuse with %q", code, tt.wantErr)
			case tt.wantErr != "":
				line := stderr.String()
				if !strings.Contains(line, tt.wantErr) || strings.Count(line, "\n") != 1 || !strings.HasPrefix(line, "silo-lambda: ") {
					t.Errorf("stderr %q, want one line with %q", line, tt.wantErr)
				}
			}
		})
	}
}
