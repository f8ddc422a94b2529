package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
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
printed and the last good version keeps serving. The account's URL and a fresh key are printed
once the gateway serves it and a build of the sources is live: when the first build fails, after
the first fix that goes live. The account's function logs stream below. Ctrl-C stops it ("stopped"
is its last line); if the gateway or the file watcher fails, it stops with that error.

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
			if err := checkListen(cmd, "--listen", listen); err != nil {
				return err
			}
			spec, err := findApp(g, cmd.Flags().Changed("file"))
			if err != nil {
				return err
			}
			if name == "" {
				name = userName()
			}
			const instead = "silo dev serves your account itself: stop that process and run silo dev alone, or pass another --data-dir"
			if err := notServed(g, instead); err != nil {
				return err
			}
			lock, err := holdDataDir(g, "silo dev", true, instead)
			if err != nil {
				return err
			}
			defer lock.Release()
			p, err := openPlatform(ctx, g, listen, "", func(c *platform.Config) { c.LogLevel, c.ListenFlag = slog.LevelDebug, "silo dev --listen ADDR" })
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
			lock.SetPhase("serving")
			return runDev(ctx, g, p, ln, d, spec)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:8080", "address the gateway listens on")
	cmd.Flags().StringVar(&name, "user", "", "developer name for the account dev-NAME (default $USER)")
	return cmd
}

// runDev runs the development loop of d on ln until ctx is done. It says
// that the account is live, with its URL and a key, only once the gateway
// serves ln and a build of the sources is live, and never after it began to
// stop: a first build that fails is printed as it failed, and the URL follows
// the first build that goes live. Once serving, its last line is "stopped";
// a failure of the gateway or of the watcher stops it and is its error.
func runDev(ctx context.Context, g *globals, p *platform.Platform, ln net.Listener, d *platform.Dev, spec string) error {
	out := g.stdout
	fmt.Fprintf(out, "building %s for %s ...\n", relPath(spec), d.Account)
	first, err := d.Prepare(ctx)
	if err == nil {
		err = ctx.Err() // interrupted while building: nothing serves yet
	}
	if err != nil {
		return err
	}

	ctx, stop := context.WithCancel(ctx)
	defer stop()
	served := make(chan error, 1)
	go func() {
		err := p.Serve(ctx, ln)
		stop() // the loop stops with the gateway
		served <- err
	}()
	logsDone := make(chan struct{})
	go func() {
		defer close(logsDone)
		p.Logs.Follow(ctx, d.Account, logs.Query{Since: time.Now()}, 100*time.Millisecond, func(e logs.Entry) error {
			fmt.Fprintf(out, "  │ %s\n", e.String())
			return nil
		})
	}()

	live, keyErr := false, error(nil)
	// show prints ev, and the account's URL and key before the first
	// live build (the gateway serves by then: Serve runs on a listening
	// socket).
	show := func(ev platform.DevEvent) {
		if ctx.Err() != nil {
			return // stopping: a build cut short is no news, and nothing is live any more
		}
		if live || ev.Kind != "live" && ev.Kind != "unchanged" {
			printDevEvent(g, ev)
			return
		}
		key, err := p.IssueKey(ctx, d.Account, "silo-dev")
		if err != nil {
			keyErr = err
			stop()
			return
		}
		live = true
		if len(ev.Files) > 0 { // a rebuild after a first build that failed
			printDevEvent(g, ev)
		}
		fmt.Fprintf(out, "\n%s is live (release %s) in %s\n", d.Account, ev.Release, ev.Took.Round(time.Millisecond))
		host, port := urlHost(ln.Addr())
		route := "/"
		if rel, err := p.Plane.Release(ctx, ev.Release); err == nil {
			route = firstRoute(rel.Stack) // as silo up prints it: "/" may be no route of the app
		}
		fmt.Fprintf(out, "  URL  http://%s.%s%s%s   (or http://%s%s/t/%s%s)\n", d.Account, host, port, route, host, port, d.Account, route)
		fmt.Fprintf(out, "  key  %s\n", key)
		if len(ev.Files) == 0 {
			printLoss(out, ev)
		}
	}
	if first.Kind == "failed" {
		fmt.Fprintf(out, "✗ not applied (the first build); fix it and save: %s's URL and key follow once a build is live:\n", d.Account)
		printDevError(out, first.Err)
	} else {
		show(first)
	}
	werr := d.Watch(ctx, func(ev platform.DevEvent) {
		if ev.Kind == "watching" {
			fmt.Fprintf(out, "watching %s; save a change to rebuild, Ctrl-C stops\n\n", relPath(d.App))
			return
		}
		show(ev)
	})
	stop()
	<-logsDone
	if err := errors.Join(werr, keyErr, <-served); err != nil {
		return err // the watcher, the key or the gateway failed
	}
	fmt.Fprintln(out, "stopped")
	return nil
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
		printLoss(w, ev)
	case "unchanged":
		fmt.Fprintf(w, "· no change (%s): release %s keeps serving\n", what, ev.Release)
	default:
		fmt.Fprintf(w, "✗ not applied (%s); the last good version keeps serving:\n", what)
		printDevError(w, ev.Err)
	}
}

// printLoss says what data a live build destroyed: silo dev does not ask
// (see its help), so it says what is gone.
func printLoss(w io.Writer, ev platform.DevEvent) {
	if lost := silo.DataLoss([]silo.Plan{ev.Plan}); lost != "" {
		fmt.Fprintf(w, "! data destroyed in your developer account, unasked: %s; what it held is gone\n", lost)
	}
}

// printDevError prints what a failed build or apply says to its user,
// indented under the line that announced it.
func printDevError(w io.Writer, err error) {
	for _, line := range strings.Split(silo.UserMessage(err), "\n") {
		fmt.Fprintf(w, "    %s\n", line)
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
