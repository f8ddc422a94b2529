package main

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/platform"
)

func newDevCmd(g *globals) *cobra.Command {
	var listen, name string
	cmd := &cobra.Command{
		Use:   "dev",
		Short: "Develop in your own account: watch, rebuild, apply to dev-$USER only, stream its logs",
		Long: `silo dev serves the gateway like silo up and keeps your developer account (dev-$USER, kind
developer, created on first use) running the app's sources as they are on disk: every saved change
to a Go source, silo.yaml or go.mod is rebuilt and applied to that account only. A build error is
printed and the last good version keeps serving. The account's function logs stream below.

Unlike silo apply and silo deploy, silo dev does not ask before a change that deletes or
replaces a table, bucket or secret of your developer account (renaming a table in silo.yaml,
say): the account is your scratch copy and the loop is live. The log says plainly what was
destroyed ("! data destroyed in your developer account, unasked: ..."). No other account is
changed.

The app is ./silo.yaml, else examples/findings of this repository, or --file. Stop silo up first
(or give silo dev another --listen and --data-dir): both serve the same data dir.`,
		Example: `  silo dev
  silo dev --file ./myapp/silo.yaml --listen 127.0.0.1:9090`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			spec, err := findApp(g, cmd.Flags().Changed("file"))
			if err != nil {
				return err
			}
			if name == "" {
				name = userName()
			}
			if err := notServed(g, "silo dev serves your account itself: stop silo up and run silo dev alone, or pass another --data-dir"); err != nil {
				return err
			}
			p, err := openPlatform(ctx, g, listen, "", func(c *platform.Config) { c.LogLevel = slog.LevelDebug })
			if err != nil {
				return err
			}
			defer p.Close()
			ln, err := p.Listen()
			if err != nil {
				return err
			}
			defer ln.Close()
			d := &platform.Dev{P: p, App: filepath.Dir(spec), Account: platform.DevAccount(name)}
			out := g.stdout
			fmt.Fprintf(out, "building %s for %s ...\n", relPath(spec), d.Account)
			first, err := d.Prepare(ctx)
			if err != nil {
				return err
			}
			key, err := p.IssueKey(ctx, d.Account, "silo-dev")
			if err != nil {
				return err
			}
			host, port := urlHost(ln.Addr())
			fmt.Fprintf(out, "\n%s is live (release %s) in %s\n", d.Account, first.Release, first.Took.Round(time.Millisecond))
			fmt.Fprintf(out, "  URL  http://%s.%s%s/   (or http://%s%s/t/%s/)\n", d.Account, host, port, host, port, d.Account)
			fmt.Fprintf(out, "  key  %s\n", key)
			fmt.Fprintf(out, "watching %s; Ctrl-C stops\n\n", relPath(d.App))

			serveErr := make(chan error, 1)
			go func() { serveErr <- p.Serve(ctx, ln) }()
			logsDone := make(chan struct{})
			go func() {
				defer close(logsDone)
				p.Logs.Follow(ctx, d.Account, logs.Query{Since: time.Now()}, 100*time.Millisecond, func(e logs.Entry) error {
					fmt.Fprintf(out, "  │ %s\n", e.String())
					return nil
				})
			}()
			d.Watch(ctx, func(ev platform.DevEvent) { printDevEvent(g, ev) })
			<-logsDone
			if err := <-serveErr; err != nil {
				return err
			}
			fmt.Fprintln(out, "stopped")
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address the gateway listens on")
	cmd.Flags().StringVar(&name, "user", "", "developer name for the account dev-NAME (default $USER)")
	return cmd
}

func printDevEvent(g *globals, ev platform.DevEvent) {
	w := g.stdout
	files := make([]string, 0, len(ev.Files))
	for _, f := range ev.Files {
		files = append(files, relPath(f))
	}
	what := strings.Join(files, ", ")
	switch ev.Kind {
	case "watching":
	case "live":
		fmt.Fprintf(w, "✓ live in %s: release %s (%s) after %s\n", ev.Took.Round(time.Millisecond), ev.Release, planCounts(ev), what)
		if lost := silo.DataLoss([]silo.Plan{ev.Plan}); lost != "" {
			// silo dev does not ask (see its help): it says what is gone.
			fmt.Fprintf(w, "! data destroyed in your developer account, unasked: %s; what it held is gone\n", lost)
		}
	case "unchanged":
		fmt.Fprintf(w, "· no change (%s): release %s keeps serving\n", what, ev.Release)
	default:
		fmt.Fprintf(w, "✗ not applied (%s); the last good version keeps serving:\n", what)
		for _, line := range strings.Split(silo.UserMessage(ev.Err), "\n") {
			fmt.Fprintf(w, "    %s\n", line)
		}
	}
}

func planCounts(ev platform.DevEvent) string {
	var parts []string
	for _, c := range ev.Plan.Changes {
		parts = append(parts, string(c.Op)+" "+c.Key())
	}
	if len(parts) == 0 {
		return "no resource changes"
	}
	return strings.Join(parts, ", ")
}
