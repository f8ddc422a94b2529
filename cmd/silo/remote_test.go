package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/server"
)

// remoteFixture is one installation served in-process over real HTTP
// (httptest) by the API server silo server serves (openPlatform with an API
// address wires it), and a CLI that runs either on that installation's
// data dir (local) or against the server from another data dir (remote).
type remoteFixture struct {
	t       *testing.T
	dir     string // the server's data dir
	client  string // the remote CLI's own data dir
	store   string // the server's --store, if setup sets it
	file    string
	url     string
	token   string
	logDir  string
	appendL func(logs.Entry)
	// wrap, if setup sets it, wraps the API's handler: tests watch
	// requests there.
	wrap func(http.Handler) http.Handler
}

func startRemote(t *testing.T) *remoteFixture {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return startRemoteOn(t, filepath.Join(wd, "..", "..", "examples", "findings", "silo.yaml"), func(f *remoteFixture) {
		// The first environment, created locally, makes the spec's release current.
		f.local("env", "create", "demo-acme", "--kind", "demo", "--ttl", "72h", "--param", "plan=enterprise")
	})
}

// startRemoteOn is startRemote for the app of silo.yaml file, whose
// installation setup makes (running commands locally) before it is served.
func startRemoteOn(t *testing.T, file string, setup func(*remoteFixture)) *remoteFixture {
	t.Helper()
	f := &remoteFixture{t: t, dir: filepath.Join(t.TempDir(), "server"), client: filepath.Join(t.TempDir(), "client"), file: file}
	setup(f)
	g := &globals{dataDir: f.dir, store: f.store, stdout: io.Discard, stderr: io.Discard}
	p, err := openPlatform(context.Background(), g, "127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	api, err := p.API()
	if err != nil {
		t.Fatal(err)
	}
	h := api.Handler()
	if f.wrap != nil {
		h = f.wrap(h)
	}
	hs := httptest.NewServer(h)
	t.Cleanup(func() { hs.Close(); p.Close() })
	tok, err := os.ReadFile(filepath.Join(f.dir, server.TokenFile))
	if err != nil {
		t.Fatal(err)
	}
	f.url, f.token, f.logDir = hs.URL, strings.TrimSpace(string(tok)), p.Logs.Dir()
	f.appendL = func(e logs.Entry) {
		if err := p.Logs.Append(e); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *remoteFixture) exec(args []string) (int, string, string) {
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, strings.NewReader(""), &out, &errOut)
	return code, out.String(), errOut.String()
}

// local runs a command on the server's data dir; it must succeed.
func (f *remoteFixture) local(args ...string) string {
	f.t.Helper()
	code, out, errOut := f.exec(append(args, "--data-dir", f.dir, "--file", f.file))
	if code != 0 {
		f.t.Fatalf("local silo %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// remoteRun runs a command against the server from the client's data dir.
func (f *remoteFixture) remoteRun(args ...string) (int, string, string) {
	return f.exec(append(args, "--data-dir", f.client, "--file", f.file, "--server", f.url, "--token", f.token))
}

func (f *remoteFixture) remote(args ...string) string {
	f.t.Helper()
	code, out, errOut := f.remoteRun(args...)
	if code != 0 {
		f.t.Fatalf("remote silo %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// same runs a command locally and remotely and wants the same output,
// up to what changes by itself (durations, time left).
func (f *remoteFixture) same(args ...string) string {
	f.t.Helper()
	l, r := norm(f.local(args...)), norm(f.remote(args...))
	if l != r {
		f.t.Errorf("silo %s: local and remote output differ\nlocal:\n%s\nremote:\n%s", strings.Join(args, " "), l, r)
	}
	return r
}

var volatile = regexp.MustCompile(`in [0-9.]+(ns|µs|ms|s)\b|\(in [0-9hms.]+\)`)

func norm(s string) string { return volatile.ReplaceAllString(s, "in T") }

// TestCommandsAgainstAServer runs plan, drift, verify, report, env and logs
// with --server against a server in this process and gets the output they
// give on the server's data dir; with a wrong token or an unknown account
// they fail with one clear message.
func TestCommandsAgainstAServer(t *testing.T) {
	f := startRemote(t)

	// plan: the client builds silo.yaml, uploads the release, the server plans it.
	out := f.same("plan", "--all")
	if !strings.Contains(out, "nothing to do") {
		t.Errorf("plan --all: %s", out)
	}
	f.same("plan", "demo-acme", "-o", "json")
	f.same("drift", "--all")
	f.same("drift", "demo-acme")
	out = f.same("verify")
	if !strings.HasPrefix(out, "proved:") {
		t.Errorf("verify: %s", out)
	}

	// env: create remotely (seed uploaded), list both ways, delete remotely.
	seed := filepath.Join(filepath.Dir(f.file), "fixtures", "demo")
	out = f.remote("env", "create", "e2e-remote", "--kind", "test", "--ttl", "2h", "--seed", seed, "-o", "json")
	var e server.Env
	if err := json.Unmarshal([]byte(out), &e); err != nil || e.Account.ID != "e2e-remote" || e.Account.Kind != silo.KindEnvironment || e.Key == "" || e.Account.Expires == nil {
		t.Fatalf("remote env create: %v %+v\n%s", err, e, out)
	}
	out = f.same("env", "list")
	if !strings.Contains(out, "e2e-remote") || !strings.Contains(out, "demo-acme") {
		t.Errorf("env list: %s", out)
	}
	f.same("env", "list", "-o", "json")
	out = f.remote("env", "delete", "e2e-remote")
	if !strings.Contains(out, "verified") {
		t.Errorf("remote env delete: %s", out)
	}
	if out := f.same("env", "list"); strings.Contains(out, "e2e-remote") {
		t.Errorf("env list after delete: %s", out)
	}

	// logs: the lines the platform wrote, filtered the same way.
	now := time.Now().UTC()
	f.appendL(logs.Entry{Time: now.Add(-time.Hour), Level: "INFO", Account: "demo-acme", Function: "ingest", RequestID: "r1", Msg: "old line"})
	f.appendL(logs.Entry{Time: now, Level: "WARN", Account: "demo-acme", Function: "ingest", RequestID: "r2", Msg: "new line", Attrs: map[string]string{"n": "2"}})
	f.appendL(logs.Entry{Time: now, Level: "INFO", Account: "demo-acme", Function: "report", RequestID: "r3", Msg: "other function"})
	logsBoth := func(args ...string) string {
		t.Helper()
		full := append([]string{"logs", "demo-acme"}, args...)
		_, l, lerr := f.exec(append(full, "--data-dir", f.dir))
		code, r, rerr := f.exec(append(full, "--data-dir", f.client, "--server", f.url, "--token", f.token))
		if code != 0 || l != r {
			t.Errorf("silo logs %s: exit %d %s\nlocal:\n%s%s\nremote:\n%s", strings.Join(args, " "), code, rerr, l, lerr, r)
		}
		return r
	}
	if out := logsBoth(); strings.Count(out, "\n") != 3 {
		t.Errorf("logs: %q", out)
	}
	if out := logsBoth("--function", "ingest", "--since", "10m"); !strings.Contains(out, "new line") || strings.Contains(out, "old line") || strings.Contains(out, "other function") {
		t.Errorf("logs --function --since: %q", out)
	}
	if out := logsBoth("--until", "10m"); !strings.Contains(out, "old line") || strings.Count(out, "\n") != 1 {
		t.Errorf("logs --until 10m: %q", out)
	}
	if out := logsBoth("--since", now.Add(-time.Minute).Format(time.RFC3339), "--function", "ingest"); !strings.Contains(out, "new line") || strings.Count(out, "\n") != 1 {
		t.Errorf("logs --since RFC 3339: %q", out)
	}
	if out := logsBoth("--request", "r1", "-o", "json"); !strings.Contains(out, `"old line"`) || strings.Count(out, "\n") != 1 {
		t.Errorf("logs --request -o json: %q", out)
	}
	if out := logsBoth("-n", "1"); !strings.Contains(out, "other function") || strings.Count(out, "\n") != 1 {
		t.Errorf("logs -n 1: %q", out)
	}
	// Follow streams the retained lines, then new ones, until stopped.
	c := server.NewClient(f.url, f.token, nil)
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan logs.Entry, 8)
	followed := make(chan error, 1)
	go func() {
		followed <- c.FollowLogs(ctx, "demo-acme", logs.Query{Function: "ingest"}, func(e logs.Entry) error { got <- e; return nil })
	}()
	for range 2 {
		<-got
	}
	f.appendL(logs.Entry{Time: time.Now().UTC(), Level: "INFO", Account: "demo-acme", Function: "ingest", Msg: "streamed"})
	if e := <-got; e.Msg != "streamed" {
		t.Errorf("followed line: %+v, want the new one", e)
	}
	cancel()
	if err := <-followed; err != nil {
		t.Errorf("follow after cancel: %v", err)
	}

	// report: signed on the server with its key; report verify checks it
	// against the key the server publishes (silo report key --server).
	rep := f.remote("report", "demo-acme", "--format", "json")
	keyFile := filepath.Join(t.TempDir(), "key.pem")
	if err := os.WriteFile(keyFile, []byte(f.remote("report", "key")), 0o644); err != nil {
		t.Fatal(err)
	}
	var verifyOut bytes.Buffer
	code := run(context.Background(), []string{"report", "verify", "-", "--key", keyFile}, strings.NewReader(rep), &verifyOut, io.Discard)
	if code != 0 || !strings.Contains(verifyOut.String(), "intact and signed by the key you gave") {
		t.Errorf("report verify of the server's report against its published key: exit %d\n%s", code, verifyOut.String())
	}
	// A customer's reviewer, who has no operator token, checks it against
	// the key the server serves at GET /v1/report-key.
	verifyOut.Reset()
	code = run(context.Background(), []string{"report", "verify", "-", "--key", f.url + "/v1/report-key"}, strings.NewReader(rep), &verifyOut, io.Discard)
	if code != 0 || !strings.Contains(verifyOut.String(), "intact and signed by the key you gave") {
		t.Errorf("report verify against --key %s/v1/report-key, without a token: exit %d\n%s", f.url, code, verifyOut.String())
	}
	if html := f.remote("report", "demo-acme"); !strings.Contains(html, "<html") {
		t.Errorf("remote html report: %.200s", html)
	}

	// Must-not twins: unknown account → 404 with the clear message; no or a
	// wrong token → 401.
	for _, args := range [][]string{
		{"plan", "nobody"}, {"drift", "nobody"}, {"report", "nobody"}, {"env", "delete", "nobody"},
	} {
		code, _, errOut := f.remoteRun(args...)
		if code != 1 || !strings.Contains(errOut, `no account "nobody"`) {
			t.Errorf("remote silo %s: exit %d, stderr %q", strings.Join(args, " "), code, errOut)
		}
	}
	code, _, errOut := f.exec([]string{"logs", "nobody", "--data-dir", f.client, "--server", f.url, "--token", f.token})
	if code != 1 || !strings.Contains(errOut, `no account "nobody"`) {
		t.Errorf("remote logs of an unknown account: exit %d, %q", code, errOut)
	}
	code, _, errOut = f.exec([]string{"verify", "--data-dir", f.client, "--server", f.url, "--token", "wrong"})
	if code != 1 || !strings.Contains(errOut, "missing or wrong operator token") {
		t.Errorf("verify with a wrong token: exit %d, %q", code, errOut)
	}
	for _, p := range []string{"/v1/plan", "/v1/drift", "/v1/verify", "/v1/environments", "/v1/accounts/demo-acme/logs", "/v1/accounts/demo-acme/report", "/v1/accounts/demo-acme/drift"} {
		resp, err := http.Get(f.url + p)
		if err != nil {
			t.Fatal(err)
		}
		var eb server.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || eb.Error.Code != silo.CodeUnauthenticated {
			t.Errorf("GET %s without a token: %d %+v, want 401", p, resp.StatusCode, eb)
		}
	}
	for _, p := range []string{"/v1/accounts/nobody/logs", "/v1/accounts/nobody/report", "/v1/accounts/nobody/drift", "/v1/plan?account=nobody", "/v1/plan?release=r-none"} {
		req, _ := http.NewRequest(http.MethodGet, f.url+p, nil)
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var eb server.ErrorBody
		json.NewDecoder(resp.Body).Decode(&eb)
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || eb.Error.Code != silo.CodeNotFound || eb.Error.Message == "" {
			t.Errorf("GET %s: %d %+v, want 404 with a message", p, resp.StatusCode, eb)
		}
	}
	// A seed with a table silo.yaml does not declare is refused by the
	// server, naming it, and nothing is created.
	undeclared := t.TempDir()
	if err := os.MkdirAll(filepath.Join(undeclared, "tables"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(undeclared, "tables", "nosuch.json"), []byte(`{"k":"v"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if code, _, errOut := f.remoteRun("env", "create", "e2e-undeclared", "--ttl", "1h", "--seed", undeclared); code != 1 ||
		!strings.Contains(errOut, `(what a new environment runs): "nosuch" (tables/nosuch.json) (declared tables: findings)`) || strings.Contains(errOut, "deploy it first") {
		t.Errorf("env create --server with an undeclared table: exit %d, stderr %q; want the refusal", code, errOut)
	}
	if out := f.remote("env", "list"); strings.Contains(out, "e2e-undeclared") {
		t.Errorf("a refused env create --server left the environment:\n%s", out)
	}
	// Bad input: a seed path outside the layout, a bad TTL.
	if _, err := c.CreateEnv(context.Background(), server.EnvRequest{Name: "bad-ttl", Purpose: "test"}); silo.ErrorCode(err) != silo.CodeInvalid {
		t.Errorf("env without a TTL: %v, want invalid", err)
	}
	// --probe runs in the server against its own gateway; this fixture's
	// server serves the API only, and says so.
	if code, _, errOut := f.remoteRun("verify", "--probe"); code != 1 || !strings.Contains(errOut, "does not serve the gateway") {
		t.Errorf("verify --probe --server: exit %d, %q", code, errOut)
	}
}

// TestProviderFlagsThroughAServer: --provider or an --aws-* flag on a
// command that runs through a server is refused (the server keeps the
// provider it started with, so the flag would be dropped); the same
// command without it, or with $SILO_PROVIDER set as for every server,
// runs.
func TestProviderFlagsThroughAServer(t *testing.T) {
	f := startRemote(t)
	for _, flags := range [][]string{{"--provider", "local"}, {"--aws-region", "eu-west-1"}} {
		code, _, errOut := f.remoteRun(append(flags, "tenant", "list")...)
		if code == 0 || !strings.Contains(errOut, flags[0]+" applies to commands on a data dir no server serves") {
			t.Errorf("silo %s tenant list through a server: exit %d, stderr %q; want the refusal", strings.Join(flags, " "), code, errOut)
		}
	}
	f.remote("tenant", "list")
	t.Setenv("SILO_PROVIDER", "local")
	f.remote("tenant", "list")
}
