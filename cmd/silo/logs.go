package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/logs"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		follow   bool
		function string
		request  string
		since    string
		until    string
		last     int
	)
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "logs ACCOUNT [-f] [--function NAME] [--since 10m] [--until TIME]",
		Short: "Show an account's function logs (-f follows them)",
		Long: `Show the function logs of one account: timestamp, level, function, the request ID the gateway
gave the request (also returned to the client as X-Request-Id), the message and its attributes.
Lines are shown in time order; a request's access line (method, path, status, duration) is
stamped when the request arrived, so it comes before its function's lines. Logs are kept per
account with a bounded size (the oldest lines go first). While silo up or silo server runs on
the data dir (or with --server), the lines come from that server, which first writes what is
pending, so every request that finished before is there; otherwise (silo dev included) this
reads the data dir's log files, which hold a line within about 100 ms of its logging. Either
way they print the same (text, or JSON lines with -o json). When the
provider runs the functions itself (AWS, functions on Lambda), the lines come from the account's
CloudWatch Logs instead, and -f asks for new ones every 2 seconds.

Flags:
  -f, --follow           keep printing new lines as they are written
      --function NAME    only lines of this function
      --request ID       only lines of this request ID
      --since WHEN       only lines at or after: how far back (10m, 12h, 30d), a date
                         (2026-03-01, UTC) or an RFC 3339 time (2026-03-01T12:00:00Z)
      --until WHEN       only lines before, same forms (not with -f)
  -n, --lines N          only the last N lines (0: all retained; with -f the default
                         is 10, as tail -f, then every new line)
      --server URL       read the logs on this control-plane server ($SILO_SERVER)
  -o, --output FORMAT    text or json (one JSON object per line)
  and every global flag (--data-dir, --store, --provider, --aws-*, ...: see silo --help)`,
		Example: `  silo logs acme
  silo logs acme -f --function ingest
  silo logs acme --since 10m --request 5KX3...
  silo logs acme --since 2026-03-01T09:00:00Z --until 2026-03-01T10:00:00Z`,
		// -f means --follow here, but the root command's persistent -f is
		// --file; so this command parses its own flags.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := pflag.NewFlagSet("logs", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.BoolVarP(&follow, "follow", "f", false, "")
			fs.StringVar(&function, "function", "", "")
			fs.StringVar(&request, "request", "", "")
			fs.StringVar(&since, "since", "", "")
			fs.StringVar(&until, "until", "", "")
			fs.IntVarP(&last, "lines", "n", 0, "")
			// Every global flag is accepted as on any other command
			// (--data-dir, --store, --provider, --aws-*, ...), bound to the
			// same settings; only --file loses its -f, which is --follow here.
			cmd.Root().PersistentFlags().VisitAll(func(f *pflag.Flag) {
				if f.Shorthand == "f" {
					c := *f
					c.Shorthand = ""
					f = &c
				}
				fs.AddFlag(f)
			})
			help := fs.BoolP("help", "h", false, "")
			if err := fs.Parse(args); err != nil {
				return usageError{flagError(err) + "; see silo logs --help"}
			}
			if *help {
				return cmd.Help()
			}
			if g.output != "text" && g.output != "json" {
				return usageError{fmt.Sprintf("--output must be text or json, not %q", g.output)}
			}
			args = fs.Args()
			if len(args) == 0 {
				return usageError{"silo logs needs an account ID; see silo logs --help"}
			}
			if len(args) > 1 {
				return usageError{fmt.Sprintf("silo logs takes one account ID, not %q too; see silo logs --help", strings.Join(args[1:], " "))}
			}
			id, err := idArg(args[0])
			if err != nil {
				return err
			}
			if err := g.requireInstallation(); err != nil {
				return err
			}
			q, err := logsQuery(fs, follow, since, until, time.Now())
			if err != nil {
				return err
			}
			q.Function, q.RequestID = function, request
			ctx := cmd.Context()
			api, done, err := openAPI(ctx, g)
			if err != nil {
				return err
			}
			defer done()
			enc := json.NewEncoder(g.stdout)
			show := func(e logs.Entry) error {
				if g.json() {
					return enc.Encode(e)
				}
				_, err := fmt.Fprintln(g.stdout, e.String())
				return err
			}
			if follow {
				return api.FollowLogs(ctx, id, q, show)
			}
			es, err := api.Logs(ctx, id, q)
			if err != nil {
				return err
			}
			if len(es) == 0 && !g.json() {
				var by []string
				if function != "" {
					by = append(by, "--function "+function)
				}
				if request != "" {
					by = append(by, "--request "+request)
				}
				if since != "" {
					by = append(by, "--since "+since)
				}
				if until != "" {
					by = append(by, "--until "+until)
				}
				if len(by) > 0 {
					fmt.Fprintf(g.stderr, "no log line of %s matches %s\n", id, strings.Join(by, " "))
				} else {
					fmt.Fprintf(g.stderr, "no logs for %s yet\n", id)
				}
			}
			for _, e := range es {
				if err := show(e); err != nil {
					return err
				}
			}
			return nil
		},
	}
	// The Long text lists every flag this command parses; cobra's flag
	// lists would repeat -o and name -f as --file.
	cmd.SetHelpFunc(func(c *cobra.Command, _ []string) {
		fmt.Fprintf(c.OutOrStdout(), "%s\n\nUsage:\n  %s\n\nExamples:\n%s\n", c.Long, c.UseLine(), c.Example)
	})
	return cmd
}

// followLines is how many retained lines silo logs -f shows before the
// new ones when -n is not given, as tail -f.
const followLines = 10

// logsQuery reads --since, --until and -n: a value out of range is a
// usage error.
func logsQuery(fs *pflag.FlagSet, follow bool, since, until string, now time.Time) (logs.Query, error) {
	var q logs.Query
	var err error
	if since != "" {
		if q.Since, err = control.Since(since, now); err != nil {
			return q, usageError{silo.UserMessage(err)}
		}
	}
	if until != "" {
		if follow {
			return q, usageError{"--until does not go with -f (following shows the lines as they are written); drop one"}
		}
		if q.Until, err = control.Since(until, now); err != nil {
			return q, usageError{strings.Replace(silo.UserMessage(err), "--since", "--until", 1)}
		}
		if !q.Since.IsZero() && !q.Since.Before(q.Until) {
			return q, usageError{fmt.Sprintf("--since %s is not before --until %s; no line could match", since, until)}
		}
	}
	if q.Last, err = fs.GetInt("lines"); err != nil {
		return q, err
	}
	if q.Last < 0 {
		return q, usageError{fmt.Sprintf("-n %d is negative; give how many of the last lines to show (0: all retained)", q.Last)}
	}
	if follow && !fs.Changed("lines") {
		q.Last = followLines
	}
	return q, nil
}
