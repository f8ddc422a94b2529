// Package server is the control-plane HTTP API: accounts, keys, secrets
// (write-only), releases and their content-addressed artifacts, rollouts
// (start, status, follow, pause, resume, abort, rollback, and a preview
// of what a start or rollback would destroy), audit
// verification, plans and drift, the fleet's isolation proof, signed
// tenant reports, environments and accounts' function logs, as JSON over HTTP behind an operator bearer token. Client is
// the Go client the CLI uses with --server. docs/api.md documents every
// endpoint.
//
// It wraps control.Plane and rollout.Runner (and, through Ops, the
// provider contract, environments and the log directory) and depends on
// the store, provider and spec contracts only through them; it never imports a store or
// provider implementation, the runtime or the gateway, and it never returns
// a secret value (I3).
package server

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/usage"
)

// Config configures a Server.
type Config struct {
	Plane  *control.Plane
	Runner *rollout.Runner
	Store  store.Store // releases are listed from it
	// StoreKind is the kind of Store, "sqlite" or "postgres", as
	// GET /v1/store reports it.
	StoreKind string
	// StoreDatabase returns the identity of the PostgreSQL database and
	// schema Store lives in (postgres.Store.DatabaseID), as GET /v1/store
	// reports it; nil for SQLite.
	StoreDatabase func(context.Context) (string, error)
	// ArtifactDir holds uploaded artifacts as <hex sha256>.wasm, the layout
	// of local builds. Required.
	ArtifactDir string
	// Token is the operator token every request to an endpoint but
	// /v1/health and /v1/report-key must carry as "Authorization: Bearer <token>" (a path no
	// endpoint serves is 404 without it). Required; see LoadOrCreateToken.
	Token  string
	Logger *slog.Logger
	// MaxArtifactSize bounds one uploaded artifact; 64 MiB if zero.
	MaxArtifactSize int64
	Now             func() time.Time
	// Prices price usage reports. Zero: usage.DefaultPrices.
	Prices usage.Prices
	// Ops are the platform parts of the verify, report, environment and
	// log endpoints (see Ops); also settable with SetOps.
	Ops Ops
	// Modules, if set, checks every uploaded artifact with the runtime
	// before it is stored, and every artifact of a release before the
	// release is made. Without it, an artifact is checked only for being
	// framed as a wasm module.
	Modules Modules
}

// Modules checks function modules with the runtime that runs them.
type Modules interface {
	// CheckModule compiles wasm, whose SHA-256 is digest, as a request
	// would run it, keeping it compiled for the requests to come, and
	// returns a CodeInvalid error saying why when it cannot run (it does
	// not validate, imports what silo does not provide, lacks the silo
	// exports, is over a limit). Safe for concurrent use.
	CheckModule(ctx context.Context, digest string, wasm []byte) error
}

// Server serves the control-plane API. Safe for concurrent use.
type Server struct {
	cfg      Config
	token    [32]byte
	mux      *http.ServeMux
	patterns []string   // of every route, in the order registered
	opsMu    sync.Mutex // guards cfg.Ops

	console http.Handler // set once by SetConsole, before serving

	healthCheck healthCheck // the last store check of GET /v1/health
}

// SetConsole mounts the operator console (package server/console) at
// /console/, with / redirecting to it. The console checks its own sign-in
// sessions, so its routes skip the bearer-token check. Call it before the
// server serves.
func (s *Server) SetConsole(h http.Handler) { s.console = h }

// New returns a Server.
//
// # Errors
//
// CodeInvalid when a required field is missing.
func New(cfg Config) (*Server, error) {
	if cfg.Plane == nil || cfg.Runner == nil || cfg.Store == nil || cfg.ArtifactDir == "" || cfg.Token == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "server: Plane, Runner, Store, ArtifactDir and Token are required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxArtifactSize <= 0 {
		cfg.MaxArtifactSize = 64 << 20
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if err := os.MkdirAll(cfg.ArtifactDir, 0o700); err != nil {
		return nil, fmt.Errorf("artifact dir: %w", err)
	}
	s := &Server{cfg: cfg, token: sha256.Sum256([]byte(cfg.Token)), mux: http.NewServeMux()}
	s.routes()
	s.routeUsage()
	s.mux.HandleFunc("/", s.noRoute) // what no route serves: 404 or 405, as JSON
	return s, nil
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler { return s }

// publicPaths are the endpoints served without the operator token: the
// health check, and the public keys that check the installation's signed
// reports, which customers' reviewers fetch (they hold no secret, and a
// reviewer has no token).
var publicPaths = map[string]bool{"/v1/health": true, "/v1/report-key": true}

// ServeHTTP authenticates and serves one request. A path no route serves
// is answered 404 before the token is checked; any other request without
// the operator token is 401, but to publicPaths.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if s.console != nil && (r.URL.Path == "/" || r.URL.Path == "/console" || strings.HasPrefix(r.URL.Path, "/console/")) {
		s.console.ServeHTTP(w, r)
		return
	}
	if len(s.methods(r)) == 0 {
		// No route serves the path with any method: it is 404 with or
		// without a token, so that a client is not told to authenticate
		// for an endpoint that does not exist. A path some route serves
		// needs the token whatever the method (405 only with it).
		s.noRoute(w, r)
		return
	}
	if !publicPaths[r.URL.Path] {
		tok, ok := bearerToken(r.Header.Values("Authorization"))
		got := sha256.Sum256([]byte(tok))
		if !ok || subtle.ConstantTimeCompare(got[:], s.token[:]) != 1 {
			writeErr(w, silo.Errorf(silo.CodeUnauthenticated, "missing or wrong operator token; send Authorization: Bearer <token> (the token is in the server's data dir, file operator.token)"))
			return
		}
		// The caller acts in the audit log: a console session calling in
		// process has named itself already; otherwise it is the token's
		// holder, named by a hash of the token (TokenActor).
		if store.ActorOf(r.Context(), "") == "" {
			r = r.WithContext(store.WithActor(r.Context(), TokenActor(tok)))
		}
	}
	s.mux.ServeHTTP(w, r)
}

// TokenActor names the holder of an operator token in audit events:
// "api:token-" and the first 8 hex digits of the token's SHA-256, never the
// token itself. A new token (delete operator.token) gets a new name.
func TokenActor(tok string) string {
	h := sha256.Sum256([]byte(tok))
	return "api:token-" + hex.EncodeToString(h[:4])
}

// Status returns the HTTP status of an error code (silo.Code.HTTPStatus:
// the one table); unknown codes are 500.
func Status(c silo.Code) int { return c.HTTPStatus() }

// ErrorBody is the JSON body of every error response.
type ErrorBody struct {
	Error struct {
		Code    silo.Code `json:"code"`
		Message string    `json:"message"`
	} `json:"error"`
}

func writeErr(w http.ResponseWriter, err error) {
	var b ErrorBody
	b.Error.Code, b.Error.Message = silo.ErrorCode(err), silo.UserMessage(err)
	writeJSON(w, Status(b.Error.Code), b)
}

// writeJSON answers status with v as JSON. v is encoded before anything is
// written, so a value that cannot be encoded is answered with 500 and an
// internal error, never with status and an empty body; the encoding error
// is returned for the caller to log.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		var e ErrorBody
		e.Error.Code, e.Error.Message = silo.CodeInternal, silo.UserMessage(err)
		status, err = http.StatusInternalServerError, fmt.Errorf("encode the answer: %w", err)
		b, _ = json.Marshal(e) // strings only: always encodes
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
	return err
}

// logFailed logs a request that failed for a reason of the server or of
// what it depends on (codes internal and unavailable: AWS or the store not
// answering, say) with the error's cause, which the client's answer leaves
// out (silo.ForLog). A client's own mistake (invalid, not found, ...) is
// the client's to read and is not logged.
func (s *Server) logFailed(r *http.Request, err error) {
	switch silo.ErrorCode(err) {
	case silo.CodeInternal:
		s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", silo.ForLog(err))
	case silo.CodeUnavailable:
		if r.Context().Err() == nil { // a client that went away is no failure of the server
			s.cfg.Logger.Warn("request failed", "method", r.Method, "path", r.URL.Path, "err", silo.ForLog(err))
		}
	}
}

// servedHint returns err with the command a client of a server runs
// where err names one that works only without a server: with no current
// release, silo apply (which refuses to run beside a server) gives way to
// silo deploy, which builds the release and rolls it out through the
// server.
func servedHint(err error) error {
	if errors.Is(err, store.ErrNoRelease) {
		return &silo.Error{Code: silo.CodeNotFound, Message: "no release yet; run silo deploy in the directory holding silo.yaml: it builds the release and rolls it out through this server", Err: err}
	}
	return err
}

// route registers h for pattern ("METHOD /path"). Every endpoint is
// registered through it, so that patterns lists them all.
func (s *Server) route(pattern string, h http.HandlerFunc) {
	s.mux.HandleFunc(pattern, h)
	s.patterns = append(s.patterns, pattern)
}

// handle adapts a func returning (value, error) to a route.
func (s *Server) handle(pattern string, fn func(r *http.Request) (int, any, error)) {
	s.route(pattern, func(w http.ResponseWriter, r *http.Request) {
		status, v, err := fn(r)
		if err != nil {
			err = servedHint(err)
			s.logFailed(r, err)
			writeErr(w, err)
			return
		}
		if status == http.StatusNoContent {
			w.WriteHeader(status)
			return
		}
		if err := writeJSON(w, status, v); err != nil {
			s.cfg.Logger.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		}
	})
}

func accountID(r *http.Request) (silo.AccountID, error) {
	return silo.ParseID(r.PathValue("id"))
}

// cursor reads the after of GET /v1/accounts: the ID of the last account of
// the previous page, or any string of printable ASCII that sorts where the
// next page starts (the console pages from just before a prefix, "ac~").
// Account IDs are ASCII, so nothing else can be a position among them.
//
// # Errors
//
// CodeInvalid for any other byte (non-ASCII, control characters, a
// space), which could match no account and which PostgreSQL refuses to
// compare (a byte sequence that is not UTF-8, NUL).
func cursor(s string) (silo.AccountID, error) {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return "", silo.Errorf(silo.CodeInvalid, "after=%q is not an account ID; pass the id of the last account of the previous page", s)
		}
	}
	return silo.AccountID(s), nil
}

// CreateAccountRequest is the body of POST /v1/accounts.
type CreateAccountRequest struct {
	ID      string            `json:"id"`
	Kind    silo.Kind         `json:"kind,omitempty"`
	Name    string            `json:"name,omitempty"`
	Params  map[string]string `json:"params,omitempty"`
	TTL     string            `json:"ttl,omitempty"` // Go duration, environments only
	WithKey bool              `json:"with_key,omitempty"`
}

// Deleted is the answer to DELETE /v1/accounts/{id} and DELETE
// /v1/orphans/{id}: the account and what the provider reported it did.
type Deleted struct {
	Account silo.AccountID `json:"deleted"`
	provider.Deletion
}

// UpdateAccountRequest is the body of PATCH /v1/accounts/{id}: parameters
// to set ("" removes one) and an optional new display name.
type UpdateAccountRequest struct {
	Params map[string]string `json:"params,omitempty"`
	Name   string            `json:"name,omitempty"`
}

// KeyRequest is the body of POST /v1/accounts/{id}/keys.
type KeyRequest struct {
	Name string `json:"name,omitempty"`
}

// IssuedKey is the answer to POST /v1/accounts/{id}/keys: the key in plain
// text, shown once.
type IssuedKey struct {
	Key   string       `json:"key"`
	KeyID string       `json:"key_id"`
	Info  store.APIKey `json:"info"`
}

// DeletedSecret is the answer to DELETE /v1/accounts/{id}/secrets/{name}:
// Deleted says whether the account held a value (false: it was not set,
// and nothing changed).
type DeletedSecret struct {
	Account silo.AccountID `json:"account"`
	Secret  string         `json:"secret"`
	Deleted bool           `json:"deleted"`
}

// ReleaseRequest is the body of POST /v1/releases: the silo.yaml text and
// the digest of every function's artifact (function name, "production."
// prefixed for production functions → hex SHA-256), each uploaded first
// with PUT /v1/artifacts/{digest}.
type ReleaseRequest struct {
	Spec      string            `json:"spec"`
	Artifacts map[string]string `json:"artifacts"`
	Note      string            `json:"note,omitempty"`
}

// ReleaseInfo describes a stored release.
type ReleaseInfo struct {
	ID        string            `json:"id"`
	Artifacts map[string]string `json:"artifacts"`
	Created   time.Time         `json:"created"`
	Note      string            `json:"note,omitempty"`
	Current   bool              `json:"current,omitempty"`
	// Probe marks a build of silo verify --probe, listed only when asked
	// for (probes=true) and never rolled out (store.CheckShip).
	Probe bool `json:"probe,omitempty"`
	// Origin says how the release was stored (store.Origin): by a deploy,
	// a build of a spec file or silo dev; absent for one stored before
	// origins were recorded. A release only silo dev stored is never
	// rolled out (store.CheckShip).
	Origin store.Origin    `json:"origin,omitzero"`
	Stack  json.RawMessage `json:"stack,omitempty"` // on show only
}

// NewReleaseInfo describes stored release r, current when its ID is
// current (without its stack).
func NewReleaseInfo(r store.Release, current string) ReleaseInfo {
	return ReleaseInfo{ID: r.ID, Artifacts: r.Artifacts, Created: r.Created, Note: r.Note, Current: r.ID == current, Probe: r.Probe, Origin: r.Origin}
}

// NothingStarted is the body of POST /v1/rollouts answered 200 OK: the
// release is current and every account its rings select runs it already
// (rollout.UpToDate), so no rollout was recorded. Started is always false;
// a rollout that starts is answered 201 Created with the rollout.
type NothingStarted struct {
	Started bool   `json:"started"`
	Message string `json:"message"`
	rollout.UpToDate
}

// StartRequest is the body of POST /v1/rollouts.
type StartRequest struct {
	// Release is the ID of a stored release to roll out; or Upload, not
	// stored yet (a ReleaseRequest, its artifacts uploaded), which is
	// stored only if the rollout starts: a start refused for any reason
	// (the isolation gate, data loss not confirmed, a failed release)
	// stores nothing. Exactly one of the two.
	Release string          `json:"release,omitempty"`
	Upload  *ReleaseRequest `json:"upload,omitempty"`
	// AllowDataLoss confirms a rollout that deletes or replaces tables,
	// buckets or secrets (rollout.Options); without it such a rollout is
	// refused with needs_confirmation, naming what it would destroy.
	// Alone, it confirms whatever the rollout's planning finds as it
	// starts.
	AllowDataLoss bool `json:"allow_data_loss,omitempty"`
	// LossesDigest, optional, is the losses_digest of the preview the
	// caller showed (GET /v1/rollouts/preview): the rollout starts only if
	// it would destroy exactly that, else it is refused with conflict.
	LossesDigest string `json:"losses_digest,omitempty"`
	// RetryFailed confirms a rollout of a release whose latest rollout
	// failed (rollout.Options.RetryFailed); without it such a rollout is
	// refused with failed_check, naming that rollout and why it failed.
	RetryFailed bool `json:"retry_failed,omitempty"`
}

// RollbackRequest is the optional body of POST /v1/rollouts/{rid}/rollback,
// its fields as in StartRequest (the preview being GET
// /v1/rollouts/{rid}/rollback/preview).
type RollbackRequest struct {
	AllowDataLoss bool   `json:"allow_data_loss,omitempty"`
	LossesDigest  string `json:"losses_digest,omitempty"`
}

// AuditResult is the answer to GET /v1/audit/verify.
type AuditResult struct {
	Entries int  `json:"entries"`
	Intact  bool `json:"intact"`
}

func (s *Server) routes() {
	s.route("GET /v1/health", s.health)
	s.handle("POST /v1/accounts", func(r *http.Request) (int, any, error) {
		var req CreateAccountRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		cr := control.CreateRequest{ID: req.ID, Kind: req.Kind, Name: req.Name, Params: req.Params, WithKey: req.WithKey}
		if req.TTL != "" {
			d, err := time.ParseDuration(req.TTL)
			if err != nil || d <= 0 {
				return 0, nil, silo.Errorf(silo.CodeInvalid, "ttl %q is not a positive duration such as 72h", req.TTL)
			}
			cr.TTL = d
		}
		// The onboarding does not end with the request: a client that goes
		// away (Ctrl-C) would otherwise leave it wherever the cancellation
		// reached it, and could not say where.
		c, err := s.cfg.Plane.CreateAccount(context.WithoutCancel(r.Context()), cr)
		return http.StatusCreated, c, err
	})
	s.handle("GET /v1/accounts", func(r *http.Request) (int, any, error) {
		q := r.URL.Query()
		after, err := cursor(q.Get("after"))
		if err != nil {
			return 0, nil, err
		}
		f := store.Filter{Kind: silo.Kind(q.Get("kind")), State: silo.State(q.Get("state")), After: after}
		if l := q.Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 {
				return 0, nil, silo.Errorf(silo.CodeInvalid, "limit %q is not a count", l)
			}
			f.Limit = n
		}
		f.IncludeDeleted = q.Get("deleted") == "true"
		as, err := s.cfg.Plane.Accounts(r.Context(), f)
		if as == nil {
			as = []silo.Account{}
		}
		return http.StatusOK, as, err
	})
	s.handle("GET /v1/accounts/{id}", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		d, err := s.cfg.Plane.Show(r.Context(), id)
		return http.StatusOK, d, err
	})
	s.handle("PATCH /v1/accounts/{id}", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		var req UpdateAccountRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		p, err := s.cfg.Plane.UpdateParams(r.Context(), id, req.Params, req.Name)
		return http.StatusOK, p, err
	})
	state := func(next silo.State, action string) func(r *http.Request) (int, any, error) {
		return func(r *http.Request) (int, any, error) {
			id, err := accountID(r)
			if err != nil {
				return 0, nil, err
			}
			a, err := s.cfg.Plane.SetState(r.Context(), id, next, action)
			return http.StatusOK, a, err
		}
	}
	s.handle("POST /v1/accounts/{id}/suspend", state(silo.StateSuspended, "account.suspend"))
	s.handle("POST /v1/accounts/{id}/resume", state(silo.StateActive, "account.resume"))
	s.handle("DELETE /v1/accounts/{id}", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		del, err := s.cfg.Plane.DeleteTenant(r.Context(), id)
		return http.StatusOK, Deleted{Account: id, Deletion: del}, err
	})
	s.handle("DELETE /v1/orphans/{id}", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		del, err := s.cfg.Plane.DestroyOrphan(r.Context(), id)
		return http.StatusOK, Deleted{Account: id, Deletion: del}, err
	})
	s.handle("POST /v1/accounts/{id}/keys", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		var req KeyRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		if req.Name == "" {
			req.Name = "default"
		}
		plain, k, err := s.cfg.Plane.IssueKey(r.Context(), id, req.Name)
		return http.StatusCreated, IssuedKey{Key: plain, KeyID: k.ID, Info: k}, err
	})
	s.handle("GET /v1/accounts/{id}/keys", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		ks, err := s.cfg.Plane.Keys(r.Context(), id)
		if ks == nil {
			ks = []store.APIKey{}
		}
		return http.StatusOK, ks, err
	})
	s.handle("DELETE /v1/accounts/{id}/keys/{key}", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		var grace time.Duration
		if v := r.URL.Query().Get("grace"); v != "" {
			if grace, err = time.ParseDuration(v); err != nil {
				return 0, nil, silo.Errorf(silo.CodeInvalid, "grace must be a duration such as 1h, not %q", v)
			}
		}
		return http.StatusNoContent, nil, s.cfg.Plane.RevokeKeyAfter(r.Context(), id, r.PathValue("key"), grace)
	})
	s.handle("DELETE /v1/keys/{key}", func(r *http.Request) (int, any, error) {
		out, err := s.cfg.Plane.RemoveKey(r.Context(), r.PathValue("key"))
		return http.StatusOK, out, err
	})
	s.handle("PUT /v1/accounts/{id}/secrets/{name}", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		// Read past the limit so that a value too large is refused with
		// its size (provider.CheckSecretSize, in SetSecret).
		const maxRead = 64 << 10
		v, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxRead))
		if err != nil {
			return 0, nil, silo.Errorf(silo.CodeInvalid, "secret %s is over %d bytes; a secret holds at most %d bytes; keep large data in a bucket and in the secret only what opens it", r.PathValue("name"), maxRead, provider.MaxSecretSize)
		}
		return http.StatusNoContent, nil, s.cfg.Plane.SetSecret(r.Context(), id, r.PathValue("name"), v)
	})
	s.handle("DELETE /v1/accounts/{id}/secrets/{name}", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		name := r.PathValue("name")
		deleted, err := s.cfg.Plane.DeleteSecret(r.Context(), id, name)
		return http.StatusOK, DeletedSecret{Account: id, Secret: name, Deleted: deleted}, err
	})
	s.handle("GET /v1/accounts/{id}/secrets", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		ss, err := s.cfg.Plane.Secrets(r.Context(), id)
		return http.StatusOK, ss, err
	})
	s.handle("PUT /v1/artifacts/{digest}", s.putArtifact)
	s.handle("HEAD /v1/artifacts/{digest}", func(r *http.Request) (int, any, error) {
		p, err := s.artifactPath(r.PathValue("digest"))
		if err != nil {
			return 0, nil, err
		}
		if _, err := storedModule(p, r.PathValue("digest")); err != nil { // missing, damaged, or not a module: upload it (again)
			return 0, nil, silo.Errorf(silo.CodeNotFound, "no artifact %s", r.PathValue("digest"))
		}
		return http.StatusNoContent, nil, nil
	})
	s.handle("POST /v1/releases", s.postRelease)
	s.handle("GET /v1/releases", func(r *http.Request) (int, any, error) {
		limit := 50
		if l := r.URL.Query().Get("limit"); l != "" {
			n, err := strconv.Atoi(l)
			if err != nil || n <= 0 {
				return 0, nil, silo.Errorf(silo.CodeInvalid, "limit %q is not a positive count", l)
			}
			limit = n
		}
		probes := r.URL.Query().Get("probes") == "true"
		out := []ReleaseInfo{}
		err := s.cfg.Store.View(r.Context(), func(tx store.Tx) error {
			cur, _ := tx.CurrentRelease()
			rs, err := tx.Releases(limit, probes)
			for _, x := range rs {
				out = append(out, NewReleaseInfo(x, cur))
			}
			return err
		})
		return http.StatusOK, out, err
	})
	s.handle("GET /v1/releases/{rid}", func(r *http.Request) (int, any, error) {
		var out ReleaseInfo
		err := s.cfg.Store.View(r.Context(), func(tx store.Tx) error {
			x, err := tx.Release(r.PathValue("rid"))
			if errors.Is(err, silo.ErrNotFound) {
				return silo.Errorf(silo.CodeNotFound, "no release %q; silo release list shows the releases", r.PathValue("rid"))
			}
			if err != nil {
				return err
			}
			cur, _ := tx.CurrentRelease()
			out = NewReleaseInfo(x, cur)
			out.Stack = x.Stack
			return nil
		})
		return http.StatusOK, out, err
	})
	s.handle("POST /v1/rollouts", func(r *http.Request) (int, any, error) {
		var req StartRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		opt := rollout.Options{AllowDataLoss: req.AllowDataLoss, LossesDigest: req.LossesDigest, RetryFailed: req.RetryFailed}
		var ro rollout.Rollout
		var err error
		switch {
		case (req.Release == "") == (req.Upload == nil):
			return 0, nil, silo.Errorf(silo.CodeInvalid, "give either release (the ID of a stored release) or upload (a release to store if its rollout starts), not both or neither")
		case req.Upload != nil:
			rel, stored, nerr := s.newRelease(r.Context(), *req.Upload)
			if nerr != nil {
				return 0, nil, nerr
			}
			ro, err = s.cfg.Runner.StartNew(r.Context(), rel, opt, func(ctx context.Context) error {
				_, _, err := s.putRelease(ctx, rel, stored)
				return err
			})
		default:
			ro, err = s.cfg.Runner.Start(r.Context(), req.Release, opt)
		}
		if u, ok := errors.AsType[*rollout.UpToDate](err); ok {
			return http.StatusOK, NothingStarted{Message: u.Error(), UpToDate: *u}, nil
		}
		return http.StatusCreated, ro, err
	})
	s.handle("GET /v1/rollouts", func(r *http.Request) (int, any, error) {
		rs, err := s.cfg.Runner.List(r.Context(), 50)
		return http.StatusOK, rs, err
	})
	s.handle("GET /v1/rollouts/{rid}", func(r *http.Request) (int, any, error) {
		ro, err := s.rollout(r)
		return http.StatusOK, ro, err
	})
	s.route("GET /v1/rollouts/{rid}/follow", s.follow)
	op := func(fn func(context.Context, string) (rollout.Rollout, error)) func(r *http.Request) (int, any, error) {
		return func(r *http.Request) (int, any, error) {
			id, err := s.rolloutID(r)
			if err != nil {
				return 0, nil, err
			}
			ro, err := fn(r.Context(), id)
			return http.StatusOK, ro, err
		}
	}
	s.handle("POST /v1/rollouts/{rid}/pause", op(s.cfg.Runner.Pause))
	s.handle("POST /v1/rollouts/{rid}/resume", op(s.cfg.Runner.Resume))
	s.handle("POST /v1/rollouts/{rid}/abort", op(s.cfg.Runner.Abort))
	s.handle("POST /v1/rollouts/{rid}/rollback", func(r *http.Request) (int, any, error) {
		id, err := s.rolloutID(r)
		if err != nil {
			return 0, nil, err
		}
		var req RollbackRequest
		if r.ContentLength != 0 {
			if err := decode(r, &req); err != nil {
				return 0, nil, err
			}
		}
		ro, err := s.cfg.Runner.Rollback(r.Context(), id, rollout.Options{AllowDataLoss: req.AllowDataLoss, LossesDigest: req.LossesDigest})
		return http.StatusOK, ro, err
	})
	s.handle("GET /v1/audit", func(r *http.Request) (int, any, error) {
		q := r.URL.Query()
		var after int64
		var limit int
		var err error
		if v := q.Get("after"); v != "" {
			if after, err = strconv.ParseInt(v, 10, 64); err != nil || after < 0 {
				return 0, nil, silo.Errorf(silo.CodeInvalid, "after must be a sequence number, not %q", v)
			}
		}
		if v := q.Get("limit"); v != "" {
			if limit, err = strconv.Atoi(v); err != nil || limit < 1 {
				return 0, nil, silo.Errorf(silo.CodeInvalid, "limit must be a positive number, not %q", v)
			}
		}
		es, err := s.cfg.Plane.AuditLog(r.Context(), after, limit, silo.AccountID(q.Get("account")))
		return http.StatusOK, es, err
	})
	s.handle("GET /v1/audit/verify", func(r *http.Request) (int, any, error) {
		n, err := s.cfg.Plane.VerifyAudit(r.Context())
		return http.StatusOK, AuditResult{Entries: n, Intact: err == nil}, err
	})
	s.previewRoutes()
	s.fleetRoutes()
	s.storeRoutes()
}
