// Package console is the operator console: server-rendered HTML pages for
// the fleet, each tenant, releases and rollouts, and the fleet's isolation,
// served beside the control-plane API (server.Server.SetConsole mounts it at
// /console/).
//
// An operator signs in by posting the operator token; the console then
// keeps a random session ID in an HttpOnly, SameSite=Strict cookie (the
// token itself never leaves the server) and checks a per-session CSRF token
// on every state-changing form. Every page and action goes through the
// control-plane API in process (server.Client over the API's handler), so
// an action is validated and audited exactly as the same action from the
// CLI. Pages are html/template (auto-escaping); the one stylesheet and the
// one script are embedded and nothing loads from elsewhere. Every page
// reads completely without JavaScript; with it, the releases and logs
// pages update in place from server-sent events (live.go) carrying HTML
// fragments rendered by the same templates, and times to live count down.
// Sign-in attempts are limited per client address (signin.go). A rollout
// or rollback starts from a confirm step that lists what it would destroy,
// from the API's preview (confirm.go).
//
// It imports package server for its client only, never a store, provider
// or runtime implementation, and it never shows a secret value (I3).
package console

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// CookieName is the name of the console's session cookie.
const CookieName = "silo_console"

// Config configures a Console.
type Config struct {
	// API is the control-plane API's handler (server.Server.Handler());
	// the console calls it in process for every read and action.
	API http.Handler
	// Token is the operator token: what the sign-in form must receive, and
	// what the console sends to the API. Required.
	Token string
	// SessionTTL is how long a session lasts after sign-in; 12 hours if
	// zero.
	SessionTTL time.Duration
	// PageSize is the number of accounts on one fleet page; 50 if zero.
	PageSize int
	Now      func() time.Time
	Logger   *slog.Logger
}

// Console serves the console's pages. Safe for concurrent use.
type Console struct {
	cfg    Config
	token  [32]byte
	api    *server.Client
	pages  map[string]*template.Template
	mux    *http.ServeMux
	mu     sync.Mutex
	byID   map[string]*session
	static http.Handler
	tries  *limiter

	fleetMu sync.Mutex            // one fleet usage summary at a time
	fleetU  map[string]fleetUsage // by window
}

// session is one signed-in browser.
type session struct {
	csrf    string
	actor   string // in audit events: console:session-<a hash of its ID>
	expires time.Time
	flash   *flash // shown once, on the next page
	// keys are new API keys in plain text, shown on every page of the
	// session until the user dismisses each (or the session ends): a
	// message that comes after one cannot take it away.
	keys []newKey
}

// flash is a message carried across a redirect. Key, when set, is a new
// API key in plain text, for the session's keys (KeyOf says whose).
type flash struct {
	OK    string
	Err   string
	Key   string
	KeyOf string
}

// newKey is a new API key awaiting its user's copy. ID names it in the
// form that dismisses it.
type newKey struct {
	ID  string
	Of  string
	Key string
}

// New returns a Console.
//
// # Errors
//
// CodeInvalid when API or Token is missing.
func New(cfg Config) (*Console, error) {
	if cfg.API == nil || cfg.Token == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "console: API and Token are required")
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 12 * time.Hour
	}
	if cfg.PageSize <= 0 {
		cfg.PageSize = 50
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	pages, err := parsePages()
	if err != nil {
		return nil, err
	}
	st, _ := fs.Sub(staticFS, "static")
	c := &Console{
		cfg:    cfg,
		token:  sha256.Sum256([]byte(cfg.Token)),
		api:    server.NewClient("http://console.internal", cfg.Token, &http.Client{Transport: inProcess{cfg.API}}),
		pages:  pages,
		mux:    http.NewServeMux(),
		byID:   map[string]*session{},
		static: http.StripPrefix("/console/static/", http.FileServerFS(st)),
		tries:  newLimiter(),
	}
	c.routes()
	return c, nil
}

// ServeHTTP serves one console request.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Frame-Options", "DENY")
	c.mux.ServeHTTP(w, r)
}

// inProcess is an http.RoundTripper that serves requests with a handler in
// the same process.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	rec := &recorder{header: http.Header{}}
	t.h.ServeHTTP(rec, r)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return &http.Response{
		Status: strconv.Itoa(rec.status) + " " + http.StatusText(rec.status), StatusCode: rec.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: rec.header, Body: io.NopCloser(&rec.body), ContentLength: int64(rec.body.Len()), Request: r,
	}, nil
}

// recorder is the http.ResponseWriter of an in-process request: it keeps
// the status, header and body for the response.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (w *recorder) Header() http.Header { return w.header }

func (w *recorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *recorder) Write(b []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return w.body.Write(b)
}

func newID() string {
	var b [32]byte
	rand.Read(b[:]) // never fails (crypto/rand)
	return hex.EncodeToString(b[:])
}

// signIn checks the operator token and starts a session.
func (c *Console) signIn(token string) (id string, ok bool) {
	got := sha256.Sum256([]byte(token))
	if subtle.ConstantTimeCompare(got[:], c.token[:]) != 1 {
		return "", false
	}
	now := c.cfg.Now()
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, s := range c.byID { // drop expired sessions
		if !now.Before(s.expires) {
			delete(c.byID, k)
		}
	}
	id = newID()
	c.byID[id] = &session{csrf: newID(), actor: sessionActor(id), expires: now.Add(c.cfg.SessionTTL)}
	return id, true
}

// session returns the request's live session, or nil.
func (c *Console) session(r *http.Request) (string, *session) {
	ck, err := r.Cookie(CookieName)
	if err != nil || ck.Value == "" {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.byID[ck.Value]
	if s == nil {
		return "", nil
	}
	if !c.cfg.Now().Before(s.expires) {
		delete(c.byID, ck.Value)
		return "", nil
	}
	return ck.Value, s
}

func (c *Console) signOut(id string) {
	c.mu.Lock()
	delete(c.byID, id)
	c.mu.Unlock()
}

// setFlash stores a message for the session's next page, and a new key
// among the session's keys.
func (c *Console) setFlash(s *session, f flash) {
	c.mu.Lock()
	if f.Key != "" {
		s.keys = append(s.keys, newKey{ID: newID(), Of: f.KeyOf, Key: f.Key})
		f.Key, f.KeyOf = "", ""
	}
	s.flash = &f
	c.mu.Unlock()
}

// shownKeys returns the session's new keys not dismissed yet.
func (c *Console) shownKeys(s *session) []newKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(s.keys)
}

// dismissKey forgets the session's new key the form names, and goes back
// to the page the form was on.
func (c *Console) dismissKey(w http.ResponseWriter, r *http.Request, s *session) {
	id := r.PostFormValue("key")
	c.mu.Lock()
	s.keys = slices.DeleteFunc(s.keys, func(k newKey) bool { return k.ID == id })
	c.mu.Unlock()
	back := "/console/"
	if u, err := url.Parse(r.Referer()); err == nil && strings.HasPrefix(u.Path, "/console/") {
		back = u.Path
	}
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// takeFlash returns and clears the session's message.
func (c *Console) takeFlash(s *session) *flash {
	c.mu.Lock()
	defer c.mu.Unlock()
	f := s.flash
	s.flash = nil
	return f
}

// validCSRF reports whether the form's csrf field is the session's token.
func validCSRF(s *session, r *http.Request) bool {
	got := r.PostFormValue("csrf")
	return subtle.ConstantTimeCompare([]byte(got), []byte(s.csrf)) == 1
}

// setCookie sets the session cookie. It is Secure when the browser
// reached the console over TLS: served with TLS, or through a proxy that
// says so with X-Forwarded-Proto (trusting the header can only make the
// cookie stricter).
func setCookie(w http.ResponseWriter, r *http.Request, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: CookieName, Value: value, Path: "/console/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode,
		Secure: r.TLS != nil || r.Header.Get("X-Forwarded-Proto") == "https",
	})
}

// authed wraps a page handler: without a live session a GET redirects to
// the sign-in page and anything else is refused; a POST must carry the
// session's CSRF token.
func (c *Console) authed(fn func(w http.ResponseWriter, r *http.Request, s *session)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		_, s := c.session(r)
		if s == nil {
			if r.Method == http.MethodGet || r.Method == http.MethodHead {
				http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
				return
			}
			http.Error(w, "sign in first: your console session is missing or has expired", http.StatusUnauthorized)
			return
		}
		if r.Method == http.MethodPost {
			r.Body = http.MaxBytesReader(w, r.Body, 128<<10)
			if !validCSRF(s, r) {
				http.Error(w, "this form's security token is missing or wrong; reload the page and try again", http.StatusForbidden)
				return
			}
		}
		// What the session does through the API is its own in the audit log.
		fn(w, r.WithContext(store.WithActor(r.Context(), s.actor)), s)
	}
}

// sessionActor names a session in audit events without its ID, which is
// the cookie's secret: a hash of it, as the API's caller is named.
func sessionActor(id string) string {
	h := sha256.Sum256([]byte(id))
	return "console:session-" + hex.EncodeToString(h[:4])
}

func (c *Console) routes() {
	c.mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	c.mux.HandleFunc("GET /console", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	c.mux.Handle("GET /console/static/", c.static)
	c.mux.HandleFunc("GET /console/signin", func(w http.ResponseWriter, r *http.Request) {
		c.render(w, http.StatusOK, "signin", nil, nil)
	})
	c.mux.HandleFunc("POST /console/signin", func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
		addr, now := clientAddr(r), c.cfg.Now()
		if d := c.tries.wait(addr, now); d > 0 {
			c.tooMany(w, d)
			return
		}
		id, ok := c.signIn(r.PostFormValue("token"))
		if !ok {
			c.tries.fail(addr, now)
			c.render(w, http.StatusUnauthorized, "signin", nil, map[string]any{"Error": "That is not the operator token. It is in the server's data dir, file operator.token."})
			return
		}
		setCookie(w, r, id, int(c.cfg.SessionTTL/time.Second))
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
	})
	c.mux.HandleFunc("POST /console/signout", c.authed(func(w http.ResponseWriter, r *http.Request, s *session) {
		id, _ := c.session(r)
		c.signOut(id)
		setCookie(w, r, "", -1)
		http.Redirect(w, r, "/console/signin", http.StatusSeeOther)
	}))
	c.mux.HandleFunc("GET /console/{$}", c.authed(c.fleet))
	c.mux.HandleFunc("GET /console/tenants/{id}", c.authed(c.tenant))
	c.mux.HandleFunc("POST /console/tenants", c.authed(c.createTenant))
	c.mux.HandleFunc("POST /console/keys/dismiss", c.authed(c.dismissKey))
	c.mux.HandleFunc("GET /console/tenants/{id}/report", c.authed(c.report))
	c.mux.HandleFunc("POST /console/tenants/{id}/{action}", c.authed(c.tenantAction))
	c.mux.HandleFunc("POST /console/tenants/{id}/keys/{key}/revoke", c.authed(c.revokeKey))
	c.mux.HandleFunc("GET /console/releases", c.authed(c.releases))
	c.mux.HandleFunc("POST /console/rollouts/{rid}/{op}", c.authed(c.rolloutAction))
	c.mux.HandleFunc("GET /console/isolation", c.authed(c.isolation))
	c.mux.HandleFunc("GET /console/releases/events", c.authed(c.rolloutsEvents))
	c.mux.HandleFunc("GET /console/releases/{rid}/rollout", c.authed(c.confirmRollout))
	c.mux.HandleFunc("POST /console/releases/{rid}/rollout", c.authed(c.startRollout))
	c.mux.HandleFunc("GET /console/rollouts/{rid}/rollback", c.authed(c.confirmRollback))
	c.mux.HandleFunc("GET /console/tenants/{id}/logs", c.authed(c.logsPage))
	c.mux.HandleFunc("GET /console/tenants/{id}/logs/events", c.authed(c.logsEvents))
	c.mux.HandleFunc("GET /console/environments", c.authed(c.envsPage))
}
