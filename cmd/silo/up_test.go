package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/spf13/cobra"

	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/platform"
)

// syncBuffer is a bytes.Buffer safe for one writer and one reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runCmd runs the CLI like run, adding this file set's commands to the root
// if main.go does not list them yet.
func runCmd(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	g := &globals{stdin: strings.NewReader(""), stdout: stdout, stderr: stderr}
	root := newRoot(g)
	for _, c := range []*cobra.Command{newUpCmd(g), newDevCmd(g), newEnvCmd(g), newLogsCmd(g)} {
		if found, _, err := root.Find([]string{c.Name()}); err != nil || found == root {
			root.AddCommand(c) // not listed in main.go yet
		}
	}
	root.SetArgs(args)
	root.SetOut(stdout)
	root.SetErr(stderr)
	return root.ExecuteContext(ctx)
}

// startUp runs silo up on a random port and returns its summary and a stop
// function that cancels it (Ctrl-C) and waits for it to return.
func startUp(t *testing.T, dataDir string, extra ...string) (upSummary, func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var out, errOut syncBuffer
	done := make(chan error, 1)
	go func() {
		done <- runCmd(ctx, append([]string{"up", "--listen", "127.0.0.1:0", "--data-dir", dataDir, "-o", "json"}, extra...), &out, &errOut)
	}()
	deadline := time.After(3 * time.Minute)
	for {
		var sum upSummary
		if err := json.NewDecoder(strings.NewReader(out.String())).Decode(&sum); err == nil {
			return sum, func() {
				cancel()
				if err := <-done; err != nil {
					t.Errorf("silo up after Ctrl-C: %v (stderr: %s)", err, errOut.String())
				}
			}
		}
		select {
		case err := <-done:
			t.Fatalf("silo up exited early: %v\nstdout: %s\nstderr: %s", err, out.String(), errOut.String())
		case <-deadline:
			t.Fatalf("silo up did not start; stdout: %s\nstderr: %s", out.String(), errOut.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func request(t *testing.T, gw, host, method, path, key, body string) (int, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, gw+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if host != "" {
		req.Host = host
	}
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func keyOf(t *testing.T, s upSummary, id string) string {
	t.Helper()
	for _, a := range s.Accounts {
		if string(a.ID) == id {
			return a.Key
		}
	}
	t.Fatalf("silo up printed no account %s: %+v", id, s.Accounts)
	return ""
}

// TestUp runs silo up in-process on a random port, talks to acme through
// the gateway with acme's key (and globex's key on acme: 403), stops it with
// a cancelled context, runs it again on the same data dir and checks that
// nothing was lost, nothing was created twice and the keys were replaced.
func TestUp(t *testing.T) {
	t.Setenv("USER", "tester")
	dir := t.TempDir()

	sum, stop := startUp(t, dir)
	if len(sum.Accounts) != 3 || sum.Accounts[2].ID != "dev-tester" || sum.Accounts[0].Params["plan"] != "pro" {
		t.Fatalf("accounts: got %+v, want acme (plan=pro), globex, dev-tester", sum.Accounts)
	}
	if !strings.HasPrefix(sum.Accounts[0].URL, "http://acme.localhost:") || !strings.Contains(sum.Accounts[0].Path, "/t/acme/findings") {
		t.Errorf("acme's URLs: got %s and %s", sum.Accounts[0].URL, sum.Accounts[0].Path)
	}
	acmeKey, globexKey := keyOf(t, sum, "acme"), keyOf(t, sum, "globex")
	status, body := request(t, sum.Gateway, "acme.localhost", "POST", "/findings", acmeKey, `{"severity":"high","app":"github"}`)
	if status != 201 || !strings.Contains(body, "app:github") {
		t.Fatalf("POST acme /findings: got %d %s, want 201 enriched from production", status, body)
	}
	if status, body := request(t, sum.Gateway, "", "GET", "/t/acme/findings", acmeKey, ""); status != 200 || !strings.Contains(body, `"count":1`) {
		t.Errorf("GET /t/acme/findings with acme's key: got %d %s, want 200 with 1 finding", status, body)
	}
	if status, _ := request(t, sum.Gateway, "acme.localhost", "GET", "/findings", globexKey, ""); status != http.StatusForbidden {
		t.Errorf("globex's key on acme: got %d, want 403", status)
	}
	if status, _ := request(t, sum.Gateway, "globex.localhost", "GET", "/findings", globexKey, ""); status != 200 {
		t.Errorf("globex's key on globex (control): got %d, want 200", status)
	}
	stop()

	again, stop := startUp(t, dir, "--api", "127.0.0.1:0")
	defer stop()
	// The control-plane API answers with the operator token, not without.
	tok, err := os.ReadFile(filepath.Join(dir, "operator.token"))
	if err != nil {
		t.Fatal(err)
	}
	if status, body := request(t, again.API, "", "GET", "/v1/releases", strings.TrimSpace(string(tok)), ""); status != 200 || !strings.Contains(body, again.Release) {
		t.Errorf("GET /v1/releases with the operator token: got %d %s, want 200 listing %s", status, body, again.Release)
	}
	if status, _ := request(t, again.API, "", "GET", "/v1/releases", acmeKey, ""); status != http.StatusUnauthorized {
		t.Errorf("GET /v1/releases with a tenant key: got %d, want 401", status)
	}
	if again.Release != sum.Release || len(again.Accounts) != 3 {
		t.Errorf("second run: release %s (want %s), %d accounts (want 3)", again.Release, sum.Release, len(again.Accounts))
	}
	newKey := keyOf(t, again, "acme")
	if status, _ := request(t, again.Gateway, "acme.localhost", "GET", "/findings", acmeKey, ""); status != http.StatusUnauthorized {
		t.Errorf("the previous run's silo-up key: got %d, want 401", status)
	}
	if status, body := request(t, again.Gateway, "acme.localhost", "GET", "/findings", newKey, ""); status != 200 || !strings.Contains(body, `"count":1`) {
		t.Errorf("after a restart acme's finding must still be there: got %d %s", status, body)
	}
}

// BenchmarkUpStart measures silo up from start to serving on an existing
// data dir (the second and later runs: everything built and cached).
func BenchmarkUpStart(b *testing.B) {
	dir := b.TempDir()
	for i := 0; i <= b.N; i++ {
		if i == 1 {
			b.ResetTimer()
		}
		ctx, cancel := context.WithCancel(context.Background())
		var out syncBuffer
		done := make(chan error, 1)
		go func() {
			done <- runCmd(ctx, []string{"up", "--listen", "127.0.0.1:0", "--data-dir", dir, "-o", "json"}, &out, io.Discard)
		}()
		for !strings.Contains(out.String(), `"startup"`) {
			select {
			case err := <-done:
				b.Fatalf("silo up exited: %v", err)
			case <-time.After(5 * time.Millisecond):
			}
		}
		b.StopTimer()
		cancel()
		<-done
		b.StartTimer()
	}
}

// TestUpServesAnotherApp runs silo up on the app silo init writes: the demo
// tenants get only the parameters it declares, and the printed URLs use its
// route.
func TestUpServesAnotherApp(t *testing.T) {
	t.Parallel()
	app := filepath.Join(t.TempDir(), "hello")
	if _, _, err := runCLI(t, "init", app); err != nil {
		t.Fatal(err)
	}
	// An app without a plan parameter.
	y := mustRead(t, filepath.Join(app, "silo.yaml"))
	y = strings.Replace(y, "params:\n  plan: {type: string, default: free, enum: [free, pro]}\n", "", 1)
	y = strings.Replace(y, " (plan ${param.plan})", "", 1)
	os.WriteFile(filepath.Join(app, "silo.yaml"), []byte(y), 0o644)
	sum, stop := startUp(t, t.TempDir(), "--file", filepath.Join(app, "silo.yaml"))
	defer stop()
	a := sum.Accounts[0]
	if !strings.HasSuffix(a.URL, "/hello") || len(a.Params) != 0 {
		t.Errorf("acme: got URL %s and params %v, want /hello and none", a.URL, a.Params)
	}
	if status, body := request(t, sum.Gateway, "acme.localhost", "GET", "/hello", a.Key, ""); status != 200 || !strings.Contains(body, "Hello, acme") {
		t.Errorf("GET /hello: got %d %s", status, body)
	}
}

func mustRead(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCommandsGoThroughRunningUp: while silo up serves a data dir, other
// commands on that data dir go through its control-plane API (found in
// server.json), commands that would open its account stores beside it
// refuse with what to do instead, and a stale server.json is ignored.
func TestCommandsGoThroughRunningUp(t *testing.T) {
	t.Setenv("USER", "tester")
	dir := t.TempDir()
	sum, stop := startUp(t, dir)
	defer func() { stop() }()
	var rs platform.RunningServer
	for i := 0; ; i++ {
		var ok bool
		if rs, ok = platform.Running(dir); ok {
			break
		}
		if i == 500 {
			t.Fatalf("silo up wrote no %s", platform.ServerFile)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if rs.URL != sum.API {
		t.Fatalf("%s names %s, silo up printed API %s", platform.ServerFile, rs.URL, sum.API)
	}

	// A data dir that holds nothing but the server file and the token: a
	// command that lists silo up's tenants there must have gone through it.
	proxy := t.TempDir()
	for _, f := range []string{platform.ServerFile, "operator.token"} {
		b, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(proxy, f), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	list := func(dataDir string) (string, error) {
		var out, errOut syncBuffer
		err := runCmd(context.Background(), []string{"tenant", "list", "--data-dir", dataDir}, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := list(proxy); err != nil || !strings.Contains(out, "acme") || !strings.Contains(out, "globex") {
		t.Fatalf("tenant list beside a running silo up: %v\n%s\nwant acme and globex, listed by silo up", err, out)
	}

	// An environment created through silo up is announced at silo up's
	// gateway, not at a default port.
	var envOut, envErr syncBuffer
	if err := runCmd(context.Background(), []string{"env", "create", "e2e-1", "--ttl", "1h", "--data-dir", proxy}, &envOut, &envErr); err != nil {
		t.Fatalf("env create through silo up: %v\n%s", err, envErr.String())
	}
	if want := sum.Gateway + "/t/e2e-1/"; !strings.Contains(envOut.String(), want) {
		t.Errorf("env create through silo up printed:\n%s\nwant the gateway's address %s", envOut.String(), want)
	}

	// Must not: apply (it would open the stores silo up holds) and a second
	// silo up refuse, naming the way out.
	var out, errOut syncBuffer
	err := runCmd(context.Background(), []string{"apply", "--all", "--data-dir", dir, "--file", sum.App}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "is serving the data dir") || !strings.Contains(err.Error(), "silo deploy") {
		t.Errorf("apply beside a running silo up: %v, want a refusal pointing to silo deploy", err)
	}
	err = runCmd(context.Background(), []string{"up", "--listen", "127.0.0.1:0", "--data-dir", dir}, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "already up") {
		t.Errorf("a second silo up on the same data dir: %v, want a refusal", err)
	}

	// silo up holds the data dir's lock, not only its server file: with
	// the file out of the way (as before silo up writes it, after its
	// build), apply is still refused, naming silo up.
	sf := filepath.Join(dir, platform.ServerFile)
	if err := os.Rename(sf, sf+".aside"); err != nil {
		t.Fatal(err)
	}
	err = runCmd(context.Background(), []string{"apply", "--all", "--data-dir", dir, "--file", sum.App}, &out, &errOut)
	if want := fmt.Sprintf("silo up (pid %d) is serving on the data dir", os.Getpid()); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("apply beside a running silo up whose server file is not there: %v, want a refusal saying %q", err, want)
	}
	if err := os.Rename(sf+".aside", sf); err != nil {
		t.Fatal(err)
	}

	// A server file whose process is gone is ignored: the command runs on
	// the (empty) data dir itself.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Skip(err)
	}
	stale, _ := json.Marshal(platform.RunningServer{URL: rs.URL, PID: dead.Process.Pid})
	if err := os.WriteFile(filepath.Join(proxy, platform.ServerFile), stale, 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := list(proxy); err != nil || strings.Contains(out, "acme") {
		t.Errorf("tenant list with a stale server file: %v\n%s\nwant the empty local data dir's (no acme)", err, out)
	}

	stop()
	stop = func() {}
	if _, err := os.Stat(filepath.Join(dir, platform.ServerFile)); !os.IsNotExist(err) {
		t.Errorf("%s after silo up stopped: %v, want it removed", platform.ServerFile, err)
	}
}

// TestUpShowsAnAccountsProblems: an account whose provider account is gone
// is shown by silo up with the problem silo doctor reports and its fix;
// an account without one shows none.
func TestUpShowsAnAccountsProblems(t *testing.T) {
	t.Setenv("USER", "tester")
	dir := t.TempDir()
	_, stop := startUp(t, dir)
	stop()
	if err := os.RemoveAll(localtest.AccountDir(dir, "globex")); err != nil {
		t.Fatal(err)
	}
	sum, stop := startUp(t, dir)
	defer stop()
	for _, a := range sum.Accounts {
		gone := slices.ContainsFunc(a.Problems, func(p string) bool { return strings.Contains(p, "the provider holds no account for it") })
		if gone != (a.ID == "globex") {
			t.Errorf("silo up shows %s with problems %q; want the provider's missing account for globex only", a.ID, a.Problems)
		}
	}
}
