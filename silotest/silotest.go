// Package silotest starts the whole silo platform in-process for tests: the
// real SQLite store, local provider, control plane, wazero runtime, decision
// point and gateway (served over real HTTP by httptest), in a temporary
// directory, with a fake clock.
//
//	func TestIngestThenList(t *testing.T) {
//		p := silotest.New(t)
//		p.Deploy(t, "../examples/findings")
//		acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
//		resp := acme.POST(t, "/findings", `{"severity":"high","app":"github"}`)
//		if resp.Status != 201 { t.Fatalf("got %d, want 201: %s", resp.Status, resp) }
//	}
//
// Built function modules and the runtime's compiled code are cached across
// tests and test binaries in os.TempDir()/silo-test-cache (keyed by the
// content of the function's sources and the toolchain), so after the first
// build New and Deploy take a fraction of a second.
//
// It imports platform and the packages whose types it returns; nothing in
// the project but tests may import it.
package silotest

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/rollout"
)

// TB is the part of testing.TB that silotest uses; *testing.T and
// *testing.B satisfy it, and Standalone returns one for examples and
// programs.
type TB interface {
	Helper()
	Cleanup(func())
	TempDir() string
	Fatalf(format string, args ...any)
	Errorf(format string, args ...any)
	Logf(format string, args ...any)
}

// Platform is a running in-process platform. Its methods may be called from
// the test's goroutine and, except where noted, from others.
type Platform struct {
	p     *platform.Platform
	srv   *httptest.Server
	clock *Clock
	t     TB
	aws   *onAWS // set by NewAWS
}

// Option configures New.
type Option func(*platform.Config)

// WithConfig lets a test change the platform configuration (gateway limits,
// runtime limits, log bounds) before it starts.
func WithConfig(f func(*platform.Config)) Option { return Option(f) }

// CacheDir returns the directory silotest shares across tests for built
// artifacts and compiled code: $SILO_TEST_CACHE, or
// os.TempDir()/silo-test-cache.
func CacheDir() string {
	if d := os.Getenv("SILO_TEST_CACHE"); d != "" {
		return d
	}
	return filepath.Join(os.TempDir(), "silo-test-cache")
}

// Start is the fake clock's initial time.
var Start = time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)

// New starts a platform in t.TempDir() and stops it when the test ends.
// The gateway's rate limit is effectively off (the fake clock does not
// refill token buckets); set it with WithConfig to test limits.
func New(t TB, opts ...Option) *Platform {
	t.Helper()
	clock := &Clock{m: rollout.NewManualClock(Start)}
	cache := CacheDir()
	cfg := platform.Config{
		DataDir:      filepath.Join(t.TempDir(), "silo"),
		Clock:        clock.m,
		Actor:        "silotest",
		BuildCache:   filepath.Join(cache, "builds"),
		CompileCache: filepath.Join(cache, "compiled"),
		ReapEvery:    time.Hour, // the fake clock drives reaping: see Clock.Advance
		LogLevel:     slog.LevelDebug,
		Gateway:      gateway.Config{RatePerSecond: 1e6, Burst: 1e6},
	}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := platform.Open(context.Background(), cfg)
	if err != nil {
		t.Fatalf("silotest: start platform: %v", err)
	}
	sp := &Platform{p: p, clock: clock, t: t}
	clock.p = sp
	p.RunSchedules(context.Background(), clock.Now()) // schedules count from Start
	sp.srv = httptest.NewServer(p.Handler())
	ctx, stop := context.WithCancel(context.Background())
	runner := make(chan struct{})
	go func() { defer close(runner); p.ServeRollouts(ctx) }()
	t.Cleanup(func() {
		stop()
		<-runner
		sp.srv.Close()
		if err := p.Close(); err != nil {
			t.Errorf("silotest: close platform: %v", err)
		}
	})
	return sp
}

// Platform returns the underlying platform, for what the helpers do not
// cover.
func (p *Platform) Platform() *platform.Platform { return p.p }

// URL returns the gateway's base URL (http://127.0.0.1:port). Address a
// tenant with the path /t/<tenant>/... or the Host header
// <tenant>.localhost.
func (p *Platform) URL() string { return p.srv.URL }

// Clock returns the platform's fake clock.
func (p *Platform) Clock() *Clock { return p.clock }

// Deploy builds the app at path (its directory or its silo.yaml), makes it
// the current release and applies it to the production account and every
// other account. It fails the test on any error.
func (p *Platform) Deploy(t TB, path string) platform.Deployed {
	t.Helper()
	d, err := p.p.Deploy(context.Background(), path)
	if err != nil {
		t.Fatalf("silotest: deploy %s: %v", path, err)
	}
	return d
}

// TenantOption configures Tenant and Env.
type TenantOption func(*tenantOpts)

type tenantOpts struct {
	params  map[string]string
	kind    silo.Kind
	secrets map[string]string
	seed    string
}

// Param sets a tenant parameter.
func Param(k, v string) TenantOption {
	return func(o *tenantOpts) {
		if o.params == nil {
			o.params = map[string]string{}
		}
		o.params[k] = v
	}
}

// Kind sets the account kind (default tenant; developer works too).
func Kind(k silo.Kind) TenantOption { return func(o *tenantOpts) { o.kind = k } }

// Secret sets a secret of the account after it is created.
func Secret(name, value string) TenantOption {
	return func(o *tenantOpts) {
		if o.secrets == nil {
			o.secrets = map[string]string{}
		}
		o.secrets[name] = value
	}
}

// Seed loads fixture data into the account after it is created (see
// platform.Platform.Seed for the layout).
func Seed(dir string) TenantOption { return func(o *tenantOpts) { o.seed = dir } }

// Tenant creates an account on the current release (Deploy first) with an
// API key, and returns a client for it.
func (p *Platform) Tenant(t TB, id string, opts ...TenantOption) *Tenant {
	t.Helper()
	var o tenantOpts
	for _, f := range opts {
		f(&o)
	}
	ctx := context.Background()
	c, err := p.p.CreateAccount(ctx, control.CreateRequest{ID: id, Kind: o.kind, Params: o.params, WithKey: true})
	if err != nil {
		t.Fatalf("silotest: create %s: %v", id, err)
	}
	tn := &Tenant{ID: c.Account.ID, Key: c.Key, p: p}
	p.finish(t, tn, o)
	return tn
}

// Client returns a client for an existing account that authenticates with
// key (an account created by other means, or another key of a tenant).
func (p *Platform) Client(id silo.AccountID, key string) *Tenant {
	return &Tenant{ID: id, Key: key, p: p}
}

// Env creates an environment account (purpose "test" or "demo") with a
// time to live, on the current release, and returns a client for it. The
// platform tears it down when the clock passes its expiry (Clock.Advance).
func (p *Platform) Env(t TB, name, purpose string, ttl time.Duration, opts ...TenantOption) *Tenant {
	t.Helper()
	var o tenantOpts
	for _, f := range opts {
		f(&o)
	}
	e, err := p.p.CreateEnv(context.Background(), platform.EnvRequest{Name: name, Purpose: purpose, TTL: ttl, Params: o.params, Seed: o.seed})
	if err != nil {
		t.Fatalf("silotest: create environment %s: %v", name, err)
	}
	o.seed = ""
	tn := &Tenant{ID: e.Account.ID, Key: e.Key, p: p}
	p.finish(t, tn, o)
	return tn
}

func (p *Platform) finish(t TB, tn *Tenant, o tenantOpts) {
	t.Helper()
	ctx := context.Background()
	for name, v := range o.secrets {
		if err := p.p.SetSecret(ctx, tn.ID, name, []byte(v)); err != nil {
			t.Fatalf("silotest: set secret %s of %s: %v", name, tn.ID, err)
		}
	}
	if o.seed != "" {
		if err := p.p.Seed(ctx, tn.ID, o.seed); err != nil {
			t.Fatalf("silotest: seed %s: %v", tn.ID, err)
		}
	}
}

// Logs returns the retained function log of an account, oldest first, with
// the access line of every request that finished before (on AWS, what its
// functions wrote on Lambda, read from CloudWatch Logs).
func (p *Platform) Logs(t TB, acct silo.AccountID) []logs.Entry {
	t.Helper()
	if p.aws != nil {
		return p.aws.logs(t, p, acct)
	}
	p.p.Gateway.FlushAccessLog() // every request that finished before is in it
	es, err := p.p.Logs.Read(acct, logs.Query{})
	if err != nil {
		t.Fatalf("silotest: read logs of %s: %v", acct, err)
	}
	return es
}

// Metrics returns what the gateway metered for an account (nothing on
// AWS, where requests go to the tenant's own API: see Requests).
func (p *Platform) Metrics(acct silo.AccountID) gateway.Metrics { return p.p.Metrics(acct) }

// Requests returns how many requests an account's functions served: what
// the gateway metered, or on AWS what the silo Lambda host counted under
// the account's release (the counters the rollout gates read; the
// provider reads them again at most every 5 seconds).
func (p *Platform) Requests(t TB, acct silo.AccountID) uint64 {
	t.Helper()
	if p.aws != nil {
		return p.aws.requests(t, p, acct)
	}
	return uint64(p.p.Metrics(acct).Requests)
}

// Tenant is a client of one account through the gateway, over real HTTP,
// authenticated with the account's key.
type Tenant struct {
	ID  silo.AccountID
	Key string // the account's first API key, in plain text
	p   *Platform
}

// Response is a gateway response, read in full.
type Response struct {
	Status    int
	Header    http.Header
	Body      []byte
	RequestID string // the gateway's X-Request-Id
}

// String returns the status and body, for failure messages.
func (r *Response) String() string {
	return fmt.Sprintf("%d %s", r.Status, strings.TrimSpace(string(r.Body)))
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r *Response) JSON(t TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("silotest: response %s is not JSON: %v", r, err)
	}
}

// RequestOption changes one request.
type RequestOption func(*http.Request)

// Header sets a request header.
func Header(k, v string) RequestOption { return func(r *http.Request) { r.Header.Set(k, v) } }

// WithKey authenticates the request with key instead of the tenant's own
// ("" sends no key).
func WithKey(key string) RequestOption {
	return func(r *http.Request) {
		r.Header.Del("Authorization")
		if key != "" {
			r.Header.Set("Authorization", "Bearer "+key)
		}
	}
}

// ByPath addresses the tenant as /t/<tenant>/... instead of by Host header
// (silo's gateway only: on AWS each tenant has its own API).
func ByPath() RequestOption {
	return func(r *http.Request) {
		tn := strings.TrimSuffix(r.Host, ".localhost")
		r.Host = r.URL.Host
		r.URL.Path = "/t/" + tn + r.URL.Path
	}
}

// GET sends a GET to path (e.g. "/findings?severity=high") of the tenant.
func (tn *Tenant) GET(t TB, path string, opts ...RequestOption) *Response {
	t.Helper()
	return tn.Do(t, http.MethodGet, path, "", opts...)
}

// POST sends body (JSON) to path of the tenant.
func (tn *Tenant) POST(t TB, path, body string, opts ...RequestOption) *Response {
	t.Helper()
	return tn.Do(t, http.MethodPost, path, body, opts...)
}

// Do sends a request to path of the tenant through the gateway, addressing
// the tenant by Host header (<tenant>.localhost) with its key, and reads the
// whole response. Transport errors fail the test; any HTTP status is
// returned.
func (tn *Tenant) Do(t TB, method, path, body string, opts ...RequestOption) *Response {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, tn.p.srv.URL+path, rd)
	if err != nil {
		t.Fatalf("silotest: request %s %s: %v", method, path, err)
	}
	req.Host = string(tn.ID) + ".localhost"
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if tn.Key != "" {
		req.Header.Set("Authorization", "Bearer "+tn.Key)
	}
	for _, o := range opts {
		o(req)
	}
	if tn.p.aws != nil {
		return tn.p.aws.do(t, tn.p, tn, req, body)
	}
	resp, err := tn.p.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("silotest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("silotest: read response of %s %s: %v", method, path, err)
	}
	return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, RequestID: resp.Header.Get("X-Request-Id")}
}

// Clock is the platform's fake clock. It starts at Start and moves only
// when Advance is called; rollout bakes wait on it. Safe for concurrent use.
type Clock struct {
	m *rollout.ManualClock
	p *Platform
}

// Now returns the fake time.
func (c *Clock) Now() time.Time { return c.m.Now() }

// Advance moves the clock forward by d, wakes rollouts waiting for a bake
// to end, then runs what the platform's timers would have run by then: the
// reaper of expired environments, and the schedules due (each at most once
// per Advance, as after a pause of the server; advance in steps to see
// every run), waiting for their runs to end. It returns the accounts the
// reaper tore down; a reaper or schedule failure fails the test.
func (c *Clock) Advance(d time.Duration) []silo.AccountID {
	c.m.Advance(d)
	if c.p == nil {
		return nil
	}
	gone, err := c.p.p.Reap(context.Background())
	if err != nil {
		c.p.t.Errorf("silotest: reaper: %v", err)
	}
	if _, err := c.p.p.RunSchedules(context.Background(), c.Now()); err != nil {
		c.p.t.Errorf("silotest: schedules: %v", err)
	}
	c.p.p.WaitSchedules()
	return gone
}

// Standalone returns a TB for using silotest outside a test (in examples
// and programs): Fatalf panics, Errorf and Logf print to stderr, and the
// returned function runs the cleanups and removes the temp directories.
func Standalone() (TB, func()) {
	s := &standalone{}
	return s, s.done
}

type standalone struct {
	mu       sync.Mutex
	cleanups []func()
	dirs     []string
}

func (s *standalone) Helper() {}
func (s *standalone) Cleanup(f func()) {
	s.mu.Lock()
	s.cleanups = append(s.cleanups, f)
	s.mu.Unlock()
}
func (s *standalone) TempDir() string {
	d, err := os.MkdirTemp("", "silotest-*")
	if err != nil {
		panic(err)
	}
	s.mu.Lock()
	s.dirs = append(s.dirs, d)
	s.mu.Unlock()
	return d
}
func (s *standalone) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }
func (s *standalone) Errorf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "silotest: "+format+"\n", args...)
}
func (s *standalone) Logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, format+"\n", args...)
}
func (s *standalone) done() {
	s.mu.Lock()
	cs, ds := s.cleanups, s.dirs
	s.cleanups, s.dirs = nil, nil
	s.mu.Unlock()
	for i := len(cs) - 1; i >= 0; i-- {
		cs[i]()
	}
	for _, d := range ds {
		os.RemoveAll(d)
	}
}
