package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUsageErrors checks that every way of calling silo wrongly exits 2 with
// a hint, and that a command's own failure exits 1.
func TestUsageErrors(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	for _, tc := range []struct {
		name string
		args []string
		exit int
		want string
	}{
		{"unknown command", []string{"nosuch"}, 2, `silo: unknown command "nosuch" for silo; see silo --help` + "\n"},
		{"unknown subcommand", []string{"keys", "nosuch"}, 2, `silo: unknown command "nosuch" for silo keys; see silo keys --help` + "\n"},
		{"misspelt command", []string{"tennant", "list"}, 2, `silo: unknown command "tennant" for silo; did you mean silo tenant? see silo --help` + "\n"},
		{"misspelt subcommand", []string{"tenant", "craete", "x"}, 2, `silo: unknown command "craete" for silo tenant; did you mean silo tenant create? see silo tenant --help` + "\n"},
		{"missing subcommand", []string{"keys"}, 2, "silo keys needs a subcommand; see silo keys --help"},
		{"unknown flag", []string{"tenant", "list", "--nosuch"}, 2, "unknown flag: --nosuch; see silo tenant list --help"},
		{"missing argument", []string{"keys", "rotate", "acme"}, 2, "silo keys rotate needs a tenant ID and a key ID; see silo keys rotate --help"},
		{"the command fails", []string{"tenant", "show", "nosuch"}, 1, `no account "nosuch"`},
		{"it works", []string{"tenant", "show", "acme"}, 0, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exit, _, stderr := c.run(tc.args...)
			if exit != tc.exit || !strings.Contains(stderr, tc.want) {
				t.Fatalf("silo %s: exit %d, stderr %q; want exit %d with %q", strings.Join(tc.args, " "), exit, stderr, tc.exit, tc.want)
			}
		})
	}
}

// TestJSONErrors checks that with --output json an error is one JSON object
// on stderr, with nothing on stdout, and that success is plain JSON on stdout.
func TestJSONErrors(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	for _, tc := range []struct {
		args       []string
		code, text string
		exit       int
	}{
		{[]string{"-o", "json", "tenant", "show", "nosuch"}, "not_found", `no account "nosuch"`, 1},
		{[]string{"-o", "json", "keys", "rotate", "acme"}, "usage", "needs a tenant ID and a key ID", 2},
		// Errors that come before the flags are parsed still honour them.
		{[]string{"--output", "json", "nosuchcmd"}, "usage", `unknown command "nosuchcmd"`, 2},
		{[]string{"tenant", "list", "--bogus", "--output", "json"}, "usage", "unknown flag: --bogus", 2},
		{[]string{"tenant", "list", "--bogus", "-ojson"}, "usage", "unknown flag: --bogus", 2},
		{[]string{"tenant", "list", "--bogus", "--output=json"}, "usage", "unknown flag: --bogus", 2},
		{[]string{"logs", "acme", "--since", "1x", "--output", "json"}, "usage", "--since", 2},
	} {
		exit, stdout, stderr := c.run(tc.args...)
		var got struct {
			Error struct {
				Code, Message string
				Exit          int
			}
		}
		if err := json.Unmarshal([]byte(stderr), &got); err != nil {
			t.Fatalf("silo %s: stderr is not JSON (%v): %q", strings.Join(tc.args, " "), err, stderr)
		}
		if exit != tc.exit || got.Error.Exit != tc.exit || got.Error.Code != tc.code || !strings.Contains(got.Error.Message, tc.text) || stdout != "" {
			t.Fatalf("silo %s: exit %d, stdout %q, error %+v; want exit %d, code %s, message with %q, empty stdout", strings.Join(tc.args, " "), exit, stdout, got.Error, tc.exit, tc.code, tc.text)
		}
	}
	// The twin: the same flag on success prints JSON on stdout and nothing on stderr.
	exit, stdout, stderr := c.run("-o", "json", "tenant", "show", "acme")
	if exit != 0 || stderr != "" || !json.Valid([]byte(stdout)) {
		t.Fatalf("silo -o json tenant show acme: exit %d, stdout %q, stderr %q", exit, stdout, stderr)
	}
}

// TestReadOnlyCommandsCreateNothing checks that every command that works on
// an existing installation (reading it, or changing what it holds) says so
// outside one and leaves no data dir behind, while a command that creates
// one (its twin) does create one. Every command is classified, so that a new
// command has to be decided.
func TestReadOnlyCommandsCreateNothing(t *testing.T) {
	t.Parallel()
	// The commands that create an installation, or need none.
	creates := map[string]bool{
		"silo": true, "silo up": true, "silo init": true, "silo store migrate": true, "silo tenant create": true,
		"silo env create": true, "silo dev": true, "silo apply": true, "silo build": true, "silo server": true,
		"silo deploy": true, "silo pool": true, "silo version": true, "silo report verify": true,
		"silo logs": true, // checks itself, after parsing its own flags (below)
	}
	root := newRoot(&globals{})
	for path, c := range commandPaths(root) {
		group := c.Annotations[annotationGroup] != ""
		switch {
		case group && needsInstallation[path]:
			t.Errorf("needsInstallation names the command group %q", path)
		case !group && needsInstallation[path] == creates[path]:
			t.Errorf("%s is in neither needsInstallation nor the commands that create an installation (or in both); decide", path)
		}
	}
	for path := range needsInstallation {
		if c, _, err := root.Find(strings.Fields(path)[1:]); err != nil || c.CommandPath() != path {
			t.Errorf("needsInstallation names %q, which is not a command", path)
		}
	}
	c := newCLI(t)
	for _, args := range [][]string{
		{"tenant", "list"}, {"tenant", "show", "acme"}, {"keys", "list", "acme"}, {"plan", "--all"}, {"drift", "--all"},
		{"verify"}, {"doctor"}, {"audit", "list"}, {"audit", "verify"}, {"audit", "checkpoint"}, {"release", "list"},
		{"release", "show", "r-1"}, {"rollout", "list"}, {"rollout", "status"}, {"report", "acme"}, {"report", "key"},
		{"env", "list"}, {"usage"}, {"limits", "show", "acme"}, {"logs", "acme"},
		{"tenant", "update", "acme", "--name", "Acme"}, {"tenant", "suspend", "acme"}, {"tenant", "resume", "acme"},
		{"tenant", "delete", "acme", "--yes"}, {"keys", "create", "acme"}, {"keys", "revoke", "acme", "k"},
		{"keys", "rotate", "acme", "k"}, {"secret", "set", "acme", "s"}, {"limits", "set", "acme", "--rate", "5"},
		{"limits", "clear", "acme"}, {"env", "delete", "e"}, {"env", "reap"}, {"rotate", "data-key", "acme"},
		{"rotate", "master-key"}, {"report", "key", "rotate"}, {"audit", "witness"}, {"rollout", "pause"},
		{"rollout", "resume"}, {"rollout", "abort"}, {"rollout", "rollback"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			c.t = t
			c.fails("no silo installation in", args...)
			if _, err := os.Stat(c.dataDir); !os.IsNotExist(err) {
				t.Fatalf("silo %s created %s (stat: %v)", strings.Join(args, " "), c.dataDir, err)
			}
		})
	}
	c.t = t
	c.ok("tenant", "create", "acme")
	if _, err := os.Stat(filepath.Join(c.dataDir)); err != nil {
		t.Fatalf("tenant create made no data dir: %v", err)
	}
	c.ok("tenant", "list")
	c.ok("doctor")
	c.ok("report", "key")
}

func TestVersion(t *testing.T) {
	t.Parallel()
	var out, errOut bytes.Buffer
	if code := run(context.Background(), []string{"version", "-o", "json"}, strings.NewReader(""), &out, &errOut); code != 0 {
		t.Fatalf("silo version: exit %d, %s", code, errOut.String())
	}
	var v version
	if err := json.Unmarshal(out.Bytes(), &v); err != nil || v.Version == "" || !strings.HasPrefix(v.Go, "go") {
		t.Fatalf("silo version -o json: %q (%v)", out.String(), err)
	}
}

// TestListFilters checks that an unknown --kind or --state is an error, not
// an empty table, and that known ones (the twins) list what they select.
func TestListFilters(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.fails(`unknown account kind "tenants"`, "tenant", "list", "--kind", "tenants")
	c.fails(`unknown account state "live"`, "tenant", "list", "--state", "live")
	for _, tc := range []struct{ args, want string }{
		{"--kind tenant", "acme"},
		{"--kind production", "production"},
		{"--kind all --state active", "acme"},
	} {
		if out := c.ok(append([]string{"tenant", "list"}, strings.Fields(tc.args)...)...); !strings.Contains(out, tc.want) {
			t.Errorf("tenant list %s:\n%s\nwant %s listed", tc.args, out, tc.want)
		}
	}
}
