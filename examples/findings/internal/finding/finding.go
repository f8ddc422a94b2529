// Package finding is the data model of the findings example app, shared by
// its functions: a finding as stored in the tenant's findings table, its
// validation, and its enrichment from the production account's threat-intel
// export. It imports only the standard library and sdk/fn, so it builds for
// GOOS=wasip1 and can be unit-tested on the host with fn.Call.
package finding

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/silo-run/silo/sdk/fn"
)

// Table is the tenant's findings table; Export the production export.
const (
	Table  = "findings"
	Export = "threat-intel"
)

// Severities, most severe first.
var Severities = []string{"critical", "high", "medium", "low", "info"}

// Finding is one security finding of a tenant.
type Finding struct {
	ID          string `json:"id"`
	Severity    string `json:"severity"`
	App         string `json:"app,omitempty"`
	Title       string `json:"title,omitempty"`
	CVE         string `json:"cve,omitempty"`
	Description string `json:"description,omitempty"`
	Status      string `json:"status"`
	// Intel is what the production threat-intel export says about the app
	// and the CVE, if anything.
	Intel []Intel `json:"intel,omitempty"`
	// Remediation is "available" when the tenant granted a GitHub token for
	// automatic remediation, else "manual".
	Remediation string `json:"remediation,omitempty"`
	RequestID   string `json:"request_id,omitempty"`
}

// Intel is one threat-intel record.
type Intel struct {
	Key            string `json:"key"`
	ThreatLevel    string `json:"threat_level,omitempty"`
	KnownExploited bool   `json:"known_exploited,omitempty"`
	Note           string `json:"note,omitempty"`
	Source         string `json:"source,omitempty"`
}

// Input is the body of POST /findings.
type Input struct {
	Severity    string `json:"severity"`
	App         string `json:"app"`
	Title       string `json:"title"`
	CVE         string `json:"cve"`
	Description string `json:"description"`
}

// Parse decodes and validates a POST body. Every problem is reported at once.
func Parse(body []byte) (Input, error) {
	var in Input
	dec := json.NewDecoder(strings.NewReader(string(body)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&in); err != nil {
		return in, fmt.Errorf("body is not a finding: %v; send JSON such as {\"severity\":\"high\",\"app\":\"github\",\"title\":\"...\"}", err)
	}
	var problems []string
	in.Severity = strings.ToLower(strings.TrimSpace(in.Severity))
	if !ValidSeverity(in.Severity) {
		problems = append(problems, fmt.Sprintf("severity %q is not one of %s", clip(in.Severity), strings.Join(Severities, ", ")))
	}
	in.App = strings.ToLower(strings.TrimSpace(in.App))
	if len(in.App) > 64 || strings.ContainsAny(in.App, " /:") {
		problems = append(problems, "app must be a short name without spaces, '/' or ':' (e.g. github)")
	}
	if len(in.Title) > 200 {
		problems = append(problems, "title is longer than 200 characters")
	}
	if len(in.Description) > 4000 {
		problems = append(problems, "description is longer than 4000 characters")
	}
	in.CVE = strings.ToUpper(strings.TrimSpace(in.CVE))
	if in.CVE != "" && (!strings.HasPrefix(in.CVE, "CVE-") || len(in.CVE) > 32) {
		problems = append(problems, fmt.Sprintf("cve %q is not a CVE ID such as CVE-2024-3094", clip(in.CVE)))
	}
	if len(problems) > 0 {
		return in, errors.New(strings.Join(problems, "; "))
	}
	return in, nil
}

// ValidSeverity reports whether s is one of Severities.
func ValidSeverity(s string) bool {
	for _, v := range Severities {
		if s == v {
			return true
		}
	}
	return false
}

// NewID returns a fresh random finding ID.
func NewID() string {
	var b [8]byte
	rand.Read(b[:])
	return "f-" + hex.EncodeToString(b[:])
}

// Enrich looks the finding's app and CVE up in the production threat-intel
// export. A missing record is not an error.
func Enrich(f *Finding) error {
	var keys []string
	if f.App != "" {
		keys = append(keys, "app:"+f.App)
	}
	if f.CVE != "" {
		keys = append(keys, "cve:"+f.CVE)
	}
	for _, k := range keys {
		b, err := fn.Export(Export).Get(k)
		if errors.Is(err, fn.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read threat intel %s: %w", k, err)
		}
		it := Intel{Key: k}
		if err := DecodeIntel(b, &it); err != nil {
			continue // a malformed record is skipped, not fatal
		}
		it.Key = k
		f.Intel = append(f.Intel, it)
	}
	return nil
}

// Error is the JSON error body of the example's functions.
func Error(status int, msg string) *fn.Response {
	return fn.Bytes(status, "application/json", ErrorBody(make([]byte, 0, len(msg)+32), msg))
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:37] + "..."
	}
	return s
}
