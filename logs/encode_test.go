package logs

import (
	"encoding/json"
	"reflect"
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

// TestUnmarshalEntrySameAsJSON: the entry decoder gives exactly what
// encoding/json gives (the same entry, or an error for both), for the
// records marshalEntry writes (its own path, must) and for records it
// leaves to encoding/json (must not be taken by its own path).
func TestUnmarshalEntrySameAsJSON(t *testing.T) {
	at := time.Date(2026, 12, 6, 10, 4, 5, 123456789, time.UTC)
	written := func(e Entry) string {
		b, err := marshalEntry(&e)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	for _, tc := range []struct {
		name string
		rec  string
		own  bool // decoded without encoding/json
	}{
		{"access line", written(Entry{Time: at, Level: "INFO", Account: "acme", Function: "list", RequestID: "r-0123", Msg: "GET /findings 200",
			Attrs: map[string]string{"status": "200", "source": "gateway", "duration_ms": "0.412"}}), true},
		{"no optional fields", written(Entry{Time: at, Level: "WARN", Account: "acme"}), true},
		{"request ID, no function", written(Entry{Time: at, Level: "INFO", Account: "acme", RequestID: "r", Msg: "m"}), true},
		{"empty attr key and value", written(Entry{Time: at, Level: "INFO", Account: "acme", Msg: "m", Attrs: map[string]string{"a": "", "": "b"}}), true},
		{"zero time", written(Entry{Level: "INFO", Account: "acme", Msg: "m"}), true},
		{"html left raw", `{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"<b>&</b>"}`, true},
		{"escaped quote", written(Entry{Time: at, Level: "INFO", Account: "acme", Msg: `say "hi"`}), false},
		{"escaped html", written(Entry{Time: at, Level: "INFO", Account: "acme", Msg: "GET /a?x=<script>&y=1 200"}), false},
		{"unicode", written(Entry{Time: at, Level: "INFO", Account: "acme", Msg: "café \u2028"}), false},
		{"invalid utf-8", "{\"time\":\"2026-12-06T10:04:05Z\",\"level\":\"INFO\",\"account\":\"acme\",\"msg\":\"\xff\"}", false},
		{"not UTC", written(Entry{Time: at.In(time.FixedZone("x", 3600)), Level: "INFO", Account: "acme", Msg: "m"}), true},
		{"empty attrs", `{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"m","attrs":{}}`, false},
		{"repeated attr", `{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"m","attrs":{"a":"1","a":"2"}}`, true},
		{"spaces", `{"time": "2026-12-06T10:04:05Z", "level":"INFO","account":"acme","msg":"m"}`, false},
		{"other key order", `{"level":"INFO","time":"2026-12-06T10:04:05Z","account":"acme","msg":"m"}`, false},
		{"key in other case", `{"time":"2026-12-06T10:04:05Z","level":"INFO","Account":"acme","msg":"m"}`, false},
		{"unknown key", `{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"m","x":1}`, false},
		{"null attrs", `{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"m","attrs":null}`, false},
		{"bad time", `{"time":"2026-13-06T10:04:05Z","level":"INFO","account":"acme","msg":"m"}`, false},
		{"time not RFC 3339", `{"time":"2026-12-06 10:04:05","level":"INFO","account":"acme","msg":"m"}`, false},
		{"trailing bytes", `{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"m"}x`, false},
		{"truncated", `{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"m`, false},
		{"truncated attrs", `{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"m","attrs":{"a":"1"`, false},
		{"empty", ``, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sameAsJSON(t, []byte(tc.rec))
			var e Entry
			if own := parsePlain(tc.rec, &e); own != tc.own {
				t.Errorf("decoded by its own path: %v, want %v", own, tc.own)
			}
		})
	}
}

// FuzzUnmarshalEntry: for any record, the entry decoder agrees with
// encoding/json.
func FuzzUnmarshalEntry(f *testing.F) {
	f.Add([]byte(`{"time":"2026-12-06T10:04:05.123Z","level":"INFO","account":"acme","function":"f","request_id":"r","msg":"m","attrs":{"a":"1","b":""}}`))
	f.Add([]byte(`{"time":"2026-12-06T10:04:05Z","level":"INFO","account":"acme","msg":"m","attrs":{"a":"1",}}`))
	f.Add([]byte(`{"time":"2026-12-06T10:04:05+01:00","level":"INFO","account":"acme","msg":"\u00e9"}`))
	f.Fuzz(sameAsJSON)
}

func sameAsJSON(t *testing.T, rec []byte) {
	var got, want Entry
	err := unmarshalEntry(rec, &got)
	werr := json.Unmarshal(rec, &want)
	if (err == nil) != (werr == nil) || err == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("record %q:\nunmarshalEntry: %+v (%v)\njson.Unmarshal: %+v (%v)", rec, got, err, want, werr)
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
