package finding_test

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/silo-run/silo/examples/findings/internal/finding"
)

// tricky are strings that exercise every escaping rule of encoding/json.
var tricky = []string{
	"", "plain", `quote " and \ backslash`, "<script>&amp;</script>", "tab\tnl\nret\rbs\bff\f",
	"\x00\x01\x1f\x7f", "é ü 日本 🙂", "line\u2028sep\u2029", "bad \xff utf8 \xc3", "a/b",
}

func randString(r *rand.Rand) string {
	if r.IntN(3) == 0 {
		return tricky[r.IntN(len(tricky))]
	}
	const alphabet = "abc <>&\"\\/\n\t\x01é日\u2028\xff"
	b := []byte{}
	for n := r.IntN(12); n > 0; n-- {
		b = append(b, alphabet[r.IntN(len(alphabet))])
	}
	return string(b)
}

func randFinding(r *rand.Rand) finding.Finding {
	s := func() string {
		if r.IntN(3) == 0 {
			return ""
		}
		return randString(r)
	}
	f := finding.Finding{ID: s(), Severity: s(), App: s(), Title: s(), CVE: s(), Description: s(), Status: s(), Remediation: s(), RequestID: s()}
	switch r.IntN(3) {
	case 1:
		f.Intel = []finding.Intel{}
	case 2:
		for n := r.IntN(3) + 1; n > 0; n-- {
			f.Intel = append(f.Intel, finding.Intel{Key: s(), ThreatLevel: s(), KnownExploited: r.IntN(2) == 0, Note: s(), Source: s()})
		}
	}
	return f
}

// TestAppendJSONMatchesEncodingJSON: the hand-written encoder writes exactly
// encoding/json's bytes, for findings, the list body and the error body.
func TestAppendJSONMatchesEncodingJSON(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var fs []finding.Finding
	for i := 0; i < 2000; i++ {
		f := randFinding(r)
		want, _ := json.Marshal(f)
		if got := finding.AppendJSON(nil, &f); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON(%+v)\n got %s\nwant %s", f, got, want)
		}
		if i < 20 {
			fs = append(fs, f)
		}
	}
	for _, list := range [][]finding.Finding{{}, fs[:1], fs} {
		plan := randString(r)
		want, _ := json.Marshal(map[string]any{"findings": list, "count": len(list), "plan": plan})
		var items []byte
		for i := range list {
			if i > 0 {
				items = append(items, ',')
			}
			items = finding.AppendJSON(items, &list[i])
		}
		if got := finding.AppendList(items, len(list), plan); !bytes.Equal(got, want) {
			t.Fatalf("AppendList\n got %s\nwant %s", got, want)
		}
	}
	for _, msg := range tricky {
		want, _ := json.Marshal(map[string]any{"error": map[string]string{"message": msg}})
		if got := finding.ErrorBody(nil, msg); !bytes.Equal(got, want) {
			t.Fatalf("ErrorBody(%q)\n got %s\nwant %s", msg, got, want)
		}
	}
}

// checkDecode asserts that Decode and DecodeIntel agree with json.Unmarshal
// on b: the same value, and an error exactly when it errs.
func checkDecode(t *testing.T, b []byte) {
	t.Helper()
	var got, want finding.Finding
	gerr, werr := finding.Decode(b, &got), json.Unmarshal(b, &want)
	if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%s)\n got %+v, %v\nwant %+v, %v", b, got, gerr, want, werr)
	}
	checkStored(t, b)
	gi, wi := finding.Intel{Key: "k", Note: "kept"}, finding.Intel{Key: "k", Note: "kept"}
	gerr, werr = finding.DecodeIntel(b, &gi), json.Unmarshal(b, &wi)
	if (gerr == nil) != (werr == nil) || gi != wi {
		t.Fatalf("DecodeIntel(%s)\n got %+v, %v\nwant %+v, %v", b, gi, gerr, wi, werr)
	}
}

var decodeSeeds = []string{
	`{"id":"f-1","severity":"high","app":"github","status":"open","intel":[{"key":"app:github","threat_level":"elevated","note":"n","source":"s"}],"remediation":"manual","request_id":"r"}`,
	` { "id" : "f-demo-0001", "severity": "critical", "app": "jenkins", "title": "Controller exposed", "status": "open" } `,
	`{"id":"a\"b\\c\/d\n\t\b\f\r"}`, `{"id":"\u00e9\ud83d\ude42"}`, `{"id":"\ud800"}`, "{\"id\":\"\xff\"}",
	`{"ID":"upper"}`, `{"Severity":"x","severity":"y"}`, `{"id":null}`, `{"intel":null}`, `{"intel":[]}`,
	`{"intel":[{"key":"a","known_exploited":true},{"known_exploited":false}]}`,
	`{"intel":[{"key":"a","note":"x"}],"intel":[{"key":"b"}]}`, `{"intel":[{"known_exploited":1}]}`,
	`{"unknown":{"deep":[1,2,{"x":null}]},"id":"x"}`, `{"id":"x"} trailing`, `{"id":"x",}`, `{"id":1}`,
	`{}`, ``, `[]`, `null`, `"str"`, `{"id":"x"`, `{"id":"x" "app":"y"}`, `{"key":"k2","threat_level":"t"}`,
	`{"known_exploited":truex}`, `{"known_exploited": true }`, "{\"id\":\"ctl\x01\"}", `{"id":"\x"}`,
}

func TestDecodeMatchesEncodingJSON(t *testing.T) {
	for _, s := range decodeSeeds {
		checkDecode(t, []byte(s))
	}
	r := rand.New(rand.NewPCG(3, 4))
	for i := 0; i < 2000; i++ {
		f := randFinding(r)
		b, _ := json.Marshal(f)
		checkDecode(t, b)
		checkStored(t, finding.AppendJSON(nil, &f))
		var got finding.Finding
		if err := finding.Decode(b, &got); err != nil || !reflect.DeepEqual(got, roundTrip(t, f)) {
			t.Fatalf("Decode(%s) = %+v, %v", b, got, err)
		}
	}
}

func roundTrip(t *testing.T, f finding.Finding) finding.Finding {
	b, _ := json.Marshal(f)
	var out finding.Finding
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

func FuzzDecode(f *testing.F) {
	for _, s := range decodeSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) { checkDecode(t, b) })
}

// checkStored asserts that AppendStored is Decode, the filter and AppendJSON,
// for every filter that matters.
func checkStored(t *testing.T, b []byte) {
	t.Helper()
	var f finding.Finding
	derr := json.Unmarshal(b, &f)
	for _, filter := range [][2]string{{"", ""}, {f.Severity, ""}, {"", f.App}, {f.Severity, f.App}, {"high", ""}, {"", "github"}, {"nomatch", ""}} {
		got, kept, err := finding.AppendStored([]byte("prefix"), b, filter[0], filter[1])
		want, wantKept := []byte("prefix"), false
		if derr == nil && (filter[0] == "" || filter[0] == f.Severity) && (filter[1] == "" || filter[1] == f.App) {
			want, wantKept = finding.AppendJSON(want, &f), true
		}
		if (err == nil) != (derr == nil) || kept != wantKept || !bytes.Equal(got, want) {
			t.Fatalf("AppendStored(%s, %q)\n got %s, %v, %v\nwant %s, %v, %v", b, filter, got, kept, err, want, wantKept, derr)
		}
	}
}

// TestAppendStoredCopiesCanonical: a finding as ingest stores it is copied
// without being decoded (no allocation); one with escapes, whitespace or
// unknown fields takes the decoding path (and still gives encoding/json's
// bytes, checked by TestDecodeMatchesEncodingJSON).
func TestAppendStoredCopiesCanonical(t *testing.T) {
	f := finding.Finding{ID: "f-1", Severity: "high", App: "github", Status: "open", Remediation: "manual",
		Intel: []finding.Intel{{Key: "app:github", ThreatLevel: "elevated", KnownExploited: true, Note: "Active campaign.", Source: "silo-intel"}}}
	stored := finding.AppendJSON(nil, &f)
	dst := make([]byte, 0, 4*len(stored))
	if n := testing.AllocsPerRun(100, func() { finding.AppendStored(dst, stored, "high", "github") }); n != 0 {
		t.Errorf("canonical finding: %v allocations, want 0 (copied as it is)", n)
	}
	spaced := []byte(` {"id":"f-1", "severity":"high", "status":"open"}`)
	if n := testing.AllocsPerRun(100, func() { finding.AppendStored(dst, spaced, "high", "") }); n == 0 {
		t.Errorf("non-canonical finding: no allocation, want it decoded")
	}
}
