package spec

import (
	"encoding/json"
	"errors"
	"os"
	"testing"
)

// FuzzParse checks the invariant of Parse: it never panics, and returns
// either a stack (that encodes to JSON and parses the same way twice) or
// *Diagnostics with positions.
func FuzzParse(f *testing.F) {
	for _, p := range []string{"testdata/full.yaml"} {
		data, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	for _, tc := range diagCases {
		f.Add([]byte(tc.src))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := Parse("silo.yaml", data)
		if err != nil {
			var ds *Diagnostics
			if !errors.As(err, &ds) || st != nil || len(*ds) == 0 {
				t.Fatalf("got stack %v, error %T %v; want nil and non-empty *Diagnostics", st != nil, err, err)
			}
			for _, d := range *ds {
				if d.Line < 1 || d.Col < 1 || d.Message == "" {
					t.Fatalf("got diagnostic %+v without a position or message", d)
				}
			}
			return
		}
		if st == nil {
			t.Fatal("got nil stack and nil error")
		}
		a, err := json.Marshal(st)
		if err != nil {
			t.Fatalf("marshal: %v", err)
		}
		st2, err := Parse("silo.yaml", data)
		if err != nil {
			t.Fatalf("second parse: %v", err)
		}
		b, _ := json.Marshal(st2)
		if string(a) != string(b) {
			t.Fatalf("two parses differ:\n%s\n%s", a, b)
		}
	})
}
