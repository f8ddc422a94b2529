package logs

import (
	"encoding/json"
	"testing"
	"time"
)

// TestMarshalEntrySameAsJSON: the entry encoder writes exactly what
// encoding/json writes, for plain entries (its own path) and for every kind
// of entry it leaves to encoding/json.
func TestMarshalEntrySameAsJSON(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 4, 5, 123456789, time.UTC)
	plainAttrs := map[string]string{"status": "200", "source": "gateway", "duration_ms": "0.412", "release": "r-1"}
	for _, tc := range []struct {
		name string
		e    Entry
		own  bool // encoded without encoding/json
	}{
		{"access line", Entry{Time: at, Level: "INFO", Account: "acme", Function: "list", RequestID: "r-0123", Msg: "GET /findings 200", Attrs: plainAttrs}, true},
		{"no optional fields", Entry{Time: at, Level: "WARN", Account: "acme", Msg: ""}, true},
		{"empty attrs", Entry{Time: at.Truncate(time.Second), Level: "INFO", Account: "acme", Msg: "m", Attrs: map[string]string{}}, true},
		{"empty attr value", Entry{Time: at, Level: "INFO", Account: "acme", Msg: "m", Attrs: map[string]string{"a": "", "": "b"}}, true},
		{"quote in msg", Entry{Time: at, Level: "INFO", Account: "acme", Msg: `say "hi"`}, false},
		{"backslash in attr", Entry{Time: at, Level: "INFO", Account: "acme", Msg: "m", Attrs: map[string]string{"p": `a\b`}}, false},
		{"html in path", Entry{Time: at, Level: "INFO", Account: "acme", Msg: "GET /a?x=<script>&y=1 200"}, false},
		{"control char", Entry{Time: at, Level: "INFO", Account: "acme", Msg: "a\nb\x01"}, false},
		{"unicode", Entry{Time: at, Level: "INFO", Account: "acme", Msg: "café \u2028"}, false},
		{"invalid utf-8 key", Entry{Time: at, Level: "INFO", Account: "acme", Msg: "m", Attrs: map[string]string{"\xff": "v"}}, false},
		{"not UTC", Entry{Time: at.In(time.FixedZone("x", 3600)), Level: "INFO", Account: "acme", Msg: "m"}, false},
		{"zero time", Entry{Level: "INFO", Account: "acme", Msg: "m"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			want, werr := json.Marshal(&tc.e)
			got, err := marshalEntry(&tc.e)
			if string(got) != string(want) || (err == nil) != (werr == nil) {
				t.Fatalf("marshalEntry:\n%s (%v)\njson.Marshal:\n%s (%v)", got, err, want, werr)
			}
			if p := entryIsPlain(&tc.e); p != tc.own {
				t.Fatalf("encoded by its own path: %v, want %v", p, tc.own)
			}
		})
	}
	// A year beyond 9999 is an error from encoding/json, and from here.
	far := Entry{Time: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Level: "INFO", Account: "acme", Msg: "m"}
	if _, err := marshalEntry(&far); err == nil {
		t.Fatal("marshalEntry of a time in year 10000: no error, want encoding/json's")
	}
}

// entryIsPlain reports whether marshalEntry encodes e itself.
func entryIsPlain(e *Entry) bool {
	if y := e.Time.Year(); y < 0 || y > 9999 || e.Time.Location() != time.UTC {
		return false
	}
	for _, s := range []string{e.Level, string(e.Account), e.Function, e.RequestID, e.Msg} {
		if !plain(s) {
			return false
		}
	}
	for k, v := range e.Attrs {
		if !plain(k) || !plain(v) {
			return false
		}
	}
	return true
}

func BenchmarkMarshalEntry(b *testing.B) {
	e := Entry{Time: time.Now().UTC(), Level: "INFO", Account: "acme", Function: "list", RequestID: "r-0123456789abcdef", Msg: "GET /findings 200",
		Attrs: map[string]string{"status": "200", "source": "gateway", "duration_ms": "0.412", "release": "r-6d3e03407a0ee746"}}
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			json.Marshal(&e)
		}
	})
	b.Run("marshalEntry", func(b *testing.B) {
		b.ReportAllocs()
		for range b.N {
			marshalEntry(&e)
		}
	})
}
