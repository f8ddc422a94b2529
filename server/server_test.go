package server_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider/local"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

const spec = `version: 1
name: demo
params:
  plan: {type: string, default: free, enum: [free, pro]}
functions:
  ingest:
    source: ./fn.wasm
    tables: {findings: read-write}
    secrets: [token]
tables: {findings: {}}
secrets:
  token: {}
config:
  plan_name: "${param.plan}"
routes:
  - {method: POST, path: /findings, function: ingest}
`

type fixture struct {
	url    string
	dir    string
	token  string
	client *server.Client
	plane  *control.Plane
	runner *rollout.Runner
	srv    *server.Server
	prov   *local.Provider
	store  store.Store
	cancel context.CancelFunc
}

func start(t *testing.T) *fixture {
	t.Helper()
	dir := t.TempDir()
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	return startOn(t, dir, st, nil)
}

// startOn starts a server in dir on the store st, which it closes at the
// end of the test, with the clock now (time.Now if nil).
func startOn(t *testing.T, dir string, st store.Store, now func() time.Time) *fixture {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	prov, err := local.New(local.Config{Dir: filepath.Join(dir, "accounts")})
	if err != nil {
		t.Fatal(err)
	}
	plane := control.New(control.Config{Store: st, Provider: prov, Actor: "server"})
	run, err := rollout.New(rollout.Config{Store: st, Engine: plane.Engine, Provider: prov, Owner: "test", Poll: 20 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	tok, err := server.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	srv, err := server.New(server.Config{Plane: plane, Runner: run, Store: st, ArtifactDir: filepath.Join(dir, "artifacts"), Token: tok, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	done := make(chan struct{})
	go func() { run.Serve(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done; hs.Close(); prov.Close(); st.Close() })
	return &fixture{url: hs.URL, dir: dir, token: tok, client: server.NewClient(hs.URL, tok, nil), plane: plane, runner: run, srv: srv, prov: prov, store: st, cancel: cancel}
}

func code(err error) silo.Code { return silo.ErrorCode(err) }

func TestAuth(t *testing.T) {
	f := start(t)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no token", "", http.StatusUnauthorized},
		{"wrong token", "Bearer nope", http.StatusUnauthorized},
		{"token without Bearer", f.token, http.StatusUnauthorized},
		{"right token", "Bearer " + f.token, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodGet, f.url+"/v1/accounts", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Errorf("got %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if err := server.NewClient(f.url, "", nil).Health(context.Background()); err != nil {
		t.Errorf("health without a token: %v", err)
	}
}

func TestToken(t *testing.T) {
	dir := t.TempDir()
	a, err := server.LoadOrCreateToken(dir)
	if err != nil {
		t.Fatal(err)
	}
	b, err := server.LoadOrCreateToken(dir)
	if err != nil || a != b || len(a) != 64 {
		t.Fatalf("second load = %q, %v; want the same 64-hex token %q", b, err, a)
	}
	fi, err := os.Stat(filepath.Join(dir, server.TokenFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("token file mode = %v, %v; want 0600", fi.Mode().Perm(), err)
	}
	os.Chmod(filepath.Join(dir, server.TokenFile), 0o644)
	if _, err := server.LoadOrCreateToken(dir); code(err) != silo.CodeInvalid {
		t.Fatalf("world-readable token file: %v, want invalid", err)
	}
}

// wasmModule returns a wasm module (a header, one custom section named
// name, and a function of the handler's type exported as handle) that the
// server takes as an artifact; these tests' provider never runs it.
func wasmModule(name string) []byte {
	if len(name) > 100 {
		panic("wasmModule: name too long")
	}
	b := append([]byte{0, 'a', 's', 'm', 1, 0, 0, 0, 0, byte(1 + len(name)), byte(len(name))}, name...)
	return append(b, "\x01\x07\x01\x60\x02\x7f\x7f\x01\x7e"+ // type 0: (i32, i32) i64
		"\x03\x02\x01\x00"+ // function 0 has type 0
		"\x07\x0a\x01\x06handle\x00\x00"+ // export handle: function 0
		"\x0a\x06\x01\x04\x00\x42\x00\x0b"...) // its code: i64.const 0
}

func upload(t *testing.T, c *server.Client, src string, wasm string) server.ReleaseInfo {
	t.Helper()
	ctx := context.Background()
	d, err := c.PutArtifact(ctx, wasmModule(wasm))
	if err != nil {
		t.Fatal(err)
	}
	rel, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: src, Artifacts: map[string]string{"ingest": d}})
	if err != nil {
		t.Fatal(err)
	}
	return rel
}

func follow(t *testing.T, c *server.Client, id string) rollout.Rollout {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var last rollout.Rollout
	n := 0
	if err := c.Follow(ctx, id, func(r rollout.Rollout) error { last = r; n++; return nil }); err != nil {
		t.Fatal(err)
	}
	if n == 0 {
		t.Fatal("follow streamed nothing")
	}
	return last
}

func TestEndToEnd(t *testing.T) {
	ctx := context.Background()
	f := start(t)
	c := f.client

	// Bad releases are refused before anything changes.
	if _, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: "version: 1\nname: [\n"}); code(err) != silo.CodeInvalid {
		t.Fatalf("invalid spec: %v, want invalid", err)
	}
	if _, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": strings.Repeat("ab", 32)}}); code(err) != silo.CodeInvalid || !strings.Contains(err.Error(), "not uploaded") {
		t.Fatalf("missing artifact: %v, want invalid naming the upload", err)
	}
	req, _ := http.NewRequest(http.MethodPut, f.url+"/v1/artifacts/"+strings.Repeat("ab", 32), strings.NewReader("other bytes"))
	req.Header.Set("Authorization", "Bearer "+f.token)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("artifact with a wrong digest: %v %v, want 400", resp.Status, err)
	}

	// First deploy: no accounts yet; it makes the release current.
	d1, err := c.PutArtifact(ctx, wasmModule("wasm v1"))
	if err != nil {
		t.Fatal(err)
	}
	v1, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d1}, Note: "first"})
	if err != nil || v1.Note != "first" {
		t.Fatalf("upload with a note: %+v, %v; want the note back", v1, err)
	}
	// The same inputs again are the same release, as first stored: the
	// answer says so rather than echo a note that was not kept.
	again, err := c.UploadRelease(ctx, server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d1}, Note: "second"})
	if err != nil || again.ID != v1.ID || again.Note != "first" || !again.Created.Equal(v1.Created) {
		t.Fatalf("same inputs again: %+v, %v; want release %s as first stored (note \"first\", created %s)", again, err, v1.ID, v1.Created)
	}
	if got, err := c.Release(ctx, v1.ID); err != nil || got.Note != "first" {
		t.Fatalf("release %s after a second upload: note %q, %v; want \"first\"", v1.ID, got.Note, err)
	}
	r, err := c.StartRollout(ctx, v1.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if r = follow(t, c, r.ID); r.State != rollout.StateSucceeded {
		t.Fatalf("first deploy: %s (%s)", r.State, r.Reason)
	}

	// Accounts, keys, secrets.
	cr, err := c.CreateAccount(ctx, control.CreateRequest{ID: "acme", Params: map[string]string{"plan": "pro"}, WithKey: true})
	if err != nil {
		t.Fatal(err)
	}
	if cr.Account.Release != v1.ID || !strings.HasPrefix(cr.Key, "sk_") {
		t.Fatalf("created %+v", cr)
	}
	if _, err := c.CreateAccount(ctx, control.CreateRequest{ID: "acme"}); code(err) != silo.CodeConflict {
		t.Fatalf("duplicate: %v, want conflict", err)
	}
	if _, err := c.CreateAccount(ctx, control.CreateRequest{ID: "Bad_ID"}); code(err) != silo.CodeInvalid {
		t.Fatalf("bad ID: %v, want invalid", err)
	}
	if _, err := c.CreateAccount(ctx, control.CreateRequest{ID: "globex"}); err != nil {
		t.Fatal(err)
	}
	as, err := c.Accounts(ctx, store.Filter{Kind: silo.KindTenant})
	if err != nil || len(as) != 2 {
		t.Fatalf("accounts = %v, %v; want 2 tenants", as, err)
	}
	d, err := c.Show(ctx, "acme")
	if err != nil || len(d.Drift) != 0 || len(d.Keys) != 1 {
		t.Fatalf("show = %+v, %v", d, err)
	}
	// The provider's own reference to the account: the local account's directory.
	if ref, err := f.prov.Ref(ctx, "acme"); err != nil || d.Ref == nil || *d.Ref != ref || ref.ID == "" {
		t.Errorf("show: ref = %+v; want the provider's %+v (%v)", d.Ref, ref, err)
	}
	if _, err := c.Show(ctx, "nobody"); !errors.Is(err, silo.ErrNotFound) {
		t.Fatalf("show unknown: %v, want not found", err)
	}
	if _, err := c.UpdateParams(ctx, "globex", map[string]string{"plan": "pro"}, "Globex"); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateParams(ctx, "globex", map[string]string{"plan": "gold"}, ""); code(err) != silo.CodeInvalid {
		t.Fatalf("bad param: %v, want invalid", err)
	}
	if a, err := c.Suspend(ctx, "globex"); err != nil || a.State != silo.StateSuspended {
		t.Fatalf("suspend: %v %v", a.State, err)
	}
	if a, err := c.Resume(ctx, "globex"); err != nil || a.State != silo.StateActive {
		t.Fatalf("resume: %v %v", a.State, err)
	}
	key, k, err := c.IssueKey(ctx, "acme", "ci")
	if err != nil || key == "" || k.ID == "" {
		t.Fatalf("issue key: %q %+v %v", key, k, err)
	}
	if err := c.RevokeKey(ctx, "acme", k.ID); err != nil {
		t.Fatal(err)
	}
	if err := c.RevokeKey(ctx, "globex", k.ID); !errors.Is(err, silo.ErrNotFound) {
		t.Fatalf("revoking acme's key through globex: %v, want not found", err)
	}
	ks, err := c.Keys(ctx, "acme")
	if err != nil || len(ks) != 2 {
		t.Fatalf("keys = %v, %v", ks, err)
	}
	if err := c.SetSecret(ctx, "acme", "token", []byte("s3cret")); err != nil {
		t.Fatal(err)
	}
	if err := c.SetSecret(ctx, "acme", "undeclared", []byte("x")); err == nil {
		t.Fatal("setting an undeclared secret succeeded")
	}

	// A second deploy while one is active is refused with a clear message.
	v2 := upload(t, c, spec, "wasm v2")
	f.cancel() // stop the runner so the first rollout stays active
	time.Sleep(50 * time.Millisecond)
	r2, err := c.StartRollout(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.StartRollout(ctx, v2.ID, rollout.Options{}); code(err) != silo.CodeConflict || !strings.Contains(err.Error(), r2.ID) {
		t.Fatalf("second deploy: %v, want conflict naming %s", err, r2.ID)
	}
	go f.runner.Run(context.Background(), r2.ID)
	if r2 = follow(t, c, r2.ID); r2.State != rollout.StateSucceeded {
		t.Fatalf("deploy v2: %s (%s)", r2.State, r2.Reason)
	}
	for _, id := range []silo.AccountID{"acme", "globex", silo.ProductionID} {
		d, err := c.Show(ctx, id)
		if err != nil || d.Account.Release != v2.ID || len(d.Drift) != 0 {
			t.Fatalf("%s after deploy: release %s drift %v err %v", id, d.Account.Release, d.Drift, err)
		}
	}
	rels, err := c.Releases(ctx, 10, false)
	if err != nil || len(rels) != 2 {
		t.Fatalf("releases = %v, %v", rels, err)
	}
	if got, err := c.Release(ctx, v2.ID); err != nil || !got.Current || len(got.Stack) == 0 {
		t.Fatalf("release show = %+v, %v", got, err)
	}
	if latest, err := c.Rollout(ctx, "latest"); err != nil || latest.ID != r2.ID {
		t.Fatalf("latest = %s, %v", latest.ID, err)
	}
	if _, err := c.Pause(ctx, r2.ID); code(err) != silo.CodeConflict {
		t.Fatalf("pausing a finished rollout: %v, want conflict", err)
	}

	if _, err := c.DeleteAccount(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.VerifyAudit(ctx); err != nil || n == 0 {
		t.Fatalf("audit verify: %d, %v", n, err)
	}
}

// TestReleaseUploadAgainAnswersTheStoredRelease: a release's first upload
// is 201 with what was stored; the same inputs again (another note) are
// the same immutable release, answered 200 as first stored.
func TestReleaseUploadAgainAnswersTheStoredRelease(t *testing.T) {
	f := start(t)
	d, err := f.client.PutArtifact(context.Background(), wasmModule("wasm"))
	if err != nil {
		t.Fatal(err)
	}
	post := func(note string) (int, server.ReleaseInfo) {
		t.Helper()
		body, _ := json.Marshal(server.ReleaseRequest{Spec: spec, Artifacts: map[string]string{"ingest": d}, Note: note})
		req, _ := http.NewRequest(http.MethodPost, f.url+"/v1/releases", bytes.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+f.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ri server.ReleaseInfo
		if err := json.NewDecoder(resp.Body).Decode(&ri); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, ri
	}
	st, first := post("first")
	if st != http.StatusCreated || first.Note != "first" {
		t.Fatalf("first upload: %d %+v, want 201 with its note", st, first)
	}
	st, again := post("second")
	if st != http.StatusOK || again.ID != first.ID || again.Note != "first" || !again.Created.Equal(first.Created) {
		t.Fatalf("same inputs again: %d %+v, want 200 and release %s as first stored (note %q, created %s)", st, again, first.ID, first.Note, first.Created)
	}
}
