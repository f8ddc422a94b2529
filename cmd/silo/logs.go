package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/silo-run/silo/logs"
)

func newLogsCmd(g *globals) *cobra.Command {
	var (
		follow   bool
		function string
		request  string
		since    time.Duration
		last     int
	)
	var cmd *cobra.Command
	cmd = &cobra.Command{
		Use:   "logs ACCOUNT [-f] [--function NAME] [--since 10m]",
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
      --since DURATION   only lines newer than this, e.g. 10m
  -n, --lines N          only the last N lines (0: all retained)
      --server URL       read the logs on this control-plane server ($SILO_SERVER)
  -o, --output FORMAT    text or json (one JSON object per line)
  and every global flag (--data-dir, --store, --provider, --aws-*, ...: see silo --help)`,
		Example: `  silo logs acme
  silo logs acme -f --function ingest
  silo logs acme --since 10m --request 5KX3...`,
		// -f means --follow here, but the root command's persistent -f is
		// --file; so this command parses its own flags.
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			fs := pflag.NewFlagSet("logs", pflag.ContinueOnError)
			fs.SetOutput(io.Discard)
			fs.BoolVarP(&follow, "follow", "f", false, "")
			fs.StringVar(&function, "function", "", "")
			fs.StringVar(&request, "request", "", "")
			fs.DurationVar(&since, "since", 0, "")
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
			if len(args) != 1 {
				return usageError{"silo logs needs an account ID; see silo logs --help"}
			}
			id, err := idArg(args[0])
			if err != nil {
				return err
			}
			if err := g.requireInstallation(); err != nil {
				return err
			}
			q := logs.Query{Function: function, RequestID: request, Last: last}
			if since > 0 {
				q.Since = time.Now().Add(-since)
			}
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
				if since > 0 {
					by = append(by, "--since "+since.String())
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
	return cmd
}
