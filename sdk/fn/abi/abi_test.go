package abi

import (
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestRequestRoundTrip(t *testing.T) {
	r := &Request{
		ID: "req-1", Method: "POST", Path: "/findings/42",
		Params: map[string]string{"id": "42"},
		Query:  map[string][]string{"q": {"a", "b"}},
		Header: map[string][]string{"Content-Type": {"application/json"}},
		Body:   []byte(`{"x":1}`),
	}
	b := AppendRequest(nil, r)
	if len(b) > RequestSize(r) {
		t.Errorf("encoded %d bytes, RequestSize said at most %d", len(b), RequestSize(r))
	}
	got, err := DecodeRequest(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestResponseRoundTrip(t *testing.T) {
	r := &Response{Status: 201, Header: map[string][]string{"X-A": {"1"}}, Body: []byte("ok")}
	got, err := DecodeResponse(AppendResponse(nil, r))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(r, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}

func TestDecodeMalformed(t *testing.T) {
	good := AppendRequest(nil, &Request{Method: "GET", Path: "/x", Body: []byte("b")})
	if _, err := DecodeRequest(good); err != nil {
		t.Fatalf("twin: good request: %v", err)
	}
	for i := 0; i < len(good); i++ {
		if _, err := DecodeRequest(good[:i]); err == nil {
			t.Errorf("truncated at %d: no error", i)
		}
	}
	// A hostile count cannot make the decoder allocate.
	if _, err := DecodeKVs([]byte{0xff, 0xff, 0xff, 0xff, 0x0f}); err == nil {
		t.Error("huge count: no error")
	}
}

func FuzzDecodeRequest(f *testing.F) {
	f.Add(AppendRequest(nil, &Request{Method: "GET", Path: "/"}))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := DecodeRequest(b)
		if err != nil {
			return
		}
		if _, err := DecodeRequest(AppendRequest(nil, r)); err != nil {
			t.Fatalf("re-encoding a decoded request fails: %v", err)
		}
	})
}

func TestCanonicalHeaderKey(t *testing.T) {
	for in, want := range map[string]string{"content-type": "Content-Type", "X-TEST": "X-Test", "Accept": "Accept"} {
		if got := CanonicalHeaderKey(in); got != want {
			t.Errorf("CanonicalHeaderKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestDecodeResponseSharesNothingWritable: the decoded header's lists share
// one backing array and its strings one string, yet an append to one list
// leaves the next intact, and the strings do not alias the encoded bytes
// (the host reads them from guest memory, which the guest writes next).
func TestDecodeResponseSharesNothingWritable(t *testing.T) {
	want := map[string][]string{"Vary": {"Accept", "Origin"}, "Content-Type": {"text/plain"}, "X-Empty": {},
		"X-Many": {"one", "two", "three"}}
	b := AppendResponse(nil, &Response{Status: 200, Header: want})
	r, err := DecodeResponse(b)
	if err != nil {
		t.Fatal(err)
	}
	for k := range r.Header {
		r.Header[k] = append(r.Header[k], "new")
	}
	for k, vs := range want {
		if diff := cmp.Diff(append(vs, "new"), r.Header[k]); diff != "" {
			t.Errorf("%s after appending to every list (-want +got):\n%s", k, diff)
		}
	}
	for i := range b {
		b[i] = 'x'
	}
	if got := r.Header["X-Many"][2]; got != "three" {
		t.Errorf("X-Many[2] = %q after the encoded bytes changed, want three", got)
	}
	// The map (two allocations for up to 8 fields), the strings and the
	// lists, with the Response: five, not one per key, list and value.
	b = AppendResponse(nil, &Response{Status: 200, Header: want})
	if n := testing.AllocsPerRun(100, func() { DecodeResponse(b) }); n > 5 {
		t.Errorf("DecodeResponse of 4 fields and 6 values made %v allocations, want at most 5", n)
	}
}
