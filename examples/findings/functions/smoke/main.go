// Command smoke is the findings app's health check (GET /health), also the
// rollout smoke gate: it answers 200 only if the tenant's findings table and
// the production threat-intel export are both readable.
package main

import (
	"github.com/silo-run/silo/examples/findings/internal/finding"
	"github.com/silo-run/silo/sdk/fn"
)

func init() { fn.Handle(handle) }

func handle(r *fn.Request) *fn.Response {
	if _, err := fn.Table(finding.Table).Scan("", "", 1); err != nil {
		fn.Log.Error("smoke: findings table unreadable", "error", err.Error())
		return finding.Error(503, "findings table unreadable")
	}
	if _, err := fn.Export(finding.Export).Scan("", "", 1); err != nil {
		fn.Log.Error("smoke: threat-intel export unreadable", "error", err.Error())
		return finding.Error(503, "threat-intel export unreadable")
	}
	return fn.JSON(200, map[string]any{"ok": true})
}

func main() {}
