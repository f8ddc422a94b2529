package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/silo-run/silo/internal/localtest"
)

// TestBadFlagValuesExit2: a flag value that does not parse or is out of its
// range is a wrong call (exit 2), whoever checks it. So is an argument that
// is not an account ID (upper case, reserved for a new account); a
// well-formed ID that names no account is the command's failure (exit 1).
// The twins with good values succeed; the refused calls change nothing.
func TestBadFlagValuesExit2(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme", "--param", "plan=pro")
	before := c.ok("tenant", "list", "--kind", "all", "-o", "json")
	for _, tc := range []struct {
		args []string
		exit int
		want string
	}{
		{[]string{"limits", "set", "acme", "--storage", "10GB"}, 2, `--storage "10GB" is not a size`},
		{[]string{"limits", "set", "acme", "--rate", "-5"}, 2, "limit rate -5 is out of range"},
		{[]string{"limits", "set", "acme", "--burst", "-1"}, 2, "limit burst -1 is out of range"},
		{[]string{"limits", "set", "acme", "--rate", "NaN"}, 2, "limit rate NaN is out of range"},
		{[]string{"limits", "set", "acme", "--concurrency", "200000"}, 2, "limit concurrency 200000 is out of range"},
		{[]string{"env", "create", "e1", "--kind", "prod", "--ttl", "2h"}, 2, "--kind must be test or demo"},
		{[]string{"env", "create", "e1", "--ttl", "2"}, 2, `--ttl "2" is not a duration; write a number and a unit, e.g. 90s, 30m or 2h; see silo env create --help`},
		{[]string{"env", "create", "e1", "--ttl", "10000h"}, 2, "--ttl must be at most 720h, not 10000h; see silo env create --help"},
		{[]string{"env", "create", "e1", "--ttl", "-1h"}, 2, "--ttl must be positive, e.g. 2h, not -1h; see silo env create --help"},
		{[]string{"env", "create", "e1", "--ttl", "-90m"}, 2, "--ttl must be positive, e.g. 2h, not -90m; see"},
		{[]string{"env", "create", "e1", "--ttl", "0s"}, 2, "--ttl must be positive"},
		{[]string{"env", "create", "e1"}, 2, "--ttl is required"},
		{[]string{"env", "create", "E1", "--ttl", "2h"}, 2, `invalid ID "E1"`},
		{[]string{"usage", "--since", "30"}, 2, `--since "30" is not a window`},
		{[]string{"usage", "--until", "30"}, 2, `--until "30" is not a time`},
		{[]string{"usage", "--by", "week"}, 2, "--by must be account, function or day"},
		{[]string{"usage", "ACME"}, 2, `invalid ID "ACME"`},
		{[]string{"tenant", "create", "BAD"}, 2, `invalid ID "BAD"`},
		{[]string{"tenant", "create", "production"}, 2, "reserved"},
		{[]string{"logs", "BAD"}, 2, `invalid ID "BAD"`},
		{[]string{"logs", "acme", "--since", "-5m"}, 2, `--since "-5m" is negative; write how far back without a sign (5m)`},
		{[]string{"logs", "acme", "--since", "-30d"}, 2, `--since "-30d" is negative`},
		{[]string{"logs", "acme", "--until", "yesterday"}, 2, `--until "yesterday" is not a window`},
		{[]string{"logs", "acme", "--since", "1h", "--until", "2h"}, 2, "--since 1h is not before --until 2h"},
		{[]string{"logs", "acme", "-f", "--until", "1h"}, 2, "--until does not go with -f"},
		{[]string{"logs", "acme", "-n", "-1"}, 2, "-n -1 is negative"},
		{[]string{"logs", "acme", "extra"}, 2, `silo logs takes one account ID, not "extra" too`},
		{[]string{"logs"}, 2, "silo logs needs an account ID"},
		{[]string{"usage", "--since", "-30d"}, 2, `--since "-30d" is negative`},
		{[]string{"keys", "rotate", "acme", "k", "--grace", "800h"}, 2, "--grace must be between"},
		{[]string{"tenant", "show", "Bad"}, 2, `invalid ID "Bad"`},
		{[]string{"keys", "list", "Bad"}, 2, `invalid ID "Bad"`},
		{[]string{"limits", "show", "Bad"}, 2, `invalid ID "Bad"`},
		{[]string{"plan", "Bad"}, 2, `invalid ID "Bad"`},
		{[]string{"tenant", "list", "--store", "mysql://x"}, 2, "--store must be empty"},
		{[]string{"store", "migrate", "--to", "mysql://x"}, 2, "--to mysql://x is not a PostgreSQL URL"},
		{[]string{"store", "migrate"}, 2, "store migrate needs --to postgres://"},
		{[]string{"tenant", "list", "--provider", "gcp"}, 2, "--provider must be local or aws"},
		{[]string{"up", "--listen", "notaport"}, 2, `--listen "notaport" is not an address: write HOST:PORT`},
		{[]string{"up", "--listen", "127.0.0.1:99999"}, 2, `--listen "127.0.0.1:99999" is not an address`},
		{[]string{"up", "--api", "127.0.0.1"}, 2, `--api "127.0.0.1" is not an address`},
		{[]string{"dev", "--listen", "localhost"}, 2, `--listen "localhost" is not an address: write HOST:PORT, e.g. 127.0.0.1:8080 (port 0: any free port); see silo dev --help`},
		// The twins: good values, and a well-formed ID naming no account.
		{[]string{"tenant", "show", "nosuch"}, 1, `no account "nosuch"`},
		{[]string{"usage", "acme", "--since", "30d", "--until", "1h", "--by", "day"}, 0, ""},
		{[]string{"usage", "acme", "--since", "2026-02-01T00:00:00Z", "--until", "90m"}, 0, ""},
		{[]string{"logs", "acme", "--since", "5m", "-n", "1"}, 0, ""},
		{[]string{"logs", "acme", "--since", "30d", "--until", "1h"}, 0, ""},
		{[]string{"logs", "acme", "--since", "2026-03-01", "--until", "2026-03-01T12:00:00+01:00", "-n", "0"}, 0, ""},
		{[]string{"limits", "show", "acme"}, 0, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			// A call not refused may not end (silo logs -f follows): the
			// minute bounds that, it asserts nothing about a refusal's time.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var out, errOut bytes.Buffer
			code := run(ctx, append([]string{"--data-dir", c.dataDir, "--file", c.file}, tc.args...), strings.NewReader(""), &out, &errOut)
			if code != tc.exit || !strings.Contains(errOut.String(), tc.want) {
				t.Fatalf("silo %s: exit %d, stderr %q; want exit %d with %q", strings.Join(tc.args, " "), code, errOut.String(), tc.exit, tc.want)
			}
		})
	}
	if after := c.ok("tenant", "list", "--kind", "all", "-o", "json"); after != before {
		t.Fatalf("refused calls changed the registry:\nbefore %s\nafter  %s", before, after)
	}
	// The README's examples, with the TTL they need.
	c.ok("limits", "set", "acme", "--rate", "5")
	c.ok("env", "create", "demo-acme", "--kind", "demo", "--ttl", "72h", "--param", "plan=pro")
}

// TestTenantUpdateSaysWhatChanged: a new name changes no resource, and the
// output says the name was changed rather than "no changes"; a parameter
// that changes resources (the twin) also shows the plan applied.
func TestTenantUpdateSaysWhatChanged(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	out := c.ok("tenant", "update", "acme", "--name", "Acme Corp")
	if !strings.Contains(out, `updated acme: name "Acme Corp"`) || strings.Contains(out, "no changes") {
		t.Fatalf("tenant update --name:\n%s\nwant it to say the name was changed", out)
	}
	if show := c.ok("tenant", "show", "acme"); !strings.Contains(show, "Acme Corp") {
		t.Fatalf("tenant show after the update:\n%s", show)
	}
	if out := c.ok("tenant", "update", "acme", "--param", "plan=pro"); !strings.Contains(out, "updated acme: plan=pro") {
		t.Fatalf("tenant update --param:\n%s", out)
	}
}

// TestApplyReportsWhatPlanSaid: a release that changes the tenants and only
// the production account's release label is planned as one change and one
// account moving to the release, and apply --all reports both: production
// (applied before the rest of the fleet) included.
func TestApplyReportsWhatPlanSaid(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	c := &cli{t: t, dataDir: filepath.Join(dir, "demo", ".silo"), file: filepath.Join(dir, "demo", "silo.yaml")}
	c.ok("init", "demo")
	c.ok("tenant", "create", "acme")
	spec, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(spec), "tables:\n  visits: {}", "tables:\n  visits: {}\n  notes: {}", 1)
	if changed == string(spec) {
		t.Fatalf("the scaffold's silo.yaml has no visits table:\n%s", spec)
	}
	if err := os.WriteFile(c.file, []byte(changed), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := c.ok("plan", "--all")
	if !strings.Contains(plan, "production (production): would run release") || !strings.Contains(plan, "1 of 2 account(s) would change; 1 would run it with no resource changes") {
		t.Fatalf("plan --all:\n%s\nwant acme to change and production to run the release", plan)
	}
	out := c.ok("apply", "--all")
	if !strings.Contains(out, "production (production): runs release") || !strings.Contains(out, "acme (tenant)") || !strings.Contains(out, "1 account(s) changed, 1 moved to it with no resource changes") {
		t.Fatalf("apply --all after a plan of:\n%s\nsays:\n%s\nwant acme changed and production moved to the release", plan, out)
	}
	if out := c.ok("plan", "--all"); !strings.Contains(out, "nothing to do") {
		t.Fatalf("plan --all after apply --all:\n%s", out)
	}
}

// TestLocalOnlyCommandsSayWhatToRun: with $SILO_SERVER exported (as the
// README's releases section has it), silo rotate says which setting names
// a server and what to run instead; with it unset (the twin) it works.
func TestLocalOnlyCommandsSayWhatToRun(t *testing.T) {
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	t.Setenv("SILO_SERVER", "http://127.0.0.1:1")
	for _, args := range [][]string{{"rotate", "data-key", "acme"}, {"rotate", "data-key", "--all"}, {"rotate", "master-key"}} {
		c.fails("$SILO_SERVER names one (http://127.0.0.1:1); to rotate the server's keys, run silo "+strings.Join(args[:2], " ")+" on the server's machine with --data-dir set to its data dir, or unset SILO_SERVER to run it on the local data dir", args...)
	}
	t.Setenv("SILO_SERVER", "")
	c.fails("--server names one (http://127.0.0.1:1); to rotate the server's keys", "--server", "http://127.0.0.1:1", "rotate", "master-key")
	for _, args := range [][]string{{"rotate", "data-key", "acme"}, {"rotate", "master-key"}} {
		c.ok(args...)
	}
}

// TestRawErrorsDoNotReachUsers: an unreachable PostgreSQL store or server,
// and a damaged account file, each come out as one sentence saying what to
// do: no driver message over several lines, no Go request or dial, no log
// lines, no hint twice. The twin, a healthy installation, is silent.
func TestRawErrorsDoNotReachUsers(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("rotate", "data-key", "acme") // writes resources.json as a file of its own
	for _, args := range [][]string{{"doctor"}, {"drift", "--all"}} {
		if code, _, errOut := c.run(args...); code != 0 || errOut != "" {
			t.Fatalf("twin: silo %s on a healthy installation: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
		}
	}
	if err := os.WriteFile(filepath.Join(localtest.AccountDir(c.dataDir, "acme"), "resources.json"), []byte("{bad"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args    []string
		want    string // on stderr, or on stdout for doctor and drift
		outLine string
	}{
		{[]string{"--store", "postgres://nobody@127.0.0.1:1/x", "tenant", "list"}, "cannot connect to PostgreSQL at 127.0.0.1:1/x (connection refused); check that it is running and that --store (or $SILO_STORE) is right", ""},
		{[]string{"--server", "http://127.0.0.1:1", "--token", "t", "tenant", "list"}, "cannot reach the silo server at http://127.0.0.1:1 (connection refused); check that silo server runs there", ""},
		{[]string{"doctor"}, "silo doctor found 1 problem(s)", "acme: account acme is out of service: its file resources.json is damaged"},
		{[]string{"drift", "--all"}, "1 problem(s)", "acme: account acme is out of service: its file resources.json is damaged"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, out, errOut := c.run(tc.args...)
			if code != 1 || !strings.Contains(errOut, tc.want) || strings.Count(errOut, "\n") != 1 {
				t.Fatalf("silo %s: exit %d, stderr %q; want exit 1 and one line with %q", strings.Join(tc.args, " "), code, errOut, tc.want)
			}
			for _, bad := range []string{"\t", "time=", "level=", `Get "`, "dial tcp", "failed to connect", "user="} {
				if strings.Contains(errOut, bad) {
					t.Errorf("silo %s: stderr holds %q: %q", strings.Join(tc.args, " "), bad, errOut)
				}
			}
			if tc.outLine != "" && (!strings.Contains(out, tc.outLine) || strings.Count(out, "docs/operations.md") != 1) {
				t.Errorf("silo %s: stdout %q; want %q with docs/operations.md named once", strings.Join(tc.args, " "), out, tc.outLine)
			}
		})
	}
}

// TestLimitOfZeroIsRefused: silo limits set takes no limit of 0 (every
// limit is above 0; 0 is how an override says "not set"), so a flag given
// as 0 gets the range error a negative value gets and nothing changes,
// never silently dropped beside another flag or reported as not given. A
// flag value that does not parse says what the flag takes, in one sentence
// without the parser's own text. The twins: the same flags above 0 are set.
func TestLimitOfZeroIsRefused(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.ok("tenant", "create", "acme")
	c.ok("limits", "set", "acme", "--burst", "7")
	before := c.ok("limits", "show", "acme", "-o", "json")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--rate", "0"}, "silo: limit rate 0 is out of range; use requests per second above 0 and at most 1000000; see silo limits set --help\n"},
		{[]string{"--rate", "0", "--burst", "3"}, "silo: limit rate 0 is out of range; use requests per second above 0 and at most 1000000; see silo limits set --help\n"},
		{[]string{"--burst", "0"}, "silo: limit burst 0 is out of range; use a whole number from 1 to 10000000; see silo limits set --help\n"},
		{[]string{"--concurrency", "0"}, "silo: limit concurrency 0 is out of range; use a whole number from 1 to 100000; see silo limits set --help\n"},
		{[]string{"--storage", "0KiB"}, "silo: limit storage 0 is out of range; use a size above 0, e.g. 10GiB; see silo limits set --help\n"},
		{[]string{"--storage", ""}, "silo: --storage \"\" is not a size; write a whole number and KiB, MiB, GiB or TiB (e.g. 10GiB)\n"},
		{[]string{"--invocations", "0"}, "silo: limit invocations 0 is out of range; use a whole number of requests per month from 1; see silo limits set --help\n"},
		{[]string{"--invocations", "-2"}, "silo: limit invocations -2 is out of range; use a whole number of requests per month from 1; see silo limits set --help\n"},
		{[]string{"--invocations", "1.5"}, "silo: --invocations \"1.5\" is not a whole number; see silo limits set --help\n"},
		{[]string{"--burst", "many"}, "silo: --burst \"many\" is not a whole number; see silo limits set --help\n"},
		{[]string{"--rate", "fast"}, "silo: --rate \"fast\" is not a number; see silo limits set --help\n"},
		{nil, "silo: silo limits set needs at least one of --rate, --burst, --concurrency, --storage, --invocations (silo limits clear removes the override)\n"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			code, _, errOut := c.run(append([]string{"limits", "set", "acme"}, tc.args...)...)
			if code != 2 || errOut != tc.want {
				t.Fatalf("silo limits set acme %s: exit %d, stderr %q; want exit 2, %q", strings.Join(tc.args, " "), code, errOut, tc.want)
			}
		})
	}
	if after := c.ok("limits", "show", "acme", "-o", "json"); after != before {
		t.Fatalf("refused calls changed the limits:\nbefore %s\nafter  %s", before, after)
	}
	c.ok("limits", "set", "acme", "--rate", "0.5", "--concurrency", "1", "--storage", "1KiB", "--invocations", "1")
	want := `"override": {
    "rate": 0.5,
    "burst": 7,
    "concurrency": 1,
    "storage": 1024,
    "invocations": 1
  }`
	if got := c.ok("limits", "show", "acme", "-o", "json"); !strings.Contains(got, want) {
		t.Fatalf("limits after setting each above 0:\n%s\nwant %s", got, want)
	}
}

// TestSpecErrorNamesTheFile: a duplicate top-level key in the file given
// with --file is named in that file's words (bad.yaml), not silo.yaml's.
func TestSpecErrorNamesTheFile(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	c.file = filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(c.file, []byte("version: 1\nname: a\nname: b\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	c.fails(`bad.yaml:3:1: bad.yaml: duplicate key "name" (first at line 2); remove one`, "deploy")
}
