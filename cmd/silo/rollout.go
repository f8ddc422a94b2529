package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

// noActiveRollout refuses a second deploy while the rollout Active (or the
// server's "active" rollout) returned is running.
func noActiveRollout(act rollout.Rollout, err error) error {
	if err == nil {
		return silo.Errorf(silo.CodeConflict, "rollout %s of release %s is %s; wait for it (silo rollout status %s --follow), or stop it with silo rollout abort %s", act.ID, act.Release, act.State, act.ID, act.ID)
	}
	if !errors.Is(err, silo.ErrNotFound) {
		return err
	}
	return nil
}

// localRunner opens the local installation; its platform carries the
// rollout runner, wired to the runtime's metrics and smoke functions.
func localRunner(ctx context.Context, g *globals) (*app, *rollout.Runner, error) {
	a, err := openApp(ctx, g)
	if err != nil {
		return nil, nil, err
	}
	return a, a.Runner, nil
}

// serverCompiling is called as silo server starts compiling the current
// release, once the operator token is written: tests look at the data dir
// there.
var serverCompiling = func() {}

func newServerCmd(g *globals) *cobra.Command {
	var listen, gatewayAddr string
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run the control plane (HTTP API + rollout runner) and the gateway",
		Long: `server serves the control-plane API (docs/api.md) on --listen, the tenant gateway on
--gateway, and runs rollouts in the background, gated on the runtime's per-tenant metrics. It
recovers interrupted work from the journal at start, so it is safe to kill. The operator token is
generated on first start into <data-dir>/operator.token (mode 0600); clients pass it with --token
or $SILO_TOKEN.

The control-plane state is SQLite in the data dir by default. With --store postgres://... (or
$SILO_STORE) it lives in PostgreSQL, and several silo server processes may run on one data dir
and one database: each serves the API and the gateway, a change made through one holds on every
other before the API call returns, and exactly one runs each rollout at a time (see
docs/operations.md). The local provider keeps every account on this machine's data dir; it does
not spread accounts over machines. With --provider aws (and --aws-region, --aws-email, ...) every
account is an AWS Organizations member account instead (docs/aws.md); the choice is saved in the
data dir, and later commands on it use the same provider. Functions run in this server unless
--aws-lambda-host names the silo Lambda host built for linux (cmd/silo-lambda): then each
tenant's functions run on Lambda in its own AWS account, behind its own HTTP API.`,
		Example: `  silo server --listen 127.0.0.1:7070 --gateway 127.0.0.1:8080 &
  silo deploy --server http://127.0.0.1:7070
  silo server --store postgres://silo@db:5432/silo?sslmode=disable --listen 127.0.0.1:7071 --gateway 127.0.0.1:8081
  silo server --provider aws --aws-region eu-west-1 --aws-email aws-accounts@example.com
  silo server --provider aws --aws-region eu-west-1 --aws-email aws-accounts@example.com --aws-lambda-host ./silo-lambda`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			// On a PostgreSQL store, several servers may share the data
			// dir (a second one for a restart without downtime); on the
			// SQLite default, one server owns it.
			const instead = "pass another --data-dir, or use a PostgreSQL --store to run several servers, or stop that process first"
			if g.store == "" {
				if err := notServed(g, instead); err != nil {
					return err
				}
			}
			// The lock is held from before the server opens anything
			// until it exits; shared by the servers of one PostgreSQL
			// store.
			lock, err := holdDataDir(g, "silo server", g.store == "", instead)
			if err != nil {
				return err
			}
			defer lock.Release()
			// Opening the store and compiling the current release may
			// take a while on a loaded machine: say so at once.
			fmt.Fprintf(g.stderr, "silo server: starting (opening the store, compiling the current release); the API answers once its address is printed\n")
			p, err := openPlatform(ctx, g, gatewayAddr, listen)
			if err != nil {
				return err
			}
			defer p.Close()
			ln, err := p.Listen()
			if err != nil {
				return err
			}
			// A module missing from the data dir refuses the start.
			if err := p.CheckCurrent(ctx); err != nil {
				return err
			}
			// The operator token is written (its final value) before the
			// compile, so that a script reading it as the server starts
			// finds it; it is of use only once the API answers.
			if _, err := p.API(); err != nil {
				return err
			}
			serverCompiling()
			// The current release's modules are compiled before serving,
			// so that the first requests (a load balancer's, once the
			// health check passes) do not wait for them; one that does not
			// compile is reported and fails its own requests only (Serve
			// compiles what changes later in the background: CompileAhead).
			if err := p.LoadCurrent(ctx); err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				fmt.Fprintf(g.stderr, "silo server: warning: %s; its requests fail until a release replaces it\n", silo.UserMessage(err))
			}
			served := make(chan error, 1)
			go func() { served <- p.Serve(ctx, ln) }()
			go fillPool(ctx, g, "silo server", p.Config().Provider)
			for p.APIAddr() == "" {
				select {
				case err := <-served:
					return err
				case <-time.After(10 * time.Millisecond):
				}
			}
			lock.SetPhase("serving")
			fmt.Fprintf(g.stderr, "silo server: API on http://%s (token in %s), console on http://%s/console/, gateway on http://%s\n",
				p.APIAddr(), filepath.Join(p.Config().DataDir, server.TokenFile), p.APIAddr(), p.Addr())
			return <-served
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:7070", "address to serve the control-plane API on")
	cmd.Flags().StringVar(&gatewayAddr, "gateway", "127.0.0.1:8080", "address to serve the tenant gateway on")
	return cmd
}

func newDeployCmd(g *globals) *cobra.Command {
	var detach, yes, retry bool
	var release string
	cmd := &cobra.Command{
		Use:   "deploy",
		Short: "Build silo.yaml into a release and roll it out ring by ring, following progress",
		Long: `deploy builds the functions locally into a content-addressed release, uploads it to the
server (--server / $SILO_SERVER) and starts a rollout there, then follows it. Without a server it
runs the rollout in this process on the local data dir. Interrupting the follow does not stop a
server-side rollout: reattach with silo rollout status --follow.

Either way the release passes the isolation gate (the fleet as it would be under the release, as
silo verify proves it) once, as its rollout starts, and is stored only if the rollout starts: a
release the gate refuses, or whose data loss is not confirmed, is neither stored nor rolled out,
and no account changes.

--release ID rolls out a release built before (silo release list) instead of building silo.yaml:
the way back to an earlier release when silo rollout rollback cannot take you there (a rollback
undoes only the latest rollout that moved accounts, once). It goes through the rings and gates of
that release like any rollout.`,
		Example: `  silo deploy
  silo deploy --release r-4f2a9c0d1e2b3a4c   # an earlier release, through its rings and gates`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := remote(g)
			if err != nil {
				return err
			}
			lc := &lossConfirm{
				heading: func(pv rollout.Preview) string {
					return fmt.Sprintf("Rolling out release %s destroys data", pv.Release)
				},
				again: "silo deploy",
			}
			if release != "" {
				lc.again += " --release " + release
			}
			if c == nil {
				a, rn, err := localRunner(ctx, g)
				if err != nil {
					return err
				}
				defer a.Close()
				if err := noActiveRollout(rn.Active(ctx)); err != nil { // before building anything
					return err
				}
				lc.preview = func() (rollout.Preview, error) { return rn.PreviewStart(ctx, release) }
				start := func(opt rollout.Options) (rollout.Rollout, error) {
					opt.RetryFailed = retry
					return rn.Start(ctx, release, opt)
				}
				if release == "" {
					rel, stored, err := a.plane.PrepareRelease(ctx, g.file, store.Origin{Kind: store.OriginDeploy})
					if err != nil {
						return err
					}
					// The release is stored only once its rollout's start
					// accepts it (the isolation gate, run once there, and
					// the confirmation of what it destroys): a refused
					// release is not stored in the data dir.
					lc.preview = func() (rollout.Preview, error) { return rn.PreviewNew(ctx, rel) }
					start = func(opt rollout.Options) (rollout.Rollout, error) {
						opt.RetryFailed = retry
						return rn.StartNew(ctx, rel, opt, func(ctx context.Context) error { return a.plane.PutRelease(ctx, stored) })
					}
				}
				r, err := g.confirmDataLoss(yes, lc, start)
				if done, err := nothingStarted(g, err); done || err != nil {
					return err
				}
				return runHere(ctx, g, rn, r.ID)
			}
			if err := noActiveRollout(c.Rollout(ctx, "active")); err != nil { // before building anything
				return err
			}
			// --release: the server holds it, nothing local is needed.
			lc.preview = func() (rollout.Preview, error) { return c.PreviewRollout(ctx, release) }
			start := func(opt rollout.Options) (rollout.Rollout, error) {
				opt.RetryFailed = retry
				return c.StartRollout(ctx, release, opt)
			}
			if release == "" {
				// The release goes with the rollout's start, which stores
				// it only if the rollout starts.
				up, err := uploadArtifacts(ctx, g, c)
				if err != nil {
					return err
				}
				lc.preview = func() (rollout.Preview, error) { return c.PreviewUpload(ctx, up) }
				start = func(opt rollout.Options) (rollout.Rollout, error) {
					opt.RetryFailed = retry
					return c.StartUpload(ctx, up, opt)
				}
			}
			r, err := g.confirmDataLoss(yes, lc, start)
			if done, err := nothingStarted(g, err); done || err != nil {
				return err
			}
			if detach {
				return printRollout(g, r)
			}
			err = followRemote(ctx, g, c, r.ID)
			if err != nil && ctx.Err() != nil {
				return followInterrupted{id: r.ID, err: err}
			}
			return err
		},
	}
	cmd.Flags().BoolVar(&detach, "detach", false, "start the rollout and return without following it")
	cmd.Flags().BoolVar(&yes, "yes", false, "go ahead even if the release deletes or replaces a table, bucket or secret (whatever the planning as it starts finds; at a terminal, without --yes, it starts only for the list it showed)")
	cmd.Flags().BoolVar(&retry, "retry-failed", false, "roll out a release whose latest rollout failed, through the rings and their gates again")
	cmd.Flags().StringVar(&release, "release", "", "roll out this release, built before (silo release list), instead of building silo.yaml")
	return cmd
}

// nothingStarted answers a deploy that started no rollout because its
// release is current on every account (rollout.UpToDate): it says so and
// succeeds, so that a re-run of an unchanged deploy (a CI re-run) passes.
// done is true then; otherwise err is the start's error, if any.
func nothingStarted(g *globals, err error) (done bool, _ error) {
	u, ok := errors.AsType[*rollout.UpToDate](err)
	if !ok {
		return false, err
	}
	if g.json() {
		return true, json.NewEncoder(g.stdout).Encode(server.NothingStarted{Message: u.Error(), UpToDate: *u})
	}
	_, err = fmt.Fprintln(g.stdout, u.Error())
	return true, err
}

// runHere drives a rollout in this process (no server runs it), printing
// each change, and returns its outcome.
func runHere(ctx context.Context, g *globals, rn *rollout.Runner, id string) error {
	done := make(chan error, 1)
	go func() { done <- rn.Run(ctx, id) }()
	werr := rn.Watch(ctx, id, followPrinter(g))
	if err := <-done; err != nil {
		return err
	}
	if werr != nil {
		return werr
	}
	return outcome(ctx, func() (rollout.Rollout, error) { return rn.Get(ctx, id) })
}

// followRemote follows a rollout a server runs until it stops, printing
// each change, and returns its outcome.
func followRemote(ctx context.Context, g *globals, c *server.Client, id string) error {
	if err := c.Follow(ctx, id, followPrinter(g)); err != nil {
		return err
	}
	return outcome(ctx, func() (rollout.Rollout, error) { return c.Rollout(ctx, id) })
}

// outcome turns a stopped rollout into the command's result.
func outcome(ctx context.Context, get func() (rollout.Rollout, error)) error {
	r, err := get()
	if err != nil {
		return err
	}
	switch r.State {
	case rollout.StateSucceeded:
		return nil
	case rollout.StatePaused:
		return silo.Errorf(silo.CodeFailedCheck, "rollout %s is paused: %s; silo rollout resume %s or silo rollout rollback %s", r.ID, r.Reason, r.ID, r.ID)
	}
	return silo.Errorf(silo.CodeFailedCheck, "rollout %s %s: %s", r.ID, r.State, r.Reason)
}

// followPrinter returns what a follow prints each state of a rollout with:
// printRollout, but a summary only when it differs from the last one
// printed (a lease renewal during a bake changes the record, not what the
// summary says). JSON lines are every state.
func followPrinter(g *globals) func(rollout.Rollout) error {
	var last string
	return func(r rollout.Rollout) error {
		if g.json() {
			return printRollout(g, r)
		}
		var b strings.Builder
		writeRollout(&b, r)
		if b.String() == last {
			return nil
		}
		last = b.String()
		_, err := io.WriteString(g.stdout, last)
		return err
	}
}

// printRollout prints one state of a rollout: JSON lines with --output
// json, a ring-by-ring summary otherwise.
func printRollout(g *globals, r rollout.Rollout) error {
	if g.json() { // one JSON object per line, so a follow is a JSON-lines stream
		return json.NewEncoder(g.stdout).Encode(r)
	}
	writeRollout(g.stdout, r)
	return nil
}

// writeRollout writes a rollout's ring-by-ring summary.
func writeRollout(w io.Writer, r rollout.Rollout) {
	fmt.Fprintf(w, "rollout %s  %s → %s  %s", r.ID, orDash(r.Previous), r.Release, r.State)
	if r.Reason != "" {
		fmt.Fprintf(w, ": %s", r.Reason)
	}
	fmt.Fprintln(w)
	for i, ring := range r.Rings {
		mark := " "
		switch {
		case ring.Phase == rollout.PhasePromoted:
			mark = "✓"
		case ring.Phase == rollout.PhaseRolledBack:
			mark = "✗"
		case i == r.Ring && r.State == rollout.StateRunning:
			mark = "▸"
		}
		phase := string(ring.Phase)
		if ring.Phase == rollout.PhaseWaiting && !r.State.Active() {
			phase = "not reached" // the rollout stopped before this ring
		}
		fmt.Fprintf(w, "  ring %-12s %s %-12s %d/%d applied, %d unchanged, %d failed", ring.Name, mark, phase, ring.Applied, ring.Members, ring.Unchanged, ring.Failed)
		if ring.RolledBack > 0 {
			fmt.Fprintf(w, ", %d rolled back", ring.RolledBack)
		}
		if v := ring.Verdict; v != nil && v.Result != "" {
			fmt.Fprintf(w, "  %s", verdictText(*v))
		}
		if ring.Phase == rollout.PhaseBaking && ring.BakeLeft > 0 {
			fmt.Fprintf(w, "  bake paused, %s left", ring.BakeLeft.Round(time.Second))
		} else if ring.Phase == rollout.PhaseBaking && !ring.BakeUntil.IsZero() {
			fmt.Fprintf(w, "  bake until %s", ring.BakeUntil.Format(time.TimeOnly))
		}
		fmt.Fprintln(w)
		if len(ring.Releases) > 0 {
			fmt.Fprintf(w, "  %-17s   accounts: %s\n", "", whereText(ring.Releases, r))
		}
	}
}

// verdictText says what a ring's gates judged, with only the figures that
// were measured, and which release the previous figures are of.
func verdictText(v rollout.Verdict) string {
	if len(v.Judged) == 0 {
		return fmt.Sprintf("%s: %s, nothing measured", v.Result, v.Reason)
	}
	if v.Result != rollout.Pass {
		return v.Result + ": " + v.Reason
	}
	var parts []string
	for _, j := range v.Judged {
		switch j {
		case "min_requests":
			parts = append(parts, fmt.Sprintf("%d requests", v.Requests))
		case "max_error_rate":
			parts = append(parts, fmt.Sprintf("error rate %.1f%% (previous %.1f%%)", 100*v.ErrorRate, 100*v.PrevErrorRate))
		case "max_p99_increase":
			parts = append(parts, fmt.Sprintf("p99 %s (previous %s)", rollout.Round(v.P99), rollout.Round(v.PrevP99)))
		}
	}
	s := v.Result + ": " + strings.Join(parts, ", ")
	switch {
	case v.PrevRelease != "":
		s += "; previous = release " + v.PrevRelease
	case len(v.PrevReleases) > 0:
		s += "; previous = the release each account ran (" + strings.Join(v.PrevReleases, ", ") + ")"
	}
	return s
}

// whereText lists how many accounts run each release, naming the
// rollout's target and previous release.
func whereText(counts map[string]int, r rollout.Rollout) string {
	ids := make([]string, 0, len(counts))
	for id := range counts {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(a, b string) int { return counts[b] - counts[a] })
	parts := make([]string, 0, len(ids))
	for _, id := range ids {
		label := id
		switch id {
		case r.Release:
			label += " (target)"
		case r.Previous:
			label += " (previous)"
		case "":
			label = "no release"
		}
		parts = append(parts, fmt.Sprintf("%d on %s", counts[id], label))
	}
	return strings.Join(parts, ", ")
}

// printRollouts prints one line per rollout.
func printRollouts(g *globals, rs []rollout.Rollout) error {
	return g.print(rs, func(w io.Writer) {
		if len(rs) == 0 {
			fmt.Fprintln(w, "no rollout yet; silo deploy starts one")
			return
		}
		for _, r := range rs {
			fmt.Fprintf(w, "%s  %s  %s → %s  %s", r.ID, r.Created.Format(time.DateTime), orDash(r.Previous), r.Release, r.State)
			if r.Reason != "" {
				fmt.Fprintf(w, ": %s", r.Reason)
			}
			if r.RollbackOf != "" {
				fmt.Fprintf(w, "  (rollback of %s)", r.RollbackOf)
			}
			if r.CanRollBack {
				fmt.Fprint(w, "  (silo rollout rollback undoes it)")
			}
			fmt.Fprintln(w)
		}
	})
}

// rolloutOp is pause, resume, abort or rollback on the local runner or a
// server.
type rolloutOp struct {
	name, short string
	local       func(*rollout.Runner, context.Context, string, rollout.Options) (rollout.Rollout, error)
	remote      func(*server.Client, context.Context, string, rollout.Options) (rollout.Rollout, error)
	// latest makes the operation default to the latest rollout, finished
	// or not (rollback: undo the last deploy), instead of the active one,
	// and gives it --yes for a rollback that destroys data.
	latest bool
	// follows marks an operation that sets a rollout running (resume,
	// rollback): through a server the command follows that rollout until
	// it stops and exits as silo deploy does, unless --detach.
	follows bool
	// split makes the operation (abort) say where it left the fleet when
	// some accounts run the rollout's release and others not, and how to
	// converge (writeSplit).
	split bool
}

// defaultRollout is the ID an operation without one acts on: the active
// rollout, or with latest the newest one.
func (o rolloutOp) defaultRollout(ctx context.Context, rn *rollout.Runner) (string, error) {
	if !o.latest {
		act, err := rn.Active(ctx)
		return act.ID, err
	}
	rs, err := rn.List(ctx, 1)
	if err != nil {
		return "", err
	}
	if len(rs) == 0 {
		return "", silo.Errorf(silo.CodeNotFound, "no rollout yet; silo deploy starts one")
	}
	return rs[0].ID, nil
}

func newRolloutCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "rollout", Short: "List, show, follow, pause, resume, abort and roll back rollouts"}
	var follow bool
	status := &cobra.Command{
		Use:   "status [ID]",
		Short: "Show a rollout (default: the latest); --follow streams it until it stops, and fails unless it succeeded",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			id := "latest"
			if len(args) == 1 {
				id = args[0]
			}
			c, err := remote(g)
			if err != nil {
				return err
			}
			if c != nil {
				if follow {
					var last rollout.Rollout
					show := followPrinter(g)
					if err := c.Follow(ctx, id, func(r rollout.Rollout) error { last = r; return show(r) }); err != nil {
						return err
					}
					return outcome(ctx, func() (rollout.Rollout, error) { return c.Rollout(ctx, last.ID) })
				}
				r, err := c.Rollout(ctx, id)
				if err != nil {
					return err
				}
				return printRollout(g, r)
			}
			a, rn, err := localRunner(ctx, g)
			if err != nil {
				return err
			}
			defer a.Close()
			if id == "latest" {
				rs, err := rn.List(ctx, 1)
				if err != nil {
					return err
				}
				if len(rs) == 0 {
					return silo.Errorf(silo.CodeNotFound, "no rollout yet; silo deploy starts one")
				}
				id = rs[0].ID
			}
			if follow {
				if err := rn.Watch(ctx, id, followPrinter(g)); err != nil {
					return err
				}
				return outcome(ctx, func() (rollout.Rollout, error) { return rn.Get(ctx, id) })
			}
			r, err := rn.Get(ctx, id)
			if err != nil {
				return err
			}
			return printRollout(g, r)
		},
	}
	status.Flags().BoolVar(&follow, "follow", false, "stream changes until the rollout stops; exit 1 unless it succeeded")
	var limit int
	list := &cobra.Command{
		Use: "list", Short: "List rollouts, newest first", Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			c, err := remote(g)
			if err != nil {
				return err
			}
			var rs []rollout.Rollout
			if c != nil {
				if rs, err = c.Rollouts(ctx); err == nil && limit > 0 && len(rs) > limit {
					rs = rs[:limit]
				}
			} else {
				a, rn, err2 := localRunner(ctx, g)
				if err2 != nil {
					return err2
				}
				defer a.Close()
				rs, err = rn.List(ctx, limit)
			}
			if err != nil {
				return err
			}
			return printRollouts(g, rs)
		},
	}
	list.Flags().IntVar(&limit, "limit", 20, "show at most this many rollouts (0: all)")
	op := func(o rolloutOp) *cobra.Command {
		dflt, remoteDflt := "the active rollout", "active"
		if o.latest {
			dflt, remoteDflt = "the latest rollout", "latest"
		}
		var yes, detach bool
		cmd := &cobra.Command{
			Use: o.name + " [ID]", Short: o.short + " (default: " + dflt + ")", Args: maxArgs(1, "at most one rollout ID"),
			RunE: func(cmd *cobra.Command, args []string) error {
				ctx := cmd.Context()
				id := ""
				if len(args) == 1 {
					id = args[0]
				}
				c, err := remote(g)
				if err != nil {
					return err
				}
				var r rollout.Rollout
				var moved []silo.AccountID // split: the accounts on r's release
				var lc *lossConfirm
				if o.latest { // a rollback: it may destroy data
					lc = &lossConfirm{heading: func(pv rollout.Preview) string {
						return fmt.Sprintf("Rolling back rollout %s returns accounts to release %s and destroys data", id, pv.Release)
					}}
				}
				if c != nil {
					if id == "" {
						id = remoteDflt
					}
					if lc != nil {
						lc.preview = func() (rollout.Preview, error) {
							if id == "active" || id == "latest" {
								// The rollout previewed is the one confirmed, even
								// if another becomes the latest meanwhile.
								ro, err := c.Rollout(ctx, id)
								if err != nil {
									return rollout.Preview{}, err
								}
								id = ro.ID
							}
							lc.again = "silo rollout rollback " + id
							return c.PreviewRollback(ctx, id)
						}
					}
					r, err = g.confirmDataLoss(yes, lc, func(opt rollout.Options) (rollout.Rollout, error) { return o.remote(c, ctx, id, opt) })
					if err == nil && o.split {
						// The names are a help: the abort is done whatever the listing says.
						moved, _ = accountsOn(func(f store.Filter) ([]silo.Account, error) { return c.Accounts(ctx, f) }, r.Release)
					}
					if err == nil && o.follows && !detach {
						// The resumed rollout or the rollback's, followed
						// as silo deploy follows its own; interrupted, it
						// goes on in the server, and the error says so.
						err := followRemote(ctx, g, c, r.ID)
						if err != nil && ctx.Err() != nil {
							return followInterrupted{id: r.ID, of: r.RollbackOf, err: err}
						}
						return err
					}
				} else {
					a, rn, err2 := localRunner(ctx, g)
					if err2 != nil {
						return err2
					}
					defer a.Close()
					if id == "" {
						if id, err = o.defaultRollout(ctx, rn); err != nil {
							return err
						}
					}
					if lc != nil {
						lc.again = "silo rollout rollback " + id
						lc.preview = func() (rollout.Preview, error) { return rn.PreviewRollback(ctx, id) }
					}
					r, err = g.confirmDataLoss(yes, lc, func(opt rollout.Options) (rollout.Rollout, error) { return o.local(rn, ctx, id, opt) })
					if err == nil && o.split {
						moved, _ = accountsOn(func(f store.Filter) (as []silo.Account, err error) {
							err = a.store.View(ctx, func(tx store.Tx) error { as, err = tx.Accounts(f); return err })
							return as, err
						}, r.Release)
					}
					if err == nil && r.State == rollout.StateRunning {
						// Resumed, or a rollback started: no server drives
						// it, so this command does.
						return runHere(ctx, g, rn, r.ID)
					}
				}
				if err != nil {
					return err
				}
				if err := printRollout(g, r); err != nil || g.json() || !o.split {
					return err
				}
				writeSplit(g.stdout, r, moved)
				return nil
			},
		}
		if o.follows {
			cmd.Flags().BoolVar(&detach, "detach", false, "set the rollout running on the server and return without following it")
		}
		if o.latest {
			cmd.Flags().BoolVar(&yes, "yes", false, "go ahead even if returning the accounts deletes or replaces a table, bucket or secret (whatever the planning as it starts finds)")
		}
		return cmd
	}
	cmd.AddCommand(status, list,
		op(rolloutOp{"pause", "Pause a rollout after the account steps in flight",
			func(r *rollout.Runner, ctx context.Context, id string, _ rollout.Options) (rollout.Rollout, error) {
				return r.Pause(ctx, id)
			},
			func(c *server.Client, ctx context.Context, id string, _ rollout.Options) (rollout.Rollout, error) {
				return c.Pause(ctx, id)
			}, false, false, false}),
		op(rolloutOp{"resume", "Resume a paused rollout, following it as silo deploy does",
			func(r *rollout.Runner, ctx context.Context, id string, _ rollout.Options) (rollout.Rollout, error) {
				return r.Resume(ctx, id)
			},
			func(c *server.Client, ctx context.Context, id string, _ rollout.Options) (rollout.Rollout, error) {
				return c.ResumeRollout(ctx, id)
			}, false, true, false}),
		op(rolloutOp{"abort", "Stop a rollout for good, leaving accounts where they are",
			func(r *rollout.Runner, ctx context.Context, id string, _ rollout.Options) (rollout.Rollout, error) {
				return r.Abort(ctx, id)
			},
			func(c *server.Client, ctx context.Context, id string, _ rollout.Options) (rollout.Rollout, error) {
				return c.Abort(ctx, id)
			}, false, false, true}),
		op(rolloutOp{"rollback", "Return every account the latest rollout moved to the release it ran before, following it as silo deploy does",
			(*rollout.Runner).Rollback, (*server.Client).Rollback, true, true, false}),
	)
	return cmd
}
