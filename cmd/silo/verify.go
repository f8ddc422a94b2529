package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/probe"
)

func newVerifyCmd(g *globals) *cobra.Command {
	var live bool
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Prove that no tenant can reach another tenant's data (invariants I1-I5), or print counterexamples",
		Long: `silo verify builds the access graph of the whole fleet from recorded state: every function,
API key and operator, every table, bucket, config value, secret, route and production export, and
every grant between them with where it comes from (silo.yaml, a key binding, the control plane).
It then checks the isolation invariants:

  I1  a principal of account A reaches only A's resources, plus production exports read-only
  I2  nothing in the production account reaches any other account
  I3  the control plane never reads tenant data or secret values
  I4  every API key is bound to exactly one account and reaches nothing else
  I5  a deleted account holds no live key and no data key

With the AWS provider it also reads the IAM, bucket, table and key policies AWS enforces in every
account and proves I1-I3 on them; a policy outside the IAM subset it evaluates makes the result
incomplete, never proved (docs/aws.md).

With --server the proof runs on the server, over its fleet. It prints "proved", or each counterexample with the path and the origin of every edge, and exits
with status 1 when isolation is not proved.

With --probe it then attacks the running platform: the silo up or silo server serving the data
dir (or the server --server names) runs the probes against its own gateway; when nothing serves
the data dir, silo verify starts the platform on a loopback port for the run. Throwaway
accounts are created on the current release, and every surface is attacked (gateway host, path and header confusion, one
tenant's key on another, every host call of a function with a traversal corpus, production
reaching tenants, tenants writing production, instance memory residue, modules that would make
the host allocate too much per instance deployed, canaries of a deleted account read back through
an account re-created with its ID, forged isolation reports verified). Every attack that must
fail is paired with a control that must succeed; a run whose controls fail is a failure. The
throwaway accounts are deleted and verified gone. The outcome is passed, breached (an attempt
succeeded) or inconclusive (a control failed: the probes could not check everything, which is
not a breach); controls that do not apply to the app (reads of production exports when
production exports nothing) are listed as not applicable. It is recorded for the isolation report.`,
		Example: `  silo verify
  silo verify --probe
  silo verify --output json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			api, done, err := openAPI(cmd.Context(), g)
			if err != nil {
				return err
			}
			start := time.Now()
			res, err := api.Verify(cmd.Context())
			done()
			if err != nil {
				return err
			}
			took := time.Since(start)
			var rep *probe.Report
			if live && res.Status == isolation.StatusProved {
				r, err := runProbes(cmd.Context(), g)
				if err != nil {
					return err
				}
				rep = &r
			}
			out := map[string]any{"proof": res}
			if rep != nil {
				out["probe"] = rep
			}
			if err := g.print(out, func(w io.Writer) {
				printResult(w, res, took)
				if rep != nil {
					fmt.Fprintln(w)
					rep.Text(w)
				}
			}); err != nil {
				return err
			}
			switch {
			case res.Status == isolation.StatusViolated:
				return silo.Errorf(silo.CodeFailedCheck, "isolation is not proved: %d counterexample(s); fix the grants named above and run silo verify again", res.Violations)
			case res.Status != isolation.StatusProved:
				return silo.Errorf(silo.CodeFailedCheck, "isolation could not be proved completely; see the notes above")
			case rep != nil && rep.Outcome() == probe.OutcomeBreached:
				return silo.Errorf(silo.CodeFailedCheck, "the live probes found a breach: %d attempt(s) to cross accounts succeeded; see above", rep.AttemptsSucceeded)
			case rep != nil && !rep.OK():
				return silo.Errorf(silo.CodeFailedCheck, "the live probes were inconclusive: no attempt succeeded, but they could not check everything (see the failed controls above); this is not a breach")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&live, "probe", false, "also attack the running platform with the live probe suite")
	return cmd
}

// runProbes runs the live probe suite where the platform runs: in the silo
// up or silo server serving the data dir (or the one --server names),
// against its own gateway; else in a platform this command opens and serves
// on a random loopback port. Running it beside a serving process would
// open the account stores that process holds.
func runProbes(ctx context.Context, g *globals) (probe.Report, error) {
	c, err := remote(g)
	if err != nil {
		return probe.Report{}, err
	}
	if c != nil {
		var rep probe.Report
		err := c.Probe(ctx, &rep)
		return rep, err
	}
	p, err := openPlatform(ctx, g, "127.0.0.1:0", "")
	if err != nil {
		return probe.Report{}, err
	}
	defer p.Close()
	ln, err := p.Listen()
	if err != nil {
		return probe.Report{}, err
	}
	sctx, stop := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() { served <- p.Serve(sctx, ln) }()
	defer func() { stop(); <-served }()
	return p.Probe(ctx)
}

func printResult(w io.Writer, r isolation.Result, took time.Duration) {
	switch r.Status {
	case isolation.StatusProved:
		fmt.Fprintf(w, "proved: I1-I5 hold over %d accounts (%d principals, %d resources, %d access edges) in %s\n",
			r.Accounts, r.Principals, r.Resources, r.Edges, took.Round(time.Millisecond))
		printDeleted(w, r)
		return
	case isolation.StatusIncomplete:
		fmt.Fprintf(w, "incomplete: no counterexample over %d accounts, but not everything could be checked:\n", r.Accounts)
		for _, s := range r.Incomplete {
			fmt.Fprintf(w, "  - %s\n", s)
		}
		printDeleted(w, r)
		return
	}
	fmt.Fprintf(w, "NOT PROVED: %d counterexample(s) over %d accounts (%d access edges)\n", r.Violations, r.Accounts, r.Edges)
	for i, c := range r.Counterexamples {
		fmt.Fprintf(w, "\n%d. %s\n", i+1, c)
	}
	if r.Violations > len(r.Counterexamples) {
		fmt.Fprintf(w, "\n... and %d more\n", r.Violations-len(r.Counterexamples))
	}
}

// printDeleted says what of the deleted accounts was checked besides the
// accounts counted: for I5 only, so they are not in those counts. A
// deleted account whose ID a new account took is not among them: its row
// and keys were removed as the ID was taken (engine.CreateAccountThen), so
// no key of it is left to be live.
func printDeleted(w io.Writer, r isolation.Result) {
	if r.Deleted > 0 {
		fmt.Fprintf(w, "also checked for I5: %d key(s) of %d deleted account(s), not counted above; a deleted account whose ID was used again is not among them (its keys were removed when the ID was taken)\n", r.DeletedKeys, r.Deleted)
	}
}
