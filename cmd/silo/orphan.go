package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
)

// newOrphanCmd is silo orphan: what to do with an account the provider
// holds that the registry does not know (silo doctor lists them).
func newOrphanCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "orphan",
		Short: "Destroy an account the provider holds that the registry does not know (silo doctor lists them)",
	}
	var yes bool
	destroy := &cobra.Command{
		Use:   "destroy ID",
		Short: "Destroy an orphaned account: its data and its data key, with an audit entry",
		Long: `Destroy an orphan: an account the provider holds under ID that the control-plane registry
does not know, as after restoring an older copy of the control-plane state. silo doctor lists
them, and silo tenant create refuses an ID the provider holds this way, so that a new tenant never
gets an earlier account's data.

An orphan is often a live tenant's account that the restored state predates: if its data is
wanted, restore the control-plane state that has it instead (docs/operations.md). Destroying it
cannot be undone: its data key is destroyed (on AWS the KMS key is scheduled for deletion,
unusable from then on), its data removed, and the audit log records who did it
(account.destroy-orphan). An ID the registry knows is refused (silo tenant delete or silo env
delete deletes those). At a terminal it asks for the ID to be typed; elsewhere it needs --yes.`,
		Example: `  silo doctor
  silo orphan destroy zed --yes`,
		Args: accountArgs(1, "the orphan's ID"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			id := silo.AccountID(args[0])
			if err := g.confirm(yes, fmt.Sprintf("destroying the orphan %s destroys the provider's account under that ID, its data and its data key", id), string(id)); err != nil {
				return err
			}
			del, err := api.DestroyOrphan(ctx, id)
			if err != nil {
				return err
			}
			return printDeletion(g, id, del, "destroyed orphan")
		}),
	}
	destroy.Flags().BoolVar(&yes, "yes", false, "destroy without asking")
	cmd.AddCommand(destroy)
	return cmd
}
