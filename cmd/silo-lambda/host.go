package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-lambda-go/events"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/gateway"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/runtime"
	"github.com/silo-run/silo/store"
)

// keyCacheTTL is how long the host trusts an API key record it read from
// the account: a revocation takes effect in every warm container within
// it.
const keyCacheTTL = 10 * time.Second

// responseMargin is taken off the Lambda deadline so that the host still
// has time to answer with a clean error when the guest runs out of time.
const responseMargin = 100 * time.Millisecond

// keySource reads the account's API key records (kept in the account,
// siloaws.Host.APIKey).
type keySource interface {
	APIKey(ctx context.Context, id string) (siloaws.APIKey, error)
}

// host serves one function of one account: it checks the caller's API key
// against the account's own key records, then runs the function's module in
// the local runtime with every guard of the runtime package, its host calls
// bound to the account's data plane through the decision point.
type host struct {
	// code serves the invocations that start; it changes once if the host
	// starts on the interpreter (code.go). compiling counts the background
	// compilation.
	code      atomic.Pointer[code]
	compiling sync.WaitGroup
	acct      silo.AccountID
	fn        string
	spec      silo.FunctionSpec
	limits    runtime.Limits
	pol       *isolation.Policy
	guest     runtime.Host
	keys      keySource
	log       *slog.Logger
	now       func() time.Time
	// release is the release the function's version serves under (from its
	// environment; "" if silo did not say); rec takes one metrics line per
	// invocation (siloaws.InvocationRecord), which Lambda sends to
	// CloudWatch Logs with the rest of the output.
	release string
	rec     io.Writer
	recMu   sync.Mutex

	mu    sync.Mutex
	cache map[string]cachedKey
}

type cachedKey struct {
	k   store.APIKey
	err error
	at  time.Time
}

// bundle is what the deployed code holds besides the host: the module and
// the function's spec (lambda.go in provider/aws writes them), and maybe
// the module prepared ahead with its machine code (code.go).
type bundle struct {
	wasm func() ([]byte, error) // the module, read when needed
	Spec silo.FunctionSpec
	// Exports are the specs of the production exports the function reads,
	// by name (from its environment; empty if it reads none).
	Exports map[string]silo.ExportSpec
	// prepared is the package's prepared module, if the host can trust it
	// (readPrepared), without its Module, which preparedModule reads; code
	// the directory of its machine code ("" if none).
	prepared       *runtime.Prepared
	preparedModule func() ([]byte, error)
	code           string
}

// newHost makes the module runnable once (the container keeps it for
// every invocation) on the engine chosen (envEngine; code.go); bind then
// gives it the account's data plane.
func newHost(ctx context.Context, acct silo.AccountID, fn string, b bundle, engine string, log *slog.Logger) (*host, error) {
	_, pages := runtimeConfig(b.Spec, log)
	h := &host{
		acct: acct, fn: fn, spec: b.Spec,
		limits: runtime.Limits{MemoryPages: pages, Timeout: b.Spec.Timeout, Concurrency: 1},
		log:    log, now: time.Now, cache: map[string]cachedKey{},
	}
	var err error
	if h.pol, err = policyOf(acct, fn, b.Spec, b.Exports); err != nil {
		return nil, err
	}
	if err := h.start(ctx, b, engine); err != nil {
		return nil, err
	}
	return h, nil
}

// bind gives the host the account's data plane, production's for the
// function's export reads (nil if it reads none) and the key records: the
// guest's host calls reach data through the decision point.
func (h *host) bind(data, production provider.Data, keys keySource) {
	h.guest = isolation.FunctionHost(h.pol, h.acct, h.fn, data, production, h.log)
	h.keys = keys
}

// policyOf compiles the decision point's policy for the one function the
// container runs: its grants, over the resources they name. On AWS the
// function's execution role holds exactly the same grants, so IAM enforces
// them again; the decision point gives the same answers and messages as
// the local runtime. Production's part of the policy holds the exports the
// function reads, and nothing else of production.
func policyOf(acct silo.AccountID, fn string, fs silo.FunctionSpec, exports map[string]silo.ExportSpec) (*isolation.Policy, error) {
	rs := []silo.Resource{}
	add := func(t silo.ResourceType, name string, spec any) error {
		r, err := silo.NewResource(t, name, spec)
		if err != nil {
			return err
		}
		rs = append(rs, r)
		return nil
	}
	if err := add(silo.TypeFunction, fn, fs); err != nil {
		return nil, err
	}
	for name := range fs.Tables {
		add(silo.TypeTable, name, struct{}{})
	}
	for name := range fs.Buckets {
		add(silo.TypeBucket, name, struct{}{})
	}
	for _, name := range fs.Config {
		add(silo.TypeConfig, name, struct{}{})
	}
	for _, name := range fs.Secrets {
		add(silo.TypeSecret, name, struct{}{})
	}
	ap, err := isolation.Compile(silo.Account{ID: acct, State: silo.StateActive}, rs)
	if err != nil {
		return nil, err
	}
	pol := isolation.NewPolicy()
	pol.Set(ap)
	if len(exports) > 0 && acct != silo.ProductionID {
		var prs []silo.Resource
		for name, es := range exports {
			r, err := silo.NewResource(silo.TypeExport, name, es)
			if err != nil {
				return nil, err
			}
			prs = append(prs, r)
		}
		pp, err := isolation.Compile(silo.Account{ID: silo.ProductionID, Kind: silo.KindProduction, State: silo.StateActive}, prs)
		if err != nil {
			return nil, err
		}
		pol.Set(pp)
	}
	return pol, nil
}

// close stops the runtime; a background compilation still running is
// dropped when it ends.
func (h *host) close(ctx context.Context) error {
	h.code.Load().close()
	return nil
}

// event is what Lambda hands the host: an API Gateway HTTP API request
// (payload format 2.0), or a direct invocation by silo's control plane
// (a rollout's smoke test), which API Gateway cannot produce since it has
// no field "silo_invoke".
type event struct {
	events.APIGatewayV2HTTPRequest
	Invoke *directInvoke `json:"silo_invoke,omitempty"`
}

// directInvoke is a request from silo's control plane through lambda:Invoke,
// which IAM authorizes (the caller needs lambda:InvokeFunction on this
// function), so it carries no API key.
type directInvoke struct {
	Method    string `json:"method"`
	Path      string `json:"path"`
	RequestID string `json:"request_id"`
}

// serve handles one invocation. Every failure is an HTTP answer with silo's
// error body; serve never returns an error.
func (h *host) serve(ctx context.Context, ev event) (events.APIGatewayV2HTTPResponse, error) {
	if d := ev.Invoke; d != nil {
		rid := d.RequestID
		if rid == "" {
			rid = newRequestID()
		}
		return h.run(ctx, runtime.Request{ID: rid, Method: d.Method, Path: d.Path, Header: http.Header{}}), nil
	}
	return h.serveHTTP(ctx, ev.APIGatewayV2HTTPRequest), nil
}

// serveHTTP handles an API Gateway request: the key first, then the
// function.
func (h *host) serveHTTP(ctx context.Context, ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
	rid := ev.RequestContext.RequestID
	if rid == "" {
		rid = newRequestID()
	}
	hdr := make(http.Header, len(ev.Headers))
	for k, v := range ev.Headers {
		hdr.Set(k, v)
	}
	if code, msg, ok := h.authenticate(ctx, hdr); !ok {
		resp := failure(code, msg, rid)
		resp.Headers["WWW-Authenticate"] = `Bearer realm="silo"`
		return resp
	}
	body := []byte(ev.Body)
	if ev.IsBase64Encoded {
		b, err := base64.StdEncoding.DecodeString(ev.Body)
		if err != nil {
			return failure(silo.CodeInvalid, "the request body is not valid base64", rid)
		}
		body = b
	}
	query, err := url.ParseQuery(ev.RawQueryString)
	if err != nil {
		return failure(silo.CodeInvalid, "the query string is malformed", rid)
	}
	for _, k := range []string{"Authorization", "X-Api-Key", "Cookie", "Proxy-Authorization", "X-Request-Id"} {
		hdr.Del(k)
	}
	path := ev.RawPath
	if path == "" {
		path = ev.RequestContext.HTTP.Path
	}
	return h.run(ctx, runtime.Request{
		ID: rid, Method: ev.RequestContext.HTTP.Method, Path: path, Params: ev.PathParameters,
		Query: query, Header: hdr, Body: body,
	})
}

// run invokes the function with req, by the Lambda deadline less
// responseMargin at the latest.
func (h *host) run(ctx context.Context, req runtime.Request) events.APIGatewayV2HTTPResponse {
	if d, ok := ctx.Deadline(); ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, d.Add(-responseMargin))
		defer cancel()
	}
	start := time.Now()
	c := h.acquire()
	resp, err := c.rt.Invoke(ctx, runtime.Invocation{
		Account: h.acct, Function: h.fn, Digest: c.digest, Handler: h.spec.Handler, Limits: h.limits,
		Host: h.guest, Request: req,
	})
	c.mu.RUnlock()
	took := time.Since(start)
	if err != nil {
		code := silo.ErrorCode(err)
		if code == silo.CodeInternal {
			h.log.LogAttrs(ctx, slog.LevelError, "invocation failed", slog.String("account", string(h.acct)),
				slog.String("function", h.fn), slog.String("request_id", req.ID), slog.Any("err", err))
		}
		out := failure(code, silo.UserMessage(err), req.ID)
		h.record(out.StatusCode, true, took)
		return out
	}
	out := response(resp, req.ID)
	h.record(out.StatusCode, false, took)
	return out
}

// record writes the invocation's metrics line: the release, the status
// answered, whether the invocation failed, its duration; never anything of
// the request or the answer.
func (h *host) record(status int, failed bool, took time.Duration) {
	if h.rec == nil {
		return
	}
	line := siloaws.InvocationRecord{Account: h.acct, Function: h.fn, Release: h.release, Status: status, Failed: failed,
		Micros: took.Microseconds()}.Line()
	h.recMu.Lock()
	defer h.recMu.Unlock()
	h.rec.Write(line)
}

// authenticate checks the request's API key against the key records of
// the account the host runs in. A key of another account is not there, so
// it is refused like an unknown key (I4); the account binding is checked
// as well.
func (h *host) authenticate(ctx context.Context, hdr http.Header) (silo.Code, string, bool) {
	const msgAuth = "missing or invalid API key; send it as Authorization: Bearer <key>"
	plain, ok := credential(hdr)
	if !ok {
		return silo.CodeUnauthenticated, msgAuth, false
	}
	id, err := apikey.Parse(plain)
	if err != nil {
		return silo.CodeUnauthenticated, msgAuth, false
	}
	k, err := h.key(ctx, id)
	switch {
	case errors.Is(err, silo.ErrNotFound):
		return silo.CodeUnauthenticated, msgAuth, false
	case err != nil:
		h.log.LogAttrs(ctx, slog.LevelError, "look up key", slog.String("key", id), slog.Any("err", err))
		return silo.CodeUnavailable, "the service is unavailable; try again shortly", false
	}
	if err := apikey.Check(k, plain, h.now()); err != nil {
		return silo.CodeUnauthenticated, silo.UserMessage(err), false
	}
	if k.Account != h.acct {
		return silo.CodeForbidden, "this API key belongs to another tenant", false
	}
	return "", "", true
}

// key returns the key record id, from the cache if it is younger than
// keyCacheTTL.
func (h *host) key(ctx context.Context, id string) (store.APIKey, error) {
	now := h.now()
	h.mu.Lock()
	c, ok := h.cache[id]
	h.mu.Unlock()
	if ok && now.Sub(c.at) < keyCacheTTL {
		return c.k, c.err
	}
	ak, err := h.keys.APIKey(ctx, id)
	if err != nil && !errors.Is(err, silo.ErrNotFound) {
		return store.APIKey{}, err
	}
	c = cachedKey{err: err, at: now}
	if err == nil {
		c.k = store.APIKey{ID: ak.ID, Account: ak.Account, Hash: ak.Hash, Revoked: ak.Revoked}
	}
	h.mu.Lock()
	if len(h.cache) > 10000 {
		clear(h.cache)
	}
	h.cache[id] = c
	h.mu.Unlock()
	return c.k, c.err
}

// credential returns the API key sent as "Authorization: Bearer <key>" or,
// failing that, as "X-Api-Key: <key>".
func credential(h http.Header) (string, bool) {
	if a := h.Get("Authorization"); a != "" {
		scheme, tok, ok := strings.Cut(a, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") {
			return "", false
		}
		tok = strings.TrimSpace(tok)
		return tok, tok != ""
	}
	k := strings.TrimSpace(h.Get("X-Api-Key"))
	return k, k != ""
}

// response turns the guest's answer into the HTTP API's, keeping only the
// response fields the gateway allows.
func response(r runtime.Response, rid string) events.APIGatewayV2HTTPResponse {
	status := r.Status
	if status == 0 {
		status = http.StatusOK
	}
	out := events.APIGatewayV2HTTPResponse{StatusCode: status, Headers: map[string]string{}, MultiValueHeaders: map[string][]string{}}
	for k, vs := range r.Header {
		k = http.CanonicalHeaderKey(k)
		if !gateway.AllowedResponseHeader(k) {
			continue
		}
		for _, v := range vs {
			if strings.ContainsAny(v, "\r\n\x00") {
				continue
			}
			out.MultiValueHeaders[k] = append(out.MultiValueHeaders[k], v)
		}
	}
	out.Headers["X-Content-Type-Options"] = "nosniff"
	out.Headers["X-Request-Id"] = rid
	if utf8.Valid(r.Body) {
		out.Body = string(r.Body)
	} else {
		out.Body, out.IsBase64Encoded = base64.StdEncoding.EncodeToString(r.Body), true
	}
	return out
}

// failure is silo's error body, {"error":{"code","message","request_id"}},
// with the status of code.
func failure(code silo.Code, msg, rid string) events.APIGatewayV2HTTPResponse {
	type detail struct {
		Code      silo.Code `json:"code"`
		Message   string    `json:"message"`
		RequestID string    `json:"request_id,omitempty"`
	}
	b, _ := json.Marshal(struct {
		Error detail `json:"error"`
	}{detail{code, msg, rid}})
	return events.APIGatewayV2HTTPResponse{
		StatusCode: code.HTTPStatus(),
		Headers:    map[string]string{"Content-Type": "application/json", "X-Request-Id": rid, "X-Content-Type-Options": "nosniff"},
		Body:       string(b) + "\n",
	}
}

func newRequestID() string {
	var b [8]byte
	rand.Read(b[:])
	return "r-" + hex.EncodeToString(b[:])
}
