package console_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/localtest"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/silotest"
)

// The page of a deleted account shows it read-only, with its state, and
// offers none of the actions that need a live account; posting one anyway
// changes nothing (saving parameters is refused with the CLI's words, and
// no audit entry is written). The twin: a live account's page offers every
// action, and saving its parameters applies them.
func TestDeletedAccountPageIsReadOnly(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme", silotest.Param("plan", "pro"))
	f.sp.Env(t, "gone1", platform.EnvTest, time.Hour, silotest.Param("plan", "pro"))
	if err := f.p.DeleteAccount(context.Background(), "gone1"); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn()

	actions := []string{
		"Download signed isolation report", "Download (HTML)", "/report",
		"Edit parameters", "Save parameters", "/params",
		"Create API key", "/keys", "Set secret", "/secrets",
		"Suspend", "/suspend", "Delete account", "/delete",
	}
	live := b.get("/console/tenants/acme")
	for _, want := range actions {
		if !strings.Contains(live.body, want) {
			t.Errorf("the live account's page lacks %q", want)
		}
	}
	gone := b.get("/console/tenants/gone1")
	if gone.status != http.StatusOK {
		t.Fatalf("GET the deleted account's page: %d", gone.status)
	}
	for _, bad := range actions {
		if strings.Contains(gone.body, bad) {
			t.Errorf("the deleted account's page offers %q, which cannot work there", bad)
		}
	}
	for _, want := range []string{`<span class="state s-deleted">deleted</span>`, `<div class="flash" id="deleted">account gone1 was deleted; silo env create gone1 makes a new, empty environment under that ID. Nothing on this page can change it`, `id="no-report"`} {
		if !strings.Contains(gone.body, want) {
			t.Errorf("the deleted account's page lacks %q", want)
		}
	}

	// A form posted anyway (an old tab) changes nothing.
	tok := b.csrf("/console/tenants/acme")
	before := f.audited(t, "gone1")
	pg := b.post("/console/tenants/gone1/params", url.Values{"csrf": {tok}, "params": {"plan=free\n"}})
	if pg.status != http.StatusSeeOther {
		t.Fatalf("save the deleted account's parameters: %d", pg.status)
	}
	if after := b.get(pg.location).body; !strings.Contains(after, "account gone1 was deleted; silo env create gone1 makes a new, empty environment under that ID") {
		t.Errorf("saving a deleted account's parameters: no refusal shown")
	}
	if got := f.account(t, "gone1").Params["plan"]; got != "pro" {
		t.Errorf("the deleted account's plan after a refused save: %q, want pro", got)
	}
	if diff := cmp.Diff(before, f.audited(t, "gone1")); diff != "" {
		t.Errorf("a refused save was audited (-before +after):\n%s", diff)
	}

	pg = b.post("/console/tenants/acme/params", url.Values{"csrf": {tok}, "params": {"plan=free\n"}})
	if after := b.get(pg.location).body; !strings.Contains(after, "Parameters of acme updated") {
		t.Errorf("saving a live account's parameters: no confirmation shown")
	}
	if got := f.account(t, "acme").Params["plan"]; got != "free" {
		t.Errorf("the live account's plan after saving: %q, want free", got)
	}
}

// The page of a deleted account says only what is true of it. A deletion
// can be recorded while the provider still holds the account (one run from
// an older copy of the data dir on a shared store): its page then says so
// in the API's words: a creation under its ID is refused, and deleting it
// again destroys what is left. The twin: an account whose
// deletion destroyed it gets the API's answer for a deleted account. Neither
// page claims the data key is destroyed.
func TestDeletedAccountPageSaysWhetherTheProviderHoldsIt(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "held1")
	f.sp.Tenant(t, "gone1")
	del := func(id silo.AccountID) func() {
		return func() {
			if err := f.p.DeleteAccount(context.Background(), id); err != nil {
				t.Fatal(err)
			}
		}
	}
	localtest.DeletedButHeld(t, f.p.Config().DataDir, "held1", del("held1"))
	del("gone1")()

	b := f.browser(t)
	b.signIn()
	held := b.get("/console/tenants/held1").body
	want := `<div class="flash" id="deleted">account held1 was deleted, but the provider still holds its data and data key (its deletion did not destroy them), so silo tenant create held1 is refused; silo tenant delete held1 destroys them, and then silo tenant create held1 makes a new, empty tenant under that ID. Nothing on this page can change it`
	if !strings.Contains(held, want) {
		t.Errorf("the page of a deleted account the provider still holds lacks %q", want)
	}
	gone := b.get("/console/tenants/gone1").body
	if want := `<div class="flash" id="deleted">account gone1 was deleted; silo tenant create gone1 makes a new, empty tenant under that ID. Nothing on this page can change it`; !strings.Contains(gone, want) {
		t.Errorf("the page of a deleted account the provider no longer holds lacks %q", want)
	}
	if strings.Contains(gone, "still holds") {
		t.Errorf("the page of a deleted account the provider no longer holds says the provider holds it")
	}
	for name, body := range map[string]string{"held1": held, "gone1": gone} {
		if strings.Contains(body, "destroyed") {
			t.Errorf("the page of deleted account %s claims something is destroyed, which it cannot know", name)
		}
	}
}

// A deleted account has no isolation report, and the console and the API
// say so in the same words: the API answers GET of its report with
// not_found and the one sentence every request about a deleted account
// gets; the account's page shows that sentence where the report would be,
// and the console's report URL (an old tab) downloads nothing and leads
// back to that page. The twin: a live account's report is served by the
// API, verifies on its page, and downloads from the console.
func TestDeletedAccountHasNoReport(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme", silotest.Param("plan", "pro"))
	f.sp.Env(t, "gone1", platform.EnvTest, time.Hour, silotest.Param("plan", "pro"))
	if err := f.p.DeleteAccount(context.Background(), "gone1"); err != nil {
		t.Fatal(err)
	}
	const why = "account gone1 was deleted; silo env create gone1 makes a new, empty environment under that ID"
	api := func(id string) (int, http.Header, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/v1/accounts/"+id+"/report?format=json", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+f.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, resp.Header, b
	}
	status, _, body := api("gone1")
	var e server.ErrorBody
	if err := json.Unmarshal(body, &e); err != nil || status != http.StatusNotFound || e.Error.Code != silo.CodeNotFound || e.Error.Message != why {
		t.Errorf("API report of the deleted account: %d %s, want 404 not_found %q", status, body, why)
	}
	if status, _, body := api("acme"); status != http.StatusOK || !json.Valid(body) {
		t.Errorf("API report of the live account: %d %.200s, want 200 and the report", status, body)
	}

	b := f.browser(t)
	b.signIn()
	gone := b.get("/console/tenants/gone1").body
	if want := `<p class="muted" id="no-report">No isolation report: ` + why + `.</p>`; !strings.Contains(gone, want) {
		t.Errorf("the deleted account's page does not say why it has no report in the API's words; want %s", want)
	}
	if strings.Contains(gone, "Does not verify") || strings.Contains(gone, "Verifies:") {
		t.Errorf("the deleted account's page shows a verdict on a report it has not got")
	}
	for _, path := range []string{"/console/tenants/gone1/report", "/console/tenants/gone1/report?format=json"} {
		pg := b.get(path)
		if pg.status != http.StatusSeeOther || pg.location != "/console/tenants/gone1" || pg.header.Get("Content-Disposition") != "" {
			t.Errorf("GET %s: %d to %q (Content-Disposition %q), want 303 back to the account's page, no download", path, pg.status, pg.location, pg.header.Get("Content-Disposition"))
			continue
		}
		if after := b.get(pg.location).body; !strings.Contains(after, `<div class="flash err" role="alert">`+why+`</div>`) {
			t.Errorf("GET %s: the page it leads to does not say %q", path, why)
		}
	}

	live := b.get("/console/tenants/acme").body
	if !strings.Contains(live, "Verifies: signed by this installation") || strings.Contains(live, `id="no-report"`) {
		t.Errorf("the live account's page does not show its report verifying")
	}
	for _, format := range []string{"html", "json"} {
		pg := b.get("/console/tenants/acme/report?format=" + format)
		if pg.status != http.StatusOK || !strings.HasPrefix(pg.header.Get("Content-Disposition"), "attachment") || pg.body == "" {
			t.Errorf("console report of the live account (%s): %d, Content-Disposition %q, want 200 and a download", format, pg.status, pg.header.Get("Content-Disposition"))
		}
	}
}

// TestEarlierAccountWithTheIDKeepsItsUsage: the page of a tenant created
// under a deleted tenant's ID shows the new account's usage only (none
// yet), and the deleted one's apart, as an earlier account with its
// requests and dates.
func TestEarlierAccountWithTheIDKeepsItsUsage(t *testing.T) {
	f := newFixture(t, 0)
	ctx := context.Background()
	old := f.sp.Tenant(t, "hooli", silotest.Param("plan", "pro"))
	for range 7 {
		old.GET(t, "/findings")
	}
	if err := f.p.Usage.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	b := f.browser(t)
	b.signIn()
	before := b.get("/console/tenants/hooli").body
	if !strings.Contains(before, "<dt>Requests, yesterday and today</dt><dd>7</dd>") || strings.Contains(before, "Earlier accounts with this ID") {
		t.Fatalf("hooli's page before its deletion: want its 7 requests and no earlier account; got\n%s", before)
	}
	if err := f.p.DeleteAccount(ctx, "hooli"); err != nil {
		t.Fatal(err)
	}
	f.sp.Tenant(t, "hooli", silotest.Param("plan", "pro"))
	after := b.get("/console/tenants/hooli").body
	if !strings.Contains(after, "<dt>Requests, yesterday and today</dt><dd>0</dd>") {
		t.Errorf("the new hooli's page: want 0 requests of its own")
	}
	earlier := regexp.MustCompile(`<tr class="earlier"><td class="mono">[0-9: -]+</td><td class="mono">[0-9: -]+</td><td class="num">7</td>`)
	if !strings.Contains(after, "Earlier accounts with this ID") || !earlier.MatchString(after) {
		t.Errorf("the new hooli's page: want the deleted hooli apart, with its dates and 7 requests")
	}
}
