package main

import (
	"context"
	"fmt"
	"io"
	"reflect"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

func newApplyCmd(g *globals) *cobra.Command {
	var all, yes, retry bool
	var planFile string
	cmd := &cobra.Command{
		Use:   "apply [ACCOUNT | --all]",
		Short: "Build silo.yaml into a release, make it current and apply it",
		Long: `Apply builds the release from silo.yaml, makes it the current release, creates the
production account if needed, and applies the release to one account (and the production
account) or the whole fleet with bounded concurrency. Before every provider call an intent is
committed to the journal; an interrupted apply is recovered on the next start.

A change that destroys data (deleting or replacing a table, bucket or secret) is applied only when
confirmed: typed at a terminal, for the list shown (if planning again after the answer finds
other data to destroy, nothing changes; an account that, planned again as the apply reaches it,
would destroy what the list did not show is not changed, and the apply fails naming it), or
--yes, for whatever the plan finds as it runs. silo
plan --all --out FILE saves a plan; silo apply --plan FILE applies exactly those changes, and
refuses if any account changed since or if the file's changes are not what silo plans now
(an edited file).

The release passes the isolation gate before it becomes current. A release whose latest rollout
failed (silo rollout list) is refused unless --retry-failed confirms it: apply puts it on every
account it applies to at once, with no ring and no health gate.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if planFile != "" {
				if all || len(args) > 0 {
					return usageError{"--plan applies the saved plan's accounts; give no account and no --all; see silo apply --help"}
				}
				all = true // for the checks below; the saved plan says what changes
			}
			f, one, err := targetFilter(all, args)
			if err != nil {
				return err
			}
			if err := localOnly(g, "against the server use silo deploy (it builds here, uploads the release and rolls it out ring by ring)"); err != nil {
				return err
			}
			if err := notServed(g, "use silo deploy, which rolls the release out through it, or stop that process first"); err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := openApp(ctx, g)
			if err != nil {
				return err
			}
			defer a.Close()
			if planFile != "" {
				sp, err := readSavedPlan(planFile)
				if err != nil {
					return err
				}
				results, err := applySaved(ctx, g, a, sp, yes, retry)
				if err != nil && len(results) == 0 {
					return err
				}
				if perr := printApplied(g, sp.Release, results, nil); perr != nil {
					return perr
				}
				return err
			}
			// Everything is checked before anything changes: the account,
			// the build, the plan, and the user's word for destroying data.
			var acct silo.Account
			if one != "" {
				if acct, err = a.plane.Account(ctx, one); err != nil {
					return err
				}
			}
			rel, keep, err := a.prepare(ctx, g, store.Origin{Kind: store.OriginDeploy})
			if err != nil {
				return err
			}
			if err := a.reship(ctx, rel.ID, retry); err != nil {
				return err
			}
			plans, err := applyPlans(ctx, a, rel, one)
			if err != nil {
				return err
			}
			confirmed := silo.Losses(plans)
			if len(confirmed) > 0 {
				if err := g.confirmLosses(yes, "this apply destroys data", confirmed); err != nil {
					return err
				}
				if !yes {
					// Typed at a terminal: go ahead only for what was shown.
					if err := sameLosses(ctx, a, rel, one, confirmed); err != nil {
						return err
					}
				}
			}
			// Each account is planned again as it is applied: without
			// --yes, a plan that then destroys what was not confirmed
			// (nothing, when nothing was shown) is not applied.
			var check func(silo.Plan) error
			if !yes {
				check = heldTo(confirmed)
			}
			applyConfirmed()
			if err := keep(ctx); err != nil {
				return err
			}
			if err := a.plane.SetCurrent(ctx, rel); err != nil {
				return err
			}
			if _, err := a.plane.EnsureProduction(ctx, rel, check); err != nil {
				return err
			}
			var results []silo.Plan
			var failed []string
			// EnsureProduction applied production's plan before the rest of
			// the fleet, which then finds nothing to do there.
			for _, p := range plans {
				if p.Account == silo.ProductionID && p.Touches() && one != silo.ProductionID {
					results = append(results, p)
				}
			}
			if one != "" {
				p := plans[0]
				if one == silo.ProductionID {
					// EnsureProduction applied it: plan again from what it recorded.
					if acct, err = a.plane.Account(ctx, one); err != nil {
						return err
					}
					if p, err = a.plane.Engine.PlanAccount(ctx, acct, rel); err != nil {
						return err
					}
				}
				if err := a.plane.Engine.Apply(ctx, p); err != nil {
					return err
				}
				results = append(results, p)
			} else {
				_, err := a.plane.Engine.ApplyFleet(cmd.Context(), rel, f, check, func(r engine.FleetResult) {
					if r.Err != nil {
						failed = append(failed, fmt.Sprintf("%s: %s", r.Plan.Account, userMessage(r.Err)))
						return
					}
					if r.Plan.Account != silo.ProductionID || len(results) == 0 || results[0].Account != silo.ProductionID {
						results = append(results, r.Plan)
					}
				})
				if err != nil && len(failed) == 0 {
					return err
				}
			}
			if err := printApplied(g, rel.ID, results, failed); err != nil {
				return err
			}
			if len(failed) > 0 {
				return silo.Errorf(silo.CodeUnavailable, "%d account(s) failed to apply; fix the cause and run silo apply again", len(failed))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "apply to every account")
	cmd.Flags().BoolVar(&yes, "yes", false, "apply changes that destroy data (deleting or replacing a table, bucket or secret) without asking, whatever the plan finds as it runs")
	cmd.Flags().StringVar(&planFile, "plan", "", "apply exactly the plan saved by silo plan --all --out FILE; refused if the fleet changed since")
	cmd.Flags().BoolVar(&retry, "retry-failed", false, "apply a release whose latest rollout failed, to every account at once, without rings or health gates")
	return cmd
}

// reship refuses to apply release rel when its latest rollout failed,
// unless retry (--retry-failed) confirms it: the rule a rollout's start
// keeps (rollout.Runner.Reship).
func (a *app) reship(ctx context.Context, rel string, retry bool) error {
	return a.Runner.Reship(ctx, rel, retry, "to make this one current and apply it at once, with no ring and no health gate, confirm it: silo apply --retry-failed")
}

// applyConfirmed is called once silo apply (not --plan) has planned,
// and confirmed what it destroys, right before it changes anything: tests
// change the fleet there.
var applyConfirmed = func() {}

// applyPlans plans what silo apply of rel changes: every account (one
// empty), or account one and the production account, which the apply
// brings to rel as well (EnsureProduction), one's plan first. Plans that
// change nothing are left out of the fleet's.
func applyPlans(ctx context.Context, a *app, rel engine.Release, one silo.AccountID) ([]silo.Plan, error) {
	if one == "" {
		sum, err := server.PlanRelease(ctx, a.plane, rel, "")
		return sum.Plans, err
	}
	acct, err := a.plane.Account(ctx, one)
	if err != nil {
		return nil, err
	}
	p, err := a.plane.Engine.PlanAccount(ctx, acct, rel)
	if err != nil || one == silo.ProductionID {
		return []silo.Plan{p}, err
	}
	plans := []silo.Plan{p}
	prod, err := a.plane.Account(ctx, silo.ProductionID)
	if silo.ErrorCode(err) == silo.CodeNotFound || err == nil && prod.State != silo.StateActive {
		return plans, nil // created on rel, or finished, by the apply: nothing to lose
	}
	if err != nil {
		return nil, err
	}
	pp, err := a.plane.Engine.PlanAccount(ctx, prod, rel)
	if err != nil {
		return nil, err
	}
	if pp.Touches() {
		plans = append(plans, pp)
	}
	return plans, nil
}

// sameLosses refuses an apply confirmed at a terminal for the losses shown
// when planning rel (for account one and production, or the fleet) now
// destroys other data: an account was created or changed while the
// question waited for an answer. Nothing is changed then. It is the
// check a rollout's start makes with the digest of the preview that was
// shown (rollout.Options.LossesDigest). The apply plans each account once
// more as it applies it, held to the same list by heldTo.
func sameLosses(ctx context.Context, a *app, rel engine.Release, one silo.AccountID, confirmed []silo.Loss) error {
	plans, err := applyPlans(ctx, a, rel, one)
	if err != nil {
		return err
	}
	now := silo.Losses(plans)
	if reflect.DeepEqual(now, confirmed) {
		return nil
	}
	what := "it would destroy nothing"
	if len(now) > 0 {
		what = "it now " + silo.DescribeLosses(now)
	}
	return silo.Errorf(silo.CodeConflict, "what would be lost changed since you confirmed: %s; nothing was changed. Run silo apply again to see the new list and confirm it", what)
}

// heldTo returns the check an apply holds each account's plan to, as the
// account is planned again to be applied: a plan that destroys a table,
// bucket or secret that confirmed does not list for its account is
// refused (CodeConflict) and the account is not changed.
func heldTo(confirmed []silo.Loss) func(silo.Plan) error {
	return func(p silo.Plan) error {
		more := silo.Unconfirmed(p, confirmed)
		if len(more) == 0 {
			return nil
		}
		lost := silo.DataLoss([]silo.Plan{{Account: p.Account, Changes: more}})
		return silo.Errorf(silo.CodeConflict, "what would be lost changed since you confirmed: planned again to be applied, it %s, which was not shown; account %s was not changed. Run silo apply again to see the new list and confirm it", lost, p.Account)
	}
}

// printApplied prints what an apply changed and what failed.
func printApplied(g *globals, release string, results []silo.Plan, failed []string) error {
	if results == nil {
		results = []silo.Plan{}
	}
	out := map[string]any{"release": release, "applied": results, "failed": failed}
	return g.print(out, func(w io.Writer) {
		for _, p := range results {
			printPlan(w, p, true)
		}
		for _, f := range failed {
			fmt.Fprintf(w, "failed: %s\n", f)
		}
		if len(results) > 0 || len(failed) > 0 {
			moved := 0
			for _, p := range results {
				if p.ReleaseOnly() {
					moved++
				}
			}
			fmt.Fprintf(w, "release %s is current; %d account(s) changed", release, len(results)-moved)
			if moved > 0 {
				fmt.Fprintf(w, ", %d moved to it with no resource changes", moved)
			}
			fmt.Fprintln(w)
		}
	})
}
