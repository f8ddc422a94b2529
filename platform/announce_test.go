package platform_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// apiClient serves p's control-plane API (fully wired by the platform) and
// returns a client of it.
func apiClient(t *testing.T, p *platform.Platform) *server.Client {
	t.Helper()
	url, tok := apiServer(t, p)
	return server.NewClient(url, tok, http.DefaultClient)
}

// apiServer serves p's control-plane API and returns its URL and the
// operator token.
func apiServer(t *testing.T, p *platform.Platform) (url, token string) {
	t.Helper()
	api, err := p.API()
	if err != nil {
		t.Fatalf("API: %v", err)
	}
	srv := httptest.NewServer(api.Handler())
	t.Cleanup(srv.Close)
	tok, err := os.ReadFile(filepath.Join(p.Config().DataDir, server.TokenFile))
	if err != nil {
		t.Fatalf("read operator token: %v", err)
	}
	return srv.URL, strings.TrimSpace(string(tok))
}

// noRefresh makes the gateway trust what it read for an hour, so that only
// an announced change, never the periodic refresh, can make it read again.
func noRefresh(c *platform.Config) { c.Refresh = time.Hour }

// TestAPIChangesHoldOnTheNextRequest revokes a key, suspends, resumes and
// deletes an account through the control-plane API, and sends a request
// through the same platform's gateway right after each call returns: each
// change holds on that request, although the gateway had the account and
// the key cached and would not read them again for an hour by itself.
func TestAPIChangesHoldOnTheNextRequest(t *testing.T) {
	p := silotest.New(t, silotest.WithConfig(noRefresh))
	p.Deploy(t, app)
	acme := p.Tenant(t, "acme")
	api := apiClient(t, p.Platform())
	ctx := context.Background()

	if resp := acme.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Fatalf("before any change: got %s, want 200", resp)
	}
	keys, err := api.Keys(ctx, "acme")
	if err != nil || len(keys) != 1 {
		t.Fatalf("Keys: got %v, %v, want one key", keys, err)
	}
	// The platform wires the API whole: the endpoints of the platform's
	// parts (report key, environments) answer without further wiring.
	if pem, err := api.ReportKey(ctx); err != nil || !strings.Contains(string(pem), "PUBLIC KEY") {
		t.Errorf("ReportKey: got %q, %v, want the installation's public key", pem, err)
	}
	if envs, err := api.Envs(ctx); err != nil || len(envs) != 0 {
		t.Errorf("Envs: got %v, %v, want none", envs, err)
	}
	second, _, err := api.IssueKey(ctx, "acme", "second")
	if err != nil {
		t.Fatalf("IssueKey: %v", err)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(second)); resp.Status != http.StatusOK {
		t.Fatalf("a key issued through the API: got %s, want 200", resp)
	}
	if err := api.RevokeKey(ctx, "acme", keys[0].ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	if resp := acme.GET(t, "/findings"); resp.Status != http.StatusUnauthorized {
		t.Errorf("right after the revocation returned: got %s, want 401", resp)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(second)); resp.Status != http.StatusOK {
		t.Fatalf("the key not revoked: got %s, want 200", resp)
	}

	if _, err := api.Suspend(ctx, "acme"); err != nil {
		t.Fatalf("Suspend: %v", err)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(second)); resp.Status != http.StatusForbidden {
		t.Errorf("right after the suspension returned: got %s, want 403", resp)
	}
	if _, err := api.Resume(ctx, "acme"); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(second)); resp.Status != http.StatusOK {
		t.Errorf("right after the resumption returned: got %s, want 200", resp)
	}

	if _, err := api.DeleteAccount(ctx, "acme"); err != nil {
		t.Fatalf("DeleteAccount: %v", err)
	}
	if resp := acme.GET(t, "/findings", silotest.WithKey(second)); resp.Status == http.StatusOK {
		t.Errorf("right after the deletion returned: got %s, want a refusal", resp)
	}
}

// sharedPlatform opens a platform on the PostgreSQL database dsn and the
// data dir dir, shared with other platforms (several servers).
func sharedPlatform(t *testing.T, dsn, dir string, opts ...func(*platform.Config)) *silotest.Platform {
	t.Helper()
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatalf("open PostgreSQL store: %v", err)
	}
	return silotest.New(t, silotest.WithConfig(func(c *platform.Config) {
		noRefresh(c)
		c.Store, c.DataDir = st, dir
		c.Local.IdleTimeout = time.Second // the servers share the accounts' files
		for _, o := range opts {
			o(c)
		}
	}))
}

// deployShared deploys the example app through a and has each of the
// other servers load its function modules, as a server that has run for a
// while has: a first request to a server that has not compiled them yet
// would wait for the compilation no longer than the function's timeout,
// and on a busy machine get 503 "still preparing" instead of what the test
// looks at (TestRequestDuringCompilation tests that answer).
func deployShared(t *testing.T, a *silotest.Platform, others ...*silotest.Platform) {
	t.Helper()
	a.Deploy(t, app)
	for _, o := range others {
		if err := o.Platform().LoadCurrent(context.Background()); err != nil {
			t.Fatalf("load the release on another server: %v", err)
		}
	}
}

// eventually sends requests with send until one answers with a body that
// contains want, for at most a minute (the servers of these tests would not
// read again by themselves for an hour, so only an announcement gets there;
// it takes milliseconds, but a busy machine may hold it up for seconds).
func eventually(t *testing.T, what string, send func() *silotest.Response, want string) {
	t.Helper()
	start := time.Now()
	for {
		resp := send()
		if resp.Status < 300 && strings.Contains(string(resp.Body), want) {
			t.Logf("%s held on the other server after %v", what, time.Since(start).Round(time.Millisecond))
			return
		}
		if time.Since(start) > time.Minute {
			t.Fatalf("%s: the other server still answers %s, want a body with %s", what, resp, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestSecretAndConfigChangesHoldOnAnotherServer runs two platforms on one
// PostgreSQL database and one data dir, whose local providers would trust
// the config and secrets they read for an hour. A secret set and a
// parameter updated (config) through one server's API are served by the
// other server's functions once the change's announcement arrives: the
// announcement drops the provider's cached files, not only the gateway's
// view. The server that made the change serves it too. A secret deleted
// through one server then reads as never set on the other.
func TestSecretAndConfigChangesHoldOnAnotherServer(t *testing.T) {
	dsn := pgtest.Fresh(t)
	dir := filepath.Join(t.TempDir(), "silo")
	noRecheck := func(c *platform.Config) { c.Local.CacheRecheck = time.Hour }
	a := sharedPlatform(t, dsn, dir, noRecheck)
	b := sharedPlatform(t, dsn, dir, noRecheck)
	deployShared(t, a, b)
	onB := b.Tenant(t, "acme") // b creates it: its files are cached there
	onA := a.Client(onB.ID, onB.Key)
	api := apiClient(t, a.Platform())
	ctx := context.Background()
	ingest := func(tn *silotest.Tenant) func() *silotest.Response {
		return func() *silotest.Response { return tn.POST(t, "/findings", `{"severity":"high","app":"github"}`) }
	}
	list := func(tn *silotest.Tenant) func() *silotest.Response {
		return func() *silotest.Response { return tn.GET(t, "/findings") }
	}

	// Before the changes, b serves (and caches) what the account holds.
	for _, c := range []struct {
		what string
		send func() *silotest.Response
		want string
	}{
		{"no secret on b", ingest(onB), `"remediation":"manual"`},
		{"the default plan on b", list(onB), `"plan":"free"`},
	} {
		if resp := c.send(); resp.Status >= 300 || !strings.Contains(string(resp.Body), c.want) {
			t.Fatalf("%s: got %s, want a body with %s", c.what, resp, c.want)
		}
	}

	// b keeps using the account from here on, so its cached files stay
	// warm (an account unused for about a second is dropped from the cache
	// anyway); a uses it only at the end, as a request there waits for b
	// to close the account's table file.
	if err := api.SetSecret(ctx, "acme", "github-token", []byte("ghp_new")); err != nil {
		t.Fatalf("SetSecret: %v", err)
	}
	eventually(t, "the secret set through a", ingest(onB), `"remediation":"available"`)
	if _, err := api.UpdateParams(ctx, "acme", map[string]string{"plan": "pro"}, ""); err != nil {
		t.Fatalf("UpdateParams: %v", err)
	}
	eventually(t, "the plan updated through a", list(onB), `"plan":"pro"`)

	if resp := ingest(onA)(); !strings.Contains(string(resp.Body), `"remediation":"available"`) {
		t.Errorf("on a, the server that set the secret: got %s, want remediation available", resp)
	}
	if resp := list(onA)(); !strings.Contains(string(resp.Body), `"plan":"pro"`) {
		t.Errorf("on a, the server that updated the plan: got %s, want plan pro", resp)
	}

	// A secret deleted through a reads as never set on b too (b's first
	// request waits for a to close the account's table file, which a's
	// requests above opened: about Local.IdleTimeout).
	if deleted, err := api.DeleteSecret(ctx, "acme", "github-token"); err != nil || !deleted {
		t.Fatalf("DeleteSecret = %v, %v; want true, nil", deleted, err)
	}
	eventually(t, "the secret deleted through a", ingest(onB), `"remediation":"manual"`)
}

// TestChangesHoldOnAnotherServer runs two platforms on one PostgreSQL
// database and one data dir. A key revoked and an account suspended through
// one server's API are refused by the other server's gateway once the
// change's announcement arrives, which the test waits for (a few seconds at
// most): the gateways trust their cache for an hour, so nothing but the
// announcement can make the other server see the change in time.
func TestChangesHoldOnAnotherServer(t *testing.T) {
	dsn := pgtest.Fresh(t)
	dir := filepath.Join(t.TempDir(), "silo")
	a := sharedPlatform(t, dsn, dir)
	b := sharedPlatform(t, dsn, dir)
	deployShared(t, a, b)
	acme := b.Tenant(t, "acme") // b creates it: its files are open there
	api := apiClient(t, a.Platform())
	ctx := context.Background()

	if resp := acme.GET(t, "/findings"); resp.Status != http.StatusOK {
		t.Fatalf("on b before any change: got %s, want 200", resp)
	}
	keys, err := api.Keys(ctx, "acme")
	if err != nil || len(keys) != 1 {
		t.Fatalf("Keys through a: got %v, %v, want the key b issued", keys, err)
	}
	second, _, err := api.IssueKey(ctx, "acme", "second")
	if err != nil {
		t.Fatalf("IssueKey: %v", err)
	}
	// eventually polls b until want holds, for at most a minute (the
	// gateway would not read the store again by itself for an hour).
	eventually := func(what string, key string, want int) {
		t.Helper()
		start := time.Now()
		for {
			resp := acme.GET(t, "/findings", silotest.WithKey(key))
			if resp.Status == want {
				t.Logf("%s held on the other server after %v", what, time.Since(start).Round(time.Millisecond))
				return
			}
			if time.Since(start) > time.Minute {
				t.Fatalf("%s: the other server still answers %s, want %d", what, resp, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	eventually("a key issued through a", second, http.StatusOK)
	if err := api.RevokeKey(ctx, "acme", keys[0].ID); err != nil {
		t.Fatalf("RevokeKey: %v", err)
	}
	eventually("the revocation", acme.Key, http.StatusUnauthorized)
	if resp := acme.GET(t, "/findings", silotest.WithKey(second)); resp.Status != http.StatusOK {
		t.Fatalf("on b, the key not revoked: got %s, want 200", resp)
	}
	if _, err := api.Suspend(ctx, "acme"); err != nil {
		t.Fatalf("Suspend: %v", err)
	}
	eventually("the suspension", second, http.StatusForbidden)
	if _, err := api.Resume(ctx, "acme"); err != nil {
		t.Fatalf("Resume: %v", err)
	}
	eventually("the resumption", second, http.StatusOK)

	// The state both servers read is one: the account as a sees it.
	got, err := api.Show(ctx, "acme")
	if err != nil || got.Account.State != silo.StateActive {
		t.Errorf("acme through a: got %+v, %v, want active", got.Account, err)
	}
}

// TestRolloutEndIsAnnounced runs a platform on a PostgreSQL store and
// listens to the store's change feed as another server does: a rollout
// that finishes, and a rollback that finishes, each announce a release
// made current (every account, "release") as they end, so the other
// servers compile it ahead at once rather than at their next periodic look
// (30 s). Its twin: an aborted rollout, which makes nothing current,
// announces no such change before a marker announced after it.
func TestRolloutEndIsAnnounced(t *testing.T) {
	dsn := pgtest.Fresh(t)
	dir := filepath.Join(t.TempDir(), "silo")
	a := sharedPlatform(t, dsn, dir)
	app := silotest.CopyExample(t)
	a.Deploy(t, app)
	acme := a.Tenant(t, "acme", silotest.Param("plan", "pro")) // in the canary ring, which bakes on traffic
	pa := a.Platform()
	ctx := context.Background()

	other, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { other.Close() })
	changes := make(chan store.Change, 1024)
	lctx, stop := context.WithCancel(ctx)
	t.Cleanup(stop)
	go other.Listen(lctx, func(c store.Change) { changes <- c })
	// next returns the next change other receives but resyncs; a minute
	// bounds a busy machine, the announcement itself takes milliseconds.
	next := func() store.Change {
		t.Helper()
		for {
			select {
			case c := <-changes:
				if c.What != store.ChangeResync {
					return c
				}
			case <-time.After(time.Minute):
				t.Fatal("no change announced within a minute")
			}
		}
	}
	// Wait until the listener is connected: it sees a marker announced now.
	marker := func(name string) {
		t.Helper()
		if err := pa.Plane.Announce(ctx, store.Change{Account: silo.AccountID(name), What: "marker"}); err != nil {
			t.Fatal(err)
		}
	}
	for connected := false; !connected; {
		marker("ready")
		select {
		case c := <-changes:
			connected = c.What == "marker" || c.What == store.ChangeResync
		case <-time.After(100 * time.Millisecond):
		}
	}
	// madeCurrent reads changes until the announcement of a release made
	// current, failing at the marker name (if any) first.
	madeCurrent := func(upTo string) bool {
		t.Helper()
		for {
			c := next()
			if c.Account == "" && c.What == "release" {
				return true
			}
			if c.What == "marker" && string(c.Account) == upTo {
				return false
			}
		}
	}
	run := func(what string, ro rollout.Rollout, err error) rollout.Rollout {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		fed := false
		return waitRollout(t, pa.Runner, ro.ID, what+" done", func(r rollout.Rollout) bool {
			if ringPhase(r, "canary") == rollout.PhaseBaking {
				if !fed {
					fed = true
					for range 20 { // traffic for the canary's gate
						acme.GET(t, "/findings")
					}
				}
				a.Clock().Advance(10 * time.Second) // on to the bake's end
			}
			return !r.State.Active()
		})
	}

	edit(t, app, "v2")
	rel, err := pa.Build(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	ro, err := pa.Runner.Start(ctx, rel.ID, rollout.Options{})
	ro = run("rollout", ro, err)
	if ro.State != rollout.StateSucceeded {
		t.Fatalf("rollout: %s (%s), want succeeded", ro.State, ro.Reason)
	}
	marker("after-rollout")
	if !madeCurrent("after-rollout") {
		t.Error("the rollout's end announced no release made current")
	}

	rb, err := pa.Runner.Rollback(ctx, ro.ID, rollout.Options{})
	if rb = run("rollback", rb, err); rb.State != rollout.StateSucceeded {
		t.Fatalf("rollback: %s (%s), want succeeded", rb.State, rb.Reason)
	}
	marker("after-rollback")
	if !madeCurrent("after-rollback") {
		t.Error("the rollback's end announced no release made current")
	}

	// The twin: an aborted rollout makes nothing current and announces
	// no release made current.
	edit(t, app, "v3")
	rel3, err := pa.Build(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	r3, err := pa.Runner.Start(ctx, rel3.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	waitRollout(t, pa.Runner, r3.ID, "canary baking", func(r rollout.Rollout) bool { return ringPhase(r, "canary") == rollout.PhaseBaking })
	if _, err := pa.Runner.Abort(ctx, r3.ID); err != nil {
		t.Fatal(err)
	}
	if r3 = run("aborted rollout", r3, nil); r3.State == rollout.StateSucceeded {
		t.Fatalf("aborted rollout: %s, want it not to succeed", r3.State)
	}
	marker("after-abort")
	if madeCurrent("after-abort") {
		t.Error("an aborted rollout announced a release made current")
	}
}
