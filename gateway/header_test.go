package gateway

import (
	"context"
	"net/http"
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
)

// headerFn answers with a header of fields a function might set.
var headerFn = InvokerFunc(func(ctx context.Context, acct silo.AccountID, fn string, req Request) (Response, error) {
	return Response{Header: http.Header{
		// allowed
		"Content-Type":            {"text/html"},
		"cache-control":           {"no-cache"}, // not canonical
		"Vary":                    {"Accept", "Origin"},
		"X-Multi":                 {"1", "2", "3"},
		"Content-Security-Policy": {"default-src 'self'"},
		"Location":                {"/next"},
		// refused
		"Set-Cookie":                       {"s=1; Domain=localhost"},
		"Clear-Site-Data":                  {`"*"`},
		"Access-Control-Allow-Origin":      {"*"},
		"Access-Control-Allow-Credentials": {"true"},
		"Alt-Svc":                          {`h3=":443"`},
		"Strict-Transport-Security":        {"max-age=31536000; includeSubDomains"},
		"X-Accel-Redirect":                 {"/internal/other-tenant"},
		"X-Sendfile":                       {"/etc/passwd"},
		"X-Request-Id":                     {"forged"},
		"X-Silo-Schedule":                  {"forged"},
		"X-Forwarded-For":                  {"1.2.3.4"},
		"Content-Length":                   {"1"},
		"Transfer-Encoding":                {"chunked"},
		"Connection":                       {"close"},
		"Refresh":                          {"0; url=https://evil.example"},
		"X-Split":                          {"a\r\nSet-Cookie: s=1"},
	}, Body: []byte("<p>hi</p>")}, nil
})

// TestResponseHeaderAllowList: a function's response reaches the client
// with the allow-listed fields, every value of each, and nothing else.
func TestResponseHeaderAllowList(t *testing.T) {
	f := newFixture(t, Config{}, headerFn)
	r := f.doPath(t, "/files/page")
	if r.status != 200 {
		t.Fatalf("got %d %s, want 200", r.status, r.body)
	}
	got := r.header.Clone()
	for _, k := range []string{"Date", "X-Request-Id", "Content-Length"} {
		if k == "X-Request-Id" && got.Get(k) == "forged" {
			t.Errorf("the function set X-Request-Id")
		}
		got.Del(k)
	}
	want := http.Header{
		"Content-Type":            {"text/html"},
		"Cache-Control":           {"no-cache"},
		"Vary":                    {"Accept", "Origin"},
		"X-Multi":                 {"1", "2", "3"},
		"Content-Security-Policy": {"default-src 'self'"},
		"Location":                {"/next"},
		"X-Content-Type-Options":  {"nosniff"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("response header (-want +got):\n%s", diff)
	}
}

// TestSharedOriginSandboxed: a tenant addressed by /t/<tenant>/ on the
// shared host gets a CSP sandbox (an opaque origin of its own) on top of
// its own policy; on its own host it does not need one.
func TestSharedOriginSandboxed(t *testing.T) {
	f := newFixture(t, Config{}, headerFn)
	tests := []struct {
		name, host, path string
		want             []string
	}{
		{"path form on the shared host", "localhost", "/t/acme/files/page", []string{"default-src 'self'", sharedOriginPolicy}},
		{"path form on an IP", "127.0.0.1", "/t/acme/files/page", []string{"default-src 'self'", sharedOriginPolicy}},
		{"host form", "acme.localhost", "/files/page", []string{"default-src 'self'"}},
		{"host and path form", "acme.localhost", "/t/acme/files/page", []string{"default-src 'self'"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.do(call{host: tt.host, path: tt.path, key: f.keys["acme"]})
			if r.status != 200 {
				t.Fatalf("got %d %s, want 200", r.status, r.body)
			}
			got := r.header.Values("Content-Security-Policy")
			if !slices.Equal(got, tt.want) {
				t.Errorf("got Content-Security-Policy %q, want %q", got, tt.want)
			}
		})
	}
}

func TestAllowedResponseHeader(t *testing.T) {
	tests := map[string]bool{
		"Content-Type": true, "Etag": true, "X-Custom": true, "X-Ratelimit-Remaining": true,
		"X-": false, "X-Request-Id": false, "X-Silo-Schedule": false, "X-Accel-Buffering": false,
		"Set-Cookie": false, "Set-Cookie2": false, "Clear-Site-Data": false, "Alt-Svc": false,
		"Access-Control-Allow-Origin": false, "Strict-Transport-Security": false, "Link": false,
		"Server-Timing": false, "Content-Length": false, "Transfer-Encoding": false, "X-Bad Name": false,
	}
	for k, want := range tests {
		if got := AllowedResponseHeader(k); got != want {
			t.Errorf("AllowedResponseHeader(%q) = %v, want %v", k, got, want)
		}
	}
}

// TestKeySchemeCaseInsensitive: the gateway reads the Bearer scheme in any
// letter case (RFC 7235); other schemes are refused.
func TestKeySchemeCaseInsensitive(t *testing.T) {
	f := newFixture(t, Config{}, nil)
	key := f.keys["acme"]
	tests := []struct {
		auth string
		want int
	}{
		{"Bearer " + key, 200},
		{"bearer " + key, 200},
		{"BEARER  " + key, 200},
		{"Basic " + key, 401},
		{"Bearer" + key, 401},
		{"Bearer " + key + " x", 401},
	}
	for _, tt := range tests {
		r := f.do(call{host: "acme.localhost", path: "/echo", header: map[string]string{"Authorization": tt.auth}})
		if r.status != tt.want {
			t.Errorf("Authorization %.12q…: got %d, want %d", tt.auth, r.status, tt.want)
		}
	}
}

// TestCopyResponseHeaderOwnLists: a field the response header takes over
// from the function's list is capped at its length, so the gateway's own
// additions (the shared origin's sandbox) never write into the function's
// backing array; a value with a control character is dropped either way.
func TestCopyResponseHeaderOwnLists(t *testing.T) {
	csp := make([]string, 1, 4) // spare capacity an append would use
	csp[0] = "default-src 'self'"
	from := http.Header{"Content-Security-Policy": csp, "X-Split": {"a\r\nSet-Cookie: s=1"}, "X-Ok": {"1", "b\x00"}}
	h := http.Header{}
	copyResponseHeader(h, from, true)
	want := http.Header{
		"Content-Security-Policy": {"default-src 'self'", sharedOriginPolicy},
		"X-Ok":                    {"1"},
		"X-Content-Type-Options":  {"nosniff"},
	}
	if diff := cmp.Diff(want, h); diff != "" {
		t.Errorf("response header (-want +got):\n%s", diff)
	}
	if spare := csp[:2][1]; spare != "" {
		t.Errorf("the function's list was written past its length: %q", spare)
	}
}
