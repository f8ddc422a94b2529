package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestDevSaysLiveOnlyWhileServing runs silo dev as a user does. Its URL
// and key are printed only once a build is live and the gateway serves
// it: not after a first build that fails (the twin: the fix, saved, goes
// live and the URL printed then answers), and not when it is stopped
// while building; "stopped" is the last line of a loop that served.
func TestDevSaysLiveOnlyWhileServing(t *testing.T) {
	t.Setenv("USER", "tester")
	dir := filepath.Join(t.TempDir(), "app")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: filepath.Join(dir, "silo.yaml")}
	c.ok("tenant", "create", "acme") // the installation has a current release
	src := filepath.Join(dir, "functions", "hello", "main.go")
	good := mustRead(t, src)
	write := func(s string) {
		t.Helper()
		if err := os.WriteFile(src, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"dev", "--listen", "127.0.0.1:0", "--data-dir", c.dataDir, "--file", c.file}

	t.Run("interrupted while building", func(t *testing.T) {
		// The go command the build runs says it started, then takes its
		// time; Ctrl-C comes while it runs.
		root := t.TempDir()
		started := filepath.Join(root, "started")
		if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(root, "bin", "go"), []byte("#!/bin/sh\ntouch "+started+"\nexec sleep 60\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		t.Setenv("GOROOT", root)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		go func() {
			for ctx.Err() == nil {
				if _, err := os.Stat(started); err == nil {
					cancel()
				}
				time.Sleep(10 * time.Millisecond)
			}
		}()
		var out, errOut syncBuffer
		err := runCmd(ctx, args, &out, &errOut)
		if _, serr := os.Stat(started); serr != nil {
			t.Fatalf("the build never ran the go command (%v); silo dev: %v\n%s", serr, err, out.String())
		}
		if got := out.String(); err == nil || strings.Contains(got, "http://") || strings.Contains(got, "not applied") || strings.Contains(got, "stopped") {
			t.Fatalf("silo dev stopped while building: error %v, printed:\n%s\nwant an error (interrupted), no URL and no build failure", err, got)
		}
	})

	t.Run("first build fails", func(t *testing.T) {
		write(good + "\nfunc broken() {\n")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		var out, errOut syncBuffer
		done := make(chan error, 1)
		go func() { done <- runCmd(ctx, args, &out, &errOut) }()
		waitOut := func(s string) {
			t.Helper()
			deadline := time.After(3 * time.Minute)
			for !strings.Contains(out.String(), s) {
				select {
				case err := <-done:
					t.Fatalf("silo dev exited early: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
				case <-deadline:
					t.Fatalf("silo dev printed no %q:\n%s", s, out.String())
				case <-time.After(20 * time.Millisecond):
				}
			}
		}
		waitOut("watching ")
		if got := out.String(); strings.Contains(got, "http://") || strings.Contains(got, "is live (release") || !strings.Contains(got, "✗ not applied (the first build)") {
			t.Fatalf("silo dev after a first build that fails printed:\n%s\nwant the failure and no URL", got)
		}
		write(strings.Replace(good, `"visits": n`, `"visits": n, "fixed": true`, 1))
		waitOut("  key  ")
		var hostURL, pathURL, key string
		for _, l := range strings.Split(out.String(), "\n") {
			if f := strings.Fields(l); len(f) >= 2 && f[0] == "key" {
				key = f[1]
			} else if len(f) >= 4 && f[0] == "URL" {
				hostURL, pathURL = f[1], strings.TrimSuffix(f[3], ")")
			}
		}
		// The URLs printed are the app's first route (the app has no "/"),
		// as silo up prints them; the one by path is requested as printed.
		u, err := url.Parse(pathURL)
		if err != nil || key == "" || !strings.HasSuffix(hostURL, "/hello") || u.Path != "/t/dev-tester/hello" {
			t.Fatalf("silo dev printed no URL of the first route (/hello) and key:\n%s", out.String())
		}
		if code, body := request(t, "http://"+u.Host, "", "GET", u.Path, key, ""); code != 200 || !strings.Contains(body, `"fixed":true`) {
			t.Fatalf("GET the printed URL: %d %s, want 200 from the fixed build", code, body)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("silo dev after Ctrl-C: %v (stderr %s)", err, errOut.String())
		}
		lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
		if last := lines[len(lines)-1]; last != "stopped" {
			t.Fatalf("silo dev's last line is %q, want stopped:\n%s", last, out.String())
		}
	})
}

// TestDevListenTaken: silo dev on an address in use says so naming its
// own flag, silo dev --listen, not silo server's or silo up's (exit 1:
// the address parses, it is taken). The twin: a free address serves, as
// TestDevSaysLiveOnlyWhileServing shows.
func TestDevListenTaken(t *testing.T) {
	t.Parallel()
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := newCLI(t)
	busy := taken.Addr().String()
	args := []string{"dev", "--listen", busy}
	code, out, errOut := c.run(args...)
	refused(t, "cannot listen on "+busy+" for the tenant gateway", args, code, out, errOut)
	if code != 1 || !strings.Contains(errOut, "(silo dev --listen ADDR)") || strings.Contains(errOut, "silo server") {
		t.Fatalf("silo dev --listen %s: exit %d, stderr %q; want exit 1 naming silo dev --listen ADDR only", busy, code, errOut)
	}
}
