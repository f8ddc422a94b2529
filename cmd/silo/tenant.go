package main

import (
	"context"
	"fmt"
	"io"
	"maps"
	"slices"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
)

func newTenantCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tenant",
		Short: "Create, list, show, update, suspend, resume and delete tenants",
		Long: `A tenant is a customer. Each tenant owns one isolated account holding its own copy of the
stack in silo.yaml, with its own data key. Tenant IDs are DNS labels (a-z, 0-9, '-').

list (with --kind), show, update, suspend and resume also take developer accounts and
environments, as the console's account page does; update keeps such an account on the release it
runs. delete deletes tenants only: silo env delete deletes the others, verifying their teardown.`,
	}
	cmd.AddCommand(newTenantCreate(g, silo.KindTenant), newTenantList(g), newTenantShow(g), newTenantUpdate(g),
		newTenantState(g, "suspend", silo.StateSuspended, "Suspend a tenant: its requests get 403 until resumed; its data is kept"),
		newTenantState(g, "resume", silo.StateActive, "Resume a suspended tenant"),
		newTenantDelete(g))
	return cmd
}

func newTenantCreate(g *globals, kind silo.Kind) *cobra.Command {
	var params []string
	var name string
	var noKey bool
	cmd := &cobra.Command{
		Use:   "create ID",
		Short: "Create a tenant: its account, its stack on the current release, and a first API key",
		Long: `Create a tenant. silo registers it, creates its account in the provider with a fresh data
key, applies the current release (the first time: the release built from silo.yaml; through a
server, which builds none, run silo deploy first), and issues a first API key, printed once. The first account of an installation creates the production
account before it; if the tenant's creation then fails, the production account and the current
release stay, and the error says so. Interrupted (Ctrl-C), it reads the tenant's state again and
says what is left and what to do: nothing; a tenant still provisioning without a key (silo apply
ID finishes it); a tenant created without its key (silo keys create ID). Against a server, the
server goes on with the creation by itself.`,
		Example: `  silo tenant create acme --param plan=pro
  silo tenant create globex --name "Globex Corp"`,
		Args: exactArgs(1, "a tenant ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := parseParams(params)
			if err != nil {
				return err
			}
			if _, err := tenantIDArg(args[0]); err != nil {
				return err
			}
			api, done, err := openAPI(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer done()
			c, err := api.CreateAccount(cmd.Context(), control.CreateRequest{ID: args[0], Kind: kind, Name: name, Params: ps, WithKey: !noKey})
			if err != nil && cmd.Context().Err() != nil {
				_, remote := api.(remoteAPI)
				return interruptedCreate(cmd.Context(), api, remote, silo.AccountID(args[0]), kind, !noKey)
			}
			if err != nil {
				return err
			}
			return g.print(c, func(w io.Writer) {
				if c.Account.State == silo.StateProvisioning {
					fmt.Fprintf(w, "registered %s %s: the provider is still creating its account (state provisioning); a running silo server finishes it by itself, else run silo apply %s later\n", c.Account.Kind, c.Account.ID, c.Account.ID)
				} else {
					fmt.Fprintf(w, "created %s %s (account %s, release %s)\n", c.Account.Kind, c.Account.ID, c.Account.ID, c.Account.Release)
				}
				if c.Key != "" {
					fmt.Fprintf(w, "API key (shown once, store it now): %s\n", c.Key)
				}
			})
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "tenant parameter NAME=VALUE (repeatable)")
	cmd.Flags().StringVar(&name, "name", "", "display name")
	cmd.Flags().BoolVar(&noKey, "no-key", false, "do not issue a first API key")
	return cmd
}

// interruptedError is the error of a command interrupted (Ctrl-C, SIGTERM)
// that says what it left: run shows its message after "interrupted: ".
type interruptedError struct{ msg string }

func (e interruptedError) Error() string { return "interrupted: " + e.msg }

// interruptedCreate says what an interrupted silo tenant create of id left
// and what to do about it, from the account's state read with a fresh,
// short context (ctx is cancelled). withKey says whether a first API key
// was asked for. Locally the onboarding stopped where it was interrupted;
// a server goes on with it by itself (its onboarding does not end with
// the request), so remote says what the server is doing.
func interruptedCreate(ctx context.Context, api controlAPI, remote bool, id silo.AccountID, kind silo.Kind, withKey bool) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	del := silo.DeleteCommand(kind, id) + " --yes"
	what := string(kind)
	if kind == silo.KindDeveloper {
		what = "developer account"
	}
	accts, err := api.Accounts(ctx, store.Filter{})
	if err != nil {
		return interruptedError{fmt.Sprintf("%s %s may be partly created (its state could not be read: %s); silo tenant show %s says what is left", what, id, userMessage(err), id)}
	}
	i := slices.IndexFunc(accts, func(a silo.Account) bool { return a.ID == id })
	if remote {
		state := "not registered yet"
		if i >= 0 {
			state = "now " + string(accts[i].State)
		}
		msg := fmt.Sprintf("the server goes on creating %s %s by itself, if the request reached it (%s); silo tenant show %s shows its state", what, id, state, id)
		if withKey {
			msg += fmt.Sprintf("; the first API key it issues cannot be shown here: once %s is active, revoke that key (silo keys list %s, silo keys revoke %s KEY-ID) and run silo keys create %s", id, id, id, id)
		}
		return interruptedError{msg + "; or remove it with " + del}
	}
	if i < 0 {
		return interruptedError{fmt.Sprintf("%s %s was not created", what, id)}
	}
	a := accts[i]
	switch {
	case a.State == silo.StateProvisioning:
		msg := fmt.Sprintf("%s %s is registered but still provisioning", what, id)
		if withKey {
			msg += ", and no API key was issued"
		}
		msg += fmt.Sprintf(": run silo apply %s to finish it", id)
		if withKey {
			msg += fmt.Sprintf(" (then silo keys create %s for a key)", id)
		}
		return interruptedError{msg + ", or " + del + " to remove it"}
	case a.State == silo.StateActive && withKey:
		keys, err := api.Keys(ctx, id)
		if err != nil {
			return interruptedError{fmt.Sprintf("%s %s was created, but whether its API key was issued could not be read (%s): silo keys list %s shows its keys, silo keys create %s issues one; or %s", what, id, userMessage(err), id, id, del)}
		}
		if len(keys) == 0 {
			return interruptedError{fmt.Sprintf("%s %s was created but its API key was not issued: run silo keys create %s, or %s", what, id, id, del)}
		}
		return interruptedError{fmt.Sprintf("%s %s was created and its API key %s issued, but the key was not shown: revoke it with silo keys revoke %s %s and run silo keys create %s; or %s", what, id, keys[0].ID, id, keys[0].ID, id, del)}
	case a.State == silo.StateActive:
		return interruptedError{fmt.Sprintf("%s %s was created (release %s) before the interruption", what, id, a.Release)}
	}
	return interruptedError{fmt.Sprintf("%s %s is %s; silo tenant show %s shows it", what, id, a.State, id)}
}

func parseParams(kvs []string) (map[string]string, error) {
	if len(kvs) == 0 {
		return nil, nil
	}
	out := map[string]string{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, usageError{fmt.Sprintf("--param %q is not NAME=VALUE", kv)}
		}
		if prev, dup := out[k]; dup {
			return nil, usageError{fmt.Sprintf("--param %s is given twice (%s=%s and %s); give each parameter once", k, k, prev, kv)}
		}
		out[k] = v
	}
	return out, nil
}

func newTenantList(g *globals) *cobra.Command {
	var kind, state string
	var all bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List tenants (or other account kinds with --kind)",
		Args:  exactArgs(0, "no arguments"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			f := store.Filter{Kind: silo.Kind(kind), State: silo.State(state), IncludeDeleted: all}
			if kind == "all" {
				f.Kind = ""
			}
			accts, err := api.Accounts(ctx, f)
			if err != nil {
				return err
			}
			if accts == nil {
				accts = []silo.Account{}
			}
			return g.print(accts, func(w io.Writer) { printAccounts(w, accts) })
		}),
	}
	cmd.Flags().StringVar(&kind, "kind", "tenant", "account kind: tenant, developer, environment, production or all")
	cmd.Flags().StringVar(&state, "state", "", "only accounts in this state")
	cmd.Flags().BoolVar(&all, "all", false, "include deleted accounts")
	return cmd
}

func printAccounts(w io.Writer, accts []silo.Account) {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tSTATE\tRELEASE\tPARAMS\tCREATED")
	for _, a := range accts {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", a.ID, a.Kind, a.State, orDash(a.Release), formatParams(a.Params), a.Created.Local().Format(time.DateTime))
	}
	tw.Flush()
	if len(accts) == 0 {
		fmt.Fprintln(w, "(none)")
	}
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func formatParams(p map[string]string) string {
	if len(p) == 0 {
		return "-"
	}
	ks := make([]string, 0, len(p))
	for k := range p {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	for i, k := range ks {
		ks[i] = k + "=" + p[k]
	}
	return strings.Join(ks, ",")
}

func newTenantShow(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show ID",
		Short: "Show a tenant: account, kind, params, release, resources and their state, keys, data key",
		Args:  accountArgs(1, "a tenant ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			d, err := api.Show(ctx, silo.AccountID(args[0]))
			if err != nil {
				return err
			}
			return g.print(d, func(w io.Writer) { printDetail(w, d) })
		}),
	}
}

// formatRef shows the provider's reference to an account: "aws account
// 123456789012 in OU tenants (r-ab12/ou-ab12-cd34ef56/)", "local
// /srv/silo/accounts/acme".
func formatRef(r provider.AccountRef) string {
	switch {
	case r.Path != "" && r.Unit != "":
		return fmt.Sprintf("%s account %s in OU %s (%s)", r.Provider, r.ID, r.Unit, r.Path)
	case r.Path != "":
		return fmt.Sprintf("%s account %s at %s", r.Provider, r.ID, r.Path)
	}
	return r.Provider + " " + r.ID
}

func printDetail(w io.Writer, d control.Detail) {
	a := d.Account
	fmt.Fprintf(w, "Tenant     %s\n", a.ID)
	if a.Name != "" {
		fmt.Fprintf(w, "Name       %s\n", a.Name)
	}
	fmt.Fprintf(w, "Account    %s (kind %s)\n", a.ID, a.Kind)
	fmt.Fprintf(w, "State      %s\n", a.State)
	if r := d.Ref; r != nil {
		fmt.Fprintf(w, "Provider   %s\n", formatRef(*r))
	}
	if d.URL != "" {
		fmt.Fprintf(w, "URL        %s\n", d.URL)
	}
	fmt.Fprintf(w, "Params     %s\n", formatParams(a.Params))
	fmt.Fprintf(w, "Release    %s\n", orDash(a.Release))
	if a.Expires != nil {
		fmt.Fprintf(w, "Expires    %s\n", a.Expires.Local().Format(time.DateTime))
	}
	if d.DataKey.Fingerprint != "" {
		fmt.Fprintf(w, "Data key   %s, fingerprint %s\n", d.DataKey.Algorithm, d.DataKey.Fingerprint)
	}
	if len(d.Problems) > 0 {
		fmt.Fprintln(w, "\nProblems")
		for _, p := range d.Problems {
			fmt.Fprintf(w, "  %s\n", p.Problem)
			if p.Fix != "" {
				fmt.Fprintf(w, "    fix: %s\n", p.Fix)
			}
		}
	}
	drift := map[string]string{}
	for _, it := range d.Drift {
		drift[it.Key] = it.Kind
	}
	fmt.Fprintln(w, "\nResources")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "  TYPE\tNAME\tSTATE\tHASH")
	for _, r := range d.Resources {
		st := "applied"
		if k, ok := drift[r.Key()]; ok {
			st = "drift: " + k
		} else if d.Unread != "" {
			st = "unknown (not read: " + d.Unread + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", r.Type, r.Name, st, r.Hash[:12])
	}
	for _, it := range d.Drift {
		if it.Kind == "extra" {
			fmt.Fprintf(tw, "  %s\t\tdrift: extra (held by provider, not recorded)\t\n", it.Key)
		}
	}
	tw.Flush()
	fmt.Fprintln(w, "\nAPI keys")
	printKeys(w, d.Keys)
}

func newTenantUpdate(g *globals) *cobra.Command {
	var params []string
	var name string
	cmd := &cobra.Command{
		Use:     "update ID",
		Short:   "Change an account's parameters or name and apply them: a tenant with the current release, a developer account or environment with the release it runs",
		Example: "  silo tenant update acme --param plan=enterprise\n  silo tenant update acme --param ring=   # unset: back to the default",
		Args:    accountArgs(1, "a tenant ID"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ps, err := parseParams(params)
			if err != nil {
				return err
			}
			if len(ps) == 0 && name == "" {
				return usageError{"nothing to update; pass --param NAME=VALUE or --name"}
			}
			api, done, err := openAPI(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer done()
			p, err := api.UpdateParams(cmd.Context(), silo.AccountID(args[0]), ps, name)
			if err != nil {
				return err
			}
			return g.print(p, func(w io.Writer) {
				// What the account got comes first: a new name or parameter
				// may change none of its resources.
				var set []string
				if name != "" {
					set = append(set, fmt.Sprintf("name %q", name))
				}
				for _, k := range slices.Sorted(maps.Keys(ps)) {
					if ps[k] == "" {
						set = append(set, k+" unset")
					} else {
						set = append(set, k+"="+ps[k])
					}
				}
				fmt.Fprintf(w, "updated %s: %s\n", p.Account, strings.Join(set, ", "))
				if !p.Touches() {
					fmt.Fprintf(w, "%s: its resources need no change\n", p.Account)
					return
				}
				printPlan(w, p, true)
			})
		},
	}
	cmd.Flags().StringArrayVarP(&params, "param", "p", nil, "tenant parameter NAME=VALUE (repeatable; empty VALUE unsets)")
	cmd.Flags().StringVar(&name, "name", "", "new display name")
	return cmd
}

func newTenantState(g *globals, verb string, to silo.State, short string) *cobra.Command {
	return &cobra.Command{
		Use:   verb + " ID",
		Short: short,
		Args:  accountArgs(1, "a tenant ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			acct, err := setState(ctx, api, silo.AccountID(args[0]), to)
			if err != nil {
				return err
			}
			return g.print(acct, func(w io.Writer) { fmt.Fprintf(w, "%s is %s\n", acct.ID, acct.State) })
		}),
	}
}

func newTenantDelete(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "delete ID",
		Short: "Delete a tenant: its account and data are destroyed and its data key is shredded",
		Long: `Delete a tenant. Its account, resources and data are destroyed, its data key is destroyed
first (crypto-shredding: anything left anywhere can no longer be decrypted; on AWS the KMS key is
scheduled for deletion, unusable from then on), and its API keys are revoked. This cannot be
undone. It says what the provider did: when the provider held nothing under the ID, it says that
nothing was destroyed. A tenant already deleted whose data and data key the provider still holds
(silo verify and silo doctor report it) is destroyed by deleting it again. The production account
cannot be deleted, and developer and environment accounts are deleted with silo env delete. At a
terminal it asks for the tenant ID to be typed; elsewhere it needs --yes.`,
		Args: accountArgs(1, "a tenant ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			id := silo.AccountID(args[0])
			if !yes {
				// Ask only about an account that exists and may be deleted;
				// the delete itself says why not otherwise.
				accts, err := api.Accounts(ctx, store.Filter{IncludeDeleted: true})
				if err != nil {
					return err
				}
				i := slices.IndexFunc(accts, func(a silo.Account) bool { return a.ID == id })
				what := fmt.Sprintf("deleting %s destroys its account and all its data", id)
				ask := i >= 0 && accts[i].Kind == silo.KindTenant
				if ask && accts[i].State == silo.StateDeleted {
					// Ask only when the provider still holds what its
					// deletion left: deleting it again destroys that.
					d, err := api.Show(ctx, id)
					if err != nil {
						return err
					}
					if ask = d.Ref != nil; ask {
						what = fmt.Sprintf("%s was deleted, but the provider still holds its data and data key (%s); deleting it again destroys them", id, d.Ref.ID)
					}
				}
				if !ask {
					_, err := api.DeleteAccount(ctx, id)
					return err
				}
				if err := g.confirm(false, what, string(id)); err != nil {
					return err
				}
			}
			del, err := api.DeleteAccount(ctx, id)
			if err != nil {
				return err
			}
			return printDeletion(g, id, del, "deleted")
		}),
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "delete without asking")
	return cmd
}

// printDeletion prints what deleting account id did, as the provider
// reported it (provider.Deletion): what was destroyed, or that nothing was.
func printDeletion(g *globals, id silo.AccountID, del provider.Deletion, verb string) error {
	return g.print(server.Deleted{Account: id, Deletion: del}, func(w io.Writer) {
		if !del.Destroyed && verb == "deleted" {
			fmt.Fprintf(w, "deleted %s in the registry, its API keys revoked: %s\n", id, del)
			return
		}
		fmt.Fprintf(w, "%s %s: %s\n", verb, id, del)
	})
}

func setState(ctx context.Context, api controlAPI, id silo.AccountID, to silo.State) (silo.Account, error) {
	if to == silo.StateSuspended {
		return api.Suspend(ctx, id)
	}
	return api.Resume(ctx, id)
}
