package jsonstr

import (
	"encoding/json"
	"testing"
)

func TestAppendAsEncodingJSON(t *testing.T) {
	for _, s := range []string{
		"", "plain", `quote " and \ backslash`, "<a href='x'>&</a>", "tab\tnew\nline\r\b\f",
		"\x00\x01\x1f\x7f", "\u2028\u2029", "bad \xff utf-8 \xc3", "ünïcödé ✓ 😀",
	} {
		want, _ := json.Marshal(s)
		if got := Append([]byte("x"), s); string(got) != "x"+string(want) {
			t.Errorf("Append(%q) = %s, want %s", s, got[1:], want)
		}
	}
}

func FuzzAppend(f *testing.F) {
	f.Add("<\u2028\xff\x00>")
	f.Fuzz(func(t *testing.T, s string) {
		want, _ := json.Marshal(s)
		if got := Append(nil, s); string(got) != string(want) {
			t.Fatalf("Append(%q) = %s, encoding/json %s", s, got, want)
		}
	})
}
