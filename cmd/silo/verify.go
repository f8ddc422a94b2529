package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/probe"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
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

With --server the proof runs on the server, over its fleet. It prints "proved", or each counterexample with the path and the origin of every edge, and exits
with status 1 when isolation is not proved.

With --probe it then attacks the running platform: two throwaway accounts are created on the
current release, and every surface is attacked (gateway host, path and header confusion, one
tenant's key on another, every host call of a function with a traversal corpus, production
reaching tenants, tenants writing production, instance memory residue). Every attack that must
fail is paired with a control that must succeed; a run whose controls fail is a failure. The
throwaway accounts are deleted and verified gone. The result is recorded for the isolation report.`,
		Example: `  silo verify
  silo verify --probe
  silo verify --output json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if live {
				if err := localOnly(g, "silo verify --server URL for the proof; run silo verify --probe on the server's host (it attacks a platform it runs itself)"); err != nil {
					return err
				}
			}
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
			case rep != nil && !rep.OK():
				return silo.Errorf(silo.CodeFailedCheck, "the live probes found a breach or a failed control; see above")
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&live, "probe", false, "also attack the running platform with the live probe suite")
	return cmd
}

// settingLastProbe records the last live probe for the isolation report.
const settingLastProbe = server.SettingLastProbe

// runProbes serves the platform on a random loopback port, runs the probe
// suite against it and records the outcome.
func runProbes(ctx context.Context, g *globals) (probe.Report, error) {
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
	guest, err := probe.BuildGuest(ctx, filepath.Join(p.Config().DataDir, "artifacts"))
	if err != nil {
		return probe.Report{}, err
	}
	rep, err := probe.Run(ctx, probe.Target{
		Gateway: "http://" + p.Addr(), BaseDomain: p.Config().BaseDomain,
		Control: p, Store: p.Store, Provider: p.Provider, Runtime: p.Runtime, Guest: guest,
	})
	if err != nil {
		return rep, err
	}
	now := time.Now().UTC()
	rec := report.Probe{Status: "passed", At: &now, Attempts: rep.Attempts, Controls: rep.Controls}
	if !rep.OK() {
		rec.Status = "failed"
	}
	b, _ := json.Marshal(rec)
	err = p.Store.Update(ctx, func(tx store.Tx) error { return tx.PutSetting(settingLastProbe, string(b)) })
	return rep, err
}

func printResult(w io.Writer, r isolation.Result, took time.Duration) {
	switch r.Status {
	case isolation.StatusProved:
		fmt.Fprintf(w, "proved: I1-I5 hold over %d accounts (%d principals, %d resources, %d access edges) in %s\n",
			r.Accounts, r.Principals, r.Resources, r.Edges, took.Round(time.Millisecond))
		return
	case isolation.StatusIncomplete:
		fmt.Fprintf(w, "incomplete: no counterexample over %d accounts, but not everything could be checked:\n", r.Accounts)
		for _, s := range r.Incomplete {
			fmt.Fprintf(w, "  - %s\n", s)
		}
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

func newReportCmd(g *globals) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "report TENANT",
		Short: "Write a tenant's signed isolation report (HTML or JSON) to stdout",
		Long: `silo report writes the isolation report of one tenant: in plain language, what lives in
its account, who can reach it, what it reads from the shared production account, how its secrets
are encrypted (the data key's fingerprint, never the key), when isolation was last proved and
probed, and the release it runs. It proves the fleet first, so the report is current.

The report is signed with this installation's ed25519 key (created on first use in the data dir,
mode 0600); the public key is in the report. silo report verify FILE checks it. With --server the
server proves its fleet and signs the report with its own key.`,
		Example: `  silo report acme > acme-isolation.html
  silo report acme --format json > acme-isolation.json
  silo report verify acme-isolation.html`,
		Args: exactArgs(1, "a tenant ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if format == "" {
				format = "html"
				if g.json() {
					format = "json"
				}
			}
			if format != "html" && format != "json" {
				return usageError{fmt.Sprintf("--format must be html or json, not %q", format)}
			}
			ctx := cmd.Context()
			id, err := silo.ParseID(args[0])
			if err != nil {
				return err
			}
			api, done, err := openAPI(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			out, err := api.Report(ctx, id, format)
			if err != nil {
				return err
			}
			_, err = g.stdout.Write(out)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", "", "html or json (default html, or json with --output json)")
	cmd.AddCommand(newReportVerifyCmd(g))
	return cmd
}

func newReportVerifyCmd(g *globals) *cobra.Command {
	var pin string
	cmd := &cobra.Command{
		Use:   "verify FILE",
		Short: "Check a signed isolation report (HTML or JSON): intact, and who signed it",
		Long: `silo report verify checks that a report was not changed after it was signed: its signature,
and that every byte of the file is what silo produced. It prints the fingerprint of the signing
key and whether it is this installation's key (in --data-dir), or the one given with --key.
Use - to read the report from stdin.`,
		Args: exactArgs(1, "a report file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var data []byte
			var err error
			if args[0] == "-" {
				data, err = io.ReadAll(g.stdin)
			} else {
				data, err = os.ReadFile(args[0])
			}
			if err != nil {
				return silo.Errorf(silo.CodeInvalid, "cannot read report %s: %v", args[0], unwrapPathErr(err))
			}
			r, err := report.VerifyReport(data)
			if err != nil {
				return err
			}
			signer := report.KeyFingerprint(r.PublicKey)
			want, source := pin, "--key"
			if want == "" {
				source = "this installation's key"
				k, err := report.LoadKey(filepath.Join(g.dataDir, report.KeyFile))
				switch {
				case err == nil:
					want = report.KeyFingerprint(report.PublicKey(k))
				case errors.Is(err, os.ErrNotExist):
					source = ""
				default:
					return err
				}
			}
			out := map[string]any{"valid": true, "tenant": r.Tenant, "generated": r.Generated, "signer": signer}
			if source != "" {
				out["signer_matches"] = want == signer
			}
			if err := g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "intact: isolation report of %s (%s), generated %s\n", r.Name, r.Tenant, r.Generated.Format(time.RFC3339))
				fmt.Fprintf(w, "signed by key %s\n", signer)
				switch {
				case source == "":
					fmt.Fprintf(w, "no installation key to compare with; compare the fingerprint with the one your provider published, or pass --key\n")
				case want == signer:
					fmt.Fprintf(w, "the signer is %s\n", source)
				}
			}); err != nil {
				return err
			}
			if source != "" && want != signer {
				return silo.Errorf(silo.CodeFailedCheck, "the report is intact but was signed by key %s, not %s (%s)", signer, source, want)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&pin, "key", "", "expected signing key fingerprint (hex SHA-256 of the public key)")
	return cmd
}

func unwrapPathErr(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
