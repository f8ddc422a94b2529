package isolation_test

import (
	"context"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
)

// edgeRequest turns a function's data edge into the request the decision
// point would see for it.
func edgeRequest(e isolation.Edge) (isolation.Request, bool) {
	if e.From.Kind != isolation.NodeFunction {
		return isolation.Request{}, false
	}
	return isolation.Request{
		Principal: isolation.Principal{Kind: isolation.PrincipalFunction, Account: e.From.Account, Name: e.From.Name},
		Action:    e.Action,
		Resource:  isolation.Resource{Account: e.To.Account, Type: silo.ResourceType(e.To.Kind), Name: e.To.Name},
	}, true
}

// TestVerifierAndDecisionPointAgree checks that the verifier and the
// decision point read grants the same way: every function edge of a proved
// fleet is allowed, and for each mutation, every edge the verifier flags is
// denied by the policy compiled from the mutated fleet (or the policy
// refuses to compile) — an over-broad grant that slipped past a gate would
// still not be honored at run time.
func TestVerifierAndDecisionPointAgree(t *testing.T) {
	ctx := context.Background()
	base := testFleet(t, 3)
	pol, err := isolation.PolicyFromFleet(base)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range isolation.BuildGraph(ctx, base) {
		if req, ok := edgeRequest(e); ok {
			n++
			if d := pol.Decide(req); !d.Allow {
				t.Errorf("proved edge %v denied: %v", e, d.Reasons)
			}
		}
	}
	if n == 0 {
		t.Fatal("no function edges")
	}
	checked := 0
	for _, m := range mutations() {
		t.Run(m.name, func(t *testing.T) {
			f := base.Clone()
			m.do(t, f)
			mpol, err := isolation.PolicyFromFleet(f)
			if err != nil {
				return // the decision point refuses the mutated fleet outright
			}
			for _, c := range isolation.Verify(ctx, f).Counterexamples {
				last := c.Path
				if len(last) == 0 {
					continue
				}
				if req, ok := edgeRequest(last[len(last)-1]); ok {
					checked++
					if d := mpol.Decide(req); d.Allow {
						t.Errorf("flagged edge %v is allowed by the decision point (%v)", last[len(last)-1], d.Reasons)
					}
				}
			}
		})
	}
	t.Logf("%d proved edges allowed; %d flagged edges denied", n, checked)
}
