//go:build !wasip1

package fn

import (
	"slices"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// The handler sees the request as the runtime encodes it: Call goes through
// the same encoder and decoder.
func TestRequestAccessors(t *testing.T) {
	var got *Request
	Call(func(r *Request) *Response { got = r; return nil },
		NewRequest("POST", "/findings/42", []byte("body")).
			WithParam("id", "42").
			WithQuery("tag", "a").WithQuery("tag", "b").WithQuery("empty", "").
			WithHeader("x-trace", "t1").WithHeader("Accept", "*/*"))
	for _, tc := range []struct{ name, got, want string }{
		{"Method", got.Method, "POST"},
		{"Path", got.Path, "/findings/42"},
		{"Body", string(got.Body), "body"},
		{"Param id", got.Param("id"), "42"},
		{"Param missing", got.Param("nope"), ""},
		{"QueryValue first", got.QueryValue("tag"), "a"},
		{"QueryValue empty", got.QueryValue("empty"), ""},
		{"QueryValue missing", got.QueryValue("nope"), ""},
		{"HeaderValue any case", got.HeaderValue("X-TRACE"), "t1"},
		{"HeaderValue canonical", got.HeaderValue("Accept"), "*/*"},
		{"HeaderValue missing", got.HeaderValue("Authorization"), ""},
		{"HeaderValue lower case", got.HeaderValue("accept"), "*/*"},
		{"HeaderValue folds letters only", got.HeaderValue("x\rtrace"), ""},
		{"HeaderValue longer key", got.HeaderValue("x-trace-"), ""},
	} {
		if tc.got != tc.want {
			t.Errorf("%s = %q, want %q", tc.name, tc.got, tc.want)
		}
	}
	if vs := got.QueryValues("tag"); !slices.Equal(vs, []string{"a", "b"}) {
		t.Errorf("QueryValues(tag) = %q, want [a b]", vs)
	}
	if vs := got.HeaderValues("x-trace"); !slices.Equal(vs, []string{"t1"}) {
		t.Errorf("HeaderValues(x-trace) = %q", vs)
	}
	if diff := cmp.Diff(map[string]string{"id": "42"}, got.Params()); diff != "" {
		t.Errorf("Params (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"tag": {"a", "b"}, "empty": {""}}, got.Query()); diff != "" {
		t.Errorf("Query (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string][]string{"X-Trace": {"t1"}, "Accept": {"*/*"}}, got.Header()); diff != "" {
		t.Errorf("Header (-want +got):\n%s", diff)
	}
}

func TestResponseContentType(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp *Response
		want map[string][]string
	}{
		{"Text", Text(200, "hi"), map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}}},
		{"JSON", JSON(200, 1), map[string][]string{"Content-Type": {"application/json"}}},
		{"SetHeader wins", Text(200, "hi").SetHeader("content-type", "text/html"), map[string][]string{"Content-Type": {"text/html"}}},
		{"extra header", Text(200, "hi").SetHeader("X-A", "1"), map[string][]string{"Content-Type": {"text/plain; charset=utf-8"}, "X-A": {"1"}}},
		{"no body", nil, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Call(func(*Request) *Response { return tc.resp }, NewRequest("GET", "/", nil))
			if diff := cmp.Diff(tc.want, got.Header); diff != "" {
				t.Errorf("header the host receives (-want +got):\n%s", diff)
			}
		})
	}
}

// TestRequestAddToSent: pairs added to a request the host sent come after
// the sent ones, which are read where they lie in the encoded request.
func TestRequestAddToSent(t *testing.T) {
	var got *Request
	Call(func(r *Request) *Response { got = r; return nil },
		NewRequest("GET", "/", nil).WithHeader("Accept", "*/*").WithQuery("q", "sent"))
	got.WithHeader("accept", "text/plain").WithQuery("q", "added").WithParam("id", "7")
	if v := got.HeaderValue("accept"); v != "*/*" {
		t.Errorf("HeaderValue(accept) = %q, want the sent value */*", v)
	}
	if vs := got.HeaderValues("Accept"); !slices.Equal(vs, []string{"*/*", "text/plain"}) {
		t.Errorf("HeaderValues(Accept) = %q, want the sent value, then the added one", vs)
	}
	if diff := cmp.Diff(map[string][]string{"q": {"sent", "added"}}, got.Query()); diff != "" {
		t.Errorf("Query (-want +got):\n%s", diff)
	}
	if got.Param("id") != "7" {
		t.Errorf("Param(id) = %q, want the added 7", got.Param("id"))
	}
}
