package wasmfile

import (
	"strings"
	"testing"
)

// Sections of a module with one import (a function of type 1) and two
// defined functions (types 0 and 1), exported as handle and alloc, plus a
// memory export.
const (
	secTypes   = "\x01\x0c\x02\x60\x02\x7f\x7f\x01\x7e\x60\x01\x7f\x01\x7f" // 0: (i32, i32) i64; 1: (i32) i32
	secImports = "\x02\x0b\x01\x03env\x03log\x00\x01"                       // env.log: function of type 1
	secFuncs   = "\x03\x03\x02\x00\x01"                                     // functions 1 and 2: types 0 and 1
	secExports = "\x07\x1b\x03\x06handle\x00\x01\x05alloc\x00\x02\x06memory\x02\x00"
)

func TestExports(t *testing.T) {
	tests := []struct {
		name string
		b    string
		want string // the exports as "name sig; ...", or the error's words
		err  bool
	}{
		{"functions after an import", header + secTypes + secImports + secFuncs + secExports, "handle (i32, i32) i64; alloc (i32) i32", false},
		{"no export section", header + secTypes + secFuncs, "", false},
		{"a re-exported import is left out", header + secTypes + secImports + secFuncs + "\x07\x07\x01\x03log\x00\x00", "", false},
		{"not a module", "", "empty", true},
		{"export of a function it does not define", header + secTypes + secFuncs + "\x07\x07\x01\x03far\x00\x09", "does not define", true},
		{"export section cut short", header + secTypes + secFuncs + "\x07\x05\x01\x06han", "section 7 is malformed", true},
		{"type that is not a function type", header + "\x01\x04\x01\x40\x00\x00", "section 1 is malformed", true},
		{"bytes left in a section", header + secTypes + "\x03\x03\x01\x00\x00", "bytes left", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fs, err := Exports([]byte(tc.b))
			if tc.err {
				if err == nil || !strings.Contains(err.Error(), tc.want) {
					t.Fatalf("got %v, %v; want an error containing %q", fs, err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatalf("got %v, want %q", err, tc.want)
			}
			var got []string
			for _, f := range fs {
				got = append(got, f.Name+" "+f.Signature())
			}
			if g := strings.Join(got, "; "); g != tc.want {
				t.Errorf("got %q, want %q", g, tc.want)
			}
		})
	}
}

func TestFuncIs(t *testing.T) {
	h := Func{Name: "handle", Params: []byte{I32, I32}, Results: []byte{I64}}
	if !h.Is([]byte{I32, I32}, []byte{I64}) {
		t.Errorf("%s is not (i32, i32) i64", h.Signature())
	}
	for _, other := range []Func{
		{Params: []byte{I32}, Results: []byte{I64}},
		{Params: []byte{I32, I32}, Results: []byte{I32}},
		{Params: []byte{I32, I32}},
	} {
		if other.Is(h.Params, h.Results) {
			t.Errorf("%s is taken for (i32, i32) i64", other.Signature())
		}
	}
}
