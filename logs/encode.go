package logs

import (
	"encoding/json"
	"slices"
	"time"
	"unicode/utf8"
)

// marshalEntry returns json.Marshal(e), byte for byte, without reflection
// for the common entry: every string plain printable ASCII and a UTC time
// within years 0–9999 (Append makes every time UTC). Any other entry is left to encoding/json. The
// gateway writes one entry per request, so this is on the serving path.
func marshalEntry(e *Entry) ([]byte, error) {
	if y := e.Time.Year(); y < 0 || y > 9999 || e.Time.Location() != time.UTC || !plain(string(e.Level)) || !plain(string(e.Account)) ||
		!plain(e.Function) || !plain(e.RequestID) || !plain(e.Msg) {
		return json.Marshal(e)
	}
	var small [8]string // most entries have a few attributes: no allocation
	keys := small[:0]
	for k, v := range e.Attrs {
		if !plain(k) || !plain(v) {
			return json.Marshal(e)
		}
		keys = append(keys, k)
	}
	slices.Sort(keys)
	// The fixed parts (the names, quotes and punctuation, and a time of
	// at most 35 bytes) take at most 128 bytes with the newline Append adds.
	n := 128 + len(e.Level) + len(e.Account) + len(e.Function) + len(e.RequestID) + len(e.Msg)
	for k, v := range e.Attrs {
		n += len(k) + len(v) + 6
	}
	b := make([]byte, 0, n)
	b = append(b, `{"time":"`...)
	b = e.Time.AppendFormat(b, time.RFC3339Nano)
	b = append(b, `","level":"`...)
	b = append(b, e.Level...)
	b = append(b, `","account":"`...)
	b = append(b, e.Account...)
	b = append(b, '"')
	if e.Function != "" {
		b = append(b, `,"function":"`...)
		b = append(b, e.Function...)
		b = append(b, '"')
	}
	if e.RequestID != "" {
		b = append(b, `,"request_id":"`...)
		b = append(b, e.RequestID...)
		b = append(b, '"')
	}
	b = append(b, `,"msg":"`...)
	b = append(b, e.Msg...)
	b = append(b, '"')
	if len(e.Attrs) > 0 {
		b = append(b, `,"attrs":{`...)
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, '"')
			b = append(b, k...)
			b = append(b, `":"`...)
			b = append(b, e.Attrs[k]...)
			b = append(b, '"')
		}
		b = append(b, '}')
	}
	return append(b, '}'), nil
}

// plain reports whether encoding/json writes s as itself between quotes:
// printable ASCII without '"', '\\' and the HTML characters it escapes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
