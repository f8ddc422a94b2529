package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
)

// maxSecretRead is how much of standard input silo secret set reads: more
// than a secret holds (provider.MaxSecretSize), so that a value too large
// is refused with its size.
const maxSecretRead = 64 << 10

// fleetSecretWorkers bounds how many accounts silo secret set --all sets
// at once.
const fleetSecretWorkers = 4

func newSecretCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "secret",
		Short: "Set, delete and list a tenant's secrets (write-only: values are never printed back)",
	}
	cmd.AddCommand(newSecretSet(g), newSecretDelete(g), newSecretList(g))
	return cmd
}

func newSecretSet(g *globals) *cobra.Command {
	var all bool
	var kinds []string
	set := &cobra.Command{
		Use:   "set {TENANT NAME | --all NAME} < value",
		Short: "Set a secret from standard input; it is encrypted under the tenant's data key",
		Long: `Set a secret declared in silo.yaml (secrets:) for one tenant. The value is read from standard
input (one trailing newline is removed), encrypted with AES-256-GCM under the tenant's data key, and
readable only by that tenant's functions that are granted it. The control plane never reads it back.

With --all, the value (read once) is set in every tenant account, each copy encrypted under that
account's own key and audited as its own secret.set. --kinds widens the fleet to other kinds of
account (tenant, environment, developer, production); accounts being deleted are skipped. A failure
in one account does not stop the others: each account's outcome is listed at the end, and the exit
status is 1 if any failed (set those again one by one, or run the command again).`,
		Example: "  silo secret set acme github-token < token.txt\n  silo secret set --all github-token < token.txt\n  silo secret set --all --kinds tenant,environment github-token < token.txt",
		Args: func(cmd *cobra.Command, args []string) error {
			if all {
				return exactArgs(1, "a secret name (with --all, no tenant)")(cmd, args)
			}
			return accountArgs(2, "a tenant ID and a secret name")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			fleet, err := fleetKinds(all, kinds, cmd.Flags().Changed("kinds"))
			if err != nil {
				return err
			}
			target, name := "", args[0]
			if !all {
				target, name = args[0], args[1]
			}
			val, err := readSecret(g.stdin, target, name)
			if err != nil {
				return err
			}
			api, done, err := openAPI(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer done()
			if all {
				return setSecretFleet(cmd.Context(), g, api, fleet, name, val)
			}
			if err := api.SetSecret(cmd.Context(), silo.AccountID(target), name, val); err != nil {
				return err
			}
			return g.print(map[string]any{"account": target, "secret": name, "bytes": len(val)}, func(w io.Writer) {
				fmt.Fprintf(w, "secret %s set for %s (%d bytes)\n", name, target, len(val))
			})
		},
	}
	set.Flags().BoolVar(&all, "all", false, "set the secret in every tenant account (see --kinds)")
	set.Flags().StringSliceVar(&kinds, "kinds", []string{string(silo.KindTenant)}, "with --all, the kinds of account to set it in: tenant, environment, developer, production")
	return set
}

// readSecret reads a secret's value from r (once: it may be a pipe),
// removes one trailing newline and refuses what no provider holds, before
// any server is asked. target is the account, "" for --all.
func readSecret(r io.Reader, target, name string) ([]byte, error) {
	val, err := io.ReadAll(io.LimitReader(r, maxSecretRead+1))
	if err != nil {
		return nil, fmt.Errorf("read the value of secret %s from standard input: %w", name, err)
	}
	if len(val) > maxSecretRead {
		return nil, silo.Errorf(silo.CodeInvalid, "secret %s is over %d bytes; a secret holds at most %d bytes; keep large data in a bucket and in the secret only what opens it", name, maxSecretRead, provider.MaxSecretSize)
	}
	val = bytes.TrimSuffix(val, []byte("\n"))
	if len(val) == 0 {
		pipe := "silo secret set --all " + name + " < file"
		if target != "" {
			pipe = "silo secret set " + target + " " + name + " < file"
		}
		return nil, silo.Errorf(silo.CodeInvalid, "no value on standard input; pipe it in: %s", pipe)
	}
	return val, provider.CheckSecretSize(name, val)
}

// fleetKinds returns the kinds of account silo secret set --all sets the
// secret in; --kinds without --all is a wrong call.
func fleetKinds(all bool, kinds []string, changed bool) ([]silo.Kind, error) {
	if !all {
		if changed {
			return nil, usageError{"--kinds goes with --all; see silo secret set --help"}
		}
		return nil, nil
	}
	var out []silo.Kind
	for _, k := range kinds {
		kind := silo.Kind(strings.TrimSpace(k))
		if !kind.Valid() {
			return nil, usageError{fmt.Sprintf("--kinds: unknown account kind %q; use tenant, environment, developer or production", k)}
		}
		if !slices.Contains(out, kind) {
			out = append(out, kind)
		}
	}
	if len(out) == 0 {
		return nil, usageError{"--kinds names no kind of account; use tenant, environment, developer or production"}
	}
	return out, nil
}

// fleetOutcome is what silo secret set --all did in one account.
type fleetOutcome struct {
	Account silo.AccountID `json:"account"`
	Kind    silo.Kind      `json:"kind"`
	Result  string         `json:"result"` // "set", "failed" or "skipped"
	Error   string         `json:"error,omitempty"`
}

// setSecretFleet sets secret name to val in every account of the given
// kinds that is not being deleted, each through SetSecret (its own key,
// its own audit event), fleetSecretWorkers at a time. A failure in one
// account does not stop the others; it prints every account's outcome and
// then, if any failed, returns an error naming them.
func setSecretFleet(ctx context.Context, g *globals, api controlAPI, kinds []silo.Kind, name string, val []byte) error {
	var accts []silo.Account
	for _, k := range kinds {
		as, err := api.Accounts(ctx, store.Filter{Kind: k})
		if err != nil {
			return err
		}
		accts = append(accts, as...)
	}
	if len(accts) == 0 {
		return silo.Errorf(silo.CodeNotFound, "no account of kind %s to set secret %s in; silo tenant list shows the accounts", joinKinds(kinds), name)
	}
	slices.SortFunc(accts, func(a, b silo.Account) int { return strings.Compare(string(a.ID), string(b.ID)) })
	out := make([]fleetOutcome, len(accts))
	sem := make(chan struct{}, fleetSecretWorkers)
	var wg sync.WaitGroup
	for i, a := range accts {
		out[i] = fleetOutcome{Account: a.ID, Kind: a.Kind}
		if a.State == silo.StateDeleting {
			out[i].Result, out[i].Error = "skipped", "being deleted"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			if err := api.SetSecret(ctx, a.ID, name, val); err != nil {
				out[i].Result, out[i].Error = "failed", userMessage(err)
				return
			}
			out[i].Result = "set"
		}()
	}
	wg.Wait()
	var set int
	var failed []string
	for _, o := range out {
		switch o.Result {
		case "set":
			set++
		case "failed":
			failed = append(failed, string(o.Account))
		}
	}
	report := map[string]any{"secret": name, "bytes": len(val), "kinds": kinds, "accounts": out}
	if err := g.print(report, func(w io.Writer) { printFleetOutcomes(w, name, len(val), set, out) }); err != nil {
		return err
	}
	if len(failed) > 0 {
		return silo.Errorf(silo.CodeFailedCheck, "secret %s was not set in %d of %d accounts (%s); each one's reason is listed above: fix it and run silo secret set ACCOUNT %s < file for that account", name, len(failed), len(accts), strings.Join(failed, ", "), name)
	}
	return nil
}

func printFleetOutcomes(w io.Writer, name string, size, set int, out []fleetOutcome) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  ACCOUNT\tKIND\tRESULT")
	for _, o := range out {
		res := o.Result
		if o.Error != "" {
			res += ": " + o.Error
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\n", o.Account, o.Kind, res)
	}
	tw.Flush()
	fmt.Fprintf(w, "secret %s set in %d of %d accounts (%d bytes)\n", name, set, len(out), size)
}

func joinKinds(ks []silo.Kind) string {
	s := make([]string, len(ks))
	for i, k := range ks {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

func newSecretDelete(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "delete TENANT NAME",
		Short: "Delete a secret's value from a tenant; its functions then read it as never set",
		Long: `Delete the value of a secret from one tenant's account. The tenant's functions then read the secret
as one never set; the declaration in silo.yaml stays, so silo secret set sets it again. A value left
under a name silo.yaml no longer declares (silo secret list flags it) is deleted the same way.

Deleting a declared secret that has no value changes nothing and succeeds (exit 0), saying it was
not set, as a repeated deletion should. A name the tenant neither declares nor holds a value under
(a typo) is refused (exit 1), with the nearest name if one is close. Each deletion is audited as
secret.delete.`,
		Example: "  silo secret delete acme github-token",
		Args:    accountArgs(2, "a tenant ID and a secret name"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			id, name := silo.AccountID(args[0]), args[1]
			deleted, err := api.DeleteSecret(ctx, id, name)
			if err != nil {
				return err
			}
			return g.print(map[string]any{"account": id, "secret": name, "deleted": deleted}, func(w io.Writer) {
				if deleted {
					fmt.Fprintf(w, "secret %s deleted from %s\n", name, id)
					return
				}
				fmt.Fprintf(w, "secret %s was not set in %s; nothing to delete\n", name, id)
			})
		}),
	}
}

func newSecretList(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "list TENANT",
		Short: "List a tenant's secrets: declared, set, or both (never the values)",
		Long: `List the secrets the tenant's release declares and whether each holds a value in the tenant's
account, and any value left under a name no longer declared (no function reads it; silo secret
delete removes it). Values are never shown. silo audit list --account TENANT shows when each was
set or deleted (secret.set, secret.delete).`,
		Example: "  silo secret list acme",
		Args:    accountArgs(1, "a tenant ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			id := silo.AccountID(args[0])
			ss, err := api.Secrets(ctx, id)
			if err != nil {
				return err
			}
			if ss == nil {
				ss = []control.SecretState{}
			}
			return g.print(ss, func(w io.Writer) { printSecrets(w, id, ss) })
		}),
	}
}

func printSecrets(w io.Writer, id silo.AccountID, ss []control.SecretState) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  NAME\tSTATE")
	for _, s := range ss {
		st := "not set"
		switch {
		case s.Set && !s.Declared:
			st = "set, not declared (no function reads it; silo secret delete " + string(id) + " " + s.Name + " removes it)"
		case s.Set:
			st = "set"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", s.Name, st)
	}
	tw.Flush()
	if len(ss) == 0 {
		fmt.Fprintln(w, "  (none declared)")
	}
}
