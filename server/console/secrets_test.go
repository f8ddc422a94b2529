package console_test

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/silo-run/silo/silotest"
)

// secretRow matches a row of the tenant page's secrets table: the name,
// then its state.
func secretRow(name, state string) *regexp.Regexp {
	return regexp.MustCompile(`<td class="mono">` + regexp.QuoteMeta(name) + `</td>\s*<td>(<span class="muted">)?` + regexp.QuoteMeta(state) + `(</span>)?</td>`)
}

// The tenant page lists each secret as set or not set (never a value) and
// offers to delete a set one's value; deleting it there makes it not set
// in that account only, is audited, and deleting it again says it was not
// set. Another tenant's page keeps its secret set (the twin).
func TestConsoleDeletesASecret(t *testing.T) {
	f := newFixture(t, 0)
	f.sp.Tenant(t, "acme", silotest.Secret("github-token", "ghp-acme-canary"))
	f.sp.Tenant(t, "globex", silotest.Secret("github-token", "ghp-globex-canary"))
	b := f.browser(t)
	b.signIn()

	page := b.get("/console/tenants/acme").body
	if !secretRow("github-token", "set").MatchString(page) || !strings.Contains(page, `action="/console/tenants/acme/secret-delete"`) {
		t.Fatalf("acme's page does not list github-token as set with a delete form:\n%s", page)
	}
	if strings.Contains(page, "ghp-acme-canary") {
		t.Fatalf("acme's page shows the secret's value")
	}

	tok := b.csrf("/console/tenants/acme")
	for _, want := range []string{
		"Secret github-token deleted; the account&#39;s functions now read it as never set.",
		"Secret github-token was not set; nothing was deleted.",
	} {
		pg := b.post("/console/tenants/acme/secret-delete", url.Values{"csrf": {tok}, "name": {"github-token"}})
		if pg.status != http.StatusSeeOther {
			t.Fatalf("post secret-delete: %d", pg.status)
		}
		if after := b.get(pg.location).body; !strings.Contains(after, want) {
			t.Errorf("after secret-delete the page does not say %q", want)
		}
	}
	page = b.get("/console/tenants/acme").body
	if !secretRow("github-token", "not set").MatchString(page) || strings.Contains(page, "/secret-delete") {
		t.Errorf("acme's page after the deletion does not list github-token as not set without a delete form")
	}
	if page := b.get("/console/tenants/globex").body; !secretRow("github-token", "set").MatchString(page) {
		t.Errorf("globex's page after acme's deletion does not list github-token as set")
	}
	n := 0
	for _, a := range f.audited(t, "acme") {
		if a == "secret.delete" {
			n++
		}
	}
	if n != 2 {
		t.Errorf("acme's audit log has %d secret.delete entries, want 2", n)
	}
	for _, a := range f.audited(t, "globex") {
		if a == "secret.delete" {
			t.Errorf("globex's audit log has a secret.delete entry")
		}
	}
}
