package platform_test

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/silotest"
)

// TestDeletedSecretReadsAsNeverSet deletes a secret of one tenant through
// the API, on the local provider and on the AWS provider: that tenant's
// function then behaves as in a tenant that never had it (the example's
// ingest answers "remediation":"manual" and logs no failure to read it),
// while another tenant's same-named secret still reads (the twin), and
// the secret list of each says so. A deleted secret set again reads again.
func TestDeletedSecretReadsAsNeverSet(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *silotest.Platform
	}{
		{"local", func(t *testing.T) *silotest.Platform { return silotest.New(t) }},
		{"aws", func(t *testing.T) *silotest.Platform { p, _, _ := onAWS(t); return p }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			p := tc.start(t)
			p.Deploy(t, silotest.CopyExample(t))
			acme := p.Tenant(t, "acme", silotest.Secret("github-token", "ghp_acme"))
			globex := p.Tenant(t, "globex", silotest.Secret("github-token", "ghp_globex"))
			initech := p.Tenant(t, "initech") // never set
			api := apiClient(t, p.Platform())
			ingest := func(tn *silotest.Tenant) string {
				t.Helper()
				resp := tn.POST(t, "/findings", `{"severity":"high","app":"github"}`)
				if resp.Status != 201 {
					t.Fatalf("ingest in %s: %s", tn.ID, resp)
				}
				for _, r := range []string{"manual", "available"} {
					if strings.Contains(string(resp.Body), `"remediation":"`+r+`"`) {
						return r
					}
				}
				t.Fatalf("ingest in %s: no remediation in %s", tn.ID, resp)
				return ""
			}
			states := func(id silo.AccountID) []control.SecretState {
				t.Helper()
				ss, err := api.Secrets(ctx, id)
				if err != nil {
					t.Fatalf("Secrets(%s): %v", id, err)
				}
				return ss
			}
			set := []control.SecretState{{Name: "github-token", Declared: true, Set: true}}
			unset := []control.SecretState{{Name: "github-token", Declared: true}}

			// Controls: a secret set reads; one never set does not.
			for tn, want := range map[*silotest.Tenant]string{acme: "available", globex: "available", initech: "manual"} {
				if got := ingest(tn); got != want {
					t.Fatalf("control: remediation in %s = %s, want %s", tn.ID, got, want)
				}
			}
			if diff := cmp.Diff(set, states(acme.ID)); diff != "" {
				t.Errorf("acme's secrets before the deletion (-want +got):\n%s", diff)
			}

			deleted, err := api.DeleteSecret(ctx, acme.ID, "github-token")
			if err != nil || !deleted {
				t.Fatalf("DeleteSecret = %v, %v; want true, nil", deleted, err)
			}
			if got := ingest(acme); got != "manual" {
				t.Errorf("remediation in acme after the deletion = %s, want manual, as in initech", got)
			}
			if got := ingest(globex); got != "available" {
				t.Errorf("remediation in globex after acme's deletion = %s, want available", got)
			}
			stored := 0
			for _, e := range p.Logs(t, acme.ID) {
				if strings.Contains(e.Msg, "cannot read github-token") {
					t.Errorf("acme's function failed to read the deleted secret (a secret never set is not a failure): %+v", e)
				}
				if strings.Contains(e.Msg, "finding stored") {
					stored++
				}
			}
			if stored != 2 {
				t.Errorf("acme's log has %d \"finding stored\" lines, want 2 (the harness reads its log)", stored)
			}
			if diff := cmp.Diff(unset, states(acme.ID)); diff != "" {
				t.Errorf("acme's secrets after the deletion (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(set, states(globex.ID)); diff != "" {
				t.Errorf("globex's secrets after acme's deletion (-want +got):\n%s", diff)
			}

			// Again: nothing to delete, and it says so.
			if deleted, err := api.DeleteSecret(ctx, acme.ID, "github-token"); err != nil || deleted {
				t.Errorf("DeleteSecret again = %v, %v; want false, nil", deleted, err)
			}
			if err := api.SetSecret(ctx, acme.ID, "github-token", []byte("ghp_again")); err != nil {
				t.Fatalf("SetSecret after the deletion: %v", err)
			}
			if got := ingest(acme); got != "available" {
				t.Errorf("remediation in acme after the secret is set again = %s, want available", got)
			}
		})
	}
}
