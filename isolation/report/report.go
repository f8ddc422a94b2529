// Package report makes the signed per-tenant isolation report: in plain
// language first, what lives in a tenant's account, who can reach it, what it
// reads from the shared production account, how its data is encrypted,
// when isolation was last proved and probed, and the release it runs. A
// report is JSON or a self-contained printable HTML page, signed with the
// installation's ed25519 key; VerifyReport checks either form, byte for
// byte, and CheckSigner checks that a key the reader trusts signed it. A
// report speaks of its own account and the shared production account only:
// never of other customers or how many there are.
//
// It imports the root silo package, isolation, and the provider and store
// contracts; it must not import runtime, gateway, or any store or provider
// implementation.
package report

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider"
)

// FormatVersion is the version of the report format this silo writes.
// VerifyReport also reads formats 1 to 3: format 2 is format 3 without
// Audit, and format 3 is format 4 with the page's older wording (its rule
// I1 said "your own functions", which an operator deploys, and its
// encryption heading named secrets only).
const FormatVersion = 4

// Report is the content of an isolation report. It holds no maps, so its JSON
// encoding is canonical: the bytes that are signed.
type Report struct {
	Format     int            `json:"format"`
	Tenant     silo.AccountID `json:"tenant"`
	Name       string         `json:"name"`
	Kind       silo.Kind      `json:"kind"`
	State      silo.State     `json:"state"`
	Release    string         `json:"release"`
	Generated  time.Time      `json:"generated"`
	Summary    []string       `json:"summary"` // plain language, one sentence each
	Contents   Contents       `json:"contents"`
	Access     []Access       `json:"access"`
	Shared     []Shared       `json:"shared"`
	Encryption Encryption     `json:"encryption"`
	Proof      Proof          `json:"proof"`
	Probe      Probe          `json:"probe"`
	// Audit is the state of the operators' audit log when the report was
	// made; nil only in a format 2 report, which did not say.
	Audit *Audit `json:"audit,omitempty"`
	// PublicKey is the installation's ed25519 public key, base64; the report
	// is signed with the matching private key.
	PublicKey string `json:"public_key"`
	// Signer is the fingerprint of PublicKey (see Fingerprint): the name of
	// the key that signed the report, for a reader to compare with the
	// fingerprint the installation publishes.
	Signer string `json:"signer"`
}

// Contents is what lives in the account, by name.
type Contents struct {
	Tables    []string `json:"tables"`
	Buckets   []string `json:"buckets"`
	Config    []string `json:"config"`
	Secrets   []string `json:"secrets"`
	Functions []string `json:"functions"`
	Routes    []string `json:"routes"`
}

// Access is one principal that can reach the account and what it can do.
type Access struct {
	Who    string `json:"who"`
	Can    string `json:"can"`
	Origin string `json:"origin"`
}

// Shared is one production export the account's functions read.
type Shared struct {
	Export string   `json:"export"`
	ReadBy []string `json:"read_by"`
	Mode   string   `json:"mode"` // always "read-only"
}

// Encryption describes the account's data key, never the key.
type Encryption struct {
	Algorithm   string `json:"algorithm"`
	Fingerprint string `json:"fingerprint"`
	WrappedBy   string `json:"wrapped_by"`
}

// Proof is the last static proof of isolation. It carries no fleet-wide
// figure (how many accounts, paths or problems): only whether every rule
// held and the problems that involve this account.
type Proof struct {
	Status isolation.Status `json:"status"`
	At     time.Time        `json:"at"`
	// Counterexamples are the problems involving this account.
	Counterexamples []string `json:"counterexamples"`
}

// Audit is what the check of the operators' audit log found when the report
// was made (isolation.VerifyAudit): whether the whole hash chain verified
// and reached its recorded head. How many entries the log holds is not
// said: it counts the operators' actions across the installation, a figure
// a tenant's report does not give.
type Audit struct {
	Intact bool `json:"intact"`
}

// The statuses of a live probe run.
const (
	ProbeNotRun = "not run"
	// ProbePassed: no attempt succeeded and every control succeeded.
	ProbePassed = "passed"
	// ProbeBreached: at least one attempt to cross accounts succeeded.
	ProbeBreached = "breached"
	// ProbeInconclusive: no attempt succeeded, but some controls failed, so
	// the probes could not check everything.
	ProbeInconclusive = "inconclusive"
	// ProbeFailed is what installations recorded before the outcome was
	// split into breached and inconclusive: the run did not pass, for a
	// reason the record does not say.
	ProbeFailed = "failed"
)

// Probe is the last live probe of isolation. Attempts are accesses across
// accounts that must fail; Breaches counts those that succeeded. Controls
// are accesses that must succeed, showing the probes can see (a failed
// control means "could not check", never "breached"); NotApplicable counts
// controls that do not apply to the app (for example reads of production
// exports when production exports nothing).
type Probe struct {
	Status         string     `json:"status"`
	At             *time.Time `json:"at"`
	Attempts       int        `json:"attempts"`
	Breaches       int        `json:"breaches"`
	Controls       int        `json:"controls"`
	ControlsFailed int        `json:"controls_failed"`
	NotApplicable  int        `json:"not_applicable"`
}

// Input is what Build needs to know about one account.
type Input struct {
	Account   silo.Account
	Resources []silo.Resource
	// Keys are the account's API keys (ID and whether revoked).
	Keys    []isolation.Key
	DataKey provider.KeyInfo
	// Proof is the result of isolation.Verify over the whole fleet, run at
	// ProvedAt.
	Proof    isolation.Result
	ProvedAt time.Time
	// Probe is the last live probe, nil if none ran.
	Probe *Probe
	// Audit is the check of the audit log made with the report.
	Audit Audit
	Now   time.Time
}

// Build makes the report of one account. It does not sign it.
func Build(ctx context.Context, in Input) Report {
	a := in.Account
	r := Report{
		Format: FormatVersion, Tenant: a.ID, Name: a.Name, Kind: a.Kind, State: a.State, Release: a.Release,
		Generated:  in.Now.UTC().Truncate(time.Second),
		Encryption: Encryption(in.DataKey),
		Proof:      Proof{Status: in.Proof.Status, At: in.ProvedAt.UTC().Truncate(time.Second), Counterexamples: []string{}},
		Probe:      Probe{Status: ProbeNotRun},
		Audit:      &in.Audit,
	}
	if r.Name == "" {
		r.Name = string(a.ID)
	}
	if in.Probe != nil {
		r.Probe = *in.Probe
	}
	c := Contents{Tables: []string{}, Buckets: []string{}, Config: []string{}, Secrets: []string{}, Functions: []string{}, Routes: []string{}}
	for _, res := range in.Resources {
		switch res.Type {
		case silo.TypeTable:
			c.Tables = append(c.Tables, res.Name)
		case silo.TypeBucket:
			c.Buckets = append(c.Buckets, res.Name)
		case silo.TypeConfig:
			c.Config = append(c.Config, res.Name)
		case silo.TypeSecret:
			c.Secrets = append(c.Secrets, res.Name)
		case silo.TypeFunction:
			c.Functions = append(c.Functions, res.Name)
		case silo.TypeRoute:
			c.Routes = append(c.Routes, res.Name)
		}
	}
	r.Contents = c

	// The account's own access graph: the account, its keys and production.
	sub := &isolation.Fleet{Accounts: []isolation.AccountState{{Account: a, Resources: in.Resources, HasDataKey: true}}, DataKeysKnown: true}
	for _, k := range in.Keys {
		if k.Account == a.ID {
			sub.Keys = append(sub.Keys, k)
		}
	}
	shared := map[string][]string{}
	r.Access = []Access{}
	for _, e := range isolation.BuildGraph(ctx, sub) {
		switch {
		case e.From.Kind == isolation.NodeFunction && e.To.Kind == isolation.NodeExport:
			shared[e.To.Name] = append(shared[e.To.Name], e.From.Name)
		case e.From.Kind == isolation.NodeFunction && e.To.Account == a.ID:
			r.Access = append(r.Access, Access{Who: "your function " + e.From.Name, Can: verb(e.Action) + " " + string(e.To.Kind) + " " + e.To.Name, Origin: e.Origin})
		case e.From.Kind == isolation.NodeKey && !revoked(in.Keys, e.From.Name):
			r.Access = append(r.Access, Access{Who: "your API key " + e.From.Name, Can: "call your routes through the gateway", Origin: e.Origin})
		}
	}
	cp := isolation.ControlPlane()
	r.Access = append(r.Access, Access{Who: "the silo control plane (operators)", Can: "create, update, suspend and delete your account, deploy releases to it, set secrets (write-only) and issue or revoke keys; none of its operations returns your data or a secret's value", Origin: cp.Origin})
	r.Shared = []Shared{}
	for _, name := range sortedKeys(shared) {
		r.Shared = append(r.Shared, Shared{Export: name, ReadBy: shared[name], Mode: "read-only"})
	}
	for _, ce := range in.Proof.Involving(a.ID) {
		r.Proof.Counterexamples = append(r.Proof.Counterexamples, ce.Invariant+": "+redact(ce, a.ID))
	}
	r.Summary = summary(r, in)
	return r
}

// redact returns a counterexample's problem with the IDs of other
// customers' accounts replaced by "another account": a report names only its
// own account and the shared production account.
func redact(ce isolation.Counterexample, own silo.AccountID) string {
	p := ce.Problem
	ids := append([]silo.AccountID(nil), ce.Accounts...)
	for _, e := range ce.Path {
		ids = append(ids, e.From.Account, e.To.Account)
	}
	for _, id := range ids {
		if id == "" || id == own || id == silo.ProductionID || id == isolation.AnyAccount {
			continue
		}
		p = replaceWord(p, string(id), "another account")
	}
	return p
}

// replaceWord replaces whole occurrences of word (not inside a longer
// DNS label) in s.
func replaceWord(s, word, with string) string {
	label := func(b byte) bool { return b >= 'a' && b <= 'z' || b >= '0' && b <= '9' || b == '-' }
	var out strings.Builder
	for {
		i := strings.Index(s, word)
		if i < 0 {
			out.WriteString(s)
			return out.String()
		}
		j := i + len(word)
		if (i > 0 && label(s[i-1])) || (j < len(s) && label(s[j])) {
			out.WriteString(s[:j])
		} else {
			out.WriteString(s[:i] + with)
		}
		s = s[j:]
	}
}

func revoked(ks []isolation.Key, id string) bool {
	for _, k := range ks {
		if k.ID == id {
			return k.Revoked
		}
	}
	return false
}

func verb(a isolation.Action) string {
	switch a {
	case isolation.ActTableRead, isolation.ActBlobRead, isolation.ActConfigRead:
		return "read"
	case isolation.ActTableWrite, isolation.ActBlobWrite:
		return "write"
	case isolation.ActSecretRead:
		return "decrypt"
	}
	return string(a)
}

func summary(r Report, in Input) []string {
	var s []string
	s = append(s, fmt.Sprintf("This report describes the isolated account of %s (account %s), as of %s.", r.Name, r.Tenant, day(r.Generated)))
	c := r.Contents
	s = append(s, fmt.Sprintf("Your account holds %s, %s, %s and %s; none of it is shared with any other customer.",
		count(len(c.Tables), "table"), count(len(c.Buckets), "storage bucket"), count(len(c.Config), "configuration value"), count(len(c.Secrets), "secret")))
	live := 0
	for _, k := range in.Keys {
		if !k.Revoked && k.Account == r.Tenant {
			live++
		}
	}
	// The operators deploy the functions (the access list says so): the
	// sentence names who can reach the data, not whose code it is.
	fns := "no functions at the moment"
	if len(c.Functions) > 0 {
		fns = "now the functions " + strings.Join(c.Functions, ", ")
	}
	s = append(s, fmt.Sprintf("Only your API keys (%s) and the code your provider deploys to your account (%s) can reach your data; no other customer's account, and nothing in the shared production account, can reach it.", count(live, "active key"), fns))
	if len(r.Shared) > 0 {
		names := make([]string, len(r.Shared))
		for i, sh := range r.Shared {
			names[i] = sh.Export
		}
		s = append(s, fmt.Sprintf("Your functions can read %s that the shared production account publishes for every customer (%s), read-only; nothing in your account can change them.", count(len(names), "shared resource"), strings.Join(names, ", ")))
	} else {
		s = append(s, "Your functions read nothing from the shared production account.")
	}
	if r.Encryption.Fingerprint != "" {
		s = append(s, fmt.Sprintf("Your table values, stored files and secrets are encrypted (%s) under keys that belong to your account alone (data key fingerprint %s); the names of your tables, buckets and secrets, the keys your values and files are stored under, and your configuration values are not, and may be stored as written. The key itself never appears in this report, and deleting your account destroys it.", r.Encryption.Algorithm, short(r.Encryption.Fingerprint)))
	} else {
		s = append(s, "Your account has no data key at the moment.")
	}
	switch {
	case r.Proof.Status == isolation.StatusProved:
		s = append(s, fmt.Sprintf("Isolation was last proved on %s: every isolation rule held for your account and for every other account of this installation.", day(r.Proof.At)))
	case r.Proof.Status == isolation.StatusViolated && len(r.Proof.Counterexamples) > 0:
		s = append(s, fmt.Sprintf("Isolation was last checked on %s and %s involving your account: see Proof and probes below.", day(r.Proof.At), problems(len(r.Proof.Counterexamples))))
	case r.Proof.Status == isolation.StatusViolated && in.Proof.Violations > len(in.Proof.Counterexamples):
		// Past isolation.MaxCounterexamples the proof keeps counting but
		// no longer records which accounts a problem names.
		s = append(s, fmt.Sprintf("Isolation was last checked on %s: the check found more problems in this installation than it records, so it cannot tell whether one involves your account, and it did not prove every rule.", day(r.Proof.At)))
	case r.Proof.Status == isolation.StatusViolated:
		s = append(s, fmt.Sprintf("Isolation was last checked on %s: no problem involves your account, but the check found problems elsewhere in this installation, so it did not prove every rule.", day(r.Proof.At)))
	default:
		s = append(s, fmt.Sprintf("Isolation was last checked on %s but the proof could not be completed, so nothing is claimed from it.", day(r.Proof.At)))
	}
	s = append(s, probeSentence(r.Probe), auditSentence(in.Audit))
	rel := r.Release
	if rel == "" {
		rel = "none yet"
	}
	s = append(s, fmt.Sprintf("Your account runs release %s.", rel))
	return s
}

// auditSentence says what the check of the operators' audit log found.
func auditSentence(a Audit) string {
	if a.Intact {
		return "The operators' actions on this installation are recorded in a hash-chained audit log, which was verified intact, up to its last recorded entry, when this report was made."
	}
	return "The operators' audit log is NOT intact: when this report was made, the check of its hash chain failed (an entry was edited, deleted or cut off, or the log no longer reaches its recorded end), so it cannot be relied on as a record of the operators' actions."
}

// probeSentence says exactly what the last live probe found.
func probeSentence(p Probe) string {
	if p.At == nil {
		return "Live attack probes have not been run against this installation yet."
	}
	na := ""
	if p.NotApplicable > 0 {
		na = fmt.Sprintf(" %s did not apply to this app and were not counted.", count(p.NotApplicable, "control check"))
	}
	switch p.Status {
	case ProbePassed:
		return fmt.Sprintf("Live attack probes last ran on %s: %s to cross accounts, none succeeded; %s showing the probes could see, all succeeded.%s", day(*p.At), count(p.Attempts, "attempt"), count(p.Controls, "control check"), na)
	case ProbeBreached:
		return fmt.Sprintf("Live attack probes last ran on %s and %d of %s to cross accounts succeeded.", day(*p.At), p.Breaches, count(p.Attempts, "attempt"))
	case ProbeInconclusive:
		return fmt.Sprintf("Live attack probes last ran on %s: none of %s to cross accounts succeeded, but %d of %s failed, so the probes could not check everything; this is not a breach, and not proof that there is none.%s", day(*p.At), count(p.Attempts, "attempt"), p.ControlsFailed, count(p.Controls, "control check"), na)
	case ProbeFailed:
		return fmt.Sprintf("Live attack probes last ran on %s and did not pass; the record does not say whether an attempt succeeded or the probes could not check everything.", day(*p.At))
	}
	return "Live attack probes have not been run against this installation yet."
}

func problems(n int) string {
	if n == 1 {
		return "1 problem was found"
	}
	return fmt.Sprintf("%d problems were found", n)
}

func day(t time.Time) string { return t.UTC().Format("2 January 2006 at 15:04 UTC") }

func short(fp string) string {
	if len(fp) > 16 {
		return fp[:16] + "…"
	}
	return fp
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
