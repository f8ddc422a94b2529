// Package report makes the signed per-tenant isolation report: in plain
// language first, what lives in a tenant's account, who can reach it, what it
// reads from the shared production account, how its secrets are encrypted,
// when isolation was last proved and probed, and the release it runs. A
// report is JSON or a self-contained printable HTML page, signed with the
// installation's ed25519 key; VerifyReport checks either form, byte for
// byte.
//
// It imports the root silo package, isolation, and the provider and store
// contracts; it must not import runtime, gateway, or any store or provider
// implementation.
package report

import (
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/provider"
)

// FormatVersion is the version of the report format.
const FormatVersion = 1

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
	// PublicKey is the installation's ed25519 public key, base64; the report
	// is signed with the matching private key.
	PublicKey string `json:"public_key"`
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

// Proof is the last static proof of isolation over the fleet.
type Proof struct {
	Status          isolation.Status `json:"status"`
	At              time.Time        `json:"at"`
	Accounts        int              `json:"accounts"`
	Edges           int              `json:"edges"`
	Violations      int              `json:"violations"`
	Counterexamples []string         `json:"counterexamples"` // those involving this account
}

// Probe is the last live probe of isolation.
type Probe struct {
	Status   string     `json:"status"` // "not run", "passed", "failed"
	At       *time.Time `json:"at"`
	Attempts int        `json:"attempts"`
	Controls int        `json:"controls"`
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
	Now   time.Time
}

// Build makes the report of one account. It does not sign it.
func Build(ctx context.Context, in Input) Report {
	a := in.Account
	r := Report{
		Format: FormatVersion, Tenant: a.ID, Name: a.Name, Kind: a.Kind, State: a.State, Release: a.Release,
		Generated:  in.Now.UTC().Truncate(time.Second),
		Encryption: Encryption(in.DataKey),
		Proof: Proof{Status: in.Proof.Status, At: in.ProvedAt.UTC().Truncate(time.Second), Accounts: in.Proof.Accounts,
			Edges: in.Proof.Edges, Violations: in.Proof.Violations, Counterexamples: []string{}},
		Probe: Probe{Status: "not run"},
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
	r.Access = append(r.Access, Access{Who: "the silo control plane (operators)", Can: "create, update, suspend and delete your account, deploy releases to it, set secrets (write-only) and issue or revoke keys; it cannot read your data or your secrets", Origin: cp.Origin})
	r.Shared = []Shared{}
	for _, name := range sortedKeys(shared) {
		r.Shared = append(r.Shared, Shared{Export: name, ReadBy: shared[name], Mode: "read-only"})
	}
	for _, ce := range in.Proof.Involving(a.ID) {
		r.Proof.Counterexamples = append(r.Proof.Counterexamples, ce.Invariant+": "+ce.Problem)
	}
	r.Summary = summary(r, in)
	return r
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
	fns := "no functions"
	if len(c.Functions) > 0 {
		fns = "your own functions (" + strings.Join(c.Functions, ", ") + ")"
	}
	s = append(s, fmt.Sprintf("Only %s and your own API keys (%s) can reach your data; no other customer's account, and nothing in the shared production account, can reach it.", fns, count(live, "active key")))
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
		s = append(s, fmt.Sprintf("Your secrets are encrypted (%s) under a data key that belongs to your account alone (fingerprint %s); the key itself never appears in this report, and deleting your account destroys it.", r.Encryption.Algorithm, short(r.Encryption.Fingerprint)))
	} else {
		s = append(s, "Your account has no data key at the moment.")
	}
	switch r.Proof.Status {
	case isolation.StatusProved:
		s = append(s, fmt.Sprintf("Isolation was last proved on %s across all %d accounts: every isolation rule held.", day(r.Proof.At), r.Proof.Accounts))
	case isolation.StatusViolated:
		s = append(s, fmt.Sprintf("Isolation was last checked on %s across all %d accounts and problems were found: %d in total, %d involving your account.", day(r.Proof.At), r.Proof.Accounts, r.Proof.Violations, len(r.Proof.Counterexamples)))
	default:
		s = append(s, fmt.Sprintf("Isolation was last checked on %s but the proof could not be completed.", day(r.Proof.At)))
	}
	switch r.Probe.Status {
	case "passed":
		s = append(s, fmt.Sprintf("Live attack probes last ran on %s: %d attempts to cross accounts, none succeeded; %d control checks, all succeeded.", day(*r.Probe.At), r.Probe.Attempts, r.Probe.Controls))
	case "failed":
		s = append(s, fmt.Sprintf("Live attack probes last ran on %s and at least one attempt to cross accounts succeeded.", day(*r.Probe.At)))
	default:
		s = append(s, "Live attack probes have not been run against this installation yet.")
	}
	rel := r.Release
	if rel == "" {
		rel = "none yet"
	}
	s = append(s, fmt.Sprintf("Your account runs release %s.", rel))
	return s
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

// Signed is a report with its signature: the ed25519 signature, base64, of
// the canonical JSON of Report (json.Marshal), by the key in
// Report.PublicKey.
type Signed struct {
	Report    Report `json:"report"`
	Signature string `json:"signature"`
}

// Sign signs r with key, setting r.PublicKey.
func Sign(r Report, key ed25519.PrivateKey) (Signed, error) {
	r.PublicKey = base64.StdEncoding.EncodeToString(key.Public().(ed25519.PublicKey))
	b, err := json.Marshal(r)
	if err != nil {
		return Signed{}, fmt.Errorf("encode report: %w", err)
	}
	return Signed{Report: r, Signature: base64.StdEncoding.EncodeToString(ed25519.Sign(key, b))}, nil
}

// KeyFingerprint returns the SHA-256 of a base64 public key, hex, for people
// to compare.
func KeyFingerprint(pub string) string {
	b, _ := base64.StdEncoding.DecodeString(pub)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// JSON returns the JSON form of a signed report (indented, newline-ended).
func (s Signed) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(s, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode report: %w", err)
	}
	return append(b, '\n'), nil
}

func (s Signed) check() error {
	pub, err := base64.StdEncoding.DecodeString(s.Report.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize {
		return silo.Errorf(silo.CodeFailedCheck, "the report carries no valid public key; it was damaged or edited")
	}
	sig, err := base64.StdEncoding.DecodeString(s.Signature)
	if err != nil {
		return silo.Errorf(silo.CodeFailedCheck, "the report's signature is unreadable; it was damaged or edited")
	}
	b, err := json.Marshal(s.Report)
	if err != nil {
		return fmt.Errorf("encode report: %w", err)
	}
	if !ed25519.Verify(pub, b, sig) {
		return silo.Errorf(silo.CodeFailedCheck, "the report's signature does not match its content; it was changed after it was signed")
	}
	return nil
}

// VerifyReport checks a report in JSON or HTML form: the signature over its
// content, and that the file is exactly what silo produced from that
// content, so that any edit of any byte is detected. It returns the report;
// compare Report.PublicKey (KeyFingerprint) with the installation's key to
// know who signed it.
//
// # Errors
//
// CodeFailedCheck with one sentence saying what is wrong.
func VerifyReport(data []byte) (Report, error) {
	trimmed := strings.TrimSpace(string(data))
	var s Signed
	var err error
	if strings.HasPrefix(trimmed, "{") {
		s, err = decodeSigned(data)
		if err != nil {
			return Report{}, err
		}
		if err := s.check(); err != nil {
			return Report{}, err
		}
		want, err := s.JSON()
		if err != nil {
			return Report{}, err
		}
		if string(want) != string(data) {
			return Report{}, silo.Errorf(silo.CodeFailedCheck, "the report file differs from what silo signed (it was edited or reformatted)")
		}
		return s.Report, nil
	}
	s, err = signedFromHTML(data)
	if err != nil {
		return Report{}, err
	}
	if err := s.check(); err != nil {
		return Report{}, err
	}
	want, err := s.HTML()
	if err != nil {
		return Report{}, err
	}
	if string(want) != string(data) {
		return Report{}, silo.Errorf(silo.CodeFailedCheck, "the visible page differs from the signed report it carries (the HTML was edited)")
	}
	return s.Report, nil
}

func decodeSigned(b []byte) (Signed, error) {
	var s Signed
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Signed{}, silo.Errorf(silo.CodeFailedCheck, "the report is not a silo isolation report (%v)", err)
	}
	if s.Report.Format != FormatVersion {
		return Signed{}, silo.Errorf(silo.CodeFailedCheck, "the report has format %d; this silo reads format %d", s.Report.Format, FormatVersion)
	}
	return s, nil
}
