package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/platform"
	"github.com/silo-run/silo/store"
)

func newStoreCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Manage the control-plane store (SQLite in the data dir, or PostgreSQL)",
	}
	var to string
	migrate := &cobra.Command{
		Use:   "migrate --to postgres://...",
		Short: "Copy the data dir's SQLite control plane into an empty PostgreSQL database",
		Long: `store migrate copies the control-plane state of the data dir (state.db: the registry,
recorded resources, limit overrides, the journal, API keys, releases and which is current,
rollouts with their steps, settings, metered usage and stored bytes, schedule claims, the
request metrics the servers published for the rollout gates, and the audit log: every table of state.db) into the PostgreSQL database --to names, in one transaction. The target must be empty; the audit
chain keeps every sequence number and hash, so silo audit verify and earlier checkpoints still
hold. The SQLite state is left as it was, and the data dir records the move (store-moved.json):
every command on the data dir without --store then refuses, naming the database, and so does a
second store migrate (its state.db is out of date). There is no
migration back: the SQLite state stays as it was at the migration. Stop silo up or
silo server on the data dir first (it refuses while one is starting or serving there, and a silo
up or silo server started while it copies refuses); afterwards start the servers with --store (or
$SILO_STORE) set to the same URL.`,
		Example: `  # stop the silo up or silo server that serves the data dir (Ctrl-C or kill), then:
  silo store migrate --to postgres://silo@db:5432/silo?sslmode=require
  SILO_STORE=postgres://silo@db:5432/silo?sslmode=require silo server`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			switch {
			case to == "":
				return usageError{"store migrate needs --to postgres://user@host:5432/db?sslmode=..., the empty PostgreSQL database to copy into"}
			case !strings.HasPrefix(to, "postgres://") && !strings.HasPrefix(to, "postgresql://"):
				return usageError{fmt.Sprintf("--to %s is not a PostgreSQL URL: store migrate copies into PostgreSQL only; give postgres://user@host:5432/db?sslmode=..., the empty database to copy into", redact(to))}
			}
			if err := localOnly(g, "run it on the machine holding the data dir"); err != nil {
				return err
			}
			const instead = "stop it before migrating"
			if err := notServed(g, instead); err != nil {
				return err
			}
			// Held for the whole copy: a silo up or silo server started
			// meanwhile is refused, and one starting now refuses this.
			lock, err := holdDataDir(g, migrateCommand, true, instead)
			if err != nil {
				return err
			}
			defer lock.Release()
			// Read under the lock: a migrate that finished while this
			// one waited to start has written it by now.
			if m, moved := platform.ReadStoreMoved(g.dataDir); moved {
				return silo.Errorf(silo.CodeFailedCheck, "the data dir %s already moved to PostgreSQL (%s) by silo store migrate%s, so its state.db is out of date and copying it would make a second database from stale state; to use the moved store, pass --store (or set $SILO_STORE) to that database; to go back to the SQLite state as it was at the migration on purpose, follow docs/operations.md (removing %s)", g.dataDir, m.To, m.When(), platform.StoreMovedFile)
			}
			src, err := openSQLiteState(ctx, g)
			if err != nil {
				return err
			}
			defer src.Close()
			dst, err := openStore(ctx, to)
			if err != nil {
				return err
			}
			defer dst.Close()
			n, err := store.Copy(ctx, dst, src)
			if err != nil {
				return err
			}
			if err := platform.MarkStoreMoved(g.dataDir, platform.StoreMoved{To: redact(to), At: time.Now()}); err != nil {
				return fmt.Errorf("the state was copied, but %s could not be written, so commands without --store would still use the SQLite state: %w", platform.StoreMovedFile, err)
			}
			return g.print(n, func(w io.Writer) {
				fmt.Fprintf(w, "copied %s into PostgreSQL: %d accounts, %d resources, %d limit overrides, %d keys, %d releases, %d rollouts (%d steps), %d journal intents, %d settings, %d usage days, %d stored-bytes days, %d schedule claims, %d rows of published request metrics, %d audit entries\n",
					filepath.Join(g.dataDir, "state.db"), n.Accounts, n.Resources, n.LimitOverrides, n.Keys, n.Releases, n.Rollouts, n.Steps, n.Intents, n.Settings, n.Usage, n.Stored, n.ScheduleRuns, n.Metrics, n.Audit)
				fmt.Fprintln(w, "start the servers with --store (or $SILO_STORE) set to the same URL you gave --to; the SQLite state is left unchanged and no longer used")
			})
		},
	}
	migrate.Flags().StringVar(&to, "to", "", "the PostgreSQL database to copy into (postgres://...); it must be empty")
	cmd.AddCommand(migrate)
	return cmd
}
