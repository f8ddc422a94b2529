package sqlite

import (
	"encoding/json"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

func TestDecodeParams(t *testing.T) {
	tests := []map[string]string{
		nil,
		{},
		{"plan": "pro"},
		{"plan": "pro", "ring": "2", "empty": ""},
		{"quote": `a"b`, "slash": `a\b`, "html": "<b>&", "nl": "a\nb"},
		{"ünï": "cödé ✓", "": "empty key"},
	}
	for _, m := range tests {
		s, err := encodeParams(m)
		if err != nil {
			t.Fatal(err)
		}
		if s == "" {
			if len(m) != 0 {
				t.Errorf("encodeParams(%v) = empty", m)
			}
			continue
		}
		got, err := decodeParams(s)
		if err != nil {
			t.Fatalf("decodeParams(%s): %v", s, err)
		}
		if d := cmp.Diff(m, got, cmpopts.EquateEmpty()); d != "" {
			t.Errorf("round trip of %s (-want +got):\n%s", s, d)
		}
	}
}

// FuzzDecodeSimple checks that the fast path never disagrees with
// encoding/json: whenever it accepts an input, json must decode the same map.
func FuzzDecodeSimple(f *testing.F) {
	for _, s := range []string{`{}`, `{"a":"b"}`, `{"a":"b","c":"d"}`, `{"a":"b",}`, `{"a":1}`, `{"a":"b"}x`, `{"a""b"}`, `{`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := decodeSimple(s)
		if !ok {
			return
		}
		var want map[string]string
		if err := json.Unmarshal([]byte(s), &want); err != nil {
			t.Fatalf("decodeSimple accepted %q, which json rejects: %v", s, err)
		}
		if d := cmp.Diff(want, got, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("decodeSimple(%q) differs from json (-json +fast):\n%s", s, d)
		}
	})
}
