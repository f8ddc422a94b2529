// Command ingest is the findings app's POST /findings function: it validates
// a finding, enriches it from the production threat-intel export, marks it
// "remediation available" when the tenant has set its github-token secret,
// and stores it in the tenant's findings table.
package main

import (
	"errors"

	"github.com/silo-run/silo/examples/findings/internal/finding"
	"github.com/silo-run/silo/sdk/fn"
)

func init() { fn.Handle(handle) }

func handle(r *fn.Request) *fn.Response {
	in, err := finding.Parse(r.Body)
	if err != nil {
		fn.Log.Warn("rejected finding", "reason", err.Error())
		return finding.Error(400, err.Error())
	}
	f := finding.Finding{
		ID: finding.NewID(), Severity: in.Severity, App: in.App, Title: in.Title,
		CVE: in.CVE, Description: in.Description, Status: "open", RequestID: r.ID,
		Remediation: "manual",
	}
	if err := finding.Enrich(&f); err != nil {
		fn.Log.Error("enrichment failed", "error", err.Error())
		return finding.Error(503, "threat intelligence is unavailable; try again")
	}
	tok, err := fn.Secret("github-token")
	switch {
	case err == nil && len(tok) > 0:
		f.Remediation = "available"
	case err != nil && !errors.Is(err, fn.ErrNotFound):
		fn.Log.Warn("cannot read github-token", "error", err.Error())
	}
	b := finding.AppendJSON(make([]byte, 0, 512), &f)
	if err := fn.Table(finding.Table).Put(f.ID, b); err != nil {
		fn.Log.Error("store finding failed", "error", err.Error())
		return finding.Error(503, "the finding could not be stored; try again")
	}
	fn.Log.Info("finding stored", "id", f.ID, "severity", f.Severity, "app", f.App, "intel", len(f.Intel))
	return fn.Bytes(201, "application/json", b)
}

func main() {}
