package fn

import (
	"encoding/json"
	"math"
	"testing"
	"time"
)

type named string

type withMarshaler struct{}

func (withMarshaler) MarshalJSON() ([]byte, error) { return []byte(`"custom"`), nil }

// The direct path writes what encoding/json writes, byte for byte, and the
// values it does not handle still encode (through encoding/json).
func TestMarshalJSONSameAsEncodingJSON(t *testing.T) {
	cyclic := map[string]any{}
	cyclic["self"] = cyclic
	deep := any("leaf")
	for i := 0; i < 40; i++ {
		deep = []any{deep}
	}
	for _, tc := range []struct {
		name   string
		v      any
		direct bool // the direct path handles it
	}{
		{"nil", nil, true},
		{"bool map", map[string]bool{"ok": true}, true},
		{"sorted keys", map[string]any{"b": 1, "a": "x", "c": nil, "": false}, true},
		{"more than 8 keys", map[string]int{"k9": 9, "k1": 1, "k5": 5, "k3": 3, "k7": 7, "k2": 2, "k8": 8, "k4": 4, "k6": 6, "k0": 0}, true},
		{"string map", map[string]string{"a": "1", "b": ""}, true},
		{"nested", map[string]any{"list": []any{1, "two", 3.5, []string{"x"}, map[string]any{"z": []int{1, -2}}}}, true},
		{"list of objects", []map[string]any{{"id": "1", "n": 2}, {"id": "<2>", "tags": []string{"a"}}, nil}, true},
		{"list of objects with a struct", []map[string]any{{"s": struct{}{}}}, false},
		{"nil map and slices", map[string]any{"m": map[string]any(nil), "s": []any(nil), "ss": []string(nil), "i": []int(nil)}, true},
		{"empty map and slices", map[string]any{"m": map[string]any{}, "s": []any{}}, true},
		{"html and controls", "<a href=\"x\">&amp;</a>\\\b\f\n\r\t\x00\x01\x1f\x7f", true},
		{"unicode", "héllo 世界 \u2028 \u2029 🎉", true},
		{"invalid utf-8", "a\xffb\xc3(\xe2\x82", true},
		{"escaped keys", map[string]string{"<key>&\"": "v", "\xff": "w"}, true},
		{"ints", []int{0, -1, math.MaxInt64, math.MinInt64}, true},
		{"int64", map[string]any{"n": int64(-42)}, true},
		{"floats", []any{0.0, math.Copysign(0, -1), 1.0, -1.5, 1e20, 1e21, 123456789e13, 1e-6, 1e-7, 0.000001234, 5e-324, math.MaxFloat64, 3.14159, 1e100, 1e-100, 100.0}, true},
		{"NaN", map[string]any{"x": math.NaN()}, false},
		{"infinity", []any{math.Inf(1)}, false},
		{"struct", struct{ A int }{1}, false},
		{"struct in a map", map[string]any{"s": struct{ A string }{"x"}}, false},
		{"named string", named("x"), false},
		{"marshaler", map[string]any{"m": withMarshaler{}}, false},
		{"time", map[string]any{"t": time.Date(2026, 12, 6, 0, 0, 0, 0, time.UTC)}, false},
		{"bytes", []byte("abc"), false},
		{"float32", float32(1.1), false},
		{"json.Number", json.Number("12"), false},
		{"deeper than the direct path goes", deep, false},
		{"cycle", cyclic, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, wantErr := json.Marshal(tc.v)
			got, err := marshalJSON(tc.v)
			if (err != nil) != (wantErr != nil) || err != nil && err.Error() != wantErr.Error() {
				t.Fatalf("error %v, encoding/json's %v", err, wantErr)
			}
			if string(got) != string(want) {
				t.Errorf("got  %s\nwant %s", got, want)
			}
			if _, ok := appendJSON(nil, tc.v, 0); ok != tc.direct {
				t.Errorf("direct path taken: %v, want %v", ok, tc.direct)
			}
		})
	}
}

func FuzzMarshalJSONString(f *testing.F) {
	f.Add("plain", 1.5)
	f.Add("<\u2028\xff\x00>", 1e-7)
	f.Fuzz(func(t *testing.T, s string, x float64) {
		v := map[string]any{s: s, "x": x, "l": []string{s}}
		want, wantErr := json.Marshal(v)
		got, err := marshalJSON(v)
		if (err != nil) != (wantErr != nil) || string(got) != string(want) {
			t.Fatalf("got %s (%v), encoding/json %s (%v)", got, err, want, wantErr)
		}
	})
}

func BenchmarkJSON(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if r := JSON(200, map[string]bool{"ok": true}); r.Status != 200 {
			b.Fatal(r.Status)
		}
	}
}
