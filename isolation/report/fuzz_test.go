package report_test

import (
	"testing"

	"github.com/silo-run/silo/isolation/report"
)

// FuzzVerifyReport feeds arbitrary bytes (seeded with a valid JSON and HTML
// report) to VerifyReport: it never panics, and whatever it accepts renders
// back to exactly the input.
func FuzzVerifyReport(f *testing.F) {
	key, err := report.LoadOrCreateKey(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	s, err := report.Sign(report.Report{Format: report.FormatVersion, Tenant: "acme", Name: "Acme"}, key)
	if err != nil {
		f.Fatal(err)
	}
	js, _ := s.JSON()
	page, _ := s.HTML()
	f.Add(js)
	f.Add(page)
	f.Add([]byte("{}"))
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := report.VerifyReport(data)
		if err != nil || v.Report == nil {
			return
		}
		r := *v.Report
		again, err := report.Sign(r, key) // same key only if the input was ours
		if err != nil {
			t.Fatal(err)
		}
		j, _ := again.JSON()
		h, _ := again.HTML()
		if r.PublicKey == report.PublicKey(key) && string(j) != string(data) && string(h) != string(data) {
			t.Fatalf("accepted input that is neither rendering of its report")
		}
	})
}
