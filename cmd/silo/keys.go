package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/store"
)

func newKeysCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Issue, list, revoke and rotate a tenant's API keys; remove a flagged key record",
		Long: `API keys authenticate requests to a tenant's routes. A key is random, shown once when
issued, stored only as a hash, and worthless against any other tenant.`,
	}
	var name string
	create := &cobra.Command{
		Use:   "create TENANT",
		Short: "Issue a new API key (printed once)",
		Args:  accountArgs(1, "a tenant ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			plain, k, err := api.IssueKey(ctx, silo.AccountID(args[0]), name)
			if err != nil {
				return err
			}
			return g.print(map[string]any{"key": plain, "key_id": k.ID, "account": k.Account, "name": k.Name}, func(w io.Writer) {
				fmt.Fprintf(w, "key %s for %s (shown once, store it now):\n%s\n", k.ID, k.Account, plain)
			})
		}),
	}
	create.Flags().StringVar(&name, "name", "", "a label for the key")
	list := &cobra.Command{
		Use:   "list TENANT",
		Short: "List a tenant's keys (IDs and state, never the keys)",
		Args:  accountArgs(1, "a tenant ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			keys, err := api.Keys(ctx, silo.AccountID(args[0]))
			if err != nil {
				return err
			}
			if keys == nil {
				keys = []store.APIKey{}
			}
			return g.print(keys, func(w io.Writer) { printKeys(w, keys) })
		}),
	}
	revoke := &cobra.Command{
		Use:   "revoke TENANT KEY-ID",
		Short: "Revoke a key; requests with it get 401 from then on",
		Args:  accountArgs(2, "a tenant ID and a key ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			if err := api.RevokeKey(ctx, silo.AccountID(args[0]), args[1]); err != nil {
				return err
			}
			return g.print(map[string]string{"revoked": args[1]}, func(w io.Writer) { fmt.Fprintf(w, "revoked %s\n", args[1]) })
		}),
	}
	var grace time.Duration
	rotate := &cobra.Command{
		Use:   "rotate TENANT KEY-ID",
		Short: "Issue a new key with the old one's name, then revoke the old one",
		Args:  accountArgs(2, "a tenant ID and a key ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			if grace < 0 || grace > control.MaxKeyGrace {
				return usageError{fmt.Sprintf("--grace must be between 0 and %s; see silo keys rotate --help", control.MaxKeyGrace)}
			}
			id := silo.AccountID(args[0])
			keys, err := api.Keys(ctx, id)
			if err != nil {
				return err
			}
			i := slices.IndexFunc(keys, func(k store.APIKey) bool { return k.ID == args[1] })
			if i < 0 {
				return silo.Errorf(silo.CodeNotFound, "account %s has no key %q; silo keys list %s shows its keys", id, args[1], id)
			}
			if end := keys[i].Revoked; end != nil && time.Now().Before(*end) {
				return silo.Errorf(silo.CodeConflict, "key %s of %s is being rotated: it keeps working until %s; silo keys revoke %s %s ends it now", args[1], id, end.Local().Format(time.DateTime), id, args[1])
			} else if end != nil {
				return silo.Errorf(silo.CodeInvalid, "key %s of %s is revoked already; issue a new one with silo keys create %s", args[1], id, id)
			}
			plain, k, err := api.IssueKey(ctx, id, keys[i].Name)
			if err != nil {
				return err
			}
			if err := api.RevokeKeyAfter(ctx, id, args[1], grace); err != nil {
				return err
			}
			return g.print(map[string]any{"key": plain, "key_id": k.ID, "account": k.Account, "name": k.Name, "revoked": args[1], "grace": grace.String()}, func(w io.Writer) {
				if grace > 0 {
					fmt.Fprintf(w, "%s keeps working for %s, then is revoked; new key %s (shown once):\n%s\n", args[1], grace, k.ID, plain)
					return
				}
				fmt.Fprintf(w, "revoked %s; new key %s (shown once):\n%s\n", args[1], k.ID, plain)
			})
		}),
	}
	rotate.Flags().DurationVar(&grace, "grace", 0, "keep the old key working this long (e.g. 24h, at most 720h) so clients can move to the new one")
	remove := &cobra.Command{
		Use:   "remove KEY-ID",
		Short: "Remove a key record the isolation gate flags (bound to the wrong account)",
		Long: `Removes the record of an API key that silo verify and the isolation gate flag: a key bound
to an account its ID does not name, to the production account, or live on a deleted account.
No silo command writes such a record, and while one exists the isolation gate refuses every
release. The removal is audited (key.remove). A key the verifier finds nothing wrong with is
never removed: revoke it with silo keys revoke.`,
		Args: exactArgs(1, "a key ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			out, err := api.RemoveKey(ctx, args[0])
			if err != nil {
				return err
			}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "removed key record %s (bound to %s): %s\n", out.Key.ID, out.Key.Account, strings.Join(out.Problems, "; "))
			})
		}),
	}
	cmd.AddCommand(create, list, revoke, rotate, remove)
	return cmd
}

func printKeys(w io.Writer, keys []store.APIKey) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ID\tNAME\tCREATED\tSTATE")
	for _, k := range keys {
		st := "active"
		switch {
		case k.Revoked != nil && time.Now().Before(*k.Revoked):
			st = "active until " + k.Revoked.Local().Format(time.DateTime)
		case k.Revoked != nil:
			st = "revoked " + k.Revoked.Local().Format(time.DateTime)
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", k.ID, orDash(k.Name), k.Created.Local().Format(time.DateTime), st)
	}
	tw.Flush()
	if len(keys) == 0 {
		fmt.Fprintln(w, "  (none)")
	}
}
