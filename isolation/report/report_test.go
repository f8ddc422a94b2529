package report_test

import (
	"context"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/provider"
)

func res(t *testing.T, typ silo.ResourceType, name string, spec any) silo.Resource {
	r, err := silo.NewResource(typ, name, spec)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// testInput is acme's account in a proved fleet of 42 accounts.
func testInput(t *testing.T) report.Input {
	now := time.Date(2026, 11, 25, 18, 0, 0, 0, time.UTC)
	return report.Input{
		Account: silo.Account{ID: "acme", Kind: silo.KindTenant, Name: "Acme <Corp> & Co", State: silo.StateActive, Release: "r-0123456789abcdef"},
		Resources: []silo.Resource{
			res(t, silo.TypeTable, "findings", struct{}{}),
			res(t, silo.TypeBucket, "uploads", struct{}{}),
			res(t, silo.TypeConfig, "region", silo.ConfigSpec{Value: "eu"}),
			res(t, silo.TypeSecret, "api-token", struct{}{}),
			res(t, silo.TypeFunction, "ingest", silo.FunctionSpec{Artifact: "sha256:aa", Tables: map[string]string{"findings": "read-write"},
				Buckets: map[string]string{"uploads": "read-write"}, Secrets: []string{"api-token"}, Exports: []string{"catalog"}}),
			res(t, silo.TypeRoute, "POST /findings", silo.RouteSpec{Method: "POST", Path: "/findings", Function: "ingest"}),
		},
		Keys:     []isolation.Key{{ID: "sk_acme_0123456789abcdef", Account: "acme"}, {ID: "sk_acme_fedcba9876543210", Account: "acme", Revoked: true}},
		DataKey:  provider.KeyInfo{Algorithm: "AES-256-GCM, envelope", Fingerprint: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", WrappedBy: "local master key 1234"},
		Proof:    isolation.Result{Status: isolation.StatusProved, Accounts: 42, Edges: 1234},
		ProvedAt: now.Add(-time.Minute),
		Audit:    report.Audit{Intact: true},
		Now:      now,
	}
}

func signed(t *testing.T) (report.Signed, ed25519.PrivateKey) {
	key, err := report.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	s, err := report.Sign(report.Build(context.Background(), testInput(t)), key)
	if err != nil {
		t.Fatal(err)
	}
	return s, key
}

func TestBuildSaysItPlainly(t *testing.T) {
	r := report.Build(context.Background(), testInput(t))
	all := strings.Join(r.Summary, "\n")
	for _, want := range []string{
		"isolated account of Acme <Corp> & Co (account acme)",
		"1 table, 1 storage bucket, 1 configuration value and 1 secret",
		"Only your API keys (1 active key) and the code your provider deploys to your account (now the functions ingest) can reach your data",
		"read 1 shared resource that the shared production account publishes for every customer (catalog), read-only",
		"fingerprint 9f86d081884c7d65",
		"Isolation was last proved on 25 November 2026 at 17:59 UTC: every isolation rule held",
		"Live attack probes have not been run",
		"release r-0123456789abcdef",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("summary lacks %q:\n%s", want, all)
		}
	}
	for _, a := range r.Access {
		if strings.Contains(a.Who, "fedcba") {
			t.Errorf("a revoked key is listed as reaching the account: %v", a)
		}
	}
}

// TestAuditStateSaidTruthfully: a report made while the audit log is
// intact says it was verified, up to which entry; one made while it is
// broken says it is NOT intact, in its summary and on its page, and never
// that it verified. Both are signed reports that verify.
func TestAuditStateSaidTruthfully(t *testing.T) {
	key, err := report.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name       string
		audit      report.Audit
		want, page string
		never      string
	}{
		{"intact", report.Audit{Intact: true},
			"audit log, which was verified intact, up to its last recorded entry, when this report was made", `intact</span>: verified up to its last recorded entry`, "NOT intact"},
		{"broken", report.Audit{Intact: false},
			"The operators' audit log is NOT intact: when this report was made, the check of its hash chain failed", `NOT intact</span>: the check of its hash chain failed`, "verified intact"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testInput(t)
			in.Audit = tc.audit
			s, err := report.Sign(report.Build(context.Background(), in), key)
			if err != nil {
				t.Fatal(err)
			}
			all := strings.Join(s.Report.Summary, "\n")
			if !strings.Contains(all, tc.want) || strings.Contains(all, tc.never) {
				t.Errorf("summary:\n%s\nwant %q and not %q", all, tc.want, tc.never)
			}
			if s.Report.Audit == nil || *s.Report.Audit != tc.audit {
				t.Errorf("report's audit: %+v, want %+v", s.Report.Audit, tc.audit)
			}
			html, err := s.HTML()
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(html), tc.page) {
				t.Errorf("page lacks %q", tc.page)
			}
			if _, err := report.VerifyReport(html); err != nil {
				t.Errorf("the page does not verify: %v", err)
			}
		})
	}
}

func TestRoundTripAndEveryByteEdit(t *testing.T) {
	s, _ := signed(t)
	js, err := s.JSON()
	if err != nil {
		t.Fatal(err)
	}
	page, err := s.HTML()
	if err != nil {
		t.Fatal(err)
	}
	for _, form := range []struct {
		name string
		data []byte
	}{{"json", js}, {"html", page}} {
		t.Run(form.name, func(t *testing.T) {
			r, err := report.VerifyReport(form.data)
			if err != nil {
				t.Fatalf("untouched report: %v", err)
			}
			if r.Tenant != "acme" || r.PublicKey != s.Report.PublicKey || r.Signer != report.KeyFingerprint(s.Report.PublicKey) {
				t.Fatalf("got %s %s %s", r.Tenant, r.PublicKey, r.Signer)
			}
			edited := 0
			for i := range form.data {
				b := append([]byte(nil), form.data...)
				b[i] ^= 0x01
				if _, err := report.VerifyReport(b); err == nil {
					t.Fatalf("edit of byte %d (%q → %q) verified", i, form.data[i], b[i])
				} else if silo.ErrorCode(err) != silo.CodeFailedCheck {
					t.Fatalf("edit of byte %d: got %v, want failed_check", i, err)
				}
				edited++
			}
			// Inserting or deleting a byte is caught too.
			if _, err := report.VerifyReport(append(append([]byte(nil), form.data...), ' ')); err == nil {
				t.Errorf("appended byte verified")
			}
			if _, err := report.VerifyReport(form.data[:len(form.data)-1]); err == nil {
				t.Errorf("dropped byte verified")
			}
			t.Logf("%d single-byte edits, all refused; untouched verifies", edited)
		})
	}
}

func TestKeyFile(t *testing.T) {
	dir := t.TempDir()
	k1, err := report.LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(dir, report.KeyFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("got %v %v, want mode 0600", fi.Mode().Perm(), err)
	}
	k2, err := report.LoadOrCreateKey(dir)
	if err != nil || !k1.Equal(k2) {
		t.Fatalf("second load: got a different key (%v)", err)
	}
	os.Chmod(filepath.Join(dir, report.KeyFile), 0o644)
	if _, err := report.LoadOrCreateKey(dir); silo.ErrorCode(err) != silo.CodeFailedCheck {
		t.Fatalf("world-readable key: got %v, want failed_check", err)
	}
}

// A probe run whose controls failed found nothing: the report must say the
// probes could not check, never that anything was breached; a run with a
// successful attempt must say so.
func TestProbeOutcomeSaidExactly(t *testing.T) {
	at := time.Date(2026, 11, 25, 17, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name      string
		probe     report.Probe
		want, not []string
	}{
		{"controls failed, no breach", report.Probe{Status: report.ProbeInconclusive, At: &at, Attempts: 412, Controls: 37, ControlsFailed: 2},
			[]string{"none of 412 attempts to cross accounts succeeded", "2 of 37 control checks failed", "could not check everything", "this is not a breach", ">inconclusive<"},
			[]string{"at least one", "0 of 412 attempts to cross accounts succeeded", ">breached<"}},
		{"breached", report.Probe{Status: report.ProbeBreached, At: &at, Attempts: 412, Breaches: 3, Controls: 37},
			[]string{"3 of 412 attempts to cross accounts succeeded", ">breached<"},
			[]string{"none of 412", "could not check everything", ">inconclusive<"}},
		{"passed with controls that do not apply", report.Probe{Status: report.ProbePassed, At: &at, Attempts: 412, Controls: 35, NotApplicable: 2},
			[]string{"412 attempts to cross accounts, none succeeded; 35 control checks showing the probes could see, all succeeded", "2 control checks did not apply to this app"},
			[]string{"control checks failed", "did not pass", ">breached<", ">inconclusive<"}},
		{"a record from before the split", report.Probe{Status: report.ProbeFailed, At: &at, Attempts: 412, Controls: 37},
			[]string{"did not pass; the record does not say whether"},
			[]string{">breached<", "attempts to cross accounts succeeded"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := testInput(t)
			in.Probe = &tc.probe
			s, err := report.Sign(report.Build(t.Context(), in), ed25519.NewKeyFromSeed(make([]byte, 32)))
			if err != nil {
				t.Fatal(err)
			}
			page, _ := s.HTML()
			summary := strings.Join(s.Report.Summary, "\n")
			// The page's status badge and the summary sentences.
			badge := string(page)[strings.Index(string(page), "Last live probe"):]
			badge = badge[:strings.Index(badge, "</tr>")]
			for _, w := range tc.want {
				if !strings.Contains(summary+badge, w) {
					t.Errorf("report lacks %q", w)
				}
			}
			for _, n := range tc.not {
				if strings.Contains(summary, n) || strings.Contains(badge, n) {
					t.Errorf("report says %q:\n%s\n%s", n, summary, badge)
				}
			}
		})
	}
}

// A customer's report speaks of that customer's account and the shared
// account only: no figure of the whole fleet (how many accounts, access
// paths or problems elsewhere) appears in it.
func TestReportDoesNotRevealTheFleet(t *testing.T) {
	in := testInput(t)
	in.Proof = isolation.Result{Status: isolation.StatusViolated, Accounts: 4217, Principals: 9311, Resources: 7723, Edges: 86029, Violations: 5113}
	s, err := report.Sign(report.Build(t.Context(), in), ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		t.Fatal(err)
	}
	js, _ := s.JSON()
	page, _ := s.HTML()
	for _, form := range [][]byte{js, page} {
		for _, n := range []string{"4217", "9311", "7723", "86029", "5113"} {
			if strings.Contains(string(form), n) {
				t.Errorf("the report reveals the fleet figure %s", n)
			}
		}
	}
	// Twin: the report does say what concerns the customer (the proof
	// records none of its problems, so it cannot tell whether one is the
	// customer's; TestProblemsNamingTheAccountAreItsOwn has the others).
	if !strings.Contains(strings.Join(s.Report.Summary, " "), "more problems in this installation than it records, so it cannot tell whether one involves your account") {
		t.Errorf("summary lacks the proof's outcome:\n%s", strings.Join(s.Report.Summary, "\n"))
	}
}

func TestHTMLExplainsRulesScopeAndChecking(t *testing.T) {
	s, key := signed(t)
	page, _ := s.HTML()
	fp := report.Fingerprint(key.Public().(ed25519.PublicKey))
	for _, want := range []string{
		"I1 · Your data is yours", "I2 · The shared account cannot reach you", "I3 · Operators manage, they do not read",
		"I4 · Your keys work for you only", "I5 · Deletion is final",
		"What this report does not cover", "administrator (root) access",
		"How to check this report", "silo report verify FILE --key FINGERPRINT", fp,
		// Provenance wraps between its parts, not inside words.
		`<td class="origin"><code>silo.<wbr>yaml`,
		// The operator deploys the code that reaches the data (format 4).
		"Only your API keys and the code your provider deploys to your account can read or change", "How your data is encrypted",
	} {
		if !strings.Contains(string(page), want) {
			t.Errorf("page lacks %q", want)
		}
	}
	// Format 3's wording, which over-claimed, is kept for format 3 pages
	// only (testdata/v3-report.html verifies byte for byte with it).
	for _, old := range []string{"Only your own functions and your own API keys", "How your secrets are encrypted"} {
		if strings.Contains(string(page), old) {
			t.Errorf("a format %d page says %q", s.Report.Format, old)
		}
	}
	if strings.Contains(string(page), "code { font-family: \"DejaVu Sans Mono\", Menlo, monospace; font-size: 0.85rem; word-break: break-all; }") {
		t.Errorf("every code cell breaks words anywhere")
	}
}

// A problem involving the customer's account that another customer's
// account takes part in is reported without naming that account.
func TestProblemsDoNotNameOtherCustomers(t *testing.T) {
	in := testInput(t)
	in.Proof = isolation.Result{Status: isolation.StatusViolated, Violations: 2, Counterexamples: []isolation.Counterexample{
		{Invariant: "I4", Problem: `route "GET /x" of acme calls a function of globex-eu (globex-eu's key, not globex-eu2)`, Path: []isolation.Edge{
			{From: isolation.Node{Account: "acme", Kind: isolation.NodeRoute, Name: "GET /x"}, To: isolation.Node{Account: "globex-eu", Kind: isolation.NodeFunction, Name: "list"}},
		}},
		{Invariant: "I1", Problem: "function sync of initech reads table findings of umbrella", Path: []isolation.Edge{
			{From: isolation.Node{Account: "initech", Kind: isolation.NodeFunction, Name: "sync"}, To: isolation.Node{Account: "umbrella", Kind: isolation.NodeTable, Name: "findings"}},
		}},
	}}
	r := report.Build(t.Context(), in)
	s, _ := report.Sign(r, ed25519.NewKeyFromSeed(make([]byte, 32)))
	js, _ := s.JSON()
	for _, other := range []string{"globex-eu's", "initech", "umbrella", "of globex-eu "} {
		if strings.Contains(string(js), other) {
			t.Errorf("the report names another customer: %q", other)
		}
	}
	// Twin: the problem involving acme is there, naming acme, with the
	// other account redacted and a longer label left alone.
	want := `I4: route "GET /x" of acme calls a function of another account (another account's key, not globex-eu2)`
	if len(r.Proof.Counterexamples) != 1 || r.Proof.Counterexamples[0] != want {
		t.Errorf("got %q, want [%q]", r.Proof.Counterexamples, want)
	}
}

// TestProblemsNamingTheAccountAreItsOwn: a problem the verifier found
// about acme with no path (a resource of a type it does not know) is on
// acme's report, and acme is not told the problems are elsewhere; globex,
// which the problem does not name, is told so. A key problem naming both
// is on both, each naming only its own account.
func TestProblemsNamingTheAccountAreItsOwn(t *testing.T) {
	ctx := t.Context()
	fleet := &isolation.Fleet{DataKeysKnown: true, Operators: []isolation.Operator{isolation.ControlPlane()}}
	for _, id := range []silo.AccountID{"acme", "globex", "initech"} {
		fleet.Accounts = append(fleet.Accounts, isolation.AccountState{Account: silo.Account{ID: id, Kind: silo.KindTenant, State: silo.StateActive}, HasDataKey: true})
	}
	fleet.Accounts[0].Resources = []silo.Resource{res(t, silo.ResourceType("peering"), "x", struct{}{})}
	fleet.Keys = []isolation.Key{{ID: "sk_globex_0123456789abcdef", Account: "initech"}}
	proof := isolation.Verify(ctx, fleet)
	if proof.Violations != 2 {
		t.Fatalf("fixture: got %d violations, want 2: %v", proof.Violations, proof.Counterexamples)
	}
	build := func(id silo.AccountID) report.Report {
		in := testInput(t)
		in.Account.ID, in.Keys, in.Proof = id, nil, proof
		return report.Build(ctx, in)
	}
	for _, tc := range []struct {
		id        silo.AccountID
		want      string // the one problem on the report, "" for none
		elsewhere bool
	}{
		{"acme", `I1: account acme holds resource peering/x of unknown type "peering": the verifier cannot tell what it reaches`, false},
		{"globex", `I4: API key sk_globex_0123456789abcdef names account "globex" but is bound to another account: a key must be bound to exactly the one account it names`, false},
		{"initech", `I4: API key sk_another account_0123456789abcdef names account "another account" but is bound to initech: a key must be bound to exactly the one account it names`, false},
	} {
		r := build(tc.id)
		if len(r.Proof.Counterexamples) != 1 || r.Proof.Counterexamples[0] != tc.want {
			t.Errorf("%s: got problems %q, want [%q]", tc.id, r.Proof.Counterexamples, tc.want)
		}
		if strings.Contains(strings.Join(r.Summary, " "), "elsewhere") {
			t.Errorf("%s: the summary says the problems are elsewhere: %s", tc.id, r.Summary)
		}
	}
	// Must-not twin: an account no problem names is told they are elsewhere.
	fleet.Accounts = append(fleet.Accounts, isolation.AccountState{Account: silo.Account{ID: "umbrella", Kind: silo.KindTenant, State: silo.StateActive}, HasDataKey: true})
	proof = isolation.Verify(ctx, fleet)
	r := build("umbrella")
	if len(r.Proof.Counterexamples) != 0 || !strings.Contains(strings.Join(r.Summary, " "), "no problem involves your account, but the check found problems elsewhere") {
		t.Errorf("umbrella: got problems %q and summary %q, want none, elsewhere", r.Proof.Counterexamples, r.Summary)
	}
	// Past what the proof records, nobody is told the problems are elsewhere.
	proof.Counterexamples, proof.Violations = nil, 2
	if r := build("umbrella"); strings.Contains(strings.Join(r.Summary, " "), "elsewhere") || !strings.Contains(strings.Join(r.Summary, " "), "cannot tell whether one involves your account") {
		t.Errorf("unrecorded problems: summary %q", r.Summary)
	}
}

// TestFormatAndAuditStateAgree: a format 3 report that does not state the
// audit log's state, or a format 2 report that does, is refused even when
// its signature holds (a signer leaving a broken log unsaid); the twins,
// a format 3 report stating it and a format 2 report not, verify.
func TestFormatAndAuditStateAgree(t *testing.T) {
	key, err := report.LoadOrCreateKey(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name   string
		format int
		audit  *report.Audit
		want   string // "" when it verifies
	}{
		{"format 4 with the audit state", report.FormatVersion, &report.Audit{Intact: true}, ""},
		{"format 4 without", report.FormatVersion, nil, "does not state the audit log's state"},
		{"format 3 with the audit state", 3, &report.Audit{Intact: true}, ""},
		{"format 3 without", 3, nil, "does not state the audit log's state"},
		{"format 2 without", 2, nil, ""},
		{"format 2 with", 2, &report.Audit{Intact: true}, "format 2 did not"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := report.Build(context.Background(), testInput(t))
			r.Format, r.Audit = tc.format, tc.audit
			s, err := report.Sign(r, key)
			if err != nil {
				t.Fatal(err)
			}
			b, err := s.JSON()
			if err != nil {
				t.Fatal(err)
			}
			_, err = report.VerifyReport(b)
			if tc.want == "" && err != nil || tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Errorf("VerifyReport: %v, want %q", err, tc.want)
			}
		})
	}
}
