package logs

import (
	"encoding/json"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	silo "github.com/silo-run/silo"
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

// unmarshalEntry is json.Unmarshal(b, e), without reflection for a record
// as marshalEntry writes it on its own path: the fields in their order and
// every string printable ASCII without escapes. Any other record is left to
// encoding/json. Every line silo logs shows passes through here.
func unmarshalEntry(b []byte, e *Entry) error {
	if parsePlain(string(b), e) {
		return nil
	}
	*e = Entry{}
	return json.Unmarshal(b, e)
}

// parsePlain decodes rec into e if it is a plain record (unmarshalEntry)
// and reports whether it was; e may be partly set when it was not. The
// fields are substrings of rec: one allocation for the strings of a record.
func parsePlain(rec string, e *Entry) bool {
	p := scanner{s: rec}
	var ts, acct string
	ok := p.lit(`{"time":`) && p.str(&ts) && e.Time.UnmarshalText([]byte(ts)) == nil &&
		p.lit(`,"level":`) && p.str(&e.Level) &&
		p.lit(`,"account":`) && p.str(&acct) &&
		(!p.lit(`,"function":`) || p.str(&e.Function)) &&
		(!p.lit(`,"request_id":`) || p.str(&e.RequestID)) &&
		p.lit(`,"msg":`) && p.str(&e.Msg)
	if !ok {
		return false
	}
	e.Account = silo.AccountID(acct)
	if p.lit(`,"attrs":{`) {
		// marshalEntry writes at least one attribute, or none at all.
		e.Attrs = map[string]string{}
		for more := true; more; more = p.lit(",") {
			var k, v string
			if !p.str(&k) || !p.lit(":") || !p.str(&v) {
				return false
			}
			e.Attrs[k] = v
		}
		if !p.lit("}") {
			return false
		}
	}
	return p.lit("}") && p.i == len(rec)
}

// scanner reads a record from its start; each method advances only when it
// matches.
type scanner struct {
	s string
	i int
}

// lit consumes lit if the record continues with it.
func (p *scanner) lit(lit string) bool {
	if !strings.HasPrefix(p.s[p.i:], lit) {
		return false
	}
	p.i += len(lit)
	return true
}

// str consumes a quoted string whose bytes are printable ASCII other than
// '"' and '\\' (what encoding/json reads as the same bytes) and sets v to
// them.
func (p *scanner) str(v *string) bool {
	if p.i >= len(p.s) || p.s[p.i] != '"' {
		return false
	}
	for j := p.i + 1; j < len(p.s); j++ {
		switch c := p.s[j]; {
		case c == '"':
			*v = p.s[p.i+1 : j]
			p.i = j + 1
			return true
		case c < 0x20 || c >= utf8.RuneSelf || c == '\\':
			return false
		}
	}
	return false
}
