package main

import (
	"context"
	"fmt"
	"io"
	"reflect"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// planSummary is what silo plan prints with --output json.
type planSummary = server.PlanSummary

func targetFilter(all bool, args []string) (store.Filter, silo.AccountID, error) {
	switch {
	case all && len(args) == 0:
		return store.Filter{}, "", nil
	case !all && len(args) == 1:
		id, err := idArg(args[0])
		return store.Filter{}, id, err
	}
	return store.Filter{}, "", usageError{"name one account, or pass --all for the whole fleet"}
}

func newPlanCmd(g *globals) *cobra.Command {
	var all bool
	var out string
	cmd := &cobra.Command{
		Use:   "plan [ACCOUNT | --all]",
		Short: "Show what apply would change: per account, create / update / replace / delete / no-op",
		Long: `Plan builds the release from silo.yaml (content-addressed: unchanged inputs give the same
release) and diffs each account's desired resources against its recorded state by content hash.
An unchanged account costs microseconds. Nothing is changed.

With --server it builds the release here, uploads it (as silo deploy does, without starting a
rollout) and plans it on the server; without a silo.yaml it plans the server's current release.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, one, err := targetFilter(all, args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			api, done, err := openAPI(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			if one != "" { // before building: a bad argument leaves nothing behind
				if _, err := api.Show(ctx, one); err != nil {
					return err
				}
			}
			rel, err := api.StageRelease(ctx)
			if err != nil {
				return err
			}
			var before []silo.Account
			if out != "" {
				if one != "" {
					return usageError{"--out saves a plan of the whole fleet; pass --all; see silo plan --help"}
				}
				if before, err = api.Accounts(ctx, store.Filter{}); err != nil {
					return err
				}
			}
			sum, err := api.Plan(ctx, rel, one)
			if err != nil {
				return err
			}
			if out != "" && len(sum.Errors) == 0 {
				sp, err := newSavedPlan(sum.Release, before, sum.Plans)
				if err != nil {
					return err
				}
				if err := sp.write(out); err != nil {
					return err
				}
				defer fmt.Fprintf(g.stderr, "saved the plan to %s; apply exactly it with silo apply --plan %s\n", out, out)
			}
			if err := g.print(sum, func(w io.Writer) { printSummary(w, sum) }); err != nil {
				return err
			}
			if len(sum.Errors) > 0 {
				return silo.Errorf(silo.CodeInvalid, "%d account(s) cannot be planned; see above", len(sum.Errors))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "plan every account")
	cmd.Flags().StringVar(&out, "out", "", "save the plan to FILE, to apply exactly it later with silo apply --plan FILE (with --all)")
	return cmd
}

func printSummary(w io.Writer, s planSummary) {
	for _, p := range s.Plans {
		printPlan(w, p, false)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if s.Changed == 0 && s.ReleaseOnly == 0 && len(s.Errors) == 0 {
		fmt.Fprintf(w, "nothing to do: %d account(s) current with release %s\n", s.Accounts, s.Release)
		return
	}
	fmt.Fprintf(w, "release %s: %d of %d account(s) would change", s.Release, s.Changed, s.Accounts)
	if s.ReleaseOnly > 0 {
		fmt.Fprintf(w, "; %d would run it with no resource changes", s.ReleaseOnly)
	}
	fmt.Fprintln(w)
}

func printPlan(w io.Writer, p silo.Plan, applied bool) {
	verb := "would"
	if applied {
		verb = "did"
	}
	if !p.Touches() {
		fmt.Fprintf(w, "%s: no changes\n", p.Account)
		return
	}
	if p.ReleaseOnly() {
		runs := "would run"
		if applied {
			runs = "runs"
		}
		was := "none"
		if p.FromRelease != "" {
			was = p.FromRelease
		}
		fmt.Fprintf(w, "%s (%s): %s release %s (was %s), no resource changes\n", p.Account, p.Kind, runs, p.Release, was)
		return
	}
	fmt.Fprintf(w, "%s (%s): %s → %s\n", p.Account, p.Kind, orDash(p.FromRelease), p.Release)
	sym := map[silo.Op]string{silo.OpCreate: "+", silo.OpUpdate: "~", silo.OpReplace: "-/+", silo.OpDelete: "-"}
	for _, c := range p.Changes {
		fmt.Fprintf(w, "  %-3s %s %s\n", sym[c.Op], c.Op, c.Key())
		printChangeDetail(w, c)
	}
	counts := p.Counts()
	ops := []silo.Op{silo.OpCreate, silo.OpUpdate, silo.OpReplace, silo.OpDelete, silo.OpNoop}
	var parts []string
	for _, op := range ops {
		if counts[op] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[op], op))
		}
	}
	if len(parts) == 0 { // an interrupted onboarding of an account that holds nothing
		parts = append(parts, "provision the account")
	}
	fmt.Fprintf(w, "  %s %s\n", verb, strings.Join(parts, ", "))
}

func newApplyCmd(g *globals) *cobra.Command {
	var all, yes, retry bool
	var planFile string
	cmd := &cobra.Command{
		Use:   "apply [ACCOUNT | --all]",
		Short: "Build silo.yaml into a release, make it current and apply it",
		Long: `Apply builds the release from silo.yaml, makes it the current release, creates the
production account if needed, and applies the release to one account or the whole fleet with
bounded concurrency. Before every provider call an intent is committed to the journal; an
interrupted apply is recovered on the next start.

A change that destroys data (deleting or replacing a table, bucket or secret) is applied only when
confirmed: typed at a terminal, for the list shown (if planning again after the answer finds
other data to destroy, nothing changes), or --yes, for whatever the plan finds as it runs. silo
plan --all --out FILE saves a plan; silo apply --plan FILE applies exactly those changes, and
refuses if any account changed since.

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
			if err := notServed(g, "use silo deploy, which rolls the release out through it"); err != nil {
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
			rel, keep, err := a.prepare(ctx, g)
			if err != nil {
				return err
			}
			if err := a.reship(ctx, rel.ID, retry); err != nil {
				return err
			}
			var plan silo.Plan
			plans := []silo.Plan{}
			if one != "" {
				if plan, err = a.plane.Engine.PlanAccount(ctx, acct, rel); err != nil {
					return err
				}
				plans = append(plans, plan)
			} else {
				sum, err := server.PlanRelease(ctx, a.plane, rel, "")
				if err != nil {
					return err
				}
				plans = sum.Plans
			}
			if what := silo.DataLoss(plans); what != "" {
				if err := g.confirm(yes, "this apply destroys data ("+what+")", "yes"); err != nil {
					return err
				}
				if !yes {
					// Typed at a terminal: go ahead only for what was shown.
					if err := sameLosses(ctx, a, rel, one, silo.Losses(plans)); err != nil {
						return err
					}
				}
			}
			if err := keep(ctx); err != nil {
				return err
			}
			if err := a.plane.SetCurrent(ctx, rel); err != nil {
				return err
			}
			if _, err := a.plane.EnsureProduction(ctx, rel); err != nil {
				return err
			}
			var results []silo.Plan
			var failed []string
			if one == "" {
				// EnsureProduction applied production's plan before the
				// rest of the fleet, which then finds nothing to do there.
				for _, p := range plans {
					if p.Account == silo.ProductionID && p.Touches() {
						results = append(results, p)
					}
				}
			}
			if one != "" {
				p := plan
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
				_, err := a.plane.Engine.ApplyFleet(cmd.Context(), rel, f, func(r engine.FleetResult) {
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

// sameLosses refuses an apply confirmed at a terminal for the losses shown
// when planning rel (for account one, or the fleet) now destroys other
// data: an account was created or changed while the question waited for an
// answer. Nothing is changed then. The engine plans each account again as
// it applies (ApplyFleet; EnsureProduction for the production account) and
// takes no list to keep to, so this looks once more right before anything
// changes: only a change in the instant between this planning and the
// apply's is not caught, as for a rollout's start.
func sameLosses(ctx context.Context, a *app, rel engine.Release, one silo.AccountID, confirmed []silo.Loss) error {
	sum, err := server.PlanRelease(ctx, a.plane, rel, one)
	if err != nil {
		return err
	}
	now := silo.Losses(sum.Plans)
	if reflect.DeepEqual(now, confirmed) {
		return nil
	}
	what := "it would destroy nothing"
	if len(now) > 0 {
		what = "it now " + silo.DescribeLosses(now)
	}
	return silo.Errorf(silo.CodeConflict, "what would be lost changed since you confirmed: %s; nothing was changed. Run silo apply again to see the new list and confirm it", what)
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

func newDriftCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "drift [ACCOUNT | --all]",
		Short: "Compare what the provider actually holds with recorded state",
		Long: `Drift compares what the provider actually holds with the recorded state of one account or
every account, on the local data dir or (with --server) on the server.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			_, one, err := targetFilter(all, args)
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			api, done, err := openAPI(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			rep, err := api.Drift(ctx, one)
			if err != nil {
				return err
			}
			out := rep.Drift
			ids := make([]silo.AccountID, 0, len(out))
			n := 0
			for id, d := range out {
				ids = append(ids, id)
				n += len(d)
			}
			slices.Sort(ids)
			var printed any = out
			if len(rep.Problems) > 0 || len(rep.Orphans) > 0 {
				printed = rep // the drift alone would hide them from scripts
			}
			if err := g.print(printed, func(w io.Writer) {
				for _, id := range ids {
					for _, it := range out[id] {
						fmt.Fprintf(w, "%s: %s %s\n", id, it.Key, it.Kind)
					}
				}
				for _, p := range rep.Problems {
					fmt.Fprintln(w, problemLine(p))
				}
				for _, id := range rep.Orphans {
					fmt.Fprintf(w, "%s: held by the provider but not in the registry; restore the control-plane state (state.db) from a backup that has it (docs/operations.md)\n", id)
				}
				if n == 0 && len(rep.Problems) == 0 && len(rep.Orphans) == 0 {
					fmt.Fprintf(w, "no drift in %d account(s)\n", rep.Accounts)
				}
			}); err != nil {
				return err
			}
			switch {
			case len(rep.Problems) > 0 || len(rep.Orphans) > 0:
				return silo.Errorf(silo.CodeFailedCheck, "%d resource(s) drifted, %d problem(s), %d account(s) not in the registry; each line above says what to do", n, len(rep.Problems), len(rep.Orphans))
			case n > 0:
				return silo.Errorf(silo.CodeFailedCheck, "%d resource(s) drifted; silo apply restores recorded state", n)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "check every account")
	return cmd
}

func newBuildCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "build",
		Short: "Build every function in silo.yaml into a content-addressed artifact and store the release",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := localOnly(g, "against the server use silo deploy (it builds here and uploads the release)"); err != nil {
				return err
			}
			a, err := openApp(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer a.Close()
			rel, err := a.release(cmd.Context(), g, false)
			if err != nil {
				return err
			}
			return g.print(map[string]any{"release": rel.ID, "artifacts": rel.Artifacts}, func(w io.Writer) {
				names := make([]string, 0, len(rel.Artifacts))
				for k := range rel.Artifacts {
					names = append(names, k)
				}
				sort.Strings(names)
				for _, n := range names {
					fmt.Fprintf(w, "%-24s %s\n", n, rel.Artifacts[n])
				}
				fmt.Fprintf(w, "release %s\n", rel.ID)
			})
		},
	}
}
