package fn

import (
	"errors"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/silo-run/silo/sdk/fn/abi"
)

// TestAppendLogAttrs: a log line's attributes encode as the pairs the host
// decodes, each value formatted as toString formats it.
func TestAppendLogAttrs(t *testing.T) {
	for _, tc := range []struct {
		name string
		kv   []any
		want map[string]string
	}{
		{"none", nil, map[string]string{}},
		{"kinds", []any{"s", "x", "i", 42, "i64", int64(-7), "b", true, "e", errors.New("boom"), "raw", []byte("by"), "m", map[string]int{"a": 1}},
			map[string]string{"s": "x", "i": "42", "i64": "-7", "b": "true", "e": "boom", "raw": "by", "m": `{"a":1}`}},
		{"bad key", []any{3, "v"}, map[string]string{"!BADKEY": "v"}},
		{"missing value", []any{"k"}, map[string]string{"k": "!MISSING"}},
		{"unencodable", []any{"c", make(chan int)}, map[string]string{"c": "!BADVALUE"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, _ := appendLogAttrs(nil, nil, tc.kv)
			got, err := abi.DecodePairs(b)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("attributes (-want +got):\n%s", diff)
			}
			for i := 1; i < len(tc.kv); i += 2 {
				if v := string(appendValue(nil, tc.kv[i])); v != toString(tc.kv[i]) {
					t.Errorf("appendValue(%v) = %q, toString gives %q", tc.kv[i], v, toString(tc.kv[i]))
				}
			}
		})
	}
}

// TestAppendLogAttrsReusesBuffers: with buffers from an earlier line, a
// line of strings and ints allocates nothing.
func TestAppendLogAttrsReusesBuffers(t *testing.T) {
	b, val := appendLogAttrs(nil, nil, []any{"visits", 123456, "who", "somebody"})
	kv := []any{"visits", 123456, "who", "somebody"}
	if n := testing.AllocsPerRun(100, func() { b, val = appendLogAttrs(b[:0], val, kv) }); n != 0 {
		t.Errorf("appendLogAttrs with reused buffers made %v allocations, want 0", n)
	}
}
