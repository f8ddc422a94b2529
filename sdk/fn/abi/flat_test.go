package abi

import (
	"bytes"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// flatMaps turns a FlatRequest back into the map form, to compare it with
// DecodeRequest's.
func flatMaps(f *FlatRequest) *Request {
	r := &Request{ID: f.ID, Method: f.Method, Path: f.Path, Body: f.Body}
	params := f.Params.AppendTo(nil)
	for i := 0; i < len(params); i += 2 {
		if r.Params == nil {
			r.Params = map[string]string{}
		}
		r.Params[params[i]] = params[i+1]
	}
	multi := func(pairs []string) map[string][]string {
		var m map[string][]string
		for i := 0; i < len(pairs); i += 2 {
			if m == nil {
				m = map[string][]string{}
			}
			m[pairs[i]] = append(m[pairs[i]], pairs[i+1])
		}
		return m
	}
	r.Query, r.Header = multi(f.Query.AppendTo(nil)), multi(f.Header.AppendTo(nil))
	return r
}

func TestDecodeFlat(t *testing.T) {
	for _, r := range []*Request{
		{Method: "GET", Path: "/"},
		{ID: "req-1", Method: "POST", Path: "/findings/42",
			Params: map[string]string{"id": "42", "x": ""},
			Query:  map[string][]string{"q": {"a", "b"}, "empty": {""}},
			Header: map[string][]string{"Content-Type": {"application/json"}, "Accept": {"*/*", "text/plain"}},
			Body:   []byte(`{"x":1}`)},
		{Method: "GET", Path: "/", Query: map[string][]string{"novalue": {}}},
		// Lengths of two and three varint bytes.
		{ID: strings.Repeat("i", 200), Method: "PUT", Path: "/long",
			Header: map[string][]string{"X-Long": {strings.Repeat("v", 300)}, strings.Repeat("K", 130): {"k"}},
			Body:   bytes.Repeat([]byte("b"), 20000)},
	} {
		b := AppendRequest(nil, r)
		var f FlatRequest
		if err := DecodeFlat(b, &f); err != nil {
			t.Fatalf("%+v: %v", r, err)
		}
		checkFlat(t, r, b, &f)
	}
}

// checkFlat compares DecodeFlat's result f with DecodeRequest's of b.
func checkFlat(t *testing.T, r *Request, b []byte, f *FlatRequest) {
	t.Helper()
	want, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	// A key without values has no pair: it reads as absent, as with
	// url.Values.Get (net/http never sends one).
	for k, vs := range want.Query {
		if len(vs) == 0 {
			delete(want.Query, k)
		}
	}
	if len(want.Query) == 0 {
		want.Query = nil
	}
	if diff := cmp.Diff(want, flatMaps(f), cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); diff != "" {
		t.Errorf("DecodeFlat and DecodeRequest differ (-DecodeRequest +DecodeFlat):\n%s", diff)
	}
	if v, ok := f.Query.Lookup("q"); len(r.Query["q"]) > 0 && (!ok || v != "a") {
		t.Errorf("Lookup(q) = %q, %v; want the first value a", v, ok)
	}
	if _, ok := f.Query.Lookup("missing"); ok {
		t.Error("Lookup of a missing key found it")
	}
}

// TestDecodeFlatAllocates: checking a request and reading its pairs
// allocate nothing.
func TestDecodeFlatAllocates(t *testing.T) {
	b := AppendRequest(nil, &Request{Method: "GET", Path: "/x", Params: map[string]string{"a": "b"},
		Query: map[string][]string{"q": {"1", "2"}}, Header: map[string][]string{"X": {"y"}, "Y": {"z"}}})
	var f FlatRequest
	if n := testing.AllocsPerRun(100, func() {
		DecodeFlat(b, &f)
		f.Header.Lookup("Y")
		f.Query.Lookup("q")
	}); n != 0 {
		t.Errorf("DecodeFlat and Lookup made %v allocations, want 0", n)
	}
	if v, ok := f.Header.Lookup("Y"); !ok || v != "z" {
		t.Errorf("Lookup(Y) = %q, %v; want z", v, ok)
	}
}

func TestDecodeFlatMalformed(t *testing.T) {
	good := AppendRequest(nil, &Request{Method: "GET", Path: "/x", Params: map[string]string{"a": "b"},
		Query: map[string][]string{"q": {"1"}}, Header: map[string][]string{"X": {"y"}}, Body: []byte("b")})
	var f FlatRequest
	if err := DecodeFlat(good, &f); err != nil {
		t.Fatalf("twin: good request: %v", err)
	}
	for i := 0; i < len(good); i++ {
		if err := DecodeFlat(good[:i], &f); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
	if err := DecodeFlat(append(good, 0), &f); err == nil {
		t.Error("trailing byte: no error")
	}
	// Hostile counts are bounded by the bytes left: no huge allocation.
	hostile := append([]byte{Version, 0, 0, 0}, 0xff, 0xff, 0xff, 0xff, 0x0f)
	if err := DecodeFlat(hostile, &f); err == nil {
		t.Error("huge params count: no error")
	}
}

func FuzzDecodeFlat(f *testing.F) {
	f.Add(AppendRequest(nil, &Request{Method: "GET", Path: "/", Query: map[string][]string{"a": {"1", "2"}}}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var fr FlatRequest
		errFlat := DecodeFlat(b, &fr)
		r, err := DecodeRequest(b)
		if (errFlat == nil) != (err == nil) {
			t.Fatalf("DecodeFlat error %v, DecodeRequest error %v", errFlat, err)
		}
		if err != nil {
			return
		}
		if got := len(fr.Params.AppendTo(nil)) / 2; got != fr.Params.Len() || got < len(r.Params) {
			t.Fatalf("%d params read in place of %d, DecodeRequest has %d", got, fr.Params.Len(), len(r.Params))
		}
		if fr.ID != r.ID || fr.Path != r.Path || string(fr.Body) != string(r.Body) {
			t.Fatalf("DecodeFlat %+v differs from DecodeRequest %+v", fr, r)
		}
	})
}

func TestDecodeKVsInPlace(t *testing.T) {
	kvs := []KV{{Key: "a", Value: []byte("1")}, {Key: "b", Value: nil}, {Key: "", Value: []byte("3")}}
	b := AppendKVs(nil, kvs)
	got, err := DecodeKVsInPlace(b)
	if err != nil {
		t.Fatal(err)
	}
	want, _ := DecodeKVs(b)
	if diff := cmp.Diff(want, got, cmp.Comparer(func(a, b []byte) bool { return string(a) == string(b) })); diff != "" {
		t.Errorf("(-DecodeKVs +DecodeKVsInPlace):\n%s", diff)
	}
	// Appending to a value must not overwrite the next key.
	_ = append(got[0].Value, 'X')
	if got[1].Key != "b" {
		t.Errorf("appending to a value changed the next key to %q", got[1].Key)
	}
	if _, err := DecodeKVsInPlace(b[:len(b)-1]); err == nil {
		t.Error("truncated: no error")
	}
}

func TestResponseContentType(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    Response
		want map[string][]string
	}{
		{"field only", Response{Status: 200, ContentType: "text/plain"}, map[string][]string{"Content-Type": {"text/plain"}}},
		{"field and others", Response{Status: 200, ContentType: "text/plain", Header: map[string][]string{"X-A": {"1"}}},
			map[string][]string{"Content-Type": {"text/plain"}, "X-A": {"1"}}},
		{"header wins", Response{Status: 200, ContentType: "text/plain", Header: map[string][]string{"Content-Type": {"image/png"}}},
			map[string][]string{"Content-Type": {"image/png"}}},
		{"none", Response{Status: 204}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := DecodeResponse(AppendResponse(nil, &tc.r))
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got.Header); diff != "" {
				t.Errorf("header (-want +got):\n%s", diff)
			}
		})
	}
}
