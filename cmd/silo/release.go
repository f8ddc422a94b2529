package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

func newReleaseCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "release", Short: "List and show releases"}
	var probes bool
	list := &cobra.Command{
		Use: "list [--probes]", Short: "List releases, newest first", Args: exactArgs(0, "no arguments"),
		Long: `release list lists the releases, newest first, each with how it was stored: "deploy" (silo
deploy, apply or up, or uploaded to the server), "build of FILE" (silo build or silo plan of that
spec file), "dev build for dev-NAME" (silo dev: it runs only in developer accounts and is never
rolled out or made current until silo deploy of the same sources records it as a release), or
"unrecorded" (stored before silo recorded it). The releases silo verify --probe builds for its
throwaway accounts are left out; --probes lists them too, marked "probe build". They are never
rolled out or made current.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := remote(g)
			if err != nil {
				return err
			}
			var rs []server.ReleaseInfo
			if c != nil {
				rs, err = c.Releases(cmd.Context(), 50, probes)
			} else {
				rs, err = localReleases(cmd.Context(), g, "", probes)
			}
			if err != nil {
				return err
			}
			if rs == nil {
				rs = []server.ReleaseInfo{} // JSON: [], not null
			}
			return g.print(rs, func(w io.Writer) {
				for _, r := range rs {
					cur := ""
					if r.Current {
						cur = "  (current)"
					}
					if r.Probe {
						cur = "  (probe build of silo verify --probe)"
					}
					fmt.Fprintf(w, "%s  %s  %d artifact(s)  %-28s%s\n", r.ID, r.Created.Format(time.DateTime), len(r.Artifacts), r.Origin, cur)
				}
			})
		},
	}
	list.Flags().BoolVar(&probes, "probes", false, "also list the releases silo verify --probe built for its throwaway accounts (marked; never rolled out)")
	show := &cobra.Command{
		Use: "show ID", Short: "Show a release: its artifacts and stack", Args: exactArgs(1, "a release ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := remote(g)
			if err != nil {
				return err
			}
			var r server.ReleaseInfo
			if c != nil {
				r, err = c.Release(cmd.Context(), args[0])
			} else {
				var rs []server.ReleaseInfo
				rs, err = localReleases(cmd.Context(), g, args[0], true)
				if err == nil {
					r = rs[0]
				}
			}
			if err != nil {
				return err
			}
			return g.print(r, func(w io.Writer) {
				fmt.Fprintf(w, "release %s  created %s  current %v\n", r.ID, r.Created.Format(time.DateTime), r.Current)
				fmt.Fprintf(w, "  origin %s\n", r.Origin)
				if r.Probe {
					fmt.Fprintln(w, "  a probe build of silo verify --probe, for its throwaway accounts only: it is never rolled out or made current")
				}
				if r.Origin.DevOnly() {
					fmt.Fprintln(w, "  a developer's build of silo dev, for developer accounts only: it is never rolled out or made current; silo deploy of the same sources records it as a release")
				}
				for k, d := range r.Artifacts {
					fmt.Fprintf(w, "  %-24s %s\n", k, d)
				}
			})
		},
	}
	cmd.AddCommand(list, show)
	return cmd
}

// localReleases lists releases (or shows one) from the local data dir,
// those silo verify --probe built only when probes is set.
func localReleases(ctx context.Context, g *globals, id string, probes bool) ([]server.ReleaseInfo, error) {
	a, err := openApp(ctx, g)
	if err != nil {
		return nil, err
	}
	defer a.Close()
	var out []server.ReleaseInfo
	err = a.store.View(ctx, func(tx store.Tx) error {
		cur, _ := tx.CurrentRelease()
		var rs []store.Release
		if id != "" {
			r, err := tx.Release(id)
			if errors.Is(err, silo.ErrNotFound) {
				return silo.Errorf(silo.CodeNotFound, "no release %q; silo release list shows the releases", id)
			}
			if err != nil {
				return err
			}
			rs = []store.Release{r}
		} else {
			var err error
			if rs, err = tx.Releases(50, probes); err != nil {
				return err
			}
		}
		for _, r := range rs {
			ri := server.NewReleaseInfo(r, cur)
			if id != "" {
				ri.Stack = r.Stack
			}
			out = append(out, ri)
		}
		return nil
	})
	return out, err
}
