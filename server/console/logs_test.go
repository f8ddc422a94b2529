package console_test

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestLogsFilters: the logs page filters as silo logs does (function,
// request ID, since and until, the times in silo logs' forms), each a
// query parameter; every filter that keeps a line has a twin that drops
// it; a filter that matches nothing says so; the lines' HTML is shown as
// text.
func TestLogsFilters(t *testing.T) {
	f := newFixture(t, 0)
	acme := f.sp.Tenant(t, "acme")
	before := time.Now().UTC().Add(-time.Second) // log lines carry the wall clock
	rejected := acme.POST(t, "/findings", `{"severity":"<script>alert(1)</script>","app":"x"}`)
	listed := acme.GET(t, "/findings")
	if rejected.Status != 400 || listed.Status != 200 || rejected.RequestID == "" || listed.RequestID == "" {
		t.Fatalf("requests to log: %s (%s), %s (%s)", rejected, rejected.RequestID, listed, listed.RequestID)
	}
	after := time.Now().UTC().Add(time.Second)
	f.sp.Logs(t, "acme") // written before the pages read them
	b := f.browser(t)
	b.signIn()

	const (
		rejectedLine = "rejected finding"
		listedLine   = "listed findings"
		none         = "No log line of acme matches these filters."
	)
	rfc := func(t time.Time) string { return t.Format(time.RFC3339Nano) }
	for _, tc := range []struct {
		name  string
		query url.Values
		want  []string // in the page
		not   []string // not in it
	}{
		{"no filter", nil, []string{rejectedLine, listedLine, rejected.RequestID, listed.RequestID, "4 lines, oldest first"}, []string{none}},
		{"request matches", url.Values{"request": {rejected.RequestID}}, []string{rejectedLine, "2 matching lines"}, []string{listedLine, listed.RequestID}},
		{"request twin", url.Values{"request": {listed.RequestID}}, []string{listedLine}, []string{rejectedLine, rejected.RequestID}},
		{"request matches none", url.Values{"request": {"NOSUCHREQUEST"}}, []string{none}, []string{rejectedLine, listedLine}},
		{"function matches", url.Values{"function": {"ingest"}}, []string{rejectedLine}, []string{listedLine}},
		{"function twin", url.Values{"function": {"list"}}, []string{listedLine}, []string{rejectedLine}},
		{"function matches none", url.Values{"function": {"nosuch"}}, []string{none}, []string{rejectedLine, listedLine}},
		{"since before", url.Values{"since": {rfc(before)}}, []string{rejectedLine}, []string{none}},
		{"since after", url.Values{"since": {rfc(after)}}, []string{none}, []string{rejectedLine, listedLine}},
		{"since how far back", url.Values{"since": {"10m"}}, []string{rejectedLine}, []string{none}},
		{"since a date", url.Values{"since": {"2000-01-01"}}, []string{rejectedLine, listedLine}, []string{none}},
		{"until after", url.Values{"until": {rfc(after)}}, []string{rejectedLine}, []string{none}},
		{"until before", url.Values{"until": {rfc(before)}}, nil, []string{rejectedLine}},
		{"until a date", url.Values{"until": {"2000-01-01"}}, []string{none}, []string{rejectedLine, listedLine}},
		{"all together", url.Values{"function": {"ingest"}, "request": {rejected.RequestID}, "since": {rfc(before)}, "until": {rfc(after)}}, []string{rejectedLine, "1 matching line,"}, []string{listedLine, none}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pg := b.get("/console/tenants/acme/logs?" + tc.query.Encode())
			if pg.status != http.StatusOK {
				t.Fatalf("got %d, want 200:\n%s", pg.status, pg.body)
			}
			for _, w := range tc.want {
				if !strings.Contains(pg.body, w) {
					t.Errorf("the page lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(pg.body, n) {
					t.Errorf("the page shows %q", n)
				}
			}
			for k := range tc.query { // the form shows what was asked
				if !strings.Contains(pg.body, `name="`+k+`" value="`+tc.query.Get(k)+`"`) {
					t.Errorf("the form does not keep %s=%s", k, tc.query.Get(k))
				}
			}
			if t.Failed() {
				t.Logf("page:\n%s", pg.body)
			}
		})
	}

	// A log line is the tenant's text: its HTML is shown, escaped, as is a
	// filter's.
	pg := b.get("/console/tenants/acme/logs?function=" + url.QueryEscape(`"><script>alert(2)</script>`))
	if strings.Contains(pg.body, "<script>alert(") {
		t.Errorf("a log line or the filter went into the page as HTML:\n%s", pg.body)
	}
	if !strings.Contains(pg.body, `value="&#34;&gt;&lt;script&gt;alert(2)&lt;/script&gt;"`) {
		t.Errorf("the filter is not shown back as text:\n%s", pg.body)
	}
	pg = b.get("/console/tenants/acme/logs")
	if !strings.Contains(pg.body, "&lt;script&gt;alert(1)&lt;/script&gt;") || strings.Contains(pg.body, "<script>alert(") {
		t.Errorf("the log line's HTML is not shown as text:\n%s", pg.body)
	}
	// A request ID links to that request's lines.
	if !strings.Contains(pg.body, `href="/console/tenants/acme/logs?request=`+rejected.RequestID+`"`) {
		t.Errorf("the request ID does not link to its lines")
	}

	// A filtered page streams only lines that match; a page ending at a
	// time streams none.
	live := regexpMust(`data-live="([^"]*)"`)
	if m := live.FindStringSubmatch(b.get("/console/tenants/acme/logs?function=list").body); m == nil || !strings.Contains(m[1], "function=list") {
		t.Errorf("the filtered page's event stream: %q, want it filtered by function=list", m)
	}
	if m := live.FindStringSubmatch(b.get("/console/tenants/acme/logs?until=" + rfc(after)).body); m != nil {
		t.Errorf("a page ending at a time streams %q; want no stream", m[1])
	}
}

// TestLogsFilterStream: the event stream of a page filtered by function
// sends that function's new lines and not another's.
func TestLogsFilterStream(t *testing.T) {
	f := newFixture(t, 0)
	acme := f.sp.Tenant(t, "acme")
	b := f.browser(t)
	b.signIn()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	since := time.Now().UTC().Format(time.RFC3339Nano)
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, f.srv.URL+"/console/tenants/acme/logs/events?function=list&since="+url.QueryEscape(since), nil)
	resp, err := b.hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	acme.POST(t, "/findings", `{"severity":"bogus","app":"x"}`) // ingest: not sent
	acme.GET(t, "/findings")                                    // list: sent
	sc := bufio.NewScanner(resp.Body)
	var got strings.Builder
	for sc.Scan() {
		got.WriteString(sc.Text() + "\n")
		if strings.Contains(sc.Text(), "listed findings") {
			break
		}
	}
	if s := got.String(); !strings.Contains(s, "listed findings") || strings.Contains(s, "rejected finding") {
		t.Errorf("the stream filtered by function=list: want list's line alone:\n%s", s)
	}
}

// TestLogsBadFilter: a time the console cannot read, or a range that is
// empty, is refused with one message saying how to write it, the form
// keeping what was typed, and no lines; the well-formed twin is served.
func TestLogsBadFilter(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme")
	b := f.browser(t)
	b.signIn()
	for _, tc := range []struct {
		query  string
		status int
		want   string
	}{
		{"since=yesterday", 400, `since &#34;yesterday&#34; is not a window; write how far back (30d, 12h, 10m), a date (2026-03-01) or an RFC 3339 time`},
		{"until=soon", 400, `until &#34;soon&#34; is not a window; write how far back`},
		{"since=-10m", 400, `since &#34;-10m&#34; is negative; write how far back without a sign (10m)`},
		{"since=1000000d", 400, `reaches back before the year 1`},
		{"since=2026-03-02&until=2026-03-01", 400, `since 2026-03-02 is not before until 2026-03-01; no line could match`},
		{"since=%3Cb%3Ex", 400, `since &#34;&lt;b&gt;x&#34; is not a window`},
		{"since=10m", 200, `id="log-count"`},
		{"since=2026-03-01&until=2026-03-02", 200, `id="log-count"`},
	} {
		pg := b.get("/console/tenants/acme/logs?" + tc.query)
		if pg.status != tc.status || !strings.Contains(pg.body, tc.want) {
			t.Errorf("GET ?%s: got %d, want %d with %q:\n%s", tc.query, pg.status, tc.status, tc.want, pg.body)
			continue
		}
		bad := tc.status == 400
		if got := strings.Count(pg.body, `id="filter-error"`); got != map[bool]int{true: 1, false: 0}[bad] {
			t.Errorf("GET ?%s: %d filter errors shown", tc.query, got)
		}
		if bad && (strings.Contains(pg.body, `id="log-rows"`) || strings.Contains(pg.body, "data-live") || strings.Contains(pg.body, "goroutine") || strings.Contains(pg.body, "control.")) {
			t.Errorf("GET ?%s: the refused page shows lines, streams, or internal text:\n%s", tc.query, pg.body)
		}
		if csp := pg.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") {
			t.Errorf("GET ?%s: CSP %q", tc.query, csp)
		}
	}
}
