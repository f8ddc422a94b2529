package gateway

import (
	"context"
	"errors"
	"mime"
	"net/http"
	"strings"

	silo "github.com/silo-run/silo"
)

// ReportPath is where a tenant fetches its own signed isolation report:
// GET https://<tenant>.<base domain>/.well-known/silo/isolation-report with
// one of its API keys. The response is the report as JSON, or as a
// self-contained HTML page when the request prefers text/html (a browser)
// or asks for ?format=html.
const ReportPath = "/.well-known/silo/isolation-report"

// ReportSource gives an account's signed isolation report in format "json"
// or "html". It is asked only after the request's key was checked against
// the account, so it never has to decide who may read what.
type ReportSource interface {
	Report(ctx context.Context, acct silo.AccountID, format string) ([]byte, error)
}

// serveReport answers GET ReportPath for an authenticated account. It
// reports whether the request was for it (otherwise the request goes on to
// the account's routes).
func (g *Gateway) serveReport(w http.ResponseWriter, r *http.Request, acct silo.AccountID, path string) bool {
	if g.cfg.Reports == nil || path != ReportPath {
		return false
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		g.fail(w, silo.CodeNotAllowed, "the isolation report is read with GET")
		return true
	}
	format := reportFormat(r)
	b, err := g.cfg.Reports.Report(r.Context(), acct, format)
	if err != nil {
		code := silo.ErrorCode(err)
		msg := silo.UserMessage(err)
		var se *silo.Error
		if code == silo.CodeInternal || !errors.As(err, &se) {
			g.log.ErrorContext(r.Context(), "gateway: isolation report", "account", acct, "error", err)
			code, msg = silo.CodeUnavailable, "the isolation report cannot be produced right now; try again later"
		}
		g.fail(w, code, msg)
		return true
	}
	h := w.Header()
	if format == "html" {
		h.Set("Content-Type", "text/html; charset=utf-8")
		// The report page is self-contained; nothing else may load in it.
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'")
	} else {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Cache-Control", "no-store")
	h.Set("Vary", "Accept")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		_, _ = w.Write(b)
	}
	return true
}

// reportFormat is "html" when the request asks for it by ?format=html or
// lists text/html before application/json in Accept, else "json".
func reportFormat(r *http.Request) string {
	switch r.URL.Query().Get("format") {
	case "html":
		return "html"
	case "json":
		return "json"
	}
	for _, part := range strings.Split(r.Header.Get("Accept"), ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch mt {
		case "text/html", "application/xhtml+xml":
			return "html"
		case "application/json":
			return "json"
		}
	}
	return "json"
}
