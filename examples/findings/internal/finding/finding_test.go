package finding_test

import (
	"strings"
	"testing"

	"github.com/silo-run/silo/examples/findings/internal/finding"
	"github.com/silo-run/silo/sdk/fn"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name, body string
		wantErr    []string // substrings of the error; nil means valid
	}{
		{"minimal", `{"severity":"high"}`, nil},
		{"full", `{"severity":"Critical","app":"GitHub","title":"t","cve":"cve-2024-3094"}`, nil},
		{"bad severity", `{"severity":"urgent"}`, []string{"severity"}},
		{"every problem at once", `{"severity":"x","app":"a b","cve":"nope"}`, []string{"severity", "app", "cve"}},
		{"unknown field", `{"severity":"low","owner":"me"}`, []string{"owner"}},
		{"not json", `severity=high`, []string{"not a finding"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			in, err := finding.Parse([]byte(tc.body))
			if tc.wantErr == nil {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				if !finding.ValidSeverity(in.Severity) || in.App != strings.ToLower(in.App) {
					t.Errorf("not normalized: %+v", in)
				}
				return
			}
			if err == nil {
				t.Fatalf("got valid %+v, want an error", in)
			}
			for _, w := range tc.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not mention %q", err, w)
				}
			}
		})
	}
}

func TestEnrich(t *testing.T) {
	fn.LocalReset()
	fn.SetLocalExport(finding.Export, "app:github", []byte(`{"threat_level":"elevated"}`))
	fn.SetLocalExport(finding.Export, "cve:CVE-2024-3094", []byte(`{"threat_level":"critical","known_exploited":true}`))
	f := finding.Finding{App: "github", CVE: "CVE-2024-3094"}
	if err := finding.Enrich(&f); err != nil {
		t.Fatal(err)
	}
	if len(f.Intel) != 2 || f.Intel[0].ThreatLevel != "elevated" || !f.Intel[1].KnownExploited {
		t.Errorf("got %+v, want both records", f.Intel)
	}
	g := finding.Finding{App: "unknown"}
	if err := finding.Enrich(&g); err != nil || len(g.Intel) != 0 {
		t.Errorf("unknown app: got %+v, %v, want no intel and no error", g.Intel, err)
	}
}
