package isolation

import (
	"context"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation/iam"
)

// IAMSource is a provider whose isolation rests on IAM (the AWS provider):
// it reads the policies AWS enforces in every account it manages.
type IAMSource interface {
	IAMSnapshot(ctx context.Context) (iam.Snapshot, error)
}

// Node kinds of the IAM part of a counterexample.
const (
	NodeIAMPrincipal NodeKind = "iam-principal"
	NodeIAMRole      NodeKind = "iam-role"
	NodeAWSResource  NodeKind = "aws-resource"
)

// ProveIAM adds to r the proof of I1–I3 on the IAM policies of prov, if
// prov is an IAMSource (else r is returned unchanged): each counterexample
// of iam.Verify becomes one of r, and a policy outside the evaluated subset
// or unreadable makes r incomplete, never proved.
func ProveIAM(ctx context.Context, prov any, r Result) Result {
	src, ok := prov.(IAMSource)
	if !ok {
		return r
	}
	snap, err := src.IAMSnapshot(ctx)
	if err != nil {
		r.Incomplete = append(r.Incomplete, "IAM: the policies could not be read ("+silo.UserMessage(err)+"), so I1-I3 are not proved on AWS")
		if r.Status == StatusProved {
			r.Status = StatusIncomplete
		}
		return r
	}
	res := iam.Verify(snap)
	r.Principals += res.Principals
	r.Resources += res.Resources
	r.Edges += res.Checked
	for _, u := range res.Unverifiable {
		r.Incomplete = append(r.Incomplete, "IAM: "+u)
	}
	for _, f := range res.Findings {
		r.Violations++
		if len(r.Counterexamples) < MaxCounterexamples {
			r.Counterexamples = append(r.Counterexamples, iamCounterexample(f))
		}
	}
	switch {
	case r.Violations > 0:
		r.Status = StatusViolated
	case len(r.Incomplete) > 0:
		r.Status = StatusIncomplete
	}
	return r
}

// iamCounterexample shows a finding as a path: the principal, each role it
// assumes, then the resource.
func iamCounterexample(f iam.Finding) Counterexample {
	from := Node{Kind: NodeIAMPrincipal, Name: f.Principal}
	var path []Edge
	for _, role := range f.Via {
		to := Node{Account: silo.AccountID(awsAccountOf(role)), Kind: NodeIAMRole, Name: role}
		path = append(path, Edge{From: from, To: to, Action: "sts:AssumeRole", Origin: "trust policy of " + role})
		from = to
	}
	to := Node{Account: silo.AccountID(f.Account), Kind: NodeAWSResource, Name: f.Resource}
	if f.Action == "sts:AssumeRole" {
		to.Kind = NodeIAMRole
	}
	path = append(path, Edge{From: from, To: to, Action: Action(f.Action), Origin: strings.Join(f.Because, "; ")})
	return Counterexample{Invariant: f.Invariant, Problem: "on AWS IAM: " + f.Problem, Path: path}
}

// awsAccountOf returns the account ID field of an ARN.
func awsAccountOf(arn string) string {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) < 5 {
		return ""
	}
	return parts[4]
}
