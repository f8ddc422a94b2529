package gateway

import (
	"encoding/json"
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
			want, err := json.Marshal(errorBody{Error: errorDetail{Code: c, Message: m}})
			if err != nil {
				t.Fatal(err)
			}
			want = append(want, '\n')
			if got := appendErrorBody(nil, c, m); string(got) != string(want) {
				t.Errorf("body for %q, %q:\n got %s\nwant %s", c, m, got, want)
			}
		}
	}
}

func FuzzErrorBodyMatchesJSON(f *testing.F) {
	f.Add("no route matches this path", "not_found")
	f.Add("\xff<\u2028>\x00", "x")
	f.Fuzz(func(t *testing.T, msg, code string) {
		want, _ := json.Marshal(errorBody{Error: errorDetail{Code: silo.Code(code), Message: msg}})
		want = append(want, '\n')
		if got := appendErrorBody(nil, silo.Code(code), msg); string(got) != string(want) {
			t.Errorf("body for %q, %q:\n got %s\nwant %s", code, msg, got, want)
		}
	})
}
