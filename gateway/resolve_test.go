package gateway

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
)

func TestResolve(t *testing.T) {
	tests := []struct {
		host, path string
		want       target
		wantP      problem
	}{
		{"acme.localhost", "/x", target{"acme", "/x", false}, problemNone},
		{"ACME.LOCALHOST:443", "/x", target{"acme", "/x", false}, problemNone},
		{"acme.localhost.", "/x", target{"acme", "/x", false}, problemNone},
		{"localhost", "/t/acme/x/y", target{"acme", "/x/y", true}, problemNone},
		{"localhost", "/t/acme/", target{"acme", "/", true}, problemNone},
		{"localhost", "/t/acme", target{"acme", "/", true}, problemNone},
		{"acme.localhost", "/t/acme/x", target{"acme", "/x", false}, problemNone},
		{"acme.localhost", "/t/beta/x", target{}, problemConfusion},
		{"acme.localhost", "/t//x", target{}, problemConfusion},
		{"localhost", "/t/production/x", target{}, problemTenant},
		{"localhost", "/x", target{"", "/x", false}, problemNone},
		{"", "/healthz", target{"", "/healthz", false}, problemNone},
		{"[::1]:80", "/t/acme/x", target{"acme", "/x", true}, problemNone},
		{"[::1", "/x", target{}, problemHost},
		{"[zz]", "/x", target{}, problemHost},
		{"::1", "/x", target{}, problemHost},
		{"::1:8080", "/x", target{"", "/x", false}, problemNone},
		{"127.0.0.1:8080", "/t/acme/x", target{"acme", "/x", true}, problemNone},
		{"10.0.0.1", "/x", target{"", "/x", false}, problemNone},
		{"10.0.0.1.localhost", "/x", target{}, problemTenant},
		{"1.2.3", "/x", target{}, problemHost},
		{"acme.localhost:", "/x", target{}, problemHost},
		{"acme.localhost:1234567", "/x", target{}, problemHost},
		{"acme.localhost.evil.com", "/x", target{}, problemHost},
		{"acmelocalhost", "/x", target{}, problemHost},
		{"acme..localhost", "/x", target{}, problemTenant},
		{".localhost", "/x", target{}, problemTenant},
		{"-acme.localhost", "/x", target{}, problemTenant},
		{"acme.localhost", "*", target{}, problemPath},
	}
	for _, tt := range tests {
		t.Run(tt.host+tt.path, func(t *testing.T) {
			got, p := resolve(tt.host, tt.path, "localhost")
			if p != tt.wantP {
				t.Fatalf("got problem %d, want %d", p, tt.wantP)
			}
			if diff := cmp.Diff(tt.want, got, cmp.AllowUnexported(target{})); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

// FuzzMaybeIP: every host name netip.ParseAddr reads as an address passes
// maybeIP, so that skipping ParseAddr for the others changes nothing.
func FuzzMaybeIP(f *testing.F) {
	for _, s := range []string{"127.0.0.1", "::1", "fe80::1%eth0", "::ffff:1.2.3.4", "acme.localhost", "1.2.3", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if _, err := netip.ParseAddr(s); err == nil && !maybeIP(s) {
			t.Fatalf("maybeIP(%q) = false for an address", s)
		}
	})
}

func FuzzResolve(f *testing.F) {
	for _, s := range [][2]string{
		{"acme.localhost", "/x"}, {"localhost", "/t/acme/x"}, {"[::1]:80", "/t/a/"},
		{"ACME.localhost.:1", "/t/acme"}, {"a..localhost", "/"}, {"x.acme.localhost", "/t//"},
		{"acme.localhost.evil.com", "/t/%61/../"},
	} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, host, path string) {
		tg, p := resolve(host, path, "localhost")
		if p != problemNone {
			if tg != (target{}) {
				t.Fatalf("problem %d with target %+v", p, tg)
			}
			return
		}
		if tg.tenant != "" {
			if _, err := silo.ParseTenantID(tg.tenant); err != nil {
				t.Fatalf("resolved invalid tenant %q: %v", tg.tenant, err)
			}
		}
		if !strings.HasPrefix(tg.path, "/") {
			t.Fatalf("path %q does not start with '/'", tg.path)
		}
		// Whatever the host says, a path-form tenant is the path's label.
		if rest, ok := strings.CutPrefix(path, "/t/"); ok {
			label, _, _ := strings.Cut(rest, "/")
			if tg.tenant != label {
				t.Fatalf("path names %q, resolved %q", label, tg.tenant)
			}
		}
		if segs, ok := splitPath(tg.path); ok {
			for _, s := range segs {
				if s == "." || s == ".." || strings.ContainsAny(s, "\x00\r\n") {
					t.Fatalf("segment %q of %q passed", s, tg.path)
				}
			}
		}
	})
}

func TestRouter(t *testing.T) {
	rt, err := newRouter([]Route{
		{Method: "GET", Path: "/findings", Function: "list"},
		{Method: "get", Path: "/findings/{id}", Function: "get"},
		{Method: "GET", Path: "/findings/new", Function: "form"},
		{Method: "DELETE", Path: "/findings/{id}", Function: "delete"},
		{Path: "/findings/{id}/notes/{note}", Function: "note"},
		{Path: "/files/{path...}", Function: "files"},
		{Path: "/static/", Function: "static"},
		{Path: "/static/{$}", Function: "static-index"},
		{Method: "*", Path: "/any", Function: "any"},
		{Method: "POST", Path: "/any", Function: "any-post"},
	})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		method, path string
		fn           string
		params       map[string]string
		allow        []string
	}{
		{"GET", "/findings", "list", nil, nil},
		{"HEAD", "/findings", "list", nil, nil},
		{"GET", "/findings/7", "get", map[string]string{"id": "7"}, nil},
		{"GET", "/findings/new", "form", nil, nil},
		{"DELETE", "/findings/new", "delete", map[string]string{"id": "new"}, nil},
		{"PUT", "/findings/7", "", nil, []string{"DELETE", "GET", "HEAD"}},
		{"POST", "/findings", "", nil, []string{"GET", "HEAD"}},
		{"PATCH", "/findings/7/notes/a", "note", map[string]string{"id": "7", "note": "a"}, nil},
		{"GET", "/findings/", "", nil, nil},
		{"GET", "/files/", "files", map[string]string{"path": ""}, nil},
		{"GET", "/files/a/b/c", "files", map[string]string{"path": "a/b/c"}, nil},
		{"GET", "/files", "", nil, nil},
		{"GET", "/static/", "static-index", nil, nil},
		{"GET", "/static/css/x.css", "static", nil, nil},
		{"GET", "/any", "any", nil, nil},
		{"POST", "/any", "any-post", nil, nil},
		{"GET", "/nothing", "", nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.method+tt.path, func(t *testing.T) {
			segs, ok := splitPath(tt.path)
			if !ok {
				t.Fatal("bad path")
			}
			fn, params, allow, _ := rt.match(tt.method, segs)
			if diff := cmp.Diff([]any{tt.fn, tt.params, tt.allow}, []any{fn, params, allow}); diff != "" {
				t.Fatalf("(-want +got):\n%s", diff)
			}
		})
	}
}

func TestRouterRefuses(t *testing.T) {
	bad := [][]Route{
		{{Path: "findings", Function: "f"}},
		{{Path: "/a//b", Function: "f"}},
		{{Path: "/a/{id", Function: "f"}},
		{{Path: "/a/x{id}", Function: "f"}},
		{{Path: "/a/{}", Function: "f"}},
		{{Path: "/a/{1x}", Function: "f"}},
		{{Path: "/a/{p...}/b", Function: "f"}},
		{{Path: "/a/{$}/b", Function: "f"}},
		{{Path: "/a/{x}/{x}", Function: "f"}},
		{{Path: "/a/..", Function: "f"}},
		{{Path: "/a", Function: ""}},
		{{Method: "G T", Path: "/a", Function: "f"}},
		{{Method: "GET", Path: "/a/{x}", Function: "f"}, {Method: "get", Path: "/a/{y}", Function: "g"}},
		{{Path: "/a/", Function: "f"}, {Path: "/a/{rest...}", Function: "g"}},
	}
	for _, routes := range bad {
		if _, err := newRouter(routes); err == nil {
			t.Errorf("%v: accepted, want an error", routes)
		}
	}
	// Control: the same shapes under different methods are fine.
	if _, err := newRouter([]Route{{Method: "GET", Path: "/a/{x}", Function: "f"}, {Method: "PUT", Path: "/a/{y}", Function: "g"}}); err != nil {
		t.Errorf("control: %v", err)
	}
}

func FuzzRouter(f *testing.F) {
	f.Add("GET", "/findings/{id}", "/findings/7")
	f.Add("", "/files/{p...}", "/files/a/b")
	f.Add("*", "/s/", "/s/{$}")
	f.Fuzz(func(t *testing.T, method, pattern, path string) {
		rt, err := newRouter([]Route{{Method: method, Path: pattern, Function: "f"}, {Method: "GET", Path: "/x/{id}", Function: "g"}})
		if err != nil {
			return
		}
		segs, ok := splitPath(path)
		if !ok {
			return
		}
		fn, params, allow, ok := rt.match("GET", segs)
		if ok && (fn == "" || len(allow) != 0) {
			t.Fatalf("match %q %v %v", fn, params, allow)
		}
		if !ok && fn != "" {
			t.Fatalf("no match but function %q", fn)
		}
	})
}
