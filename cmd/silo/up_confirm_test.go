package main

import (
	"context"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// Before the first rollout, silo up of a silo.yaml that deletes a table
// in existing accounts refuses without --yes (stdin is not a terminal
// here), naming what would be lost and the flag, and changes no account;
// the twin with --yes applies it.
func TestUpConfirmsDataLoss(t *testing.T) {
	hasVisits := regexp.MustCompile(`(?m)^\s*table\s+visits\s`)
	file, _ := initProject(t)
	dir := filepath.Join(t.TempDir(), "data")
	c := &cli{t: t, dataDir: dir, file: file}
	_, stop := startUp(t, dir, "--file", file)
	stop()
	if out := c.ok("tenant", "show", "acme"); !hasVisits.MatchString(out) {
		t.Fatalf("tenant show before the change: %s", out)
	}
	c.edit(dropVisits...)
	before := stateOf(t, c)
	// Refused, silo up returns; one that goes ahead serves until
	// cancelled, once its summary is out.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runCmd(ctx, []string{"up", "--listen", "127.0.0.1:0", "--data-dir", dir, "--file", file, "-o", "json"}, &out, &errOut)
	}()
	var err error
	for err == nil {
		select {
		case err = <-done:
			if err == nil {
				t.Fatalf("silo up of a change that deletes a table returned without an error\n%s", out.String())
			}
		case <-time.After(20 * time.Millisecond):
			if strings.Contains(out.String(), `"gateway"`) {
				cancel()
				<-done
				t.Fatalf("silo up of a change that deletes a table started serving:\n%s", out.String())
			}
		}
	}
	for _, want := range []string{"deletes table/visits in acme", "cannot be undone; nothing was changed", "--yes"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("silo up refused with %q, which does not say %q", err, want)
		}
	}
	if after := stateOf(t, c); after != before {
		t.Errorf("a refused silo up changed the state:\nbefore: %s\nafter: %s", before, after)
	}

	// Twin: confirmed, the change is applied.
	_, stop = startUp(t, dir, "--file", file, "--yes")
	stop()
	if out := c.ok("tenant", "show", "acme"); hasVisits.MatchString(out) {
		t.Errorf("tenant show after silo up --yes: %s; want visits gone", out)
	}
}
