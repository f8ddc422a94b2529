package main

import (
	"fmt"
	"io"
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
		return store.Filter{}, silo.AccountID(args[0]), nil
	}
	return store.Filter{}, "", usageError{"name one account, or pass --all for the whole fleet"}
}

func newPlanCmd(g *globals) *cobra.Command {
	var all bool
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
			sum, err := api.Plan(ctx, rel, one)
			if err != nil {
				return err
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
	return cmd
}

func printSummary(w io.Writer, s planSummary) {
	for _, p := range s.Plans {
		printPlan(w, p, false)
	}
	for _, e := range s.Errors {
		fmt.Fprintf(w, "error: %s\n", e)
	}
	if s.Changed == 0 && len(s.Errors) == 0 {
		fmt.Fprintf(w, "nothing to do: %d account(s) current with release %s\n", s.Accounts, s.Release)
		return
	}
	fmt.Fprintf(w, "release %s: %d of %d account(s) would change\n", s.Release, s.Changed, s.Accounts)
}

func printPlan(w io.Writer, p engine.Plan, applied bool) {
	verb := "would"
	if applied {
		verb = "did"
	}
	if !p.Touches() {
		fmt.Fprintf(w, "%s: no changes\n", p.Account)
		return
	}
	fmt.Fprintf(w, "%s (%s): %s → %s\n", p.Account, p.Kind, orDash(p.FromRelease), p.Release)
	sym := map[silo.Op]string{silo.OpCreate: "+", silo.OpUpdate: "~", silo.OpReplace: "-/+", silo.OpDelete: "-"}
	for _, c := range p.Changes {
		fmt.Fprintf(w, "  %-3s %s %s\n", sym[c.Op], c.Op, c.Key())
	}
	counts := p.Counts()
	ops := []silo.Op{silo.OpCreate, silo.OpUpdate, silo.OpReplace, silo.OpDelete, silo.OpNoop}
	var parts []string
	for _, op := range ops {
		if counts[op] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[op], op))
		}
	}
	if len(parts) == 0 {
		parts = append(parts, "release label only")
	}
	fmt.Fprintf(w, "  %s %s\n", verb, strings.Join(parts, ", "))
}

func newApplyCmd(g *globals) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "apply [ACCOUNT | --all]",
		Short: "Build silo.yaml into a release, make it current and apply it",
		Long: `Apply builds the release from silo.yaml, makes it the current release, creates the
production account if needed, and applies the release to one account or the whole fleet with
bounded concurrency. Before every provider call an intent is committed to the journal; an
interrupted apply is recovered on the next start.`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f, one, err := targetFilter(all, args)
			if err != nil {
				return err
			}
			if err := localOnly(g, "silo deploy (it builds here, uploads the release and rolls it out ring by ring)"); err != nil {
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
			// Everything is checked before anything changes: the account,
			// the build, the plan.
			var acct silo.Account
			if one != "" {
				if acct, err = a.plane.Account(ctx, one); err != nil {
					return err
				}
			}
			rel, err := a.release(ctx, g, false)
			if err != nil {
				return err
			}
			var plan engine.Plan
			if one != "" {
				if plan, err = a.plane.Engine.PlanAccount(ctx, acct, rel); err != nil {
					return err
				}
			}
			if err := a.plane.SetCurrent(ctx, rel); err != nil {
				return err
			}
			if _, err := a.plane.EnsureProduction(ctx, rel); err != nil {
				return err
			}
			var results []engine.Plan
			var failed []string
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
					results = append(results, r.Plan)
				})
				if err != nil && len(failed) == 0 {
					return err
				}
			}
			out := map[string]any{"release": rel.ID, "applied": results, "failed": failed}
			if err := g.print(out, func(w io.Writer) {
				for _, p := range results {
					printPlan(w, p, true)
				}
				for _, f := range failed {
					fmt.Fprintf(w, "failed: %s\n", f)
				}
				fmt.Fprintf(w, "release %s is current; %d account(s) changed\n", rel.ID, len(results))
			}); err != nil {
				return err
			}
			if len(failed) > 0 {
				return silo.Errorf(silo.CodeUnavailable, "%d account(s) failed to apply; fix the cause and run silo apply again", len(failed))
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&all, "all", false, "apply to every account")
	return cmd
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
			if err := g.print(out, func(w io.Writer) {
				for _, id := range ids {
					for _, it := range out[id] {
						fmt.Fprintf(w, "%s: %s %s\n", id, it.Key, it.Kind)
					}
				}
				if n == 0 {
					fmt.Fprintf(w, "no drift in %d account(s)\n", rep.Accounts)
				}
			}); err != nil {
				return err
			}
			if n > 0 {
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
			if err := localOnly(g, "silo deploy (it builds here and uploads the release)"); err != nil {
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
