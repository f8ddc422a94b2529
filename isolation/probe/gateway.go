package probe

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
)

// rawReq is one request written byte for byte to the gateway, so that
// hosts, paths and headers reach it exactly as an attacker would send them
// (no client-side cleaning of "..", "//" or escapes).
type rawReq struct {
	method, target, host string
	auth                 string // Authorization value; "" sends none
	apiKey               string // X-Api-Key value; "" sends none
	headers              [][2]string
	body                 []byte
}

type rawResp struct {
	status int
	body   []byte
}

func (q rawReq) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s Host:%q", q.method, q.target, q.host)
	if q.auth != "" {
		fmt.Fprintf(&b, " Authorization:%q", redact(q.auth))
	}
	if q.apiKey != "" {
		fmt.Fprintf(&b, " X-Api-Key:%q", redact(q.apiKey))
	}
	for _, h := range q.headers {
		fmt.Fprintf(&b, " %s:%q", h[0], h[1])
	}
	return b.String()
}

// redact hides the secret part of anything that looks like an API key.
func redact(s string) string {
	f := strings.Fields(s)
	for i, w := range f {
		if parts := strings.Split(w, "_"); len(parts) == 4 && parts[0] == "sk" && len(parts[3]) > 6 {
			f[i] = strings.Join(parts[:3], "_") + "_" + parts[3][:4] + "…"
		}
	}
	return strings.Join(f, " ")
}

// send writes q on a fresh connection to the gateway and reads the response.
func (r *run) send(ctx context.Context, q rawReq) (*rawResp, error) {
	addr := strings.TrimPrefix(r.t.Gateway, "http://")
	if i := strings.IndexByte(addr, '/'); i >= 0 {
		addr = addr[:i]
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("probe: reach the gateway at %s: %w", r.t.Gateway, err)
	}
	defer conn.Close()
	dl := time.Now().Add(30 * time.Second)
	if cd, ok := ctx.Deadline(); ok && cd.Before(dl) {
		dl = cd
	}
	conn.SetDeadline(dl)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\nUser-Agent: silo-probe\r\n", q.method, q.target, q.host)
	if q.auth != "" {
		fmt.Fprintf(&b, "Authorization: %s\r\n", q.auth)
	}
	if q.apiKey != "" {
		fmt.Fprintf(&b, "X-Api-Key: %s\r\n", q.apiKey)
	}
	for _, h := range q.headers {
		fmt.Fprintf(&b, "%s: %s\r\n", h[0], h[1])
	}
	if len(q.body) > 0 || q.method == "POST" {
		fmt.Fprintf(&b, "Content-Type: application/json\r\nContent-Length: %d\r\n", len(q.body))
	}
	b.WriteString("\r\n")
	if _, err := io.WriteString(conn, b.String()); err != nil {
		return nil, fmt.Errorf("probe: send to the gateway: %w", err)
	}
	if _, err := conn.Write(q.body); err != nil {
		return nil, fmt.Errorf("probe: send to the gateway: %w", err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, fmt.Errorf("probe: read the gateway's response: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return nil, fmt.Errorf("probe: read the gateway's response: %w", err)
	}
	return &rawResp{status: resp.StatusCode, body: body}, nil
}

// servedAs returns the account a 2xx probe response says it ran as.
func servedAs(resp *rawResp) string {
	var w struct {
		Account string `json:"account"`
	}
	_ = json.Unmarshal(resp.body, &w)
	return w.Account
}

// served2xx is the breach test of a request the gateway must refuse: any
// 2xx is a breach.
func served2xx(resp *rawResp, err error) string {
	if err != nil || resp == nil || resp.status < 200 || resp.status > 299 {
		return ""
	}
	as := servedAs(resp)
	if as == "" {
		as = "an unknown account"
	}
	return fmt.Sprintf("the gateway answered %d and served the request as %s", resp.status, as)
}

// servedAsOther is the breach test of a request that may be served, but
// only as the key's own account.
func servedAsOther(own silo.AccountID) func(*rawResp, error) string {
	return func(resp *rawResp, err error) string {
		if err != nil || resp == nil || resp.status < 200 || resp.status > 299 {
			return ""
		}
		if as := servedAs(resp); as != string(own) {
			return fmt.Sprintf("the gateway answered %d and served the request as %q, not the key's account %s", resp.status, as, own)
		}
		return ""
	}
}

// servedOK is the test of a control: a 2xx served as want.
func servedOK(want silo.AccountID, resp *rawResp, err error) string {
	if err != nil {
		return err.Error()
	}
	if resp.status < 200 || resp.status > 299 {
		return fmt.Sprintf("the gateway answered %d: %.200s", resp.status, strings.TrimSpace(string(resp.body)))
	}
	if as := servedAs(resp); as != string(want) {
		return fmt.Sprintf("served as %q, want %s", as, want)
	}
	return ""
}

// gatewaySurface attacks the gateway over real HTTP: host, path and header
// confusion, keys of one account used on another, missing, revoked and
// malformed keys, and a suspended tenant.
func (r *run) gatewaySurface(ctx context.Context, rep *Report) error {
	t := newTally("gateway", "HTTP: host, path and header confusion; A's key on B; no, revoked and malformed keys; suspended tenant")
	A, B := string(r.a.id), string(r.b.id)
	kA, kB := r.a.key, r.b.key
	base := r.t.BaseDomain
	hA, hB := r.host(r.a.id), r.host(r.b.id)
	gw := strings.TrimPrefix(r.t.Gateway, "http://")
	if i := strings.IndexByte(gw, '/'); i >= 0 {
		gw = gw[:i]
	}
	_, port, _ := net.SplitHostPort(gw)
	bearer := func(k string) string { return "Bearer " + k }
	get := func(host, target string) rawReq { return rawReq{method: "GET", target: target, host: host} }
	withAuth := func(q rawReq, k string) rawReq { q.auth = bearer(k); return q }
	withAPIKey := func(q rawReq, k string) rawReq { q.apiKey = k; return q }
	withHeader := func(q rawReq, k, v string) rawReq { q.headers = append(q.headers, [2]string{k, v}); return q }

	control := func(what string, want silo.AccountID, q rawReq) error {
		resp, err := r.send(ctx, q)
		if err != nil && ctx.Err() != nil {
			return err
		}
		t.control(what+" ["+q.String()+"]", servedOK(want, resp, err))
		return nil
	}
	attempt := func(what string, q rawReq, breach func(*rawResp, error) string) error {
		resp, err := r.send(ctx, q)
		if err != nil && ctx.Err() != nil {
			return err
		}
		t.attempt(what+" ["+q.String()+"]", httpOutcome(resp, err), breach(resp, err))
		return nil
	}

	// Controls: each account's own key on its own host and path works, in
	// every form the attempts below twist.
	controls := []struct {
		what string
		want silo.AccountID
		q    rawReq
	}{
		{"A's key on A's host (Authorization)", r.a.id, withAuth(get(hA, "/probe"), kA)},
		{"A's key on A's host (X-Api-Key)", r.a.id, withAPIKey(get(hA, "/probe"), kA)},
		{"A's key on A's path form", r.a.id, withAuth(get(gw, "/t/"+A+"/probe"), kA)},
		{"A's key on A's path form (X-Api-Key)", r.a.id, withAPIKey(get(gw, "/t/"+A+"/probe"), kA)},
		{"B's key on B's host", r.b.id, withAuth(get(hB, "/probe"), kB)},
		{"A's key on A's host in upper case", r.a.id, withAuth(get(strings.ToUpper(hA), "/probe"), kA)},
		{"A's key on A's host with a trailing dot", r.a.id, withAuth(get(hA+".", "/probe"), kA)},
		{"A's key on A's host with the gateway's port", r.a.id, withAuth(get(hA+":"+port, "/probe"), kA)},
		{"A's key on A's host and A's path form together", r.a.id, withAuth(get(hA, "/t/"+A+"/probe"), kA)},
	}
	for _, c := range controls {
		if err := control(c.what, c.want, c.q); err != nil {
			return err
		}
	}

	type att struct {
		what   string
		q      rawReq
		breach func(*rawResp, error) string
	}
	swapped := swapKeyAccount(kA, B)
	mixed := mixKey(kA, kB)
	atts := []att{
		// A's key used on B, in every addressing form and credential header.
		{"A's key on B's host (Authorization)", withAuth(get(hB, "/probe"), kA), served2xx},
		{"A's key on B's host (X-Api-Key)", withAPIKey(get(hB, "/probe"), kA), served2xx},
		{"A's key on B's path form (Authorization)", withAuth(get(gw, "/t/"+B+"/probe"), kA), served2xx},
		{"A's key on B's path form (X-Api-Key)", withAPIKey(get(gw, "/t/"+B+"/probe"), kA), served2xx},
		{"B's key on A's host", withAuth(get(hA, "/probe"), kB), served2xx},
		{"B's key on A's path form (X-Api-Key)", withAPIKey(get(gw, "/t/"+A+"/probe"), kB), served2xx},
		// Host confusion.
		{"A's key on B's host in upper case", withAuth(get(strings.ToUpper(hB), "/probe"), kA), served2xx},
		{"A's key on B's host with a trailing dot", withAuth(get(hB+".", "/probe"), kA), served2xx},
		{"A's key on B's host with a port", withAuth(get(hB+":1", "/probe"), kA), served2xx},
		{"A's key on B's host with the gateway's port", withAuth(get(hB+":"+port, "/probe"), kA), served2xx},
		{"A's key on A's host under another domain", withAuth(get(hA+".evil", "/probe"), kA), served2xx},
		{"A's key on A's label with an empty label", withAuth(get(A+".."+base, "/probe"), kA), served2xx},
		{"A's key on B's label nested under A", withAuth(get(B+"."+hA, "/probe"), kA), served2xx},
		{"A's key on A's host with a bad port", withAuth(get(hA+":99999x", "/probe"), kA), served2xx},
		{"A's key on A's host with userinfo naming B", withAuth(get(hA+":80@"+hB, "/probe"), kA), served2xx},
		{"A's key on A's host with B's path form", withAuth(get(hA, "/t/"+B+"/probe"), kA), served2xx},
		{"A's key on B's host with A's path form", withAuth(get(hB, "/t/"+A+"/probe"), kA), served2xx},
		{"A's key on the production host", withAuth(get("production."+base, "/probe"), kA), served2xx},
		{"A's key on the production path form", withAuth(get(gw, "/t/production/probe"), kA), served2xx},
		// Forwarding headers naming B.
		{"A's key, no tenant in Host, X-Forwarded-Host B", withHeader(withAuth(get(gw, "/probe"), kA), "X-Forwarded-Host", hB), served2xx},
		{"A's key, no tenant in Host, Forwarded host=B", withHeader(withAuth(get(gw, "/probe"), kA), "Forwarded", "host="+hB), served2xx},
		{"A's key on A's host, X-Forwarded-Host B", withHeader(withAuth(get(hA, "/probe"), kA), "X-Forwarded-Host", hB), servedAsOther(r.a.id)},
		{"A's key on A's host, Forwarded host=B", withHeader(withAuth(get(hA, "/probe"), kA), "Forwarded", "host="+hB+";proto=http"), servedAsOther(r.a.id)},
		{"A's key on A's host, X-Original-Host and X-Host B", withHeader(withHeader(withAuth(get(hA, "/probe"), kA), "X-Original-Host", hB), "X-Host", hB), servedAsOther(r.a.id)},
		{"A's key on A's host, X-Forwarded-Prefix /t/B", withHeader(withAuth(get(hA, "/probe"), kA), "X-Forwarded-Prefix", "/t/"+B), servedAsOther(r.a.id)},
		// Path confusion.
		{"A's key, /t/A/../B", withAuth(get(gw, "/t/"+A+"/../"+B+"/probe"), kA), served2xx},
		{"A's key, /t/A/%2e%2e/B", withAuth(get(gw, "/t/"+A+"/%2e%2e/"+B+"/probe"), kA), served2xx},
		{"A's key, /t/A/%2E%2E/%2E%2E/t/B", withAuth(get(gw, "/t/"+A+"/%2E%2E/%2E%2E/t/"+B+"/probe"), kA), served2xx},
		{"A's key, /t/A/..%2f..%2ft%2fB", withAuth(get(gw, "/t/"+A+"/..%2f..%2ft%2f"+B+"%2fprobe"), kA), served2xx},
		{"A's key, /t/A/probe/../../B", withAuth(get(gw, "/t/"+A+"/probe/../../"+B+"/probe"), kA), served2xx},
		{"A's key, //t/B", withAuth(get(gw, "//t/"+B+"/probe"), kA), served2xx},
		{"A's key, /t//B", withAuth(get(gw, "/t//"+B+"/probe"), kA), served2xx},
		{"A's key, /t%2fB", withAuth(get(gw, "/t%2f"+B+"/probe"), kA), served2xx},
		{"A's key, /t/B%2fprobe", withAuth(get(gw, "/t/"+B+"%2fprobe"), kA), served2xx},
		{"A's key, /t/B/./probe", withAuth(get(gw, "/t/"+B+"/./probe"), kA), served2xx},
		{"A's key, /t/B in upper case", withAuth(get(gw, "/t/"+strings.ToUpper(B)+"/probe"), kA), served2xx},
		{"A's key on A's host, /../t/B", withAuth(get(hA, "/../t/"+B+"/probe"), kA), served2xx},
		{"A's key on A's host, /%2e%2e/t/B", withAuth(get(hA, "/%2e%2e/t/"+B+"/probe"), kA), served2xx},
		{"A's key on A's host, \\..\\t\\B", withAuth(get(hA, "/..%5ct%5c"+B+"%5cprobe"), kA), served2xx},
		// Missing, revoked and malformed keys on A's own host.
		{"no key on A's host", get(hA, "/probe"), served2xx},
		{"no key on A's path form", get(gw, "/t/"+A+"/probe"), served2xx},
		{"empty bearer on A's host", rawReq{method: "GET", target: "/probe", host: hA, auth: "Bearer "}, served2xx},
		{"garbage key on A's host", withAuth(get(hA, "/probe"), "garbage"), served2xx},
		{"A's key with its account part changed to B, on B's host", withAuth(get(hB, "/probe"), swapped), served2xx},
		{"A's key with its account part changed to B, on A's host", withAuth(get(hA, "/probe"), swapped), served2xx},
		{"A's key ID with B's secret, on A's host", withAuth(get(hA, "/probe"), mixed), served2xx},
		{"A's key truncated", withAuth(get(hA, "/probe"), kA[:len(kA)-1]), served2xx},
		{"A's key with a byte appended", withAuth(get(hA, "/probe"), kA+"x"), served2xx},
		{"A's key in upper case", withAuth(get(hA, "/probe"), strings.ToUpper(kA)), served2xx},
		{"A's key under the Basic scheme", rawReq{method: "GET", target: "/probe", host: hA, auth: "Basic " + kA}, served2xx},
		{"A's key glued to the scheme", rawReq{method: "GET", target: "/probe", host: hA, auth: "Bearer" + kA}, served2xx},
		{"B's key in Authorization and A's in X-Api-Key, on A's host", withAPIKey(withAuth(get(hA, "/probe"), kB), kA), served2xx},
		{"A's key in a query parameter only", get(hA, "/probe?api_key="+kA), served2xx},
	}
	for _, a := range atts {
		if err := attempt(a.what, a.q, a.breach); err != nil {
			return err
		}
	}

	// Revoked key: a fresh key of A works (control), then is revoked and
	// must fail in both headers.
	fresh, err := r.t.Control.IssueKey(ctx, r.a.id, "probe-revoked-"+r.nonce)
	if err != nil {
		return fmt.Errorf("probe: issue a key to revoke: %w", err)
	}
	if err := control("a fresh key of A before it is revoked", r.a.id, withAuth(get(hA, "/probe"), fresh)); err != nil {
		return err
	}
	if err := r.t.Control.RevokeKey(ctx, r.a.id, keyID(fresh)); err != nil {
		return fmt.Errorf("probe: revoke key: %w", err)
	}
	for _, q := range []rawReq{withAuth(get(hA, "/probe"), fresh), withAPIKey(get(hA, "/probe"), fresh), withAuth(get(gw, "/t/"+A+"/probe"), fresh)} {
		if err := attempt("revoked key of A", q, served2xx); err != nil {
			return err
		}
	}

	// Suspended tenant: B's own key on B must fail while B is suspended,
	// and work again once it is resumed.
	if err := r.t.Control.SetState(ctx, r.b.id, silo.StateSuspended); err != nil {
		return fmt.Errorf("probe: suspend %s: %w", B, err)
	}
	for _, q := range []rawReq{withAuth(get(hB, "/probe"), kB), withAPIKey(get(gw, "/t/"+B+"/probe"), kB)} {
		if err := attempt("B's own key while B is suspended", q, served2xx); err != nil {
			return err
		}
	}
	if err := r.t.Control.SetState(ctx, r.b.id, silo.StateActive); err != nil {
		return fmt.Errorf("probe: resume %s: %w", B, err)
	}
	if err := control("B's own key after B is resumed", r.b.id, withAuth(get(hB, "/probe"), kB)); err != nil {
		return err
	}
	rep.add(t)
	return nil
}

// keyID returns the public ID of a plaintext key: sk_<account>_<keyid>.
func keyID(plain string) string {
	parts := strings.SplitN(plain, "_", 4)
	if len(parts) < 3 {
		return plain
	}
	return strings.Join(parts[:3], "_")
}

// swapKeyAccount returns key with its account part replaced by acct.
func swapKeyAccount(key, acct string) string {
	parts := strings.SplitN(key, "_", 4)
	if len(parts) != 4 {
		return key + "_" + acct
	}
	parts[1] = acct
	return strings.Join(parts, "_")
}

// mixKey returns a's public ID with b's secret.
func mixKey(a, b string) string {
	pa, pb := strings.SplitN(a, "_", 4), strings.SplitN(b, "_", 4)
	if len(pa) != 4 || len(pb) != 4 {
		return a + b
	}
	return strings.Join(append(pa[:3:3], pb[3]), "_")
}

func httpOutcome(resp *rawResp, err error) string {
	if err != nil || resp == nil {
		return "no HTTP response"
	}
	return fmt.Sprintf("HTTP %d", resp.status)
}
