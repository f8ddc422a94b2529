package console

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// Live pages: the releases page and a tenant's logs page hold an
// EventSource (static/console.js) on an event stream that sends HTML
// fragments rendered by the same templates as the page, so the page
// updates without a reload. Without JavaScript the pages are complete as
// served (the releases page then refreshes itself while a rollout runs).

// livePoll is how often a stream looks for changes.
const livePoll = time.Second

// liveMax ends a stream after a while; the browser's EventSource
// reconnects by itself, and a stream outliving its session ends.
const liveMax = 10 * time.Minute

// stream starts a server-sent event stream, or returns nil after writing
// an error when the connection cannot stream.
func stream(w http.ResponseWriter) http.Flusher {
	fl, ok := w.(http.Flusher)
	if !ok {
		http.Error(w, "this connection cannot stream events; reload the page to see changes", http.StatusNotImplemented)
		return nil
	}
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, "retry: 2000\n\n")
	fl.Flush()
	return fl
}

// event writes one event whose data is an HTML fragment (one data line
// per line of it). id, if not empty, is what the browser sends back as
// Last-Event-ID when it reconnects.
func event(w http.ResponseWriter, name, id string, html []byte) {
	if id != "" {
		fmt.Fprintf(w, "id: %s\n", id)
	}
	fmt.Fprintf(w, "event: %s\n", name)
	for _, line := range bytes.Split(bytes.TrimRight(html, "\n"), []byte("\n")) {
		fmt.Fprintf(w, "data: %s\n", line)
	}
	fmt.Fprint(w, "\n")
}

// fragment renders one named template of a page.
func (c *Console) fragment(page, name string, data any) ([]byte, error) {
	var buf bytes.Buffer
	err := c.pages[page].ExecuteTemplate(&buf, name, data)
	return buf.Bytes(), err
}

// live runs fn every livePoll until the client leaves, the session ends
// or liveMax passes.
func (c *Console) live(w http.ResponseWriter, r *http.Request, fn func() error) {
	fl := stream(w)
	if fl == nil {
		return
	}
	tick := time.NewTicker(livePoll)
	defer tick.Stop()
	end := time.After(liveMax)
	for {
		if _, s := c.session(r); s == nil {
			return
		}
		if err := fn(); err != nil {
			c.cfg.Logger.Debug("console event stream ends", "path", r.URL.Path, "err", err)
			return
		}
		fl.Flush()
		select {
		case <-r.Context().Done():
			return
		case <-end:
			return
		case <-tick.C:
		}
	}
}

// rolloutsEvents streams the releases page's rollouts whenever they change.
func (c *Console) rolloutsEvents(w http.ResponseWriter, r *http.Request, s *session) {
	var last []byte
	c.live(w, r, func() error {
		ros, err := c.api.Rollouts(r.Context())
		if err != nil {
			return err
		}
		b, err := c.fragment("releases", "rollouts", rolloutsView{Rollouts: ros, CSRF: s.csrf})
		if err != nil {
			return err
		}
		if !bytes.Equal(b, last) {
			event(w, "rollouts", "", b)
			last = b
		}
		return nil
	})
}

// rolloutsView is what the rollouts fragment receives.
type rolloutsView struct {
	Rollouts any
	CSRF     string
}

// logsShown is how many lines the logs page loads: the newest that match.
const logsShown = 200

// LogsPage is the data of a tenant's logs page.
type LogsPage struct {
	Account silo.AccountID
	Filter  LogFilter // as typed, shown again in the form
	Entries []logs.Entry
	Limit   int    // the most lines loaded
	Bad     string // why the filter was refused; no lines are loaded then
	Err     string
	Since   string // RFC 3339 time of the newest entry shown
}

// Live reports whether new lines are streamed onto the page: not when
// the filter was refused or ends at a time (as silo logs -f does not go
// with --until).
func (p LogsPage) Live() bool { return p.Bad == "" && p.Err == "" && p.Filter.Until == "" }

func (p LogsPage) live() string {
	if !p.Live() {
		return ""
	}
	v := p.Filter.stream()
	v.Set("since", p.Since)
	return "/console/tenants/" + url.PathEscape(string(p.Account)) + "/logs/events?" + v.Encode()
}

// LogFilter is the logs page's filter form, as typed: the filters of
// silo logs (--function, --request, --since, --until), as query
// parameters so that a filtered view is a link.
type LogFilter struct {
	Function, Request, Since, Until string
}

func logFilter(v url.Values) LogFilter {
	get := func(k string) string { return strings.TrimSpace(v.Get(k)) }
	return LogFilter{Function: get("function"), Request: get("request"), Since: get("since"), Until: get("until")}
}

// Any reports whether any filter is set.
func (f LogFilter) Any() bool { return f != LogFilter{} }

// Query is the log query f asks for, its times read as silo logs reads
// --since and --until (control.Since, relative to now). The error is the
// message to show: what is wrong and how to write it.
func (f LogFilter) Query(now time.Time) (logs.Query, error) {
	q := logs.Query{Function: f.Function, RequestID: f.Request}
	var err error
	if f.Since != "" {
		if q.Since, err = control.When("since", f.Since, now); err != nil {
			return q, errors.New(silo.UserMessage(err))
		}
	}
	if f.Until != "" {
		if q.Until, err = control.When("until", f.Until, now); err != nil {
			return q, errors.New(silo.UserMessage(err))
		}
		if !q.Since.IsZero() && !q.Since.Before(q.Until) {
			return q, fmt.Errorf("since %s is not before until %s; no line could match", f.Since, f.Until)
		}
	}
	return q, nil
}

// stream is the part of f the event stream applies to new lines.
func (f LogFilter) stream() url.Values {
	v := url.Values{}
	if f.Function != "" {
		v.Set("function", f.Function)
	}
	if f.Request != "" {
		v.Set("request", f.Request)
	}
	return v
}

// URL is the logs page of acct with f, for a link that shows the same lines.
func (f LogFilter) URL(acct silo.AccountID) string {
	v := f.stream()
	if f.Since != "" {
		v.Set("since", f.Since)
	}
	if f.Until != "" {
		v.Set("until", f.Until)
	}
	u := "/console/tenants/" + url.PathEscape(string(acct)) + "/logs"
	if len(v) > 0 {
		u += "?" + v.Encode()
	}
	return u
}

func (c *Console) logsPage(w http.ResponseWriter, r *http.Request, s *session) {
	id := silo.AccountID(r.PathValue("id"))
	p := LogsPage{Account: id, Filter: logFilter(r.URL.Query()), Limit: logsShown}
	now := time.Now() // log entries carry the wall clock
	q, err := p.Filter.Query(now)
	if err != nil {
		p.Bad = err.Error()
		c.render(w, http.StatusBadRequest, "logs", s, p)
		return
	}
	q.Last = logsShown
	es, err := c.api.Logs(r.Context(), id, q)
	if err != nil {
		p.Err = silo.UserMessage(err)
	}
	p.Entries = es
	since := now
	if len(es) > 0 {
		since = time.Time{}
		for _, e := range es {
			if e.Time.After(since) {
				since = e.Time
			}
		}
		since = since.Add(time.Nanosecond) // the next one on
	}
	p.Since = since.UTC().Format(time.RFC3339Nano)
	c.render(w, http.StatusOK, "logs", s, p)
}

// logsEvents streams a tenant's new log entries that match the page's
// function and request filters, each as a table row.
func (c *Console) logsEvents(w http.ResponseWriter, r *http.Request, s *session) {
	id := silo.AccountID(r.PathValue("id"))
	f := logFilter(r.URL.Query())
	since, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("since"))
	if err != nil {
		since = time.Now()
	}
	// A reconnecting browser says which line it had last: go on after it,
	// so that no line shows twice.
	if last, err := time.Parse(time.RFC3339Nano, r.Header.Get("Last-Event-ID")); err == nil {
		since = last.Add(time.Nanosecond)
	}
	seen := map[string]bool{} // entries at exactly since, already sent
	c.live(w, r, func() error {
		es, err := c.api.Logs(r.Context(), id, logs.Query{Function: f.Function, RequestID: f.Request, Since: since})
		if err != nil {
			return err
		}
		sort.SliceStable(es, func(i, j int) bool { return es[i].Time.Before(es[j].Time) })
		var fresh []logs.Entry
		for _, e := range es {
			k := e.Time.Format(time.RFC3339Nano) + "\x00" + e.RequestID + "\x00" + e.Msg
			if e.Time.Before(since) || !e.Time.After(since) && seen[k] {
				continue
			}
			if e.Time.After(since) {
				since, seen = e.Time, map[string]bool{}
			}
			seen[k] = true
			fresh = append(fresh, e)
		}
		if len(fresh) == 0 {
			fmt.Fprint(w, ": idle\n\n") // keeps proxies from closing the stream
			return nil
		}
		b, err := c.fragment("logs", "logbody", fresh)
		if err != nil {
			return err
		}
		event(w, "log", fresh[len(fresh)-1].Time.UTC().Format(time.RFC3339Nano), b)
		return nil
	})
}

// EnvsPage is the data of the environments and developers page.
type EnvsPage struct {
	Envs, Devs []silo.Account
	Now        time.Time
}

func (c *Console) envsPage(w http.ResponseWriter, r *http.Request, s *session) {
	var p EnvsPage
	p.Now = c.cfg.Now()
	for _, k := range []silo.Kind{silo.KindEnvironment, silo.KindDeveloper} {
		as, err := c.api.Accounts(r.Context(), store.Filter{Kind: k, Limit: 500})
		if err != nil {
			c.fail(w, "envs", s, err)
			return
		}
		live := as[:0]
		for _, a := range as {
			if a.State != silo.StateDeleted {
				live = append(live, a)
			}
		}
		sort.SliceStable(live, func(i, j int) bool { return expiresBefore(live[i], live[j]) })
		if k == silo.KindEnvironment {
			p.Envs = live
		} else {
			p.Devs = live
		}
	}
	c.render(w, http.StatusOK, "envs", s, p)
}

// expiresBefore orders accounts by expiry, those without one last.
func expiresBefore(a, b silo.Account) bool {
	switch {
	case a.Expires == nil:
		return false
	case b.Expires == nil:
		return true
	}
	return a.Expires.Before(*b.Expires)
}

// left formats the time from now until t as the countdown's first value
// (the script then counts it down each second).
func left(now, t time.Time) string {
	d := t.Sub(now).Round(time.Second)
	if d <= 0 {
		return "expired; being torn down"
	}
	h, m, sec := int(d/time.Hour), int(d%time.Hour/time.Minute), int(d%time.Minute/time.Second)
	var b strings.Builder
	if h >= 24 {
		fmt.Fprintf(&b, "%dd ", h/24)
		h %= 24
	}
	fmt.Fprintf(&b, "%dh %02dm %02ds left", h, m, sec)
	return b.String()
}

// gateLine is one of a ring's gates as the releases page shows it: its
// threshold and, once the ring was judged, the measured value.
type gateLine struct {
	Text   string
	Failed bool
}

// gates describes a ring's gates: threshold, measured value (after the
// bake) and the verdict.
func gates(r rollout.RingStatus) []gateLine {
	var out []gateLine
	g, v := r.Gates, r.Verdict
	judged := func(name string) bool {
		if v == nil {
			return false
		}
		for _, j := range v.Judged {
			if j == name {
				return true
			}
		}
		return false
	}
	if g.MinRequests > 0 {
		l := gateLine{Text: fmt.Sprintf("requests ≥ %d", g.MinRequests)}
		if judged("min_requests") {
			l.Text = fmt.Sprintf("requests %d (≥ %d)", v.Requests, g.MinRequests)
			l.Failed = v.Requests < uint64(g.MinRequests)
		}
		out = append(out, l)
	}
	if g.MaxErrorRate > 0 {
		l := gateLine{Text: fmt.Sprintf("error rate ≤ %.2f%%", g.MaxErrorRate*100)}
		if judged("max_error_rate") {
			l.Text = fmt.Sprintf("error rate %.2f%% (≤ %.2f%%; before %.2f%%)", v.ErrorRate*100, g.MaxErrorRate*100, v.PrevErrorRate*100)
			l.Failed = v.ErrorRate > g.MaxErrorRate
		}
		out = append(out, l)
	}
	if g.MaxP99Increase > 0 {
		l := gateLine{Text: fmt.Sprintf("p99 increase ≤ %.0f%%", g.MaxP99Increase*100)}
		if judged("max_p99_increase") {
			l.Text = fmt.Sprintf("p99 %s (before %s; ≤ +%.0f%%)", v.P99.Round(time.Microsecond), v.PrevP99.Round(time.Microsecond), g.MaxP99Increase*100)
			l.Failed = v.Result == rollout.Fail && v.PrevP99 > 0 && float64(v.P99) > float64(v.PrevP99)*(1+g.MaxP99Increase)
		}
		out = append(out, l)
	}
	if g.Smoke != "" {
		out = append(out, gateLine{Text: "smoke test: " + g.Smoke})
	}
	if r.Bake > 0 {
		l := gateLine{Text: "bake " + r.Bake.String()}
		if !r.BakeUntil.IsZero() && r.Phase == rollout.PhaseBaking {
			l.Text += ", until " + r.BakeUntil.UTC().Format("15:04:05 UTC")
		}
		out = append(out, l)
	}
	if v != nil && v.Result != "" {
		out = append(out, gateLine{Text: "verdict: " + v.Result + reason(v.Reason), Failed: v.Result == rollout.Fail})
	}
	return out
}

func reason(s string) string {
	if s == "" {
		return ""
	}
	return " (" + s + ")"
}
