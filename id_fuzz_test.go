package silo_test

import (
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
)

// FuzzParseID checks that an accepted ID is always a DNS label (so it is
// safe as a host label, a directory name and a key prefix) and that
// rejections are CodeInvalid with one line of text.
func FuzzParseID(f *testing.F) {
	for _, s := range []string{"acme", "a", "acme-corp", "-acme", "acme-", "Acme", "a..b", "../x", "a/b", "a\x00b", "production", strings.Repeat("a", 64), "\u0430cme"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := silo.ParseID(s)
		if err != nil {
			if silo.ErrorCode(err) != silo.CodeInvalid || strings.Contains(err.Error(), "\n") {
				t.Fatalf("ParseID(%q): %v; want one line with CodeInvalid", s, err)
			}
			return
		}
		if string(id) != s || len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
			t.Fatalf("ParseID(%q) accepted %q", s, id)
		}
		for _, c := range s {
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
				t.Fatalf("ParseID(%q) accepted a %q", s, c)
			}
		}
	})
}

func TestParseTenantID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string // "" means accepted
	}{
		{"acme", ""},
		{"acme-2", ""},
		{"production", "reserved"},
		{"Acme", "upper-case"},
		{"acme_corp", "contains"},
		{"", "empty"},
		{strings.Repeat("a", 64), "longer than 63"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			_, err := silo.ParseTenantID(tc.in)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("got %v, want accepted", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error saying %q", err, tc.want)
			}
		})
	}
}
