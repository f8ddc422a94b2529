package jsonerr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestDescribe: each kind of decoding failure is said in words, never in
// the decoder's ("json:", "invalid character", Go type names); the twin, a
// document that decodes, gives no error to describe.
func TestDescribe(t *testing.T) {
	type doc struct {
		Format int      `json:"format"`
		Tags   []string `json:"tags"`
	}
	for _, tc := range []struct{ in, want string }{
		{`{"format":1,"extra":true}`, `it has a field "extra" that this format does not have`},
		{``, "it is empty"},
		{`{"format":1`, "it ends before its JSON value does"},
		{`{"format":1,}`, "it is not valid JSON: it breaks at byte 13"},
		{`{"format":"one"}`, "format must be a number, not a string"},
		{`[1]`, "it must be an object, not an array"},
		{`{"tags":[1]}`, "tags must be a string, not a number"},
	} {
		dec := json.NewDecoder(strings.NewReader(tc.in))
		dec.DisallowUnknownFields()
		var d doc
		err := dec.Decode(&d)
		if err == nil {
			t.Fatalf("%s: decoded, want an error", tc.in)
		}
		got := Describe(err)
		if got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.in, got, tc.want)
		}
		for _, bad := range []string{"json:", "invalid character", "Go value", "main.", "int"} {
			if strings.Contains(got, bad) {
				t.Errorf("%s: %q holds the decoder's words %q", tc.in, got, bad)
			}
		}
	}
	var d doc
	if err := json.NewDecoder(bytes.NewReader([]byte(`{"format":1}`))).Decode(&d); err != nil {
		t.Errorf("a valid document: %v", err)
	}
	if _, ok := UnknownField(nil); ok {
		t.Errorf("UnknownField(nil) reports a field")
	}
}
