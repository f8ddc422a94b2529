package console

import (
	"bytes"
	"context"
	"fmt"
	"html/template"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/internal/fanout"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/usage"
	"github.com/silo-run/silo/usage/storage"
)

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04 UTC")
	},
	"short": func(s string) string {
		if len(s) > 12 {
			return s[:12]
		}
		return s
	},
	"params": func(m map[string]string) []string {
		out := make([]string, 0, len(m))
		for k, v := range m {
			out = append(out, k+"="+v)
		}
		sort.Strings(out)
		return out
	},
	"usd": func(f float64) string { return fmt.Sprintf("$%.4f", f) },
	"bytes": func(n any) string {
		switch v := n.(type) {
		case int64:
			return storage.Human(v)
		case uint64:
			return storage.Human(int64(v))
		}
		return fmt.Sprint(n)
	},
	"logtime":     func(t time.Time) string { return t.UTC().Format("01-02 15:04:05") },
	"rfc3339":     func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"left":        left,
	"secondsLeft": func(now, t time.Time) int64 { return int64(t.Sub(now) / time.Second) },
	"gates":       gates,
	"frag":        func(ros []rollout.Rollout, csrf string) rolloutsView { return rolloutsView{Rollouts: ros, CSRF: csrf} },
	"usd2":        func(a, b float64) string { return fmt.Sprintf("$%.2f", a+b) },
	"active":      func(s rollout.State) bool { return s.Active() },
}

func parsePages() (map[string]*template.Template, error) {
	out := map[string]*template.Template{}
	for _, name := range []string{"signin", "fleet", "tenant", "releases", "confirm", "isolation", "logs", "envs"} {
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/logrows.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("parse console template %s: %w", name, err)
		}
		out[name] = t
	}
	return out, nil
}

// view is what every page's template receives.
type view struct {
	Page    string
	CSRF    string
	Flash   *flash
	Keys    []newKey // new API keys, shown until dismissed
	Refresh int      // seconds; 0: no refresh
	Live    string   // the page's event stream, for console.js; "" for none
	Data    any
}

// render writes a page. s may be nil (the sign-in page).
func (c *Console) render(w http.ResponseWriter, status int, page string, s *session, data any) {
	v := view{Page: page, Data: data}
	if s != nil {
		v.CSRF = s.csrf
		v.Flash = c.takeFlash(s)
		v.Keys = c.shownKeys(s)
	}
	if m, ok := data.(interface{ refresh() int }); ok {
		v.Refresh = m.refresh()
	}
	if m, ok := data.(interface{ live() string }); ok {
		v.Live = m.live()
	}
	var buf bytes.Buffer
	if err := c.pages[page].Execute(&buf, v); err != nil {
		c.cfg.Logger.Error("render console page", "page", page, "err", err)
		http.Error(w, "the page could not be rendered", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail renders an error the API returned on the page's own layout.
func (c *Console) fail(w http.ResponseWriter, page string, s *session, err error) {
	code := silo.ErrorCode(err)
	if code == silo.CodeInternal {
		c.cfg.Logger.Error("console page failed", "page", page, "err", err)
	}
	c.setFlash(s, flash{Err: silo.UserMessage(err)})
	c.render(w, code.HTTPStatus(), page, s, nil)
}

// back redirects to where a form came from, with a message for that page.
func (c *Console) back(w http.ResponseWriter, r *http.Request, s *session, to string, f flash) {
	c.setFlash(s, f)
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// TenantPage is the data of the tenant page.
type TenantPage struct {
	Account   silo.Account
	Resources []resourceRow
	Extra     []string // held by the provider, not recorded (drift)
	Keys      []store.APIKey
	Secrets   []string // declared: the names the set form offers
	// SecretStates says which secrets hold a value (never the value);
	// nil when the provider could not tell (the page then lists Secrets).
	SecretStates []control.SecretState
	Problems     []string
	// Deleted is what is true of a deleted account (control.DeletedNotice):
	// whether the provider still holds it, as far as the page can tell.
	Deleted string
	Usage   *accountUsage
	X       TenantExtras
}

// resourceRow is one recorded resource and its state against the
// provider: "in sync", or the drift kind ("missing", "changed").
type resourceRow struct {
	Type, Name, Hash, State string
}

func (c *Console) tenant(w http.ResponseWriter, r *http.Request, s *session) {
	id := silo.AccountID(r.PathValue("id"))
	d, err := c.api.Show(r.Context(), id)
	if err != nil {
		c.fail(w, "tenant", s, err)
		return
	}
	p := TenantPage{Account: d.Account, Keys: d.Keys}
	drift := map[string]string{}
	for _, di := range d.Drift {
		drift[di.Key] = di.Kind
		if di.Kind == "extra" {
			p.Extra = append(p.Extra, di.Key)
		}
	}
	for _, res := range d.Resources {
		st := "in sync"
		if k, ok := drift[res.Key()]; ok {
			st = k
		}
		p.Resources = append(p.Resources, resourceRow{Type: string(res.Type), Name: res.Name, Hash: res.Hash, State: st})
		if res.Type == silo.TypeSecret {
			p.Secrets = append(p.Secrets, res.Name)
		}
	}
	for _, pr := range d.Problems {
		p.Problems = append(p.Problems, fmt.Sprint(pr))
	}
	if d.Account.State == silo.StateDeleted {
		p.Deleted = control.DeletedNotice(d.Account, d.Ref != nil)
	} else if ss, err := c.api.Secrets(r.Context(), id); err == nil {
		p.SecretStates = ss
	}
	if d.Account.Kind != silo.KindProduction { // not billed to a tenant
		p.Usage = c.usage(r.Context(), d.Account)
	}
	p.X = c.tenantExtras(r.Context(), d.Account)
	c.render(w, http.StatusOK, "tenant", s, p)
}

// accountUsage is what the console shows of an account's metered usage:
// requests and errors of yesterday and today (usage reports count whole
// UTC days) and the estimated cost of this calendar month so far.
type accountUsage struct {
	Requests, Errors int64
	Cost             float64 // usage this month, US dollars
	Floor            float64 // the idle account's floor this month
}

// usage reads one account's usage with one by-day report, or returns nil
// when it cannot be read (the page then leaves it out).
func (c *Console) usage(ctx context.Context, a silo.Account) *accountUsage {
	now := c.cfg.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	yesterday, month := today.AddDate(0, 0, -1), time.Date(now.Year(), now.Month(), 1, 0, 0, 0, 0, time.UTC)
	since := month
	if yesterday.Before(month) {
		since = yesterday
	}
	rep, err := c.api.Usage(ctx, usage.Query{Account: a.ID, Since: since, Until: now, By: usage.ByDay})
	if err != nil {
		return nil
	}
	var u accountUsage
	for _, l := range rep.Lines {
		if !l.Created.Equal(a.Created) {
			continue // an earlier account's with the ID (see TenantExtras.Earlier)
		}
		d, err := time.Parse(time.DateOnly, l.Day)
		if err != nil {
			return nil
		}
		if !d.Before(yesterday) {
			u.Requests += l.Requests
			u.Errors += l.Errors
		}
		if !d.Before(month) {
			u.Cost += l.Cost
			u.Floor += l.Floor
		}
	}
	return &u
}

// usageOf reads the usage of each account but production (not billed to
// a tenant), four at a time.
func (c *Console) usageOf(ctx context.Context, as []silo.Account) map[silo.AccountID]*accountUsage {
	got := make([]*accountUsage, len(as))
	g := fanout.New(4)
	for i, a := range as {
		if a.Kind == silo.KindProduction {
			continue
		}
		if g.Go(ctx, func() { got[i] = c.usage(ctx, a) }) != nil {
			break // the request is gone
		}
	}
	g.Wait()
	out := make(map[silo.AccountID]*accountUsage, len(as))
	for i, a := range as {
		out[a.ID] = got[i]
	}
	return out
}

// createTenant onboards a tenant from the fleet page's form, as silo
// tenant create does, and shows its first API key once on its page.
func (c *Console) createTenant(w http.ResponseWriter, r *http.Request, s *session) {
	id := strings.ToLower(strings.TrimSpace(r.PostFormValue("id")))
	params, err := parseParams(r.PostFormValue("params"))
	if err != nil {
		c.back(w, r, s, "/console/", flash{Err: silo.UserMessage(err)})
		return
	}
	if len(params) == 0 {
		params = nil
	}
	cr, err := c.api.CreateAccount(r.Context(), control.CreateRequest{ID: id, Kind: silo.KindTenant, Name: strings.TrimSpace(r.PostFormValue("name")), Params: params, WithKey: true})
	if err != nil {
		c.back(w, r, s, "/console/", flash{Err: silo.UserMessage(err)})
		return
	}
	c.back(w, r, s, "/console/tenants/"+url.PathEscape(string(cr.Account.ID)), flash{
		OK:    "Tenant " + string(cr.Account.ID) + " is onboarded on the current release. Copy its first API key now: it is not shown again once you dismiss it.",
		Key:   cr.Key,
		KeyOf: "first API key of " + string(cr.Account.ID),
	})
}

// tenantAction serves the tenant page's forms: keys, secrets (set and
// delete), suspend, resume, delete.
func (c *Console) tenantAction(w http.ResponseWriter, r *http.Request, s *session) {
	id := silo.AccountID(r.PathValue("id"))
	page := "/console/tenants/" + url.PathEscape(string(id))
	ctx := r.Context()
	var err error
	var f flash
	switch r.PathValue("action") {
	case "keys":
		name := strings.TrimSpace(r.PostFormValue("name"))
		if name == "" {
			name = "console"
		}
		var plain string
		plain, _, err = c.api.IssueKey(ctx, id, name)
		f = flash{OK: "API key " + name + " created. Copy it now: it is not shown again once you dismiss it.", Key: plain, KeyOf: "API key " + name + " of " + string(id)}
	case "secrets":
		name := strings.TrimSpace(r.PostFormValue("name"))
		err = c.api.SetSecret(ctx, id, name, []byte(r.PostFormValue("value")))
		f = flash{OK: "Secret " + name + " set."}
	case "secret-delete":
		name := r.PostFormValue("name")
		var deleted bool
		deleted, err = c.api.DeleteSecret(ctx, id, name)
		f = flash{OK: "Secret " + name + " deleted; the account's functions now read it as never set."}
		if !deleted {
			f = flash{OK: "Secret " + name + " was not set; nothing was deleted."}
		}
	case "params":
		var set map[string]string
		var d control.Detail
		if set, err = parseParams(r.PostFormValue("params")); err == nil {
			d, err = c.api.Show(ctx, id)
		}
		if err == nil {
			for k := range d.Account.Params { // a line removed removes the parameter
				if _, ok := set[k]; !ok {
					set[k] = ""
				}
			}
			_, err = c.api.UpdateParams(ctx, id, set, "")
		}
		f = flash{OK: "Parameters of " + string(id) + " updated; the account was planned and applied again."}
	case "suspend":
		_, err = c.api.Suspend(ctx, id)
		f = flash{OK: string(id) + " is suspended."}
	case "resume":
		_, err = c.api.Resume(ctx, id)
		f = flash{OK: string(id) + " is active again."}
	case "delete":
		if r.PostFormValue("confirm") != string(id) {
			c.back(w, r, s, page, flash{Err: "Nothing was deleted: type the account ID " + string(id) + " exactly to confirm."})
			return
		}
		// A tenant goes as silo tenant delete, a developer or environment
		// account as silo env delete (the API's tenant delete refuses them).
		var d control.Detail
		done := "the provider holds nothing of it."
		if d, err = c.api.Show(ctx, id); err == nil {
			if d.Account.Kind == silo.KindDeveloper || d.Account.Kind == silo.KindEnvironment {
				err = c.api.DeleteEnv(ctx, id)
			} else {
				del, derr := c.api.DeleteAccount(ctx, id)
				err, done = derr, del.String()+"."
			}
		}
		if err == nil {
			c.back(w, r, s, "/console/", flash{OK: string(id) + " is deleted: " + done})
			return
		}
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		f = flash{Err: silo.UserMessage(err)}
	}
	c.back(w, r, s, page, f)
}

// parseParams reads the parameter form: one key=value a line; blank lines
// are skipped.
func parseParams(text string) (map[string]string, error) {
	out := map[string]string{}
	for i, line := range strings.Split(strings.ReplaceAll(text, "\r\n", "\n"), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, silo.Errorf(silo.CodeInvalid, "line %d of the parameters is not key=value; nothing was changed", i+1)
		}
		out[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return out, nil
}

func (c *Console) revokeKey(w http.ResponseWriter, r *http.Request, s *session) {
	id := silo.AccountID(r.PathValue("id"))
	page := "/console/tenants/" + url.PathEscape(string(id))
	key := r.PathValue("key")
	if err := c.api.RevokeKey(r.Context(), id, key); err != nil {
		c.back(w, r, s, page, flash{Err: silo.UserMessage(err)})
		return
	}
	c.back(w, r, s, page, flash{OK: "API key " + key + " revoked."})
}

// report downloads an account's signed isolation report.
func (c *Console) report(w http.ResponseWriter, r *http.Request, s *session) {
	id := silo.AccountID(r.PathValue("id"))
	format := r.URL.Query().Get("format")
	if format != "json" {
		format = "html"
	}
	b, err := c.api.Report(r.Context(), id, format)
	if err != nil {
		c.back(w, r, s, "/console/tenants/"+url.PathEscape(string(id)), flash{Err: silo.UserMessage(err)})
		return
	}
	ctype := "text/html; charset=utf-8"
	if format == "json" {
		ctype = "application/json"
	}
	w.Header().Set("Content-Type", ctype)
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", "silo-report-"+string(id)+"."+format))
	w.Header().Set("Cache-Control", "no-store")
	w.Write(b)
}

// ReleasesPage is the data of the releases and rollouts page.
type ReleasesPage struct {
	Releases []releaseRow
	Rollouts []rollout.Rollout
	Running  bool
}

type releaseRow struct {
	ID      string
	Created time.Time
	Note    string
	Current bool
	Origin  store.Origin     // how it was stored; a dev build is offered no Roll out
	Failure *rollout.Failure // its latest rollout failed (of the rollouts the page lists)
}

func (p ReleasesPage) live() string { return "/console/releases/events" }

func (p ReleasesPage) refresh() int {
	if p.Running {
		return 5
	}
	return 0
}

func (c *Console) releases(w http.ResponseWriter, r *http.Request, s *session) {
	rels, err := c.api.Releases(r.Context(), 50, false)
	if err != nil {
		c.fail(w, "releases", s, err)
		return
	}
	ros, err := c.api.Rollouts(r.Context())
	if err != nil {
		c.fail(w, "releases", s, err)
		return
	}
	var p ReleasesPage
	cur := ""
	for _, x := range rels {
		if x.Current {
			cur = x.ID
		}
	}
	failures := rollout.FailuresOf(ros, cur)
	for _, x := range rels {
		row := releaseRow{ID: x.ID, Created: x.Created, Note: x.Note, Current: x.Current, Origin: x.Origin}
		if f, ok := failures[x.ID]; ok {
			row.Failure = &f
		}
		p.Releases = append(p.Releases, row)
	}
	p.Rollouts = ros
	for _, ro := range ros {
		p.Running = p.Running || ro.State == rollout.StateRunning
	}
	c.render(w, http.StatusOK, "releases", s, p)
}

func (c *Console) rolloutAction(w http.ResponseWriter, r *http.Request, s *session) {
	id, ctx := r.PathValue("rid"), r.Context()
	var err error
	var done string
	switch r.PathValue("op") {
	case "pause":
		_, err = c.api.Pause(ctx, id)
		done = "Rollout " + id + " is paused."
	case "resume":
		_, err = c.api.ResumeRollout(ctx, id)
		done = "Rollout " + id + " resumes."
	case "abort":
		_, err = c.api.Abort(ctx, id)
		done = "Rollout " + id + " is aborted; accounts stay where they are."
	case "rollback":
		c.rollback(w, r, s)
		return
	default:
		http.NotFound(w, r)
		return
	}
	if err != nil {
		c.back(w, r, s, "/console/releases", flash{Err: silo.UserMessage(err)})
		return
	}
	c.back(w, r, s, "/console/releases", flash{OK: done})
}

// IsolationPage is the data of the isolation page.
type IsolationPage struct {
	Verified    bool
	VerifyError string
	Status      string
	Accounts    int
	Principals  int
	Resources   int
	Edges       int
	Violations  int
	Findings    []string
	AuditIntact bool
	AuditError  string
	AuditCount  int
	Recent      []store.AuditEntry // newest first
	Probe       *report.Probe      // the last live probe run; nil before the first
	ProbeErr    string
}

func (c *Console) isolation(w http.ResponseWriter, r *http.Request, s *session) {
	var p IsolationPage
	res, err := c.api.Verify(r.Context())
	if err != nil {
		p.VerifyError = silo.UserMessage(err)
	} else {
		p.Verified = res.Proved()
		p.Status = string(res.Status)
		p.Accounts, p.Principals, p.Resources, p.Edges, p.Violations = res.Accounts, res.Principals, res.Resources, res.Edges, res.Violations
		for _, ce := range res.Counterexamples {
			p.Findings = append(p.Findings, fmt.Sprint(ce))
		}
		p.Findings = append(p.Findings, res.Incomplete...)
	}
	if pr, err := c.api.LastProbe(r.Context()); err == nil {
		p.Probe = &pr
	} else if silo.ErrorCode(err) != silo.CodeNotFound {
		p.ProbeErr = silo.UserMessage(err)
	}
	n, err := c.api.VerifyAudit(r.Context())
	p.AuditCount, p.AuditIntact = n, err == nil
	if err != nil {
		p.AuditError = silo.UserMessage(err)
	}
	after := int64(0)
	if n > 20 {
		after = int64(n - 20)
	}
	if es, err := c.api.AuditLog(r.Context(), after, 20, ""); err == nil {
		for i := len(es) - 1; i >= 0; i-- {
			p.Recent = append(p.Recent, es[i])
		}
	}
	c.render(w, http.StatusOK, "isolation", s, p)
}
