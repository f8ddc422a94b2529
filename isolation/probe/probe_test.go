package probe_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/probe"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/runtime"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/silotest"
	"github.com/silo-run/silo/store"
)

// guest is the probe guest, built once per test binary.
var guest []byte

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "silo-probe-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	guest, err = probe.BuildGuest(context.Background(), dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "build probe guest:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// deployment starts an in-process platform running the findings example
// app with two real tenants, and returns it with a target for it.
func deployment(t *testing.T, opts ...silotest.Option) (*silotest.Platform, probe.Target) {
	t.Helper()
	sp := silotest.New(t, opts...)
	sp.Deploy(t, filepath.Join("..", "..", "examples", "findings"))
	sp.Tenant(t, "acme", silotest.Param("plan", "pro"), silotest.Secret("github-token", "acme-token"))
	sp.Tenant(t, "globex")
	p := sp.Platform()
	key, err := report.LoadOrCreateKey(p.Config().DataDir)
	if err != nil {
		t.Fatal(err)
	}
	return sp, probe.Target{
		Gateway: sp.URL(), BaseDomain: p.Config().BaseDomain,
		Control: p, Store: p.Store, Provider: p.Provider, Runtime: p.Runtime,
		Logs: p.Logs, Report: reportOf(p, key), ReportKeys: []string{report.Fingerprint(key.Public().(ed25519.PublicKey))},
		Guest: guest, Logf: t.Logf,
	}
}

// reportOf issues the isolation reports of p signed with key, as silo
// report does.
func reportOf(p *platform.Platform, key ed25519.PrivateKey) func(context.Context, silo.AccountID) ([]byte, error) {
	return func(ctx context.Context, id silo.AccountID) ([]byte, error) {
		return server.TenantReport(ctx, p.Store, p.Plane, p.Provider, key, id, "json", time.Now())
	}
}

func run(t *testing.T, tg probe.Target) probe.Report {
	t.Helper()
	rep, err := probe.Run(context.Background(), tg)
	var b strings.Builder
	rep.Text(&b)
	t.Log("\n" + b.String())
	if err != nil {
		t.Fatalf("probe run: %v", err)
	}
	return rep
}

func surface(rep probe.Report, name string) probe.SurfaceResult {
	for _, s := range rep.Surfaces {
		if s.Name == name {
			return s
		}
	}
	return probe.SurfaceResult{}
}

// assertGone checks that no probe account is left in the store or provider.
func assertGone(t *testing.T, sp *silotest.Platform) {
	t.Helper()
	p := sp.Platform()
	ids, err := p.Provider.Accounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		if strings.HasPrefix(string(id), "probe-") {
			t.Errorf("probe account %s is still held by the provider", id)
		}
	}
	accts, err := p.Plane.Accounts(context.Background(), store.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range accts {
		if strings.HasPrefix(string(a.ID), "probe-") && a.State != silo.StateDeleted {
			t.Errorf("probe account %s is %s, not deleted", a.ID, a.State)
		}
	}
}

func TestProbeSuitePassesOnTheRealPlatform(t *testing.T) {
	sp, tg := deployment(t)
	rep := run(t, tg)
	if !rep.OK() {
		t.Fatalf("probe suite failed on a correct platform: %s\n%s", rep.Summary(), strings.Join(rep.Failures, "\n"))
	}
	if rep.Attempts < 100 {
		t.Errorf("only %d attempts; the suite must make at least 100", rep.Attempts)
	}
	for _, name := range probe.Surfaces {
		s := surface(rep, name)
		if s.Attempts == 0 || s.Controls == 0 {
			t.Errorf("surface %q ran %d attempts and %d controls; want both", name, s.Attempts, s.Controls)
		}
	}
	// The corpus must reach both layers: the decision point (denied) and
	// the data plane (invalid keys, and calls confined to A's own data).
	hc := surface(rep, "host-calls")
	for _, o := range []string{"denied", "invalid", "not found", "ok"} {
		if hc.Outcomes[o] == 0 {
			t.Errorf("no host-call attempt was answered %q (outcomes %v); the corpus does not reach that layer", o, hc.Outcomes)
		}
	}
	want := fmt.Sprintf("%d attempts, 0 succeeded; %d controls, all succeeded", rep.Attempts, rep.Controls)
	if rep.Summary() != want {
		t.Errorf("summary %q, want %q", rep.Summary(), want)
	}
	assertGone(t, sp)
}

// TestProbeSuiteCatchesHostBoundToWrongAccount is the broken-harness twin
// of the host-call surfaces: A's function runs with the real guarded host,
// but over B's data plane. The suite must report the breach.
func TestProbeSuiteCatchesHostBoundToWrongAccount(t *testing.T) {
	sp, tg := deployment(t)
	p := sp.Platform()
	tg.Invoke = wrongAccountInvoker(p)
	rep := run(t, tg)
	if rep.OK() {
		t.Fatal("the probe suite passed although A's function was bound to B's data")
	}
	if s := surface(rep, "host-calls"); s.AttemptsSucceeded == 0 {
		t.Errorf("host-calls surface reported no successful attempt: %+v", s)
	}
	found := false
	for _, f := range rep.Failures {
		found = found || strings.Contains(f, "secret") && strings.Contains(f, "came back")
	}
	if !found {
		t.Errorf("no failure says B's secret came back to A:\n%s", strings.Join(rep.Failures, "\n"))
	}
	// Counters: B's counter moved, and an add's marker key landed in B.
	for _, want := range []string{"adds changed B's counter", "A: kv.add name="} {
		found = false
		for _, f := range rep.Failures {
			found = found || strings.Contains(f, want)
		}
		if !found {
			t.Errorf("no failure says %q:\n%s", want, strings.Join(rep.Failures, "\n"))
		}
	}
	assertGone(t, sp)
}

// TestProbeSuiteCatchesGatewayRoutingByKey is the broken-harness twin of
// the gateway surface: a front proxy that routes each request to the
// tenant its key names, whatever host or path it addressed.
func TestProbeSuiteCatchesGatewayRoutingByKey(t *testing.T) {
	sp, tg := deployment(t)
	front := httptest.NewServer(routeByKey(sp.Platform().Handler()))
	t.Cleanup(front.Close)
	tg.Gateway = front.URL
	rep := run(t, tg)
	if rep.OK() {
		t.Fatal("the probe suite passed behind a proxy that routes by key")
	}
	s := surface(rep, "gateway")
	if s.AttemptsSucceeded == 0 {
		t.Fatalf("gateway surface reported no successful attempt: %+v", s)
	}
	found := false
	for _, f := range rep.Failures {
		found = found || strings.Contains(f, "A's key on B's host (Authorization)")
	}
	if !found {
		t.Errorf("no failure names A's key on B's host:\n%s", strings.Join(rep.Failures, "\n"))
	}
	assertGone(t, sp)
}

// TestProbeSuiteCatchesUnboundedInstanceHeap is the broken-harness twin of
// the hostile-modules surface: a runtime whose per-instance host heap
// budget is unbounded deploys every hostile module, and the suite must
// report each one.
func TestProbeSuiteCatchesUnboundedInstanceHeap(t *testing.T) {
	sp, tg := deployment(t, silotest.WithConfig(func(c *platform.Config) { c.Runtime.MaxInstanceHeap = 1 << 40 }))
	rep := run(t, tg)
	if rep.OK() {
		t.Fatal("the probe suite passed although the runtime accepts modules of any host heap")
	}
	s := surface(rep, "hostile-modules")
	if s.AttemptsSucceeded != s.Attempts || s.Attempts < 3 {
		t.Errorf("hostile-modules surface: %d of %d attempts succeeded; want all of at least 3", s.AttemptsSucceeded, s.Attempts)
	}
	if s.ControlsFailed != 0 {
		t.Errorf("hostile-modules surface: %d controls failed; the modules within the budget must still deploy", s.ControlsFailed)
	}
	assertGone(t, sp)
}

// TestProbeSuiteCatchesLogsLeftByDeletion is the broken-harness twin of
// the deletion surface: a control plane whose account deletion puts the
// account's log file back (records sealed under the destroyed key, which
// no longer read back through the log API). The suite must report it.
func TestProbeSuiteCatchesLogsLeftByDeletion(t *testing.T) {
	sp, tg := deployment(t)
	tg.Control = keepLogs{sp.Platform()}
	rep, err := probe.Run(context.Background(), tg)
	// The platform's own teardown check (VerifyGone) finds the log files
	// too, so the run also ends with that error.
	if err == nil || !strings.Contains(err.Error(), "log file") {
		t.Errorf("probe run: %v; want the teardown check to name the log file left", err)
	}
	if rep.OK() {
		t.Fatal("the probe suite passed although deleting an account left its log file")
	}
	s := surface(rep, "deletion")
	if s.AttemptsSucceeded == 0 {
		t.Fatalf("deletion surface reported no successful attempt: %+v", s)
	}
	found := false
	for _, f := range rep.Failures {
		found = found || strings.Contains(f, "log file is still on disk")
	}
	if !found {
		t.Errorf("no failure says the log file is still on disk:\n%s", strings.Join(rep.Failures, "\n"))
	}
	assertGone(t, sp)
}

// TestProbeSuiteCatchesUnpublishedReportKey is the control twin of the
// report surface: an installation that signs its reports with a key other
// than the one it publishes makes the control fail (readers who pin the
// published key would refuse genuine reports), so the run is not a pass;
// no forgery is accepted either way.
func TestProbeSuiteCatchesUnpublishedReportKey(t *testing.T) {
	sp, tg := deployment(t)
	other, _, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	tg.ReportKeys = []string{report.Fingerprint(other)}
	rep := run(t, tg)
	if got := rep.Outcome(); got != probe.OutcomeInconclusive {
		t.Fatalf("outcome %s, want %s", got, probe.OutcomeInconclusive)
	}
	s := surface(rep, "report")
	if s.ControlsFailed != 1 || s.AttemptsSucceeded != 0 {
		t.Errorf("report surface: %d controls failed, %d attempts succeeded; want 1 and 0", s.ControlsFailed, s.AttemptsSucceeded)
	}
	assertGone(t, sp)
}

// keepLogs deletes accounts through the platform but puts each one's log
// file back afterwards.
type keepLogs struct{ *platform.Platform }

func (k keepLogs) DeleteAccount(ctx context.Context, id silo.AccountID) error {
	path := logs.Path(k.Logs.Dir(), id)
	_, _ = k.Logs.Read(id, logs.Query{}) // writes the queued lines first
	b, rerr := os.ReadFile(path)
	err := k.Platform.DeleteAccount(ctx, id)
	if rerr == nil {
		if werr := os.WriteFile(path, b, 0o600); werr != nil {
			return werr
		}
	}
	return err
}

// wrongAccountInvoker runs the probe function of account "…-a" with the
// real guarded host of that account but over the data plane of "…-b": the
// binding bug the host-call probes exist to catch. Other accounts run
// correctly.
func wrongAccountInvoker(p *platform.Platform) probe.Invoker {
	return func(ctx context.Context, acct silo.AccountID, fn string, req runtime.Request) (runtime.Response, error) {
		if err := p.Policy.Load(ctx, p.Store, acct); err != nil {
			return runtime.Response{}, err
		}
		if err := p.Policy.Load(ctx, p.Store, silo.ProductionID); err != nil {
			return runtime.Response{}, err
		}
		dataOf := acct
		if strings.HasSuffix(string(acct), "-a") {
			dataOf = silo.AccountID(strings.TrimSuffix(string(acct), "-a") + "-b")
		}
		own, err := p.Provider.Data(ctx, dataOf)
		if err != nil {
			return runtime.Response{}, err
		}
		prod, err := p.Provider.Data(ctx, silo.ProductionID)
		if err != nil {
			return runtime.Response{}, err
		}
		digest, err := p.Runtime.Compile(ctx, guest)
		if err != nil {
			return runtime.Response{}, err
		}
		return p.Runtime.Invoke(ctx, runtime.Invocation{
			Account: acct, Function: fn, Digest: digest, Request: req,
			Host: isolation.FunctionHost(p.Policy, acct, fn, own, prod, nil),
		})
	}
}

// routeByKey is a broken front proxy: it sends every request to the tenant
// named in its API key, ignoring the host and path the client addressed.
func routeByKey(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		if key == "" {
			key = r.Header.Get("X-Api-Key")
		}
		if parts := strings.SplitN(key, "_", 4); len(parts) == 4 && parts[0] == "sk" {
			r.Host = parts[1] + ".localhost"
			if rest, ok := strings.CutPrefix(r.URL.Path, "/t/"); ok {
				if _, tail, ok := strings.Cut(rest, "/"); ok {
					r.URL.Path, r.URL.RawPath = "/"+tail, ""
				}
			}
		}
		next.ServeHTTP(w, r)
	})
}

// TestProbeAccountsAreDeletedWhenSetupFails: a run that cannot deploy its
// probe function fails with an error and still leaves no account behind.
func TestProbeAccountsAreDeletedWhenSetupFails(t *testing.T) {
	sp, tg := deployment(t)
	tg.Guest = []byte("\x00asm but not a module")
	rep, err := probe.Run(context.Background(), tg)
	if err == nil {
		t.Fatal("Run succeeded with a broken probe module")
	}
	t.Logf("Run: %v", err)
	if rep.OK() {
		t.Error("report is OK after a failed setup")
	}
	if s := surface(rep, "teardown"); s.Controls != 2 || s.ControlsFailed != 0 {
		t.Errorf("teardown surface %+v; want both accounts deleted and verified", s)
	}
	assertGone(t, sp)
}
