package gateway

import (
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	silo "github.com/silo-run/silo"
)

// The hand-written error body is byte for byte what encoding/json writes,
// for the gateway's own messages and for strings that need escaping.
func TestErrorBodyMatchesJSON(t *testing.T) {
	msgs := []string{
		"", msgNoTenant, msgAuth, msgBadPath, msgConfusion, msgTooLarge, msgOtherAcct, msgSuspended, msgNotReady, msgUnavailable,
		`quote " backslash \ slash /`, "<script>&amp;</script>", "tab\tnl\nrc\rbs\bff\f", "\x00\x01\x1f\x7f",
		"ünïcödé ✓ 😀", "line\u2028sep\u2029", "bad utf8 \xff\xfe end", "\xc3", "a\xe2\x82", "é\xed\xa0\x80",
	}
	for _, m := range msgs {
		for _, c := range []silo.Code{silo.CodeNotFound, silo.CodeUnauthenticated, silo.Code("weird\"<code>")} {
			for _, rid := range []string{"", "rid-1", "<\x00>"} {
				want, err := json.Marshal(errorBody{Error: errorDetail{Code: c, Message: m, RequestID: rid}})
				if err != nil {
					t.Fatal(err)
				}
				want = append(want, '\n')
				if got := appendErrorBody(nil, c, m, rid); string(got) != string(want) {
					t.Errorf("body for %q, %q, %q:\n got %s\nwant %s", c, m, rid, got, want)
				}
			}
		}
	}
}

func FuzzErrorBodyMatchesJSON(f *testing.F) {
	f.Add("no route matches this path", "not_found")
	f.Add("\xff<\u2028>\x00", "x")
	f.Fuzz(func(t *testing.T, msg, code string) {
		want, _ := json.Marshal(errorBody{Error: errorDetail{Code: silo.Code(code), Message: msg, RequestID: "r"}})
		want = append(want, '\n')
		if got := appendErrorBody(nil, silo.Code(code), msg, "r"); string(got) != string(want) {
			t.Errorf("body for %q, %q:\n got %s\nwant %s", code, msg, got, want)
		}
	})
}

// forwardHeader drops credentials and hop-by-hop fields and keeps the rest,
// in copies: appending to one forwarded field must not change another, and
// changing the copy must not change the request's header.
func TestForwardHeaderCopies(t *testing.T) {
	in := http.Header{
		"Accept":        {"a", "b"},
		"User-Agent":    {"ua"},
		"X-Multi":       {"1", "2", "3"},
		"Authorization": {"Bearer sk"},
		"Cookie":        {"c=1"},
		"Connection":    {"keep-alive"},
		"X-Request-Id":  {"rid"},
	}
	out := forwardHeader(in)
	want := http.Header{"Accept": {"a", "b"}, "User-Agent": {"ua"}, "X-Multi": {"1", "2", "3"}}
	if !reflect.DeepEqual(out, want) {
		t.Fatalf("forwarded %v, want %v", out, want)
	}
	for k := range want {
		out[k] = append(out[k], "added")
	}
	want = http.Header{"Accept": {"a", "b", "added"}, "User-Agent": {"ua", "added"}, "X-Multi": {"1", "2", "3", "added"}}
	if !reflect.DeepEqual(out, want) {
		t.Errorf("after appending to each field: %v, want %v", out, want)
	}
	out["Accept"][0] = "changed"
	if in.Get("Accept") != "a" || in.Get("User-Agent") != "ua" || len(in["X-Multi"]) != 3 {
		t.Errorf("request header changed through the copy: %v", in)
	}
}
