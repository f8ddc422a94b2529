package finding

// Hand-written JSON for the hot paths (list encodes every finding it returns
// and decodes every finding it scans). encoding/json's reflection costs tens
// of microseconds per finding in a wasm guest; these take a few. Their output
// is byte for byte what encoding/json produces for the same values, and
// Decode gives the same result as json.Unmarshal: it handles the shapes this
// app writes (and hand-written fixtures) and hands anything else (unknown or
// differently cased keys, nulls, numbers, invalid UTF-8...) to encoding/json.
// codec_test.go checks both against encoding/json.

import (
	"encoding/json"
	"strconv"
	"unicode/utf8"
)

// AppendJSON appends f encoded as encoding/json would encode it.
func AppendJSON(dst []byte, f *Finding) []byte {
	dst = append(dst, `{"id":`...)
	dst = appendString(dst, f.ID)
	dst = append(dst, `,"severity":`...)
	dst = appendString(dst, f.Severity)
	dst = appendField(dst, `,"app":`, f.App)
	dst = appendField(dst, `,"title":`, f.Title)
	dst = appendField(dst, `,"cve":`, f.CVE)
	dst = appendField(dst, `,"description":`, f.Description)
	dst = append(dst, `,"status":`...)
	dst = appendString(dst, f.Status)
	if len(f.Intel) > 0 {
		dst = append(dst, `,"intel":[`...)
		for i := range f.Intel {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = appendIntel(dst, &f.Intel[i])
		}
		dst = append(dst, ']')
	}
	dst = appendField(dst, `,"remediation":`, f.Remediation)
	dst = appendField(dst, `,"request_id":`, f.RequestID)
	return append(dst, '}')
}

func appendIntel(dst []byte, it *Intel) []byte {
	dst = append(dst, `{"key":`...)
	dst = appendString(dst, it.Key)
	dst = appendField(dst, `,"threat_level":`, it.ThreatLevel)
	if it.KnownExploited {
		dst = append(dst, `,"known_exploited":true`...)
	}
	dst = appendField(dst, `,"note":`, it.Note)
	dst = appendField(dst, `,"source":`, it.Source)
	return append(dst, '}')
}

// appendField appends name and s unless s is empty (omitempty).
func appendField(dst []byte, name, s string) []byte {
	if s == "" {
		return dst
	}
	return appendString(append(dst, name...), s)
}

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string with encoding/json's escaping:
// HTML-safe (<, >, & as \u00XX), U+2028 and U+2029 escaped, invalid UTF-8
// as U+FFFD.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' && c != '<' && c != '>' && c != '&' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\b':
				dst = append(dst, '\\', 'b')
			case '\f':
				dst = append(dst, '\\', 'f')
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendList wraps items, the comma-separated encodings of count findings,
// into the body of GET /findings: encoding/json's encoding of
// map[string]any{"findings": findings, "count": count, "plan": plan}. It
// reuses items' array when it has room.
func AppendList(items []byte, count int, plan string) []byte {
	var head [32]byte
	h := append(strconv.AppendInt(append(head[:0], `{"count":`...), int64(count), 10), `,"findings":[`...)
	n := len(items)
	out := append(items, make([]byte, len(h))...)
	copy(out[len(h):], out[:n])
	copy(out, h)
	out = append(out, `],"plan":`...)
	out = appendString(out, plan)
	return append(out, '}')
}

// Decode decodes a stored finding into f, which it resets first; the result
// and the error (nil or not) are json.Unmarshal's.
func Decode(b []byte, f *Finding) error {
	*f = Finding{}
	d := decoder{b: b}
	if d.finding(f) && d.end() {
		return nil
	}
	*f = Finding{}
	return json.Unmarshal(b, f)
}

// DecodeIntel is Decode for a threat-intel record.
func DecodeIntel(b []byte, it *Intel) error {
	saved := *it
	d := decoder{b: b}
	if d.intel(it) && d.end() {
		return nil
	}
	*it = saved
	return json.Unmarshal(b, it)
}

// decoder is a fast path: each method returns false (and the caller falls
// back to encoding/json) on anything outside the shapes it knows.
type decoder struct {
	b []byte
	i int
}

func (d *decoder) ws() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *decoder) end() bool {
	d.ws()
	return d.i == len(d.b)
}

func (d *decoder) byte(c byte) bool {
	d.ws()
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// str reads a string without escapes, or with the simple escapes; anything
// else (\u, invalid UTF-8, control characters) is left to encoding/json.
func (d *decoder) str() (string, bool) {
	if !d.byte('"') {
		return "", false
	}
	start := d.i
	ascii := true
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			s := d.b[start:d.i]
			d.i++
			if !ascii && !utf8.Valid(s) {
				return "", false
			}
			return string(s), true
		case c == '\\':
			return d.escaped(start)
		case c < 0x20:
			return "", false
		case c >= utf8.RuneSelf:
			ascii = false
		}
		d.i++
	}
	return "", false
}

// escaped finishes a string that has escapes, from start.
func (d *decoder) escaped(start int) (string, bool) {
	out := make([]byte, 0, d.i-start+16)
	out = append(out, d.b[start:d.i]...)
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(out) {
				return "", false
			}
			return string(out), true
		case c == '\\':
			if d.i+1 >= len(d.b) {
				return "", false
			}
			e := d.b[d.i+1]
			switch e {
			case '"', '\\', '/':
				out = append(out, e)
			case 'b':
				out = append(out, '\b')
			case 'f':
				out = append(out, '\f')
			case 'n':
				out = append(out, '\n')
			case 'r':
				out = append(out, '\r')
			case 't':
				out = append(out, '\t')
			default:
				return "", false // \u and bad escapes: encoding/json
			}
			d.i += 2
			continue
		case c < 0x20:
			return "", false
		}
		out = append(out, c)
		d.i++
	}
	return "", false
}

// object calls field for every key of an object; field returns false for a
// key or value it does not know.
func (d *decoder) object(field func(key string) bool) bool {
	if !d.byte('{') {
		return false
	}
	if d.byte('}') {
		return true
	}
	for {
		k, ok := d.str()
		if !ok || !d.byte(':') || !field(k) {
			return false
		}
		if d.byte(',') {
			continue
		}
		return d.byte('}')
	}
}

func (d *decoder) strInto(p *string) bool {
	s, ok := d.str()
	*p = s
	return ok
}

func (d *decoder) finding(f *Finding) bool {
	intel := false
	return d.object(func(k string) bool {
		switch k {
		case "id":
			return d.strInto(&f.ID)
		case "severity":
			return d.strInto(&f.Severity)
		case "app":
			return d.strInto(&f.App)
		case "title":
			return d.strInto(&f.Title)
		case "cve":
			return d.strInto(&f.CVE)
		case "description":
			return d.strInto(&f.Description)
		case "status":
			return d.strInto(&f.Status)
		case "remediation":
			return d.strInto(&f.Remediation)
		case "request_id":
			return d.strInto(&f.RequestID)
		case "intel":
			// A repeated "intel" key makes encoding/json decode into the
			// elements of the first array: leave that to it.
			if intel || !d.byte('[') {
				return false
			}
			intel = true
			f.Intel = []Intel{}
			if d.byte(']') {
				return true
			}
			for {
				var it Intel
				if !d.intel(&it) {
					return false
				}
				f.Intel = append(f.Intel, it)
				if d.byte(',') {
					continue
				}
				return d.byte(']')
			}
		}
		return false
	})
}

func (d *decoder) intel(it *Intel) bool {
	return d.object(func(k string) bool {
		switch k {
		case "key":
			return d.strInto(&it.Key)
		case "threat_level":
			return d.strInto(&it.ThreatLevel)
		case "note":
			return d.strInto(&it.Note)
		case "source":
			return d.strInto(&it.Source)
		case "known_exploited":
			d.ws()
			switch {
			case len(d.b)-d.i >= 4 && string(d.b[d.i:d.i+4]) == "true":
				it.KnownExploited = true
				d.i += 4
				return true
			case len(d.b)-d.i >= 5 && string(d.b[d.i:d.i+5]) == "false":
				it.KnownExploited = false
				d.i += 5
				return true
			}
		}
		return false
	})
}

// ErrorBody appends the JSON error body {"error":{"message":msg}}.
func ErrorBody(dst []byte, msg string) []byte {
	dst = append(dst, `{"error":{"message":`...)
	dst = appendString(dst, msg)
	return append(dst, `}}`...)
}

// AppendStored decodes the stored finding b and, if it matches severity and
// app ("" matches any), appends its encoding (AppendJSON of Decode(b)) to
// dst. When b is already in that encoding, as everything AppendJSON writes
// without escapes is, it is copied as it is without being decoded. err is
// Decode's.
func AppendStored(dst, b []byte, severity, app string) (out []byte, kept bool, err error) {
	if sev, ap, ok := canonical(b); ok {
		if severity != "" && string(sev) != severity || app != "" && string(ap) != app {
			return dst, false, nil
		}
		return append(dst, b...), true, nil
	}
	var f Finding
	if err := Decode(b, &f); err != nil {
		return dst, false, err
	}
	if severity != "" && f.Severity != severity || app != "" && f.App != app {
		return dst, false, nil
	}
	return AppendJSON(dst, &f), true, nil
}

// canonical reports whether b is exactly AppendJSON's encoding of the
// finding it holds, with no escape in any string, and returns its severity
// and app (slices of b).
func canonical(b []byte) (sev, app []byte, ok bool) {
	c := canon{b: b}
	var s []byte
	if !c.lit(`{"id":`) || !c.str(&s) || !c.lit(`,"severity":`) || !c.str(&sev) {
		return nil, nil, false
	}
	if !c.opt(`,"app":`, &app) || !c.opt(`,"title":`, &s) || !c.opt(`,"cve":`, &s) || !c.opt(`,"description":`, &s) {
		return nil, nil, false
	}
	if !c.lit(`,"status":`) || !c.str(&s) {
		return nil, nil, false
	}
	if c.lit(`,"intel":[`) {
		for {
			if !c.intel() {
				return nil, nil, false
			}
			if c.lit(`]`) {
				break
			}
			if !c.lit(`,`) {
				return nil, nil, false
			}
		}
	}
	if !c.opt(`,"remediation":`, &s) || !c.opt(`,"request_id":`, &s) || !c.lit(`}`) || c.i != len(b) {
		return nil, nil, false
	}
	return sev, app, true
}

type canon struct {
	b []byte
	i int
}

// lit consumes l if b continues with it.
func (c *canon) lit(l string) bool {
	if len(c.b)-c.i >= len(l) && string(c.b[c.i:c.i+len(l)]) == l {
		c.i += len(l)
		return true
	}
	return false
}

// plain marks the bytes that stand for themselves in a canonical string:
// printable ASCII other than the quote, the backslash and the HTML
// characters encoding/json escapes.
var plain = func() (t [256]bool) {
	for ch := 0x20; ch < utf8.RuneSelf; ch++ {
		t[ch] = true
	}
	for _, ch := range `"\<>&` {
		t[ch] = false
	}
	return t
}()

// str consumes a string that encodes as itself: no byte AppendJSON
// escapes, valid UTF-8. *s is its content, a slice of b. (One table lookup
// per ASCII byte: in a wasm guest every branch and call counts.)
func (c *canon) str(s *[]byte) bool {
	if c.i >= len(c.b) || c.b[c.i] != '"' {
		return false
	}
	rest := c.b[c.i+1:]
	for i := 0; i < len(rest); {
		ch := rest[i]
		if plain[ch] {
			i++
			continue
		}
		if ch == '"' {
			*s = rest[:i]
			c.i += i + 2
			return true
		}
		if ch < utf8.RuneSelf {
			return false
		}
		r, size := utf8.DecodeRune(rest[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			return false
		}
		i += size
	}
	return false
}

// opt consumes an omitempty field: absent, or name and a non-empty string.
func (c *canon) opt(name string, s *[]byte) bool {
	*s = nil
	if !c.lit(name) {
		return true
	}
	return c.str(s) && len(*s) > 0
}

func (c *canon) intel() bool {
	var s []byte
	if !c.lit(`{"key":`) || !c.str(&s) || !c.opt(`,"threat_level":`, &s) {
		return false
	}
	c.lit(`,"known_exploited":true`)
	return c.opt(`,"note":`, &s) && c.opt(`,"source":`, &s) && c.lit(`}`)
}
