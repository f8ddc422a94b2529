package main

import (
	"context"
	"encoding/csv"
	"fmt"
	"io"
	"regexp"
	"slices"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/usage"
)

// usageAPI is what the usage and limits commands call, locally or on
// --server.
type usageAPI interface {
	Limits(ctx context.Context, id silo.AccountID) (control.AccountLimits, error)
	SetLimitOverride(ctx context.Context, id silo.AccountID, l silo.Limits) (control.AccountLimits, error)
	Usage(ctx context.Context, q usage.Query) (usage.Report, error)
}

var (
	_ usageAPI = localAPI{}
	_ usageAPI = remoteAPI{}
)

func (l localAPI) Limits(ctx context.Context, id silo.AccountID) (control.AccountLimits, error) {
	return l.a.plane.Limits(ctx, id)
}

func (l localAPI) SetLimitOverride(ctx context.Context, id silo.AccountID, lim silo.Limits) (control.AccountLimits, error) {
	return l.a.Platform.SetLimitOverride(ctx, id, lim)
}

func (l localAPI) Usage(ctx context.Context, q usage.Query) (usage.Report, error) {
	return l.a.Platform.UsageReport(ctx, q)
}

// withUsageAPI is withAPI for usageAPI.
func withUsageAPI(g *globals, fn func(ctx context.Context, api usageAPI, args []string) error) func(*cobra.Command, []string) error {
	return withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
		u, ok := api.(usageAPI)
		if !ok {
			return fmt.Errorf("the control API %T has no usage endpoints", api)
		}
		return fn(ctx, u, args)
	})
}

func newUsageCmd(g *globals) *cobra.Command {
	var since, until, by string
	var probes bool
	cmd := &cobra.Command{
		Use:   "usage [TENANT] [--since 30d] [--until DATE] [--by function|day] [--probes] [--output text|json|csv]",
		Short: "Show metered usage and its estimated cost, per tenant, function or day (billing export)",
		Long: `Show what each account used over whole UTC days: requests, errors, duration,
GB-seconds (declared memory x time), bytes in and out, the bytes stored in its
tables and buckets over time (GiB-hours, from an hourly sample; on account and
day rows, not per function), and the estimated cost under the server's price
table, stored bytes included, with each account's floor (what an idle account
costs). With --output csv it writes one line per row for billing
exports; json and csv hold every page. The production account is not a
tenant: it is left out unless named; nor are the throwaway accounts of
silo verify --probe, left out unless named or --probes is given.

An account is an ID and a creation time. Deleted accounts are listed, with
their creation and deletion (the CREATED and DELETED columns; created and
deleted in json, account_created and account_deleted in csv, RFC 3339,
UTC). A tenant created again under a deleted tenant's ID is a new account:
the deleted one keeps its rows, usage and floor, to bill the days before
its deletion, and the new one has rows of its own, from nothing; the
earlier account comes first.

With --by function, the requests of an account that ran no function are on
a row of their own, named (no function) in text and csv ("" in json): the
gateway admitted them past the account's limits, then no route matched them
or it refused them without running a function (a suspended, not yet ready or
expired account, a failure to read its routes). Requests refused by a limit
are not metered.

  silo usage --since 30d                       every tenant
  silo usage acme --since 2026-03-01 --by day  one tenant, per day
  silo usage production --since 30d            the production account's own cost
  silo usage --since 30d --by function -o csv > usage.csv`,
		Args: maxArgs(1, "at most one tenant"),
		PreRunE: func(_ *cobra.Command, args []string) error {
			if len(args) == 1 {
				if _, err := idArg(args[0]); err != nil {
					return err
				}
			}
			_, _, err := usageWindow(since, until, by, time.Now())
			return err
		},
		RunE: withUsageAPI(g, func(ctx context.Context, api usageAPI, args []string) error {
			now := time.Now()
			q := usage.Query{By: by, Until: now, Probes: probes}
			if len(args) == 1 {
				id, err := idArg(args[0])
				if err != nil {
					return err
				}
				q.Account = id
			}
			var err error
			if q.Since, q.Until, err = usageWindow(since, until, by, now); err != nil {
				return err
			}
			var lines []usage.Line
			var rep usage.Report
			for {
				if rep, err = api.Usage(ctx, q); err != nil {
					return err
				}
				lines = append(lines, rep.Lines...)
				if rep.Next == "" {
					break
				}
				q.After = rep.Next
			}
			rep.Lines, rep.Next = lines, ""
			if g.output == "csv" {
				return writeUsageCSV(g.stdout, rep)
			}
			return g.print(rep, func(w io.Writer) { writeUsageText(w, rep) })
		}),
	}
	cmd.Flags().StringVar(&since, "since", "30d", "start of the window: how far back (30d, 12h, 10m), a date (2026-03-01) or an RFC 3339 time")
	cmd.Flags().StringVar(&until, "until", "", "end of the window, same forms (default now)")
	cmd.Flags().StringVar(&by, "by", "", "group by account (default), function or day")
	cmd.Flags().BoolVar(&probes, "probes", false, "also list the throwaway accounts silo verify --probe created and deleted")
	return cmd
}

// usageWindow reads --since, --until and --by; a value that does not parse
// is a usage error.
func usageWindow(since, until, by string, now time.Time) (from, to time.Time, err error) {
	if by != "" && by != "account" && by != "function" && by != "day" {
		return from, to, usageError{fmt.Sprintf("--by must be account, function or day, not %q", by)}
	}
	if from, err = control.Since(since, now); err != nil {
		return from, to, usageError{silo.UserMessage(err)}
	}
	to = now
	if until != "" {
		if to, err = control.Since(until, now); err != nil {
			return from, to, usageError{fmt.Sprintf("--until %q is not a time; %s", until, control.SinceForms)}
		}
	}
	return from, to, nil
}

// usageHeader names the csv columns; the account's creation and deletion
// come last, so that readers of the earlier columns by position keep
// working.
var usageHeader = []string{"account", "function", "day", "requests", "errors", "duration_s", "gb_seconds", "bytes_in", "bytes_out",
	"table_byte_hours", "bucket_byte_hours", "storage_usd", "cost_usd", "floor_usd", "account_created", "account_deleted"}

// noFunction names, on --by function rows, the requests of an account
// that ran no function: the gateway admitted them past the account's
// limits, then no route matched them or it refused them (a suspended, not
// yet ready or expired account, a failure to read its routes). Requests
// refused by a limit are not metered.
const noFunction = "(no function)"

// lineFunction is l's function as a row shows it.
func lineFunction(l usage.Line, by string) string {
	if by == usage.ByFunction && l.Function == "" {
		return noFunction
	}
	return l.Function
}

func usageRow(l usage.Line, by string) []string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', 6, 64) }
	i := func(v int64) string { return strconv.FormatInt(v, 10) }
	deleted := ""
	if l.Deleted != nil {
		deleted = l.Deleted.UTC().Format(time.RFC3339Nano)
	}
	created := ""
	if !l.Created.IsZero() {
		created = l.Created.UTC().Format(time.RFC3339Nano)
	}
	return []string{string(l.Account), lineFunction(l, by), l.Day, i(l.Requests), i(l.Errors),
		f(float64(l.DurationMicros) / 1e6), f(l.GBSeconds), i(l.BytesIn), i(l.BytesOut),
		i(l.TableByteHours), i(l.BucketByteHours), f(l.StorageCost), f(l.Cost), f(l.Floor), created, deleted}
}

// minute is how the text table shows an account's creation and deletion.
func minute(t *time.Time) string {
	if t == nil || t.IsZero() {
		return "-"
	}
	return t.UTC().Format("2006-01-02 15:04")
}

// gibHours is byte-hours as GiB-hours.
func gibHours(bh int64) float64 { return float64(bh) / (1 << 30) }

func writeUsageCSV(w io.Writer, rep usage.Report) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(usageHeader); err != nil {
		return err
	}
	for _, l := range rep.Lines {
		if err := cw.Write(usageRow(l, rep.Query.By)); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

func writeUsageText(w io.Writer, rep usage.Report) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "ACCOUNT\tCREATED\tDELETED\tFUNCTION\tDAY\tREQUESTS\tERRORS\tGB-S\tBYTES IN\tBYTES OUT\tTABLE GIB-H\tBUCKET GIB-H\tCOST $\tFLOOR $\t")
	var cost, storage, floor float64
	for _, l := range rep.Lines {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%.3f\t%d\t%d\t%.4f\t%.4f\t%.4f\t%.4f\t\n", l.Account, minute(&l.Created), minute(l.Deleted), orDash(lineFunction(l, rep.Query.By)), orDash(l.Day),
			l.Requests, l.Errors, l.GBSeconds, l.BytesIn, l.BytesOut, gibHours(l.TableByteHours), gibHours(l.BucketByteHours), l.Cost, l.Floor)
		cost, storage, floor = cost+l.Cost, storage+l.StorageCost, floor+l.Floor
	}
	tw.Flush()
	window := fmt.Sprintf("%s to %s (UTC days); prices: %s", rep.Query.Since.UTC().Format(time.DateOnly), rep.Query.Until.UTC().Format(time.DateOnly), rep.Prices.Source)
	if rep.Query.By == usage.ByFunction {
		// Function lines carry neither stored bytes nor floors, which
		// belong to accounts: a total of them would read as $0.
		fmt.Fprintf(w, "total: $%.4f usage of the functions (stored bytes and floors are an account's: see --by account or --by day), %s\n", cost, window)
		return
	}
	fmt.Fprintf(w, "total: $%.4f usage (of which $%.4f stored bytes) + $%.4f floors, %s\n", cost, storage, floor, window)
}

func newLimitsCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "limits", Short: "Show a tenant's limits (its plan's and the operator's override) and override them"}
	show := &cobra.Command{
		Use:   "show TENANT",
		Short: "Show a tenant's plan, its plan's limits, the override and the limits in effect",
		Args:  accountArgs(1, "a tenant"),
		RunE: withUsageAPI(g, func(ctx context.Context, api usageAPI, args []string) error {
			l, err := api.Limits(ctx, silo.AccountID(args[0]))
			if err != nil {
				return err
			}
			return g.print(l, func(w io.Writer) { writeLimits(w, l) })
		}),
	}
	var set silo.Limits
	var storage string
	setCmd := &cobra.Command{
		Use:   "set TENANT [--rate N] [--burst N] [--concurrency N] [--storage SIZE] [--invocations N]",
		Short: "Override some of a tenant's limits (the rest keep the plan's); the gateway applies it within two seconds, without a restart",
		Args:  accountArgs(1, "a tenant"),
		PreRunE: func(cmd *cobra.Command, _ []string) error {
			// Every flag given is checked before anything is read: a limit
			// of 0 is out of range like a negative one, not dropped.
			if cmd.Flags().Changed("storage") {
				n, err := parseSize(storage)
				if err != nil {
					return err
				}
				set.Storage = n
			}
			given := func(field string) bool { return cmd.Flags().Changed(field) }
			if err := set.CheckGiven(given); err != nil {
				return usageError{silo.UserMessage(err) + "; see silo limits set --help"}
			}
			if !slices.ContainsFunc([]string{"rate", "burst", "concurrency", "storage", "invocations"}, given) {
				return usageError{"silo limits set needs at least one of --rate, --burst, --concurrency, --storage, --invocations (silo limits clear removes the override)"}
			}
			return nil
		},
		RunE: withUsageAPI(g, func(ctx context.Context, api usageAPI, args []string) error {
			id := silo.AccountID(args[0])
			old, err := api.Limits(ctx, id)
			if err != nil {
				return err
			}
			l, err := api.SetLimitOverride(ctx, id, old.Override.Over(set))
			if err != nil {
				return err
			}
			return g.print(l, func(w io.Writer) { writeLimits(w, l) })
		}),
	}
	setCmd.Flags().Float64Var(&set.Rate, "rate", 0, "requests per second")
	setCmd.Flags().IntVar(&set.Burst, "burst", 0, "requests at once above the rate")
	setCmd.Flags().IntVar(&set.Concurrency, "concurrency", 0, "requests in flight")
	setCmd.Flags().StringVar(&storage, "storage", "", "bytes per table or bucket, e.g. 10GiB")
	setCmd.Flags().Int64Var(&set.Invocations, "invocations", 0, "requests per calendar month (UTC)")
	clear := &cobra.Command{
		Use:   "clear TENANT",
		Short: "Remove a tenant's override: its plan's limits apply again",
		Args:  accountArgs(1, "a tenant"),
		RunE: withUsageAPI(g, func(ctx context.Context, api usageAPI, args []string) error {
			l, err := api.SetLimitOverride(ctx, silo.AccountID(args[0]), silo.Limits{})
			if err != nil {
				return err
			}
			return g.print(l, func(w io.Writer) { writeLimits(w, l) })
		}),
	}
	cmd.AddCommand(show, setCmd, clear)
	return cmd
}

func writeLimits(w io.Writer, l control.AccountLimits) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "account\t%s\nplan\t%s\n\n", l.Account, orDash(l.Plan))
	fmt.Fprintln(tw, "LIMIT\tPLAN\tOVERRIDE\tIN EFFECT")
	row := func(name string, f func(silo.Limits) string) {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", name, f(l.PlanLimits), f(l.Override), f(l.Effective))
	}
	num := func(v float64) string {
		if v == 0 {
			return "-"
		}
		return strconv.FormatFloat(v, 'f', -1, 64)
	}
	size := func(v uint64) string {
		for _, u := range []struct {
			unit  string
			shift uint
		}{{"TiB", 40}, {"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
			if v != 0 && v%(1<<u.shift) == 0 {
				return strconv.FormatUint(v>>u.shift, 10) + u.unit
			}
		}
		return num(float64(v))
	}
	row("rate (req/s)", func(x silo.Limits) string { return num(x.Rate) })
	row("burst", func(x silo.Limits) string { return num(float64(x.Burst)) })
	row("concurrency", func(x silo.Limits) string { return num(float64(x.Concurrency)) })
	row("storage (per table/bucket)", func(x silo.Limits) string { return size(x.Storage) })
	row("invocations per month", func(x silo.Limits) string { return num(float64(x.Invocations)) })
	tw.Flush()
	fmt.Fprintln(w, "(-: the server's default; storage and invocations then unbounded)")
}

var sizeFlag = regexp.MustCompile(`^([0-9]+)(KiB|MiB|GiB|TiB)$`)

// parseSize reads a size such as 512MiB.
func parseSize(s string) (uint64, error) {
	m := sizeFlag.FindStringSubmatch(s)
	if m == nil {
		return 0, usageError{fmt.Sprintf("--storage %q is not a size; write a whole number and KiB, MiB, GiB or TiB (e.g. 10GiB)", s)}
	}
	n, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		return 0, usageError{fmt.Sprintf("--storage %q is too large", s)}
	}
	return n << map[string]uint{"KiB": 10, "MiB": 20, "GiB": 30, "TiB": 40}[m[2]], nil
}
