package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/silotest"
)

func runCLI(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errOut bytes.Buffer
	err := runCmd(context.Background(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

// TestEnvCommands creates a seeded demo environment and a test environment,
// lists them, deletes one (teardown verified), and reads an account's logs.
func TestEnvCommands(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	app, err := filepath.Abs("../../examples/findings/silo.yaml")
	if err != nil {
		t.Fatal(err)
	}
	seed := filepath.Join(filepath.Dir(app), "fixtures", "demo")

	out, errOut, err := runCLI(t, "env", "create", "demo-acme", "--kind", "demo", "--ttl", "72h", "--param", "plan=enterprise", "--seed", seed, "--data-dir", dir, "--file", app, "-o", "json")
	if err != nil {
		t.Fatalf("env create: %v\n%s%s", err, out, errOut)
	}
	var e struct {
		Account struct {
			ID      string            `json:"id"`
			Kind    string            `json:"kind"`
			Params  map[string]string `json:"params"`
			Expires string            `json:"expires"`
		} `json:"account"`
		Key string `json:"key"`
	}
	if err := json.Unmarshal([]byte(out), &e); err != nil {
		t.Fatalf("env create output: %v: %s", err, out)
	}
	if e.Account.ID != "demo-acme" || e.Account.Kind != "environment" || e.Account.Params["plan"] != "enterprise" || e.Key == "" || e.Account.Expires == "" {
		t.Errorf("env create: got %+v", e)
	}
	if _, _, err := runCLI(t, "env", "create", "e2e-417", "--kind", "test", "--ttl", "2h", "--data-dir", dir); err != nil {
		t.Fatalf("second env create: %v", err)
	}
	// A seed file that is not JSON is named as the user laid it out, with
	// where it breaks, and no environment is left behind.
	bad := t.TempDir()
	if err := os.MkdirAll(filepath.Join(bad, "tables"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(bad, "tables", "findings.json"), []byte(`{bad}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "env", "create", "demo-bad", "--kind", "demo", "--ttl", "1h", "--seed", bad, "--data-dir", dir, "--file", app)
	if err == nil || !strings.Contains(err.Error(), "seed file tables/findings.json is not a JSON object of key → value (at byte 2)") || strings.Contains(err.Error(), "invalid character") {
		t.Errorf("env create with a broken seed file: %v", err)
	}
	if out, _, _ := runCLI(t, "env", "list", "--data-dir", dir); strings.Contains(out, "demo-bad") {
		t.Errorf("a failed env create left its environment:\n%s", out)
	}
	// A seed file for a table the app does not declare is refused before
	// the environment is created, naming it and the declared tables.
	undeclared := t.TempDir()
	if err := os.MkdirAll(filepath.Join(undeclared, "tables"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(undeclared, "tables", "nosuch.json"), []byte(`{"a":"b"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	_, _, err = runCLI(t, "env", "create", "demo-nosuch", "--kind", "demo", "--ttl", "1h", "--seed", undeclared, "--data-dir", dir, "--file", app)
	if err == nil || !strings.Contains(err.Error(), `(what a new environment runs): "nosuch" (tables/nosuch.json) (declared tables: findings)`) || strings.Contains(err.Error(), "deleted again") {
		t.Errorf("env create with a seed for an undeclared table: %v; want it refused before anything was created, naming nosuch and findings", err)
	}
	if out, _, _ := runCLI(t, "env", "list", "--data-dir", dir); strings.Contains(out, "demo-nosuch") {
		t.Errorf("a failed env create left its environment:\n%s", out)
	}
	// Must-not twins: bad kind, missing TTL, taken name.
	for _, args := range [][]string{
		{"env", "create", "x1", "--kind", "prod", "--ttl", "1h"},
		{"env", "create", "x2", "--kind", "test"},
		{"env", "create", "e2e-417", "--kind", "test", "--ttl", "1h"},
	} {
		if _, _, err := runCLI(t, append(args, "--data-dir", dir)...); err == nil {
			t.Errorf("silo %s: got success, want an error", strings.Join(args, " "))
		}
	}

	out, _, err = runCLI(t, "env", "list", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "demo-acme") || !strings.Contains(out, "e2e-417") || !strings.Contains(out, "demo environment") {
		t.Errorf("env list: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "env", "delete", "e2e-417", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "verified") {
		t.Errorf("env delete: %v\n%s", err, out)
	}
	if _, err := os.Stat(localtest.AccountDir(dir, "e2e-417")); !os.IsNotExist(err) {
		t.Errorf("the deleted environment's directory: %v, want gone", err)
	}
	out, _, _ = runCLI(t, "env", "list", "--data-dir", dir)
	if strings.Contains(out, "e2e-417") {
		t.Errorf("env list after delete still shows e2e-417:\n%s", out)
	}
	if _, _, err := runCLI(t, "env", "delete", "acme-none", "--data-dir", dir); err == nil {
		t.Errorf("deleting a missing environment: got success")
	}

	// silo logs reads the account's log file, filtered.
	ls, err := logs.Open(logs.Config{Dir: filepath.Join(dir, "logs")})
	if err != nil {
		t.Fatal(err)
	}
	ls.Append(logs.Entry{Account: "demo-acme", Function: "ingest", RequestID: "r1", Msg: "finding stored"})
	ls.Append(logs.Entry{Account: "demo-acme", Function: "list", RequestID: "r2", Msg: "listed"})
	ls.Close()
	out, _, err = runCLI(t, "logs", "demo-acme", "--function", "ingest", "--data-dir", dir)
	if err != nil || !strings.Contains(out, "[r1] finding stored") || strings.Contains(out, "listed") {
		t.Errorf("silo logs --function ingest: %v\n%s", err, out)
	}
	out, _, err = runCLI(t, "logs", "demo-acme", "-n", "1", "-o", "json", "--data-dir", dir)
	if err != nil || !strings.Contains(out, `"request_id":"r2"`) || strings.Contains(out, "r1") {
		t.Errorf("silo logs -n 1 -o json: %v\n%s", err, out)
	}
	// The global flags every other command takes are accepted here too.
	out, _, err = runCLI(t, "logs", "demo-acme", "--provider", "local", "--store", "", "--data-dir", dir, "--request", "r1")
	if err != nil || !strings.Contains(out, "[r1] finding stored") {
		t.Errorf("silo logs with --provider and --store: %v\n%s", err, out)
	}
	if _, _, err := runCLI(t, "logs", "demo-acme", "--no-such-flag", "--data-dir", dir); err == nil {
		t.Errorf("silo logs with an unknown flag: got success")
	}
	if _, _, err := runCLI(t, "logs", "../etc", "--data-dir", dir); err == nil {
		t.Errorf("silo logs with a bad account: got success")
	}
}

func TestInit(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	out, _, err := runCLI(t, "init", dir)
	if err != nil {
		t.Fatalf("init: %v", err)
	}
	for _, f := range []string{"silo.yaml", "functions/hello/main.go", ".gitignore", "go.mod"} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Errorf("init did not create %s: %v\n%s", f, err, out)
		}
	}
	gomod, _ := os.ReadFile(filepath.Join(dir, "go.mod"))
	if !strings.Contains(string(gomod), "replace github.com/silo-run/silo => ") {
		t.Errorf("go.mod outside the checkout should point at it: %s", gomod)
	}
	// A second init keeps every file.
	os.WriteFile(filepath.Join(dir, "silo.yaml"), []byte("mine"), 0o644)
	out, _, err = runCLI(t, "init", dir)
	if b, _ := os.ReadFile(filepath.Join(dir, "silo.yaml")); err != nil || string(b) != "mine" || !strings.Contains(out, "kept") {
		t.Errorf("second init: %v, silo.yaml %q\n%s", err, b, out)
	}
}

// TestInitScaffoldServes deploys what silo init writes and calls its route.
func TestInitScaffoldServes(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	p := silotest.New(t)
	p.Deploy(t, dir)
	acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
	resp := acme.GET(t, "/hello")
	if resp.Status != 200 || !strings.Contains(string(resp.Body), "Hello, acme (plan pro)") || !strings.Contains(string(resp.Body), `"visits":1`) {
		t.Errorf("GET /hello: got %s", resp)
	}
	// Concurrent visits are each counted once: the answers are 2..21, each
	// once (a Get then a Put would count some twice).
	const clients, each = 4, 5
	var mu sync.Mutex
	seen := map[int]int{}
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				var body struct{ Visits int }
				resp := acme.GET(t, "/hello")
				if resp.Status != 200 || json.Unmarshal(resp.Body, &body) != nil {
					t.Errorf("concurrent GET /hello: got %s", resp)
					return
				}
				mu.Lock()
				seen[body.Visits]++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	for n := 2; n <= 1+clients*each; n++ {
		if seen[n] != 1 {
			t.Errorf("after %d concurrent visits, visit %d was answered %d times, want once (all: %v)", clients*each, n, seen[n], seen)
		}
	}
}

// A --seed directory that holds nothing silo loads (the example app's
// fixtures/, whose layout sits in fixtures/demo) is refused with the
// directory meant, before anything is created: not the environment, not
// even the data directory. The twin: the directory meant seeds the
// environment and names the file beside its tables that it ignores.
func TestEnvCreateSeedLayout(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	fixtures := filepath.Join(filepath.Dir(c.file), "fixtures")
	c.fails("seed directory "+fixtures+" holds nothing silo loads: it expects tables/<table>.json and buckets/<bucket>/<key>, and found demo/tables/findings.json: did you mean --seed "+filepath.Join(fixtures, "demo")+"?",
		"env", "create", "demo-acme", "--kind", "demo", "--ttl", "1h", "--param", "plan=pro", "--seed", fixtures)
	if _, err := os.Stat(c.dataDir); !os.IsNotExist(err) {
		t.Fatalf("the refused env create left its data directory: %v", err)
	}

	seed := t.TempDir()
	b, err := os.ReadFile(filepath.Join(fixtures, "demo", "tables", "findings.json"))
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range map[string][]byte{"tables/findings.json": b, "README.md": []byte("fixtures")} {
		p := filepath.Join(seed, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, errOut := c.run("env", "create", "demo-acme", "--kind", "demo", "--ttl", "1h", "--param", "plan=pro", "--seed", seed)
	if code != 0 {
		t.Fatalf("env create with the directory meant: exit %d\n%s%s", code, out, errOut)
	}
	if want := "seeded from " + seed + ": 1 table file, 0 bucket objects\n"; !strings.Contains(out, want) {
		t.Errorf("env create output:\n%s\nwant it to contain %q", out, want)
	}
	if want := "ignored in " + seed + ": README.md (silo loads only tables/<table>.json and buckets/<bucket>/<key>)"; !strings.Contains(errOut, want) {
		t.Errorf("env create stderr %q, want it to contain %q", errOut, want)
	}
	if out := c.ok("env", "list"); !strings.Contains(out, "demo-acme") {
		t.Errorf("env list after a seeded create:\n%s", out)
	}
}

// TestEnvCreateSeedUndeclared: a seed directory with a table or bucket that
// silo.yaml does not declare is refused before anything is created, naming
// each undeclared one and the declared ones, on a new installation and on
// one that has accounts; the twin, the declared table alone, is seeded.
func TestEnvCreateSeedUndeclared(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	seed := t.TempDir()
	for name, data := range map[string]string{
		"tables/findings.json":  `{"f1":{"title":"t"}}`,
		"tables/nosuch.json":    `{"k":"v"}`,
		"buckets/uploads/a.txt": "a",
	} {
		p := filepath.Join(seed, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(data), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	rel := `r-[0-9a-f]+`
	want := regexp.MustCompile(`^silo: the seed directory names tables not declared in the current release ` + rel + ` \(what a new environment runs\): "nosuch" \(tables/nosuch.json\) \(declared tables: findings\); and buckets not declared in the current release ` + rel + ` \(what a new environment runs\): "uploads" \(buckets/uploads/a.txt\) \(declared buckets: none\); rename or remove those files, or declare them in silo.yaml and deploy, then run again \(nothing was created\)\n$`)
	refused := func() {
		t.Helper()
		if code, _, errOut := c.run("env", "create", "e2e-6", "--kind", "demo", "--ttl", "1h", "--seed", seed); code != 1 || !want.MatchString(errOut) {
			t.Fatalf("env create with undeclared seed files: exit %d, stderr %q; want 1, %s", code, errOut, want)
		}
	}
	refused()
	if _, err := os.Stat(c.dataDir); !os.IsNotExist(err) {
		t.Fatalf("the refused env create on a new installation left its data directory: %v", err)
	}
	c.ok("tenant", "create", "acme")
	before := stateOf(t, c)
	refused()
	if after := stateOf(t, c); after != before {
		t.Errorf("a refused env create changed the control plane:\nbefore: %s\nafter:  %s", before, after)
	}
	for _, f := range []string{"tables/nosuch.json", "buckets/uploads/a.txt"} {
		if err := os.Remove(filepath.Join(seed, filepath.FromSlash(f))); err != nil {
			t.Fatal(err)
		}
	}
	if out := c.ok("env", "create", "e2e-6", "--kind", "demo", "--ttl", "1h", "--seed", seed); !strings.Contains(out, "seeded from "+seed+": 1 table file, 0 bucket objects") {
		t.Errorf("env create with the declared table alone:\n%s", out)
	}
}

// TestEnvCreateSeedOfAnUndeployedTable: a seed for a table silo.yaml
// declares but the current release (what a new environment runs) does not
// is refused, saying silo.yaml is not deployed yet; once it is, the same
// command works.
func TestEnvCreateSeedOfAnUndeployedTable(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "demo")
	if _, _, err := runCLI(t, "init", dir); err != nil {
		t.Fatal(err)
	}
	c := newCLI(t)
	c.file = filepath.Join(dir, "silo.yaml")
	c.ok("tenant", "create", "acme", "--no-key")
	b, err := os.ReadFile(c.file)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(c.file, []byte(strings.Replace(string(b), "tables:\n  visits: {}\n", "tables:\n  visits: {}\n  memos: {}\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	seed := t.TempDir()
	os.MkdirAll(filepath.Join(seed, "tables"), 0o700)
	if err := os.WriteFile(filepath.Join(seed, "tables", "memos.json"), []byte(`{"m1":"hello"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	want := regexp.MustCompile(`^silo: the seed directory names tables not declared in the current release r-[0-9a-f]+ \(what a new environment runs\): "memos" \(tables/memos.json\) \(declared tables: visits\); .*\(nothing was created\); ` + regexp.QuoteMeta(c.file) + ` declares them, but is not deployed: deploy it first \(silo deploy\)\n$`)
	if code, _, errOut := c.run("env", "create", "e2e-m", "--ttl", "1h", "--seed", seed); code != 1 || !want.MatchString(errOut) {
		t.Fatalf("env create with a seed for an undeployed table: exit %d, stderr %q; want 1, %s", code, errOut, want)
	}
	c.ok("deploy", "--yes")
	if out := c.ok("env", "create", "e2e-m", "--ttl", "1h", "--seed", seed); !strings.Contains(out, "seeded from") {
		t.Errorf("env create after the deploy:\n%s", out)
	}
}

// TestEnvCreateURLWithoutServer: with nothing serving the data dir, silo
// env create does not claim a port: it says the URL it prints is the one
// of silo up's default address.
func TestEnvCreateURLWithoutServer(t *testing.T) {
	t.Parallel()
	c := newCLI(t)
	out := c.ok("env", "create", "e2e-417", "--kind", "test", "--ttl", "2h")
	want := "URL  served once silo up or silo server runs on this data dir (on silo up's default --listen 127.0.0.1:8080: http://e2e-417.localhost:8080/)\n"
	if !strings.Contains(out, want) {
		t.Fatalf("env create printed:\n%s\nwant the line %q", out, want)
	}
}
