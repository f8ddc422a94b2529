// Package gateway is silo's HTTP data plane. It resolves the tenant a request
// addresses (<tenant>.<base-domain> or /t/<tenant>/...), authenticates the
// request with an API key of that tenant's account, enforces per-tenant
// limits (body and header size; from a LimitSource, each account's
// token-bucket rate, concurrency and monthly invocations), routes it to one
// of the account's functions, invokes it through an Invoker and meters it
// per account (handing each admitted request to a Meter).
//
// The gateway owns the order of these checks, which is part of the isolation
// argument (invariant I4): everything an unauthenticated client can observe
// is decided from the request's syntax alone, so a client without a valid key
// cannot tell whether a tenant exists; a key is checked against the tenant
// the request addresses before anything of that tenant is looked up. Only a
// caller holding the right secret of a revoked key is told more: whether the
// key's own account was deleted or expired.
//
// It declares the two small interfaces it consumes, Invoker and Directory.
// It imports the root silo package, store (for the APIKey record),
// internal/apikey, internal/batch (for the access log), sdk/jsonstr and
// the standard library; it must not
// import the runtime, wazero, providers, the engine or any storage
// implementation.
package gateway

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/internal/batch"
	"github.com/silo-run/silo/store"
)

// Invoker runs one function of one account.
//
// The gateway calls it concurrently. An error that is a *silo.Error with a
// code other than CodeInternal is shown to the client with its message (not
// its cause); any other error is logged, with its cause, and the client sees
// a generic message and the request ID.
type Invoker interface {
	Invoke(ctx context.Context, acct silo.AccountID, function string, req Request) (Response, error)
}

// InvokerFunc adapts a function to an Invoker.
type InvokerFunc func(ctx context.Context, acct silo.AccountID, function string, req Request) (Response, error)

// Invoke calls f.
func (f InvokerFunc) Invoke(ctx context.Context, acct silo.AccountID, function string, req Request) (Response, error) {
	return f(ctx, acct, function, req)
}

// Directory is what the gateway reads about accounts. Implementations must be
// safe for concurrent use and return an error matching silo.ErrNotFound for a
// missing account or key. The gateway calls it on every authenticated
// request, so an implementation backed by a database may cache.
type Directory interface {
	// Account returns the account's state, for tenant, developer and
	// environment accounts (never production via the gateway).
	Account(ctx context.Context, id silo.AccountID) (silo.Account, error)
	// Key returns a stored API key by its public ID.
	Key(ctx context.Context, id string) (store.APIKey, error)
	// Routes returns the account's live routes (method, path pattern,
	// function).
	Routes(ctx context.Context, id silo.AccountID) ([]Route, error)
}

// Route sends requests matching Method and Path to Function.
//
// Method "" or "*" matches any method, and a GET route also serves HEAD.
// Path is a pattern in net/http.ServeMux's language: literal segments,
// "{name}" for one non-empty segment, "{name...}" for the rest of the path,
// a trailing slash for a whole subtree and "{$}" for exactly the trailing
// slash, e.g. "/findings/{id}". At each segment a literal beats a wildcard,
// which beats a rest wildcard. Two routes with the same method and path shape
// are an error, reported (and logged) when the routes are first used.
// On a tenant host a path starting with /t/ is read as the path form, so a
// route under /t/ is reachable only as /t/<tenant>/t/...
type Route struct {
	Method   string `json:"method,omitempty"`
	Path     string `json:"path"`
	Function string `json:"function"`
}

// Request is what a function receives.
type Request struct {
	Method string
	// Path is the request path within the tenant (without any /t/<tenant>
	// prefix), as sent, percent-encoded.
	Path string
	// PathParams holds the decoded values of the route's wildcards.
	PathParams map[string]string
	Query      url.Values
	// Header is the request's header without credentials (Authorization,
	// X-Api-Key, Cookie, Proxy-Authorization) and hop-by-hop fields.
	Header    http.Header
	Body      []byte
	RequestID string
}

// Response is what a function returns. Status 0 means 200. Of Header, only
// the fields of the response allow-list (AllowedResponseHeader) reach the
// client, with all their values; the rest are dropped. Responses to a
// tenant addressed by the path form on a shared host also carry a
// Content-Security-Policy sandbox (see RATIONALE.md).
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Gateway is the data plane's HTTP handler. It is safe for concurrent use.
type Gateway struct {
	cfg Config
	dir Directory
	inv Invoker
	log *slog.Logger

	tenants sync.Map // silo.AccountID → *tenant (dropped when full and idle)
	routers sync.Map // silo.AccountID → *compiled (dropped by Forget)

	// retiredMu orders dropping a tenant against Metrics; it is taken
	// before any tenant's mu.
	retiredMu sync.Mutex
	retired   map[silo.AccountID]Metrics // meters of dropped tenants

	access    *batch.Queue[AccessEntry] // nil without Config.AccessLog
	closeOnce sync.Once
}

type compiled struct {
	routes []Route
	rt     *router
	err    error
}

// New returns a gateway reading accounts, keys and routes from dir and
// running functions through inv. With Config.AccessLog it starts a
// goroutine that Close stops.
//
// # Errors
//
// CodeInvalid if cfg does not validate or a dependency is nil.
func New(cfg Config, dir Directory, inv Invoker) (*Gateway, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if dir == nil || inv == nil {
		return nil, silo.Errorf(silo.CodeInvalid, "gateway needs a Directory and an Invoker")
	}
	g := &Gateway{cfg: cfg, dir: dir, inv: inv, log: cfg.Logger, retired: map[silo.AccountID]Metrics{}}
	if cfg.AccessLog != nil {
		g.access = newAccessLog(cfg.AccessLog, g.accessDropped)
	}
	return g, nil
}

// Server returns an *http.Server for g listening on addr, with the
// configured header limit and timeouts, so that slow or oversized clients are
// cut off by net/http before they reach the handler.
func (g *Gateway) Server(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           g,
		ReadHeaderTimeout: g.cfg.ReadHeaderTimeout,
		ReadTimeout:       g.cfg.ReadTimeout,
		WriteTimeout:      g.cfg.WriteTimeout,
		IdleTimeout:       g.cfg.IdleTimeout,
		MaxHeaderBytes:    g.cfg.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(g.log.Handler(), slog.LevelWarn),
	}
}

// Metrics returns what has been metered for acct (zero if nothing).
func (g *Gateway) Metrics(acct silo.AccountID) Metrics {
	g.retiredMu.Lock()
	defer g.retiredMu.Unlock()
	m := g.retired[acct]
	if v, ok := g.tenants.Load(acct); ok {
		t := v.(*tenant)
		t.mu.Lock()
		if !t.dead { // a dead tenant's meters are in retired already
			m = m.add(t.meters())
		}
		t.mu.Unlock()
	}
	return m
}

// enter returns acct's tenant, creating one with a full bucket if needed,
// and holds it until leave: it is not dropped while a request is served.
func (g *Gateway) enter(acct silo.AccountID) *tenant {
	for {
		v, ok := g.tenants.Load(acct)
		if !ok {
			v, _ = g.tenants.LoadOrStore(acct, &tenant{lim: g.cfg.resolve(Limits{}, g.cfg.Now())})
		}
		t := v.(*tenant)
		t.mu.Lock()
		if !t.dead {
			t.users++
			t.mu.Unlock()
			return t
		}
		t.mu.Unlock()
		g.tenants.CompareAndDelete(acct, t)
	}
}

// retire drops acct's tenant if its bucket is full and no request is being
// served, keeping its meters in g.retired.
func (g *Gateway) retire(acct silo.AccountID, t *tenant) bool {
	g.retiredMu.Lock()
	defer g.retiredMu.Unlock()
	t.mu.Lock()
	ok := t.retire(g.cfg.Now())
	t.mu.Unlock()
	if !ok {
		return false
	}
	m, had := g.retired[acct]
	if !had {
		acct = silo.AccountID(strings.Clone(string(acct))) // not the request's string
	}
	g.retired[acct] = m.add(t.meters())
	g.tenants.CompareAndDelete(acct, t)
	return true
}

// Forget drops what the gateway holds for an idle account: its compiled
// routes (compiled again from the Directory on its next request) and its
// rate-limit state if the bucket is full again and no request is being
// served (Sweep drops it later otherwise). Its meters are kept. The
// platform calls it when an account goes idle; it is safe at any time, only
// slower for the account's next request.
func (g *Gateway) Forget(acct silo.AccountID) {
	g.routers.Delete(acct)
	if v, ok := g.tenants.Load(acct); ok {
		g.retire(acct, v.(*tenant))
	}
}

// Sweep drops the rate-limit state of every account whose bucket is full
// again and that has no request being served, and reports how many it
// dropped. Call it periodically (the platform does, with its idle sweep).
func (g *Gateway) Sweep() int {
	n := 0
	g.tenants.Range(func(k, v any) bool {
		if g.retire(k.(silo.AccountID), v.(*tenant)) {
			n++
		}
		return true
	})
	return n
}

// held reports how many accounts have compiled routes and rate-limit state
// held, for tests.
func (g *Gateway) held() (routers, tenants int) {
	g.routers.Range(func(any, any) bool { routers++; return true })
	g.tenants.Range(func(any, any) bool { tenants++; return true })
	return
}

// Status returns the HTTP status for an error code (silo.Code.HTTPStatus:
// the one table); unknown codes are 500.
func Status(c silo.Code) int { return c.HTTPStatus() }

// The messages of responses an unauthenticated client can see. Each is
// fixed, so that the body cannot depend on whether a tenant exists.
const (
	msgNoTenant    = "no such tenant or route; address a tenant as <tenant>.<base-domain> or /t/<tenant>/"
	msgAuth        = "missing or invalid API key; send it as Authorization: Bearer <key>"
	msgBadPath     = "the request path is not canonical (empty, '.' or '..' segments, bad escapes or control characters); send a clean path"
	msgConfusion   = "the host and the path name different tenants; address a tenant by host or by /t/<tenant>/, not both"
	msgTooLarge    = "the request body is larger than the gateway allows; send a smaller body"
	msgOtherAcct   = "this API key belongs to another account; use a key issued for this tenant"
	msgSuspended   = "this tenant is suspended; contact the account owner"
	msgNotReady    = "this tenant is still being provisioned; try again shortly"
	msgUnavailable = "the gateway cannot serve this request right now; try again shortly"
)

// The messages only a caller holding the right key of the account sees.
const (
	msgKeyDeleted = "this API key's account was deleted; a new key will not help"
	msgKeyExpired = "this API key's environment expired (its time to live is over); a new key will not help: create a new environment"
)

// ServeHTTP serves one request. See the package documentation for the order
// of checks.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rid := r.Header.Get("X-Request-Id")
	if !validRequestID(rid) {
		rid = rand.Text()
	}
	w.Header()["X-Request-Id"] = []string{rid} // canonical already

	// 1. Syntax: which tenant, is the path clean, is the body too large.
	tg, p := resolve(r.Host, r.URL.EscapedPath(), g.cfg.BaseDomain)
	switch p {
	case problemHost, problemTenant:
		g.fail(w, silo.CodeNotFound, msgNoTenant)
		return
	case problemConfusion:
		g.fail(w, silo.CodeInvalid, msgConfusion)
		return
	case problemPath:
		g.fail(w, silo.CodeInvalid, msgBadPath)
		return
	}
	if tg.tenant == "" {
		if tg.path == "/healthz" && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Cache-Control", "no-store")
			_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
			return
		}
		g.fail(w, silo.CodeNotFound, msgNoTenant)
		return
	}
	segs, ok := splitPath(tg.path)
	if !ok {
		g.fail(w, silo.CodeInvalid, msgBadPath)
		return
	}
	if r.ContentLength > g.cfg.MaxBodyBytes {
		w.Header().Set("Connection", "close")
		g.fail(w, silo.CodeTooLarge, msgTooLarge)
		return
	}

	// 2. Authentication, before anything that depends on the tenant existing.
	acct := silo.AccountID(tg.tenant)
	if !g.authenticate(w, r, acct) {
		return
	}
	if g.serveReport(w, r, acct, tg.path) {
		return
	}

	// 3. From here on the request is the account's own: meter it.
	// Durations are measured on the monotonic wall clock, not Config.Now:
	// a fake clock cannot tell how long a request took.
	start, wall := g.cfg.Now(), time.Now()
	t := g.enter(acct)
	defer t.leave() // after the meters below
	m := meter{status: http.StatusOK}
	defer func() {
		dur := time.Since(wall)
		t.requests.Add(1)
		t.bytesIn.Add(m.in)
		t.bytesOut.Add(m.out)
		t.nanos.Add(int64(dur))
		g.logAccess(AccessEntry{Time: start, Account: acct, Method: r.Method, Path: tg.path, Status: m.status,
			Duration: dur, RequestID: rid, Function: m.fn, Release: m.release})
		if m.status >= 500 || m.fnErr {
			t.errors.Add(1)
		}
		if m.status == http.StatusTooManyRequests {
			t.limited.Add(1)
		}
		if m.admitted && g.cfg.Meter != nil {
			g.cfg.Meter.Record(acct, m.fn, Record{Duration: dur, BytesIn: m.in, BytesOut: m.out, Error: m.status >= 500 || m.fnErr})
		}
	}()
	g.serveAccount(w, r, acct, t, tg, segs, rid, &m)
}

// meter is what one request contributes to its account's metrics and
// access log.
type meter struct {
	status   int
	in, out  int64
	fnErr    bool
	admitted bool   // past the account's limits
	fn       string // the route's function
	release  string // the account's release
}

// authenticate checks the request's key against acct. On failure it has
// written the response.
func (g *Gateway) authenticate(w http.ResponseWriter, r *http.Request, acct silo.AccountID) bool {
	deny := func() bool {
		w.Header().Set("WWW-Authenticate", `Bearer realm="silo"`)
		g.fail(w, silo.CodeUnauthenticated, msgAuth)
		return false
	}
	plain, ok := credential(r.Header)
	if !ok {
		return deny()
	}
	id, err := apikey.Parse(plain)
	if err != nil {
		return deny()
	}
	k, err := g.dir.Key(r.Context(), id)
	switch {
	case errors.Is(err, silo.ErrNotFound):
		return deny()
	case err != nil:
		g.log.ErrorContext(r.Context(), "gateway: look up key", "key", id, "error", err)
		g.fail(w, silo.CodeUnavailable, msgUnavailable)
		return false
	}
	if err := apikey.Check(k, plain, g.cfg.Now()); err != nil {
		w.Header().Set("WWW-Authenticate", `Bearer realm="silo"`)
		// Check's messages are safe: revocation is reported only to a
		// caller holding the right secret, who may then also learn that
		// the key's account is gone, so that no new key is asked for.
		msg := silo.UserMessage(err)
		if errors.Is(err, apikey.ErrRevoked) {
			msg = g.revokedMessage(r.Context(), k.Account, msg)
		}
		g.fail(w, silo.CodeUnauthenticated, msg)
		return false
	}
	if k.Account != acct {
		g.fail(w, silo.CodeForbidden, msgOtherAcct)
		return false
	}
	return true
}

// revokedMessage is what the holder of a revoked key of acct is told: that
// the account was deleted or, for an environment, expired, when it was
// (a new key would not help), and revoked otherwise.
func (g *Gateway) revokedMessage(ctx context.Context, acct silo.AccountID, revoked string) string {
	a, err := g.dir.Account(ctx, acct)
	switch {
	case errors.Is(err, silo.ErrNotFound) || err == nil && a.State == silo.StateDeleted:
		return msgKeyDeleted // the directory answers not found for a deleted account
	case err == nil && expired(a, g.cfg.Now()):
		return msgKeyExpired
	}
	return revoked
}

// expired reports whether a is an environment past its time to live.
func expired(a silo.Account, now time.Time) bool {
	return a.Expires != nil && !now.Before(*a.Expires)
}

// credential returns the API key sent as "Authorization: Bearer <key>" or,
// failing that, as "X-Api-Key: <key>".
func credential(h http.Header) (string, bool) {
	if a := h.Values("Authorization"); len(a) > 0 {
		scheme, tok, ok := strings.Cut(a[0], " ")
		if len(a) != 1 || !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	if k := h.Values("X-Api-Key"); len(k) == 1 && k[0] != "" {
		return strings.TrimSpace(k[0]), true
	}
	return "", false
}

func (g *Gateway) serveAccount(w http.ResponseWriter, r *http.Request, acct silo.AccountID, t *tenant, tg target, segs []string, rid string, m *meter) {
	path := tg.path
	ctx := r.Context()
	fail := func(c silo.Code, msg string) {
		m.status = Status(c)
		m.out += int64(g.fail(w, c, msg))
	}
	unavailable := func(op string, err error) {
		g.log.ErrorContext(ctx, "gateway: "+op, "account", acct, "request_id", rid, "error", err)
		fail(silo.CodeUnavailable, msgUnavailable)
	}

	// Limits first: a flood must cost the directory nothing (the limits
	// are read at most once per LimitRefresh).
	if err := g.limits(ctx, acct, t); err != nil {
		unavailable("read limits", err)
		return
	}
	adm, wait, lim := t.admit(g.cfg.Now())
	if adm != admitted {
		name, msg := refusal(adm, lim)
		w.Header().Set("X-Silo-Limit", name)
		switch adm {
		case overRate:
			w.Header().Set("Retry-After", retryAfter(wait))
		case overConcurrency:
			w.Header().Set("Retry-After", "1")
		}
		fail(silo.CodeTooMany, msg)
		return
	}
	defer t.release()
	m.admitted = true

	a, err := g.dir.Account(ctx, acct)
	var se *silo.Error
	switch {
	case errors.Is(err, silo.ErrNotFound):
		fail(silo.CodeNotFound, msgNoTenant)
		return
	case errors.As(err, &se) && se.Code == silo.CodeUnavailable && se.Message != "":
		// The directory says what it waited for (the request is the
		// account's own by now).
		g.log.ErrorContext(ctx, "gateway: look up account", "account", acct, "request_id", rid, "error", logDetail(err))
		fail(se.Code, se.Message)
		return
	case err != nil:
		unavailable("look up account", err)
		return
	}
	m.release = a.Release
	switch {
	case a.Kind == silo.KindProduction || !a.Kind.Valid():
		fail(silo.CodeNotFound, msgNoTenant)
		return
	case a.State == silo.StateSuspended:
		fail(silo.CodeForbidden, msgSuspended)
		return
	case a.State == silo.StateProvisioning:
		w.Header().Set("Retry-After", "5")
		fail(silo.CodeUnavailable, msgNotReady)
		return
	case a.State != silo.StateActive:
		fail(silo.CodeNotFound, msgNoTenant)
		return
	case expired(a, g.cfg.Now()):
		fail(silo.CodeNotFound, msgKeyExpired) // the caller holds a key of the environment
		return
	}

	rt, err := g.router(ctx, acct)
	if err != nil {
		unavailable("load routes", err)
		return
	}
	fn, params, allow, ok := rt.match(r.Method, segs)
	m.fn = fn
	if !ok {
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			fail(silo.CodeNotAllowed, fmt.Sprintf("%s is not allowed here; use %s", r.Method, strings.Join(allow, ", ")))
			return
		}
		fail(silo.CodeNotFound, "no route matches this path; check the path against the tenant's routes")
		return
	}

	body, err := readBody(w, r, g.cfg.MaxBodyBytes)
	m.in = int64(len(body))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			fail(silo.CodeTooLarge, msgTooLarge)
			return
		}
		fail(silo.CodeInvalid, "the request body could not be read; send it again")
		return
	}

	req := Request{
		Method:     r.Method,
		Path:       path,
		PathParams: params,
		Query:      query(r.URL),
		Header:     forwardHeader(r.Header),
		Body:       body,
		RequestID:  rid,
	}
	ictx, cancel := context.WithTimeout(ctx, g.cfg.InvokeTimeout)
	resp, err := g.inv.Invoke(ictx, acct, fn, req)
	gatewayTimeout := ictx.Err() != nil && ctx.Err() == nil // this gateway's InvokeTimeout, not the function's own
	cancel()
	if err != nil {
		m.fnErr = true
		code, msg := invokeError(err, gatewayTimeout, g.cfg.InvokeTimeout)
		if code == silo.CodeInternal || code == silo.CodeUnavailable {
			g.log.ErrorContext(ctx, "gateway: invoke", "account", acct, "function", fn, "request_id", rid, "error", logDetail(err))
		}
		fail(code, msg)
		return
	}
	if resp.Status == 0 {
		resp.Status = http.StatusOK
	}
	if resp.Status < 200 || resp.Status > 599 {
		m.fnErr = true
		g.log.ErrorContext(ctx, "gateway: invoke", "account", acct, "function", fn, "request_id", rid, "error", fmt.Sprintf("function returned status %d", resp.Status))
		fail(silo.CodeInternal, silo.UserMessage(nil))
		return
	}
	copyResponseHeader(w.Header(), resp.Header, tg.shared)
	m.status = resp.Status
	w.WriteHeader(resp.Status)
	if r.Method != http.MethodHead {
		n, _ := w.Write(resp.Body)
		m.out += int64(n)
	}
}

// query returns the parsed query of u; nil without one (url.URL.Query
// would allocate an empty map).
func query(u *url.URL) url.Values {
	if u.RawQuery == "" {
		return nil
	}
	return u.Query()
}

// router returns the compiled routes of acct, compiling only when the
// directory's routes changed.
func (g *Gateway) router(ctx context.Context, acct silo.AccountID) (*router, error) {
	routes, err := g.dir.Routes(ctx, acct)
	if err != nil {
		return nil, fmt.Errorf("routes of %s: %w", acct, err)
	}
	if v, ok := g.routers.Load(acct); ok {
		if c := v.(*compiled); slices.Equal(c.routes, routes) {
			return c.rt, c.err
		}
	}
	rt, err := newRouter(routes)
	if err != nil {
		err = fmt.Errorf("compile routes of %s: %w", acct, err)
	}
	g.routers.Store(acct, &compiled{routes: slices.Clone(routes), rt: rt, err: err})
	return rt, err
}
