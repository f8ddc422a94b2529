package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/server"
)

// doctorReport is what silo doctor found.
type doctorReport struct {
	Registry string `json:"registry,omitempty"` // why the registry cannot be trusted, if it cannot
	Audit    string `json:"audit,omitempty"`    // why the audit log is not intact, if it is not
	// Isolation is what silo verify proves over the fleet (without its
	// probes); nil when the registry cannot be trusted.
	Isolation *isolation.Result `json:"isolation,omitempty"`
	server.DriftReport
}

func newDoctorCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "doctor",
		Short: "Check the control plane and every account's files, and say what is wrong and what to do",
		Long: `Doctor checks that the control-plane registry is not empty while the provider holds
accounts (a lost state.db), that the data dir holds the registry's accounts (with the local
provider: not a data dir other than the installation's, nor one whose account files were lost;
either is reported alone, as the one cause), that every account the provider holds is in the
registry, and, for
every account, that its onboarding or deletion is not left half done, that every file of it
(key ring, config, secrets, resource manifest, table store, blob directories) is intact, and
that what the provider holds matches recorded state; and that the audit log's hash chain is
intact and reaches its witnessed head (as silo audit verify checks); and it runs the isolation
verifier silo verify runs (without --probe) over the fleet, listing each counterexample with its fix. Each finding names the account, the file
and what to do (docs/operations.md has the procedures). It exits non-zero if it found anything.

It first reads the whole control-plane state file (state.db) and checks every page of it, which
other commands do not do (they read only what they need, and refuse a damaged page when they meet
it). On a data dir that silo up or silo server serves it asks that process (whose open table stores
it checked when it opened them); otherwise it opens the data dir itself, even when the registry
was lost, to report.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var rep doctorReport
			if err := checkStateFile(ctx, g); err != nil {
				return err
			}
			c, err := remote(g)
			if err != nil {
				return err
			}
			// verifyAudit is the audit log's check: a broken log is a
			// finding, an unreachable store an error.
			verifyAudit := func(verify func(context.Context) (int, error)) error {
				_, err := verify(ctx)
				if silo.ErrorCode(err) == silo.CodeFailedCheck {
					rep.Audit = silo.UserMessage(err)
					return nil
				}
				return err
			}
			if c != nil {
				if rep.DriftReport, err = c.Drift(ctx, ""); err != nil {
					return err
				}
				if err := verifyAudit(c.VerifyAudit); err != nil {
					return err
				}
				res, err := c.Verify(ctx)
				if err != nil {
					return err
				}
				rep.Isolation = &res
			} else {
				p, err := openPlatform(ctx, g, "", "", func(c *platform.Config) { c.OpenLostRegistry = true })
				if err != nil {
					return err
				}
				defer p.Close()
				if err := p.CheckRegistry(ctx); err != nil {
					// The cause is the whole registry or data dir: what each
					// account's check would suggest (apply it, delete it)
					// would act on the wrong thing.
					rep.Registry = silo.UserMessage(err)
				} else if rep.DriftReport, err = server.FleetDrift(ctx, p.Plane, ""); err != nil {
					return err
				} else if err := verifyAudit(p.Plane.VerifyAudit); err != nil {
					return err
				} else if _, res, err := server.ProveFleet(ctx, p.Store, p.Provider); err != nil {
					return err
				} else {
					rep.Isolation = &res
				}
			}
			n := len(rep.Problems) + len(rep.Orphans) + len(rep.Drift)
			if rep.DataDir != "" {
				n++
			}
			if rep.Provider != "" {
				n++
			}
			if rep.Registry != "" {
				n++
			}
			if rep.Audit != "" {
				n++
			}
			if rep.Isolation != nil {
				n += rep.Isolation.Violations
			}
			ids := make([]silo.AccountID, 0, len(rep.Drift))
			for id := range rep.Drift {
				ids = append(ids, id)
			}
			slices.Sort(ids)
			if err := g.print(rep, func(w io.Writer) {
				if rep.Registry != "" {
					fmt.Fprintf(w, "control plane: %s\n", rep.Registry)
				}
				if rep.Provider != "" {
					fmt.Fprintf(w, "provider: %s\n", rep.Provider)
				}
				if rep.Audit != "" {
					fmt.Fprintf(w, "%s; silo audit verify says the same, and isolation reports say the log is not intact; see docs/operations.md (A broken audit log)\n", rep.Audit)
				}
				printFindings(w, rep.DriftReport)
				for _, id := range ids {
					for _, it := range rep.Drift[id] {
						fmt.Fprintf(w, "%s: %s %s; silo apply %s restores recorded state\n", id, it.Key, it.Kind, id)
					}
				}
				printIsolation(w, rep.Isolation)
				if n == 0 {
					fmt.Fprintf(w, "no problem found in %d account(s)\n", rep.Accounts)
				}
			}); err != nil {
				return err
			}
			if n > 0 {
				return silo.Errorf(silo.CodeFailedCheck, "silo doctor found %d problem(s); each line above says what to do", n)
			}
			return nil
		},
	}
}

// checkStateFile reads the whole of the data dir's state file and checks
// its structure (sqlite.Store.Check), when the data dir is local (no
// --server or $SILO_SERVER) and has one. SQLite lets it read while silo up
// or silo server has the file open.
func checkStateFile(ctx context.Context, g *globals) error {
	if g.server != "" || os.Getenv("SILO_SERVER") != "" {
		return nil
	}
	st, err := openStateReadOnly(ctx, g)
	if silo.ErrorCode(err) == silo.CodeNotFound {
		return nil // nothing to check; the registry check below says what that means
	}
	if err != nil {
		return err
	}
	defer st.Close()
	return checkStore(ctx, st)
}

// printFindings prints, one a line, what a fleet check found beyond
// drift: first why the data dir may be an older copy (which the other
// lines must be read against), then each account's problem and each
// orphan, with what to do.
func printFindings(w io.Writer, rep server.DriftReport) {
	if rep.DataDir != "" {
		fmt.Fprintf(w, "data dir: %s\n", rep.DataDir)
	}
	for _, p := range rep.Problems {
		fmt.Fprintln(w, problemLine(p))
	}
	for _, id := range rep.Orphans {
		fmt.Fprintf(w, "%s: held by the provider but not in the registry; %s\n", id, control.OrphanFix(id))
	}
}

// problemLine is p as one line: the account, the problem and what to do,
// the fix left out when the problem says it already (a provider's message
// that names docs/operations.md, and a fix that says to see it).
func problemLine(p control.Problem) string {
	if p.Fix == "" || strings.Contains(p.Problem, strings.TrimPrefix(p.Fix, "see ")) {
		return fmt.Sprintf("%s: %s", p.Account, p.Problem)
	}
	return p.String()
}

// printIsolation prints what the isolation verifier found: each
// counterexample with its fix, one a line, or that isolation holds (or
// could not be proved completely, and why).
func printIsolation(w io.Writer, r *isolation.Result) {
	if r == nil {
		return
	}
	switch r.Status {
	case isolation.StatusProved:
		fmt.Fprintf(w, "isolation: I1-I5 hold over %d account(s) (silo verify proves the same)\n", r.Accounts)
		return
	case isolation.StatusIncomplete:
		fmt.Fprintf(w, "isolation: no counterexample, but not proved completely (silo verify says the same): %s\n", strings.Join(r.Incomplete, "; "))
		return
	}
	for _, c := range r.Counterexamples {
		fix := c.Fix
		if fix == "" {
			fix = "see docs/operations.md (A fleet the isolation gate refuses)"
		}
		fmt.Fprintf(w, "isolation: %s: %s; repair: %s\n", c.Invariant, c.Problem, fix)
	}
	if more := r.Violations - len(r.Counterexamples); more > 0 {
		fmt.Fprintf(w, "isolation: ... and %d more; silo verify lists every one\n", more)
	}
}
