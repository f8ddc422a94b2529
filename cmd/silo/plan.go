package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
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

With --server it builds the release here, uploads its artifacts (as silo deploy does) and plans
the release on the server, which does not store it: the server's releases are unchanged.

Without a silo.yaml (run from another directory, or no --file) it plans the current release and
says so first: "nothing to do" then means the fleet runs the current release, not that your
changes need nothing.`,
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
			if _, err := os.Stat(g.file); errors.Is(err, os.ErrNotExist) {
				fmt.Fprintf(g.stderr, "there is no %s here: planning the current release instead; to plan your changes, run silo plan in the project's directory or pass --file\n", g.file)
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
			sum, err := api.PlanSpec(ctx, one)
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
				printFindings(w, rep)
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
