package main

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
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

// silo dev applies a change that destroys data in the developer account
// without asking, and its live line is followed by one that says what was
// destroyed; the twin, a change that destroys nothing, has no such line.
func TestDevSaysWhatDataItDestroyed(t *testing.T) {
	dev := silo.AccountID("dev-ann")
	for _, tc := range []struct {
		name    string
		changes []silo.Change
		want    string
	}{
		{"table renamed", []silo.Change{
			{Op: silo.OpCreate, Type: silo.TypeTable, Name: "more"},
			{Op: silo.OpDelete, Type: silo.TypeTable, Name: "extra"},
		}, "! data destroyed in your developer account, unasked: deletes table/extra in dev-ann; what it held is gone"},
		{"table added", []silo.Change{{Op: silo.OpCreate, Type: silo.TypeTable, Name: "more"}}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			printDevEvent(&globals{stdout: &out}, platform.DevEvent{Kind: "live", Release: "r-1", Plan: silo.Plan{Account: dev, Release: "r-1", Changes: tc.changes}})
			got := out.String()
			if !strings.Contains(got, "✓ live") {
				t.Fatalf("silo dev printed:\n%s\nwant the live line", got)
			}
			if tc.want == "" && strings.Contains(got, "destroyed") || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Errorf("silo dev printed:\n%s\nwant %q", got, tc.want)
			}
		})
	}
}
