package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

// storeDirectory is a Directory over the real control-plane store: accounts
// and keys are the store's rows; routes are the account's recorded route
// resources, whose spec is a Route in JSON.
type storeDirectory struct{ st store.Store }

func (d storeDirectory) Account(ctx context.Context, id silo.AccountID) (a silo.Account, err error) {
	err = d.st.View(ctx, func(tx store.Tx) error { a, err = tx.Account(id); return err })
	return a, err
}

func (d storeDirectory) Key(ctx context.Context, id string) (k store.APIKey, err error) {
	err = d.st.View(ctx, func(tx store.Tx) error { k, err = tx.Key(id); return err })
	return k, err
}

func (d storeDirectory) Routes(ctx context.Context, id silo.AccountID) ([]Route, error) {
	var rs []silo.Resource
	err := d.st.View(ctx, func(tx store.Tx) (err error) { rs, err = tx.Resources(id); return err })
	if err != nil {
		return nil, err
	}
	var out []Route
	for _, r := range rs {
		if r.Type != silo.TypeRoute {
			continue
		}
		var rt Route
		if err := json.Unmarshal(r.Spec, &rt); err != nil {
			return nil, fmt.Errorf("route %s of %s: %w", r.Name, id, err)
		}
		out = append(out, rt)
	}
	return out, nil
}

// echo is a small real function: it answers with what it was given.
var echo = InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
	switch fn {
	case "fail-internal":
		return Response{}, errors.New("disk /var/lib/secret exploded")
	case "fail-invalid":
		return Response{}, silo.Errorf(silo.CodeInvalid, "field x is missing; send x")
	case "slow":
		<-ctx.Done()
		return Response{}, ctx.Err()
	case "cookie":
		return Response{Header: http.Header{"Set-Cookie": {"s=1; Domain=localhost"}, "X-Request-Id": {"forged"}, "X-Fn": {"yes"}}, Body: []byte("ok")}, nil
	}
	b, _ := json.Marshal(seen{Account: acct, Function: fn, Path: req.Path, Params: req.PathParams, Query: req.Query, Header: req.Header, Body: string(req.Body), RequestID: req.RequestID})
	return Response{Status: 200, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
})

type seen struct {
	Account   silo.AccountID
	Function  string
	Path      string
	Params    map[string]string
	Query     url.Values
	Header    http.Header
	Body      string
	RequestID string
}

var testRoutes = []Route{
	{Method: "GET", Path: "/findings", Function: "list"},
	{Method: "GET", Path: "/findings/{id}", Function: "get"},
	{Method: "POST", Path: "/findings", Function: "create"},
	{Path: "/files/{path...}", Function: "files"},
	{Path: "/echo", Function: "echo"},
	{Path: "/healthz", Function: "tenant-health"},
	{Path: "/fail/internal", Function: "fail-internal"},
	{Path: "/fail/invalid", Function: "fail-invalid"},
	{Path: "/slow", Function: "slow"},
	{Path: "/cookie", Function: "cookie"},
}

type fixture struct {
	t    testing.TB
	st   store.Store
	gw   *Gateway
	srv  *httptest.Server
	keys map[silo.AccountID]string
	logs *syncBuffer
}

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

// newFixture starts a gateway over a real SQLite store behind a real HTTP
// server configured by Gateway.Server. Tenants acme and beta are active.
func newFixture(t testing.TB, cfg Config, inv Invoker) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir()+"/state.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	logs := &syncBuffer{}
	cfg.Logger = slog.New(slog.NewTextHandler(logs, nil))
	if inv == nil {
		inv = echo
	}
	gw, err := New(cfg, storeDirectory{st}, inv)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(gw)
	srv.Config = gw.Server("")
	srv.Start()
	t.Cleanup(srv.Close)
	f := &fixture{t: t, st: st, gw: gw, srv: srv, keys: map[silo.AccountID]string{}, logs: logs}
	f.addAccount("acme", silo.KindTenant, silo.StateActive, nil)
	f.addAccount("beta", silo.KindTenant, silo.StateActive, nil)
	return f
}

// addAccount creates an account with testRoutes and one key, and returns the key.
func (f *fixture) addAccount(id silo.AccountID, kind silo.Kind, state silo.State, expires *time.Time) string {
	f.t.Helper()
	plain, k, err := apikey.New(id)
	if err != nil {
		f.t.Fatal(err)
	}
	err = f.st.Update(context.Background(), func(tx store.Tx) error {
		if err := tx.CreateAccount(silo.Account{ID: id, Kind: kind, State: state, Expires: expires}); err != nil {
			return err
		}
		for i, r := range testRoutes {
			res, err := silo.NewResource(silo.TypeRoute, fmt.Sprintf("r%02d", i), r)
			if err != nil {
				return err
			}
			if err := tx.PutResource(id, res); err != nil {
				return err
			}
		}
		return tx.PutKey(k)
	})
	if err != nil {
		f.t.Fatal(err)
	}
	f.keys[id] = plain
	return plain
}

func (f *fixture) setState(id silo.AccountID, state silo.State) {
	f.t.Helper()
	err := f.st.Update(context.Background(), func(tx store.Tx) error {
		a, err := tx.Account(id)
		if err != nil {
			return err
		}
		a.State = state
		return tx.UpdateAccount(a)
	})
	if err != nil {
		f.t.Fatal(err)
	}
}

type call struct {
	method, host, path, key string
	header                  map[string]string
	body                    string
}

type result struct {
	status int
	header http.Header
	body   []byte
}

// errCode returns the error code of a JSON error body, or "".
func (r result) errCode() silo.Code {
	var e errorBody
	_ = json.Unmarshal(r.body, &e)
	return e.Error.Code
}

func (f *fixture) do(c call) result {
	f.t.Helper()
	if c.method == "" {
		c.method = "GET"
	}
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	req, err := http.NewRequest(c.method, f.srv.URL+c.path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if c.host != "" {
		req.Host = c.host
	}
	if c.key != "" {
		req.Header.Set("Authorization", "Bearer "+c.key)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	// net/http answers 431 itself, before the gateway sees the request.
	if resp.Header.Get("X-Request-Id") == "" && resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		f.t.Errorf("%s %s %s: no X-Request-Id", c.method, c.host, c.path)
	}
	return result{resp.StatusCode, resp.Header, b}
}

func TestTenantResolution(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	acme := f.keys["acme"]
	tests := []struct {
		name       string
		host, path string
		want       int
		wantParams map[string]string
		wantFn     string
		wantPath   string
	}{
		{name: "host form", host: "acme.localhost", path: "/findings/42", want: 200, wantFn: "get", wantParams: map[string]string{"id": "42"}, wantPath: "/findings/42"},
		{name: "path form", host: "localhost", path: "/t/acme/findings/42", want: 200, wantFn: "get", wantParams: map[string]string{"id": "42"}, wantPath: "/findings/42"},
		{name: "both agree", host: "acme.localhost", path: "/t/acme/findings", want: 200, wantFn: "list", wantPath: "/findings"},
		{name: "host and path disagree", host: "acme.localhost", path: "/t/beta/findings", want: 400},
		{name: "host and bad path label", host: "acme.localhost", path: "/t/ACME/findings", want: 400},
		{name: "upper-case host", host: "ACME.LocalHost", path: "/findings", want: 200, wantFn: "list", wantPath: "/findings"},
		{name: "host with port", host: "acme.localhost:8080", path: "/findings", want: 200, wantFn: "list", wantPath: "/findings"},
		{name: "trailing dot", host: "acme.localhost.", path: "/findings", want: 200, wantFn: "list", wantPath: "/findings"},
		{name: "trailing dot and port", host: "acme.localhost.:80", path: "/findings", want: 200, wantFn: "list", wantPath: "/findings"},
		{name: "IPv6 literal with path form", host: "[::1]:8080", path: "/t/acme/findings", want: 200, wantFn: "list", wantPath: "/findings"},
		{name: "IPv4 literal with path form", host: "127.0.0.1", path: "/t/acme/findings", want: 200, wantFn: "list", wantPath: "/findings"},
		{name: "IPv6 literal alone", host: "[::1]", path: "/findings", want: 404},
		{name: "base host alone", host: "localhost", path: "/findings", want: 404},
		{name: "foreign suffix", host: "acme.localhost.evil.com", path: "/findings", want: 404},
		{name: "foreign host", host: "evil.com", path: "/t/acme/findings", want: 404},
		{name: "empty label", host: "acme..localhost", path: "/findings", want: 404},
		{name: "two labels", host: "x.acme.localhost", path: "/findings", want: 404},
		{name: "reserved production", host: "production.localhost", path: "/findings", want: 404},
		{name: "underscore label", host: "ac_me.localhost", path: "/findings", want: 404},
		{name: "bad port", host: "acme.localhost:80x", path: "/findings", want: 404},
		{name: "empty path label", host: "localhost", path: "/t//findings", want: 404},
		{name: "upper-case path label", host: "localhost", path: "/t/ACME/findings", want: 404},
		{name: "escaped path label", host: "localhost", path: "/t/%61cme/findings", want: 404},
		{name: "path root of tenant", host: "localhost", path: "/t/acme", want: 404},
		{name: "traversal out of tenant", host: "localhost", path: "/t/acme/../beta/findings", want: 400},
		{name: "encoded traversal", host: "acme.localhost", path: "/findings/%2e%2e", want: 400},
		{name: "dot segment", host: "acme.localhost", path: "/./findings", want: 400},
		{name: "double slash", host: "acme.localhost", path: "//findings", want: 400},
		{name: "NUL in segment", host: "acme.localhost", path: "/findings/a%00b", want: 400},
		{name: "escaped slash stays in segment", host: "acme.localhost", path: "/findings/a%2Fb", want: 200, wantFn: "get", wantParams: map[string]string{"id": "a/b"}, wantPath: "/findings/a%2Fb"},
		{name: "rest wildcard", host: "acme.localhost", path: "/files/a/b.txt", want: 200, wantFn: "files", wantParams: map[string]string{"path": "a/b.txt"}, wantPath: "/files/a/b.txt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(call{host: tt.host, path: tt.path, key: acme})
			if r.status != tt.want {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.want)
			}
			if tt.want != 200 {
				if r.errCode() == "" {
					t.Fatalf("error body %q is not a JSON error", r.body)
				}
				return
			}
			var s seen
			if err := json.Unmarshal(r.body, &s); err != nil {
				t.Fatal(err)
			}
			want := seen{Account: "acme", Function: tt.wantFn, Path: tt.wantPath, Params: tt.wantParams}
			got := seen{Account: s.Account, Function: s.Function, Path: s.Path, Params: s.Params}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Fatalf("function saw (-want +got):\n%s", diff)
			}
		})
	}
}

func TestHealthz(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	if r := f.do(call{host: "localhost:1234", path: "/healthz"}); r.status != 200 || string(r.body) != "{\"status\":\"ok\"}\n" {
		t.Fatalf("base host: got %d %s, want 200 ok", r.status, r.body)
	}
	// On a tenant host /healthz is the tenant's path like any other.
	if r := f.do(call{host: "acme.localhost", path: "/healthz"}); r.status != 401 {
		t.Fatalf("tenant host without key: got %d, want 401", r.status)
	}
	if r := f.do(call{host: "acme.localhost", path: "/healthz", key: f.keys["acme"]}); r.status != 200 || !strings.Contains(string(r.body), "tenant-health") {
		t.Fatalf("tenant host with key: got %d %s, want the tenant's function", r.status, r.body)
	}
}

// comparable strips what legitimately differs between two responses.
func comparable(r result) result {
	h := r.header.Clone()
	body := r.body
	if rid := h.Get("X-Request-Id"); rid != "" {
		body = bytes.ReplaceAll(body, []byte(rid), []byte("RID")) // the error body names it too
	}
	h.Del("X-Request-Id")
	h.Del("Date")
	return result{r.status, h, body}
}

func TestAuthentication(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	acme, beta := f.keys["acme"], f.keys["beta"]
	revoked := f.addAccount("gamma", silo.KindTenant, silo.StateActive, nil)
	err := f.st.Update(context.Background(), func(tx store.Tx) error {
		id, _ := apikey.Parse(revoked)
		k, err := tx.Key(id)
		if err != nil {
			return err
		}
		at := time.Now().Add(-time.Minute)
		k.Revoked = &at
		return tx.PutKey(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	forged := acme[:len(acme)-4] + "aaaa"

	tests := []struct {
		name   string
		host   string
		key    string
		header map[string]string
		want   int
	}{
		{name: "A's key on A", host: "acme.localhost", key: acme, want: 200},
		{name: "B's key on B", host: "beta.localhost", key: beta, want: 200},
		{name: "B's key on A", host: "acme.localhost", key: beta, want: 403},
		{name: "A's key on B", host: "beta.localhost", key: acme, want: 403},
		{name: "A's key on B by path", host: "localhost", key: acme, want: 403},
		{name: "X-Api-Key", host: "acme.localhost", header: map[string]string{"X-Api-Key": acme}, want: 200},
		{name: "lower-case bearer", host: "acme.localhost", header: map[string]string{"Authorization": "bearer " + acme}, want: 200},
		{name: "no key", host: "acme.localhost", want: 401},
		{name: "forged secret", host: "acme.localhost", key: forged, want: 401},
		{name: "garbage key", host: "acme.localhost", key: "hunter2", want: 401},
		{name: "basic auth", host: "acme.localhost", header: map[string]string{"Authorization": "Basic " + acme}, want: 401},
		{name: "revoked key", host: "gamma.localhost", key: revoked, want: 401},
		{name: "unknown tenant without key", host: "nosuch.localhost", want: 401},
		{name: "unknown tenant with A's key", host: "nosuch.localhost", key: acme, want: 403},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := "/findings"
			if tt.host == "localhost" {
				path = "/t/beta/findings"
			}
			r := f.do(call{host: tt.host, path: path, key: tt.key, header: tt.header})
			if r.status != tt.want {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.want)
			}
			if tt.want == 401 && r.header.Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}

	// Nothing an unauthenticated or wrongly keyed client sees depends on
	// whether the tenant exists.
	pairs := []struct {
		name     string
		key      string
		existing string
	}{
		{"no key", "", "beta.localhost"},
		{"forged key", forged, "beta.localhost"},
		{"another account's key", acme, "beta.localhost"},
	}
	for _, p := range pairs {
		t.Run("existence hidden/"+p.name, func(t *testing.T) {
			known := f.do(call{host: p.existing, path: "/findings", key: p.key})
			unknown := f.do(call{host: "nosuch.localhost", path: "/findings", key: p.key})
			if known.status == 200 {
				t.Fatal("control failed: request succeeded")
			}
			if diff := cmp.Diff(comparable(known), comparable(unknown), cmp.AllowUnexported(result{})); diff != "" {
				t.Fatalf("known and unknown tenant differ (-known +unknown):\n%s", diff)
			}
		})
	}
}

func TestAccountStates(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	past, future := time.Now().Add(-time.Hour), time.Now().Add(time.Hour)
	f.addAccount("dev-alice", silo.KindDeveloper, silo.StateActive, nil)
	f.addAccount("env-live", silo.KindEnvironment, silo.StateActive, &future)
	f.addAccount("env-gone", silo.KindEnvironment, silo.StateActive, &past)
	f.addAccount("prov", silo.KindTenant, silo.StateProvisioning, nil)
	f.addAccount("susp", silo.KindTenant, silo.StateActive, nil)
	f.setState("susp", silo.StateSuspended)
	f.addAccount("del", silo.KindTenant, silo.StateActive, nil)
	f.setState("del", silo.StateDeleting)

	tests := []struct {
		acct silo.AccountID
		want int
	}{
		{"acme", 200},
		{"dev-alice", 200},
		{"env-live", 200},
		{"env-gone", 404},
		{"prov", 503},
		{"susp", 403},
		{"del", 404},
	}
	for _, tt := range tests {
		t.Run(string(tt.acct), func(t *testing.T) {
			r := f.do(call{host: string(tt.acct) + ".localhost", path: "/findings", key: f.keys[tt.acct]})
			if r.status != tt.want {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.want)
			}
			if tt.want == 403 && (r.errCode() != silo.CodeForbidden || !strings.Contains(string(r.body), "suspended")) {
				t.Fatalf("got %s, want a JSON error saying the tenant is suspended", r.body)
			}
		})
	}
}

func TestRoutesAndErrors(t *testing.T) {
	f := newFixture(t, Config{InvokeTimeout: 50 * time.Millisecond}, nil)
	key := f.keys["acme"]
	tests := []struct {
		name, method, path string
		want               int
		wantCode           silo.Code
		wantAllow          string
	}{
		{name: "list", method: "GET", path: "/findings", want: 200},
		{name: "HEAD served by GET", method: "HEAD", path: "/findings", want: 200},
		{name: "create", method: "POST", path: "/findings", want: 200},
		{name: "method not allowed", method: "DELETE", path: "/findings", want: 405, wantCode: silo.CodeNotAllowed, wantAllow: "GET, HEAD, POST"},
		{name: "no route", method: "GET", path: "/nothing", want: 404, wantCode: silo.CodeNotFound},
		{name: "function error shown", method: "GET", path: "/fail/invalid", want: 400, wantCode: silo.CodeInvalid},
		{name: "internal error hidden", method: "GET", path: "/fail/internal", want: 500, wantCode: silo.CodeInternal},
		{name: "function timeout", method: "GET", path: "/slow", want: 503, wantCode: silo.CodeUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(call{method: tt.method, host: "acme.localhost", path: tt.path, key: key})
			if r.status != tt.want {
				t.Fatalf("got %d %s, want %d", r.status, r.body, tt.want)
			}
			if tt.method != "HEAD" && r.errCode() != tt.wantCode {
				t.Fatalf("got code %q, want %q", r.errCode(), tt.wantCode)
			}
			if got := r.header.Get("Allow"); got != tt.wantAllow {
				t.Fatalf("got Allow %q, want %q", got, tt.wantAllow)
			}
		})
	}
	r := f.do(call{host: "acme.localhost", path: "/fail/internal", key: key})
	if strings.Contains(string(r.body), "exploded") {
		t.Fatalf("internal error text leaked: %s", r.body)
	}
	if !strings.Contains(f.logs.String(), "exploded") {
		t.Fatalf("internal error not logged; log:\n%s", f.logs)
	}
	if r := f.do(call{host: "acme.localhost", path: "/fail/invalid", key: key}); !strings.Contains(string(r.body), "field x is missing") {
		t.Fatalf("function's user message not shown: %s", r.body)
	}
}

func TestHeaders(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	key := f.keys["acme"]
	r := f.do(call{host: "acme.localhost", path: "/echo", header: map[string]string{
		"X-Api-Key": key, "Cookie": "session=secret", "Proxy-Authorization": "Basic x", "X-Custom": "kept", "X-Request-Id": "client-id-1",
	}})
	if r.status != 200 {
		t.Fatalf("got %d %s", r.status, r.body)
	}
	var s seen
	if err := json.Unmarshal(r.body, &s); err != nil {
		t.Fatal(err)
	}
	for _, h := range []string{"Authorization", "X-Api-Key", "Cookie", "Proxy-Authorization"} {
		if _, ok := s.Header[h]; ok {
			t.Errorf("function saw %s", h)
		}
	}
	if s.Header.Get("X-Custom") != "kept" {
		t.Errorf("control: function did not see X-Custom")
	}
	if s.RequestID != "client-id-1" || r.header.Get("X-Request-Id") != "client-id-1" {
		t.Errorf("got request ID %q/%q, want the client's well-formed ID", s.RequestID, r.header.Get("X-Request-Id"))
	}

	bad := f.do(call{host: "acme.localhost", path: "/echo", key: key, header: map[string]string{"X-Request-Id": "bad id\t<script>"}})
	if got := bad.header.Get("X-Request-Id"); got == "" || strings.ContainsAny(got, " <") {
		t.Errorf("got request ID %q, want a generated one", got)
	}

	c := f.do(call{host: "acme.localhost", path: "/cookie", key: key, header: map[string]string{"X-Request-Id": "rid-2"}})
	if c.header.Get("Set-Cookie") != "" || c.header.Get("X-Request-Id") != "rid-2" {
		t.Errorf("function set Set-Cookie %q or X-Request-Id %q", c.header.Get("Set-Cookie"), c.header.Get("X-Request-Id"))
	}
	if c.header.Get("X-Fn") != "yes" {
		t.Errorf("control: function's own header dropped")
	}
}

// TestQueryForwarded: the function gets the request's query, every value of
// each parameter in order; a request without one gets an empty query.
func TestQueryForwarded(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	for _, tc := range []struct {
		path string
		want url.Values
	}{
		{"/echo?a=1&b=x%20y&a=3", url.Values{"a": {"1", "3"}, "b": {"x y"}}},
		{"/echo?flag", url.Values{"flag": {""}}},
		{"/echo", url.Values{}},
	} {
		r := f.do(call{host: "acme.localhost", path: tc.path, key: f.keys["acme"]})
		var s seen
		if err := json.Unmarshal(r.body, &s); r.status != 200 || err != nil {
			t.Fatalf("%s: %d %s", tc.path, r.status, r.body)
		}
		if fmt.Sprint(s.Query) != fmt.Sprint(tc.want) {
			t.Errorf("%s: function saw query %v, want %v", tc.path, s.Query, tc.want)
		}
	}
}

func TestMetrics(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	key := f.keys["acme"]
	f.do(call{method: "POST", host: "acme.localhost", path: "/echo", key: key, body: "hello"})
	f.do(call{host: "acme.localhost", path: "/fail/internal", key: key})
	f.do(call{host: "acme.localhost", path: "/fail/invalid", key: key})
	f.do(call{host: "acme.localhost", path: "/findings"})                      // unauthenticated: not metered
	f.do(call{host: "acme.localhost", path: "/findings", key: f.keys["beta"]}) // B's key: not A's traffic
	m := f.gw.Metrics("acme")
	if m.Requests != 3 || m.Errors != 2 || m.BytesIn != 5 || m.BytesOut == 0 || m.Duration <= 0 || m.Limited != 0 {
		t.Fatalf("got %+v, want 3 requests, 2 errors, 5 bytes in", m)
	}
	if m := f.gw.Metrics("nosuch"); m != (Metrics{}) {
		t.Fatalf("unknown account: got %+v", m)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{{BaseDomain: "bad_domain"}, {BaseDomain: "a..b"}, {MaxBodyBytes: -1}, {RatePerSecond: -1}, {IdleTimeout: -1}} {
		if err := c.Validate(); silo.ErrorCode(err) != silo.CodeInvalid {
			t.Errorf("%+v: got %v, want invalid", c, err)
		}
	}
	c := Config{BaseDomain: "SaaS.Example.COM.", InvokeTimeout: time.Second}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if c.BaseDomain != "saas.example.com" || c.WriteTimeout != 11*time.Second || c.Burst != 2000 {
		t.Fatalf("got %+v", c)
	}
}
