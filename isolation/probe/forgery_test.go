package probe

import (
	"crypto/ed25519"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/silo-run/silo/isolation/report"
)

// TestForgeryAttemptJudgesTheVerifier: the forgery attempt counts a report
// the verifier accepts as signed by a pinned key as a success (the twin
// that shows the surface can see a breach), and a report with nothing
// pinned as "not checked", never accepted.
func TestForgeryAttemptJudgesTheVerifier(t *testing.T) {
	_, key, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	_, other, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	pinned := []string{report.Fingerprint(key.Public().(ed25519.PublicKey))}
	rep := report.Report{Format: report.FormatVersion, Tenant: "acme", Name: "Acme", Generated: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Audit: &report.Audit{Intact: true}}
	signed, err := report.Sign(rep, key)
	if err != nil {
		t.Fatal(err)
	}
	byOther, err := report.Sign(rep, other)
	if err != nil {
		t.Fatal(err)
	}
	tampered := signed
	tampered.Report.Name = "Globex"
	tests := []struct {
		name        string
		s           report.Signed
		pinned      []string
		wantOutcome string
		wantBreach  bool
	}{
		{"signed by the pinned key", signed, pinned, "accepted", true},
		{"signed by another key", byOther, pinned, "refused: signer not trusted", false},
		{"nothing pinned", byOther, nil, "intact, signer not checked", false},
		{"edited after signing", tampered, pinned, "refused: not intact", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tl := newTally("report", "")
			(&run{}).forgeryAttempt(tl, "x", tt.s, tt.pinned)
			got := tl.s.Outcomes
			if diff := cmp.Diff(map[string]int{tt.wantOutcome: 1}, got); diff != "" {
				t.Errorf("outcomes (-want +got):\n%s", diff)
			}
			if gotBreach := tl.s.AttemptsSucceeded == 1; gotBreach != tt.wantBreach {
				t.Errorf("got breach %v, want %v", gotBreach, tt.wantBreach)
			}
		})
	}
}
