package gateway

import (
	"errors"
	"io"
	"net/http"
	"slices"
	"strings"
)

// The response fields a function may set. Everything else is dropped: a
// field a browser or a proxy acts on beyond the one response (cookies,
// Clear-Site-Data, Alt-Svc, Strict-Transport-Security, CORS grants,
// proxy-internal redirects, framing and length) would let one tenant's
// function act on the shared gateway, the shared domain or other tenants.
// See RATIONALE.md, "Response headers", and docs/security.md.
var allowedResponse = map[string]bool{
	"Accept-Ranges":                true,
	"Age":                          true,
	"Cache-Control":                true,
	"Content-Disposition":          true,
	"Content-Encoding":             true,
	"Content-Language":             true,
	"Content-Range":                true,
	"Content-Security-Policy":      true,
	"Content-Type":                 true,
	"Cross-Origin-Embedder-Policy": true,
	"Cross-Origin-Opener-Policy":   true,
	"Cross-Origin-Resource-Policy": true,
	"Etag":                         true,
	"Expires":                      true,
	"Last-Modified":                true,
	"Location":                     true,
	"Permissions-Policy":           true,
	"Referrer-Policy":              true,
	"Retry-After":                  true,
	"Vary":                         true,
	"X-Content-Type-Options":       true,
	"X-Frame-Options":              true,
}

// deniedCustomPrefixes are X- fields that the gateway, reverse proxies or
// web servers in front of it act on (X-Accel-Redirect makes nginx serve
// another URL or a file; X-Sendfile a file), or that name the request.
var deniedCustomPrefixes = []string{"X-Request-Id", "X-Silo-", "X-Forwarded-", "X-Real-Ip", "X-Accel-", "X-Sendfile", "X-Lighttpd-"}

// AllowedResponseHeader reports whether a function may set the response
// field with canonical name k: the fields of the allow-list above, and
// custom fields named X-… other than those the gateway or proxies act on.
func AllowedResponseHeader(k string) bool {
	if allowedResponse[k] {
		return true
	}
	if !strings.HasPrefix(k, "X-") || len(k) < 3 || !validToken(k) {
		return false
	}
	for _, p := range deniedCustomPrefixes {
		if strings.HasPrefix(k, p) {
			return false
		}
	}
	return true
}

// sharedOriginPolicy is added to every function response served to a
// tenant addressed by the path form on a shared host: the browser gives
// the document an opaque origin of its own, so its scripts cannot read or
// write the shared origin's cookies or storage or those of the other
// tenants on it. Scripts, forms, popups and downloads still work.
const sharedOriginPolicy = "sandbox allow-scripts allow-forms allow-popups allow-downloads"

// copyResponseHeader copies into h the fields of a function's response
// that pass AllowedResponseHeader, every value of each, skipping values
// with control characters; shared adds sharedOriginPolicy. Every function
// response gets X-Content-Type-Options: nosniff. A field h does not have
// yet and whose values all pass takes from's list itself, capped at its
// length so that an append to either copies it.
func copyResponseHeader(h, from http.Header, shared bool) {
	for k, vs := range from {
		ck := http.CanonicalHeaderKey(k)
		if !AllowedResponseHeader(ck) {
			continue
		}
		if h[ck] == nil && !slices.ContainsFunc(vs, controlChars) {
			h[ck] = vs[:len(vs):len(vs)]
			continue
		}
		for _, v := range vs {
			if controlChars(v) {
				continue
			}
			h[ck] = append(h[ck], v)
		}
	}
	h["X-Content-Type-Options"] = hdrNosniff
	if shared {
		h.Add("Content-Security-Policy", sharedOriginPolicy)
	}
}

// controlChars reports whether v holds a character that would split or
// end a header field.
func controlChars(v string) bool { return strings.ContainsAny(v, "\r\n\x00") }

// readBody reads the whole body, at most max bytes.
func readBody(w http.ResponseWriter, r *http.Request, max int64) ([]byte, error) {
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return nil, nil
	}
	rd := http.MaxBytesReader(w, r.Body, max)
	size := int64(512)
	if r.ContentLength > 0 {
		size = r.ContentLength
	}
	buf := make([]byte, 0, size+1)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := rd.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if err != nil {
			if errors.Is(err, io.EOF) {
				return buf, nil
			}
			return buf, err
		}
	}
}

var hopByHop = map[string]bool{
	"Connection": true, "Keep-Alive": true, "Proxy-Connection": true, "Te": true,
	"Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
}

// dropRequest are the request fields a function never sees: credentials.
var dropRequest = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "X-Api-Key": true, "Cookie": true,
	HeaderSchedule: true, HeaderScheduledFor: true,
}

// The header fields of a scheduled run (silo.yaml "schedules"): the
// schedule's name and the time the run was due, RFC 3339 in UTC. The
// gateway drops them from client requests, so a function that sees them
// was started by its schedule.
const (
	HeaderSchedule     = "X-Silo-Schedule"
	HeaderScheduledFor = "X-Silo-Scheduled-For"
)

// forwardHeader copies the fields a function may see. The values of all
// fields share one backing array, each sub-slice capped at its own length so
// that an append to one field cannot overwrite the next.
func forwardHeader(in http.Header) http.Header {
	keep := func(k string) bool { return !dropRequest[k] && !hopByHop[k] && k != "X-Request-Id" }
	fields, n := 0, 0
	for k, v := range in {
		if keep(k) {
			fields++
			n += len(v)
		}
	}
	out := make(http.Header, fields)
	var vals []string
	if n > 0 {
		vals = make([]string, 0, n)
	}
	for k, v := range in {
		if !keep(k) {
			continue
		}
		i := len(vals)
		vals = append(vals, v...)
		out[k] = vals[i:len(vals):len(vals)]
	}
	return out
}

// validRequestID reports whether a client's X-Request-Id may be kept: 1–64
// characters from letters, digits, '-', '_', '.' and ':'.
func validRequestID(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':') {
			return false
		}
	}
	return true
}
