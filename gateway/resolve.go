package gateway

import (
	"net/netip"
	"net/url"
	"strings"

	silo "github.com/silo-run/silo"
)

// problem is why a request addresses no tenant. Every problem is decided from
// the request's syntax alone, never from whether a tenant exists.
type problem int

const (
	problemNone      problem = iota
	problemHost              // the host is neither the base domain nor a subdomain of it → 404
	problemTenant            // the tenant label is not a valid tenant ID → 404
	problemConfusion         // host and path name different tenants → 400
	problemPath              // the path is malformed or not canonical → 400
)

// target is what a request addresses.
type target struct {
	// tenant is "" when the request addresses the gateway itself (the base
	// host or an IP literal without a /t/ prefix), else a valid tenant ID.
	tenant string
	// path is the escaped path within the tenant (or of the gateway),
	// starting with "/".
	path string
	// shared is true when the tenant is named only by the path form, on a
	// host (the base domain or an IP) that every tenant shares: a browser
	// sees every such tenant as one origin.
	shared bool
}

// resolve finds the tenant a request addresses from its Host header and its
// escaped path. base is the normalized base domain (lower case, no trailing
// dot). It never panics; a non-empty tenant is always a valid tenant ID.
//
// The host form is <tenant>.<base>, the path form /t/<tenant>/...; the port,
// the host's letter case and one trailing dot are ignored. When both forms
// are present they must name the same tenant, and the prefix is removed.
func resolve(host, escPath, base string) (target, problem) {
	hostTenant, p := tenantFromHost(host, base)
	if p != problemNone {
		return target{}, p
	}
	if !strings.HasPrefix(escPath, "/") {
		return target{}, problemPath
	}
	path := escPath
	if rest, ok := strings.CutPrefix(escPath, "/t/"); ok {
		label, tail, _ := strings.Cut(rest, "/")
		valid := validTenant(label)
		switch {
		case hostTenant != "" && label != hostTenant:
			return target{}, problemConfusion
		case !valid:
			return target{}, problemTenant
		}
		shared := hostTenant == ""
		return target{tenant: label, path: "/" + tail, shared: shared}, problemNone
	}
	return target{tenant: hostTenant, path: path}, problemNone
}

// tenantFromHost returns the tenant named by host, or "" for the base host,
// an IP literal or an empty host.
func tenantFromHost(host, base string) (string, problem) {
	name := host
	if strings.HasPrefix(name, "[") {
		end := strings.IndexByte(name, ']')
		if end < 0 || !validPort(name[end+1:]) {
			return "", problemHost
		}
		if _, err := netip.ParseAddr(name[1:end]); err != nil {
			return "", problemHost
		}
		return "", problemNone // an IPv6 literal addresses the gateway itself
	}
	if i := strings.LastIndexByte(name, ':'); i >= 0 {
		if !validPort(name[i:]) {
			return "", problemHost
		}
		name = name[:i]
	}
	name = strings.TrimSuffix(strings.ToLower(name), ".")
	if name == "" || name == base {
		return "", problemNone
	}
	if maybeIP(name) {
		if _, err := netip.ParseAddr(name); err == nil {
			return "", problemNone
		}
	}
	label, ok := strings.CutSuffix(name, "."+base)
	if !ok {
		return "", problemHost
	}
	if !validTenant(label) {
		return "", problemTenant
	}
	return label, problemNone
}

// maybeIP reports whether name could be an IP address: an IPv6 address has
// a ':', an IPv4 address only digits and dots. Most host names are neither,
// and netip.ParseAddr allocates the error that says so.
func maybeIP(name string) bool {
	if strings.IndexByte(name, ':') >= 0 {
		return true
	}
	for i := 0; i < len(name); i++ {
		if c := name[i]; c != '.' && (c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// validPort reports whether s is "" or ":" followed by 1–5 digits.
func validPort(s string) bool {
	if s == "" {
		return true
	}
	if s[0] != ':' || len(s) < 2 || len(s) > 6 {
		return false
	}
	for i := 1; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// validTenant reports whether s may name a tenant, developer or environment
// account. Reserved names such as "production" are refused: the production
// account is never reachable through the gateway.
func validTenant(s string) bool {
	_, err := silo.ParseTenantID(s)
	return err == nil
}

// splitPath splits an escaped path that starts with "/" into decoded
// segments. It refuses what a traversal would need or a router could read two
// ways: "." and ".." segments (also percent-encoded), empty interior segments,
// bad escapes and control characters. A trailing slash yields a final empty
// segment; "/" yields [""].
func splitPath(escPath string) ([]string, bool) {
	if !strings.HasPrefix(escPath, "/") {
		return nil, false
	}
	rest := escPath[1:]
	segs := make([]string, strings.Count(rest, "/")+1)
	for i := range segs {
		s, tail, _ := strings.Cut(rest, "/")
		rest = tail
		if s == "" && i != len(segs)-1 {
			return nil, false
		}
		if strings.IndexByte(s, '%') >= 0 {
			d, err := url.PathUnescape(s)
			if err != nil {
				return nil, false
			}
			s = d
		}
		if s == "." || s == ".." {
			return nil, false
		}
		for j := 0; j < len(s); j++ {
			if s[j] < 0x20 || s[j] == 0x7f {
				return nil, false
			}
		}
		segs[i] = s
	}
	return segs, true
}
