package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/spec"
)

// TestDevShowsSpecErrors checks that silo dev prints an invalid spec's
// diagnostics with their positions, as silo plan does, while an internal
// error (the twin) is not spelled out.
func TestDevShowsSpecErrors(t *testing.T) {
	t.Parallel()
	_, specErr := spec.Parse("silo.yaml", []byte("app: demo\nfunctions:\n  hello:\n    memory: 12 parsecs\n"))
	for _, tc := range []struct {
		name      string
		err       error
		want, not string
	}{
		{"spec error", specErr, "silo.yaml:4:", "internal error"},
		{"internal error", errors.New("open /secret/path: disk on fire"), "internal error", "disk on fire"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			printDevEvent(&globals{stdout: &out}, platform.DevEvent{Kind: "failed", Err: tc.err})
			if !strings.Contains(out.String(), tc.want) || strings.Contains(out.String(), tc.not) {
				t.Fatalf("silo dev printed:\n%s\nwant %q and not %q", out.String(), tc.want, tc.not)
			}
		})
	}
}
