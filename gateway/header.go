package gateway

import (
	"net/http"
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
// response gets X-Content-Type-Options: nosniff.
func copyResponseHeader(h, from http.Header, shared bool) {
	for k, vs := range from {
		ck := http.CanonicalHeaderKey(k)
		if !AllowedResponseHeader(ck) {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
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
