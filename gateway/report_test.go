package gateway

import (
	"net/http/httptest"
	"testing"
)

// TestReportFormat: JSON unless the request asks for HTML by query or
// lists text/html before application/json in Accept.
func TestReportFormat(t *testing.T) {
	for _, tc := range []struct{ query, accept, want string }{
		{"", "", "json"},
		{"", "application/json", "json"},
		{"", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", "html"},
		{"", "application/json, text/html", "json"},
		{"", "text/html; charset=utf-8", "html"},
		{"", "*/*", "json"},
		{"", "not a media type, text/html", "html"},
		{"?format=html", "application/json", "html"},
		{"?format=json", "text/html", "json"},
		{"?format=pdf", "", "json"},
	} {
		r := httptest.NewRequest("GET", ReportPath+tc.query, nil)
		if tc.accept != "" {
			r.Header.Set("Accept", tc.accept)
		}
		if got := reportFormat(r); got != tc.want {
			t.Errorf("query %q, Accept %q: %s, want %s", tc.query, tc.accept, got, tc.want)
		}
	}
}
