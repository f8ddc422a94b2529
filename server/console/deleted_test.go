package console_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/silo-run/silo/platform"
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
	for _, want := range []string{`<span class="state s-deleted">deleted</span>`, "gone1 is deleted: its data key is destroyed and nothing on this page can change it", "A deleted account has no isolation report."} {
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
