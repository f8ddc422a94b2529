package silotest_test

import (
	"fmt"
	"strings"

	"github.com/silo-run/silo/silotest"
)

// Example starts the platform, deploys the example app, creates a tenant and
// calls its routes over real HTTP. In a test, pass the *testing.T instead of
// Standalone's TB.
func Example() {
	t, done := silotest.Standalone()
	defer done()

	p := silotest.New(t)
	p.Deploy(t, "../examples/findings")
	acme := p.Tenant(t, "acme", silotest.Param("plan", "pro"))
	globex := p.Tenant(t, "globex")

	resp := acme.POST(t, "/findings", `{"severity":"high","app":"github","title":"leaked token"}`)
	fmt.Println("ingest:", resp.Status)

	var list struct{ Count int }
	acme.GET(t, "/findings?severity=high").JSON(t, &list)
	fmt.Println("acme's high findings:", list.Count)

	fmt.Println("globex's key on acme:", acme.GET(t, "/findings", silotest.WithKey(globex.Key)).Status)

	for _, e := range p.Logs(t, "acme") {
		if e.Function == "ingest" && strings.HasPrefix(e.Msg, "finding stored") {
			fmt.Println("log:", e.Level, e.Msg, "request_id matches:", e.RequestID == resp.RequestID)
		}
	}
	fmt.Println("acme requests metered:", p.Metrics("acme").Requests) // globex's refused request is not acme's
	// Output:
	// ingest: 201
	// acme's high findings: 1
	// globex's key on acme: 403
	// log: INFO finding stored request_id matches: true
	// acme requests metered: 2
}
