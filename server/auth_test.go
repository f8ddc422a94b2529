package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/server"
)

// answer sends one request, with the operator token when tok is set, and
// returns the status and the decoded error object (zero when the body is
// not one).
func answer(t *testing.T, f *fixture, method, path string, tok bool) (int, server.ErrorBody) {
	t.Helper()
	resp, b := send(t, f, method, path, "", tok)
	var eb server.ErrorBody
	_ = json.Unmarshal(b, &eb)
	return resp.StatusCode, eb
}

// send sends one request with body, and the operator token when tok is
// set, and returns the answer and its body (read and closed).
func send(t *testing.T, f *fixture, method, path, body string, tok bool) (*http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.url+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if tok {
		req.Header.Set("Authorization", "Bearer "+f.token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

var (
	wildcard = regexp.MustCompile(`\{[^}]+\}`)
	register = regexp.MustCompile(`\.mux\.Handle(Func)?\(`)
)

// TestEveryRouteNeedsTheToken: every route the server registers, walked
// from the server itself, answers a request without the operator token
// with 401 unauthenticated, whatever its path wildcards hold; only GET
// /v1/health and GET /v1/report-key (public keys, for customers' reviewers)
// answer. A path some route serves needs the token even with
// a method it is not served with. The twin: with the token, no route
// answers 401.
func TestEveryRouteNeedsTheToken(t *testing.T) {
	f := start(t)
	routes := f.srv.Routes()
	if len(routes) < 40 {
		t.Fatalf("the server lists %d routes, want every route (over 40)", len(routes))
	}
	for _, pattern := range routes {
		method, path, ok := strings.Cut(pattern, " ")
		if !ok || !strings.HasPrefix(path, "/v1/") {
			t.Errorf("route %q is not METHOD /v1/…", pattern)
			continue
		}
		path = wildcard.ReplaceAllString(path, "x1")
		t.Run(pattern, func(t *testing.T) {
			status, eb := answer(t, f, method, path, false)
			if pattern == "GET /v1/health" || pattern == "GET /v1/report-key" {
				if status == http.StatusUnauthorized {
					t.Errorf("%s %s without a token: 401, want the endpoint's own answer", method, path)
				}
				return
			}
			if status != http.StatusUnauthorized || method != http.MethodHead && eb.Error.Code != silo.CodeUnauthenticated { // HEAD: no body
				t.Errorf("%s %s without a token: %d %+v, want 401 unauthenticated", method, path, status, eb)
			}
			if status, _ := answer(t, f, method, path, true); status == http.StatusUnauthorized {
				t.Errorf("%s %s with the token: 401, want the endpoint's own answer", method, path)
			}
		})
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodDelete, "/v1/releases"},
		{http.MethodPut, "/v1/accounts/acme"},
	} {
		if status, eb := answer(t, f, tc.method, tc.path, false); status != http.StatusUnauthorized || eb.Error.Code != silo.CodeUnauthenticated {
			t.Errorf("%s %s (a served path, another method) without a token: %d %+v, want 401", tc.method, tc.path, status, eb)
		}
		if status, _ := answer(t, f, tc.method, tc.path, true); status != http.StatusMethodNotAllowed {
			t.Errorf("%s %s with the token: %d, want 405", tc.method, tc.path, status)
		}
	}
}

// TestUnknownPathIs404WithOrWithoutToken: a path no route serves answers
// 404 not_found with the documented error object whether or not the
// request carries the token, rather than telling the client to
// authenticate for an endpoint that does not exist.
func TestUnknownPathIs404WithOrWithoutToken(t *testing.T) {
	f := start(t)
	for _, tc := range []struct{ method, path string }{
		{http.MethodGet, "/v1/nosuch"},
		{http.MethodGet, "/nosuch"},
		{http.MethodPost, "/v1/accounts/acme/nosuch"},
		{http.MethodGet, "/v1/rollouts/ro-000001/rollback/nosuch"},
	} {
		for _, tok := range []bool{false, true} {
			status, eb := answer(t, f, tc.method, tc.path, tok)
			want := "no such endpoint: " + tc.method + " " + tc.path + "; see docs/api.md"
			if status != http.StatusNotFound || eb.Error.Code != silo.CodeNotFound || eb.Error.Message != want {
				t.Errorf("%s %s (token %v): %d %+v, want 404 not_found %q", tc.method, tc.path, tok, status, eb, want)
			}
		}
	}
}

// TestRoutesAreRegisteredThroughRoute: every endpoint goes through
// Server.route, so that the walk of TestEveryRouteNeedsTheToken sees it;
// the mux itself is given only route's registration and the catch-all.
func TestRoutesAreRegisteredThroughRoute(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		n += len(register.FindAll(b, -1))
	}
	if n != 2 {
		t.Errorf("the mux is given %d registrations in the package's code, want 2 (Server.route and the catch-all); register endpoints with s.route or s.handle", n)
	}
}
