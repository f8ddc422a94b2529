package platform_test

import (
	"context"
	"io"
	"net/http"
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

// TestSecretDeleteAndListStayInTheirAccount attacks the API's secret
// deletion and listing, on the local and the AWS provider, with requests
// on tenant acme whose secret name or account part tries to reach
// globex's secret: traversal (encoded slashes and dots, backslashes), the
// providers' own naming (a parameter path, a Secrets Manager name), look-
// alikes, NUL and malformed account IDs. No attempt deletes anything:
// each answers deleted false or a client error, and afterwards globex's
// function still reads its secret and acme's own value is still there.
// The controls, the same requests on the real names, work.
func TestSecretDeleteAndListStayInTheirAccount(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(t *testing.T) *silotest.Platform
	}{
		{"local", func(t *testing.T) *silotest.Platform { return silotest.New(t) }},
		{"aws", func(t *testing.T) *silotest.Platform { p, _, _ := onAWS(t); return p }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := tc.start(t)
			p.Deploy(t, silotest.CopyExample(t))
			acme := p.Tenant(t, "acme", silotest.Secret("github-token", "ghp_acme"))
			globex := p.Tenant(t, "globex", silotest.Secret("github-token", "ghp_globex"))
			url, tok := apiServer(t, p.Platform())
			send := func(method, path string) (int, string) {
				t.Helper()
				req, err := http.NewRequest(method, url+path, nil)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				req.Header.Set("Authorization", "Bearer "+tok)
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				defer resp.Body.Close()
				b, _ := io.ReadAll(resp.Body)
				return resp.StatusCode, string(b)
			}
			remediation := func(tn *silotest.Tenant) string {
				t.Helper()
				resp := tn.POST(t, "/findings", `{"severity":"high","app":"github"}`)
				if resp.Status != 201 {
					t.Fatalf("ingest in %s: %s", tn.ID, resp)
				}
				if strings.Contains(string(resp.Body), `"remediation":"available"`) {
					return "available"
				}
				return "manual"
			}

			attempts, breaches := 0, 0
			answers := map[int]int{} // status → count
			names := []string{
				"..%2Fglobex%2Fgithub-token", "..%2F..%2Faccounts%2Fglobex%2Fsecrets.json", "%2e%2e%2fglobex%2fgithub-token",
				"..%5Cglobex%5Cgithub-token", "globex%2Fgithub-token", "globex:github-token", "globex.github-token",
				"%2Fsilo-secret%2Fgithub-token", "silo%2Fsecret%2Fgithub-token", "github-token%00", "github-token%2F",
				"github-token%20", "GITHUB-TOKEN", "github%E2%80%90token", "%2E%2E", "%2E",
			}
			for _, n := range names {
				attempts++
				code, body := send(http.MethodDelete, "/v1/accounts/acme/secrets/"+n)
				answers[code]++
				if code < 300 && !strings.Contains(body, `"deleted":false`) || code >= 500 {
					breaches++
					t.Errorf("DELETE acme's secret %s: %d %s; want deleted false or a client error", n, code, body)
				}
			}
			for _, a := range []string{"acme%2F..%2Fglobex", "..%2Fglobex", "globex%00", "ACME", "acme%2Fglobex", "%2E%2E"} {
				attempts++
				code, body := send(http.MethodDelete, "/v1/accounts/"+a+"/secrets/github-token")
				answers[code]++
				if code < 400 || code >= 500 {
					breaches++
					t.Errorf("DELETE with account %s: %d %s; want a client error", a, code, body)
				}
				attempts++
				code, body = send(http.MethodGet, "/v1/accounts/"+a+"/secrets")
				answers[code]++
				if code < 400 || code >= 500 || strings.Contains(body, "github-token") {
					breaches++
					t.Errorf("GET secrets with account %s: %d %s; want a client error", a, code, body)
				}
			}
			// Nothing was deleted: both values still read.
			for _, tn := range []*silotest.Tenant{acme, globex} {
				attempts++
				if got := remediation(tn); got != "available" {
					breaches++
					t.Errorf("remediation in %s after the attempts = %s; want available (its secret kept)", tn.ID, got)
				}
			}

			// Controls: the real name deletes acme's value and lists it
			// not set, globex's stays and lists set.
			controls, held := 0, 0
			control := func(ok bool, format string, args ...any) {
				t.Helper()
				controls++
				if !ok {
					t.Errorf("control: "+format, args...)
					return
				}
				held++
			}
			code, body := send(http.MethodDelete, "/v1/accounts/acme/secrets/github-token")
			control(code == 200 && strings.Contains(body, `"deleted":true`), "DELETE acme's github-token: %d %s; want deleted true", code, body)
			code, body = send(http.MethodGet, "/v1/accounts/acme/secrets")
			control(code == 200 && strings.Contains(body, `{"name":"github-token","declared":true,"set":false}`), "GET acme's secrets: %d %s; want github-token not set", code, body)
			code, body = send(http.MethodGet, "/v1/accounts/globex/secrets")
			control(code == 200 && strings.Contains(body, `{"name":"github-token","declared":true,"set":true}`), "GET globex's secrets: %d %s; want github-token set", code, body)
			control(remediation(acme) == "manual", "acme's function still reads the deleted secret")
			control(remediation(globex) == "available", "globex's function no longer reads its secret")
			t.Logf("%d attempts, %d succeeded (answers: %v); %d controls, %d succeeded", attempts, breaches, answers, controls, held)
		})
	}
}
