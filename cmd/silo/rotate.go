package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// rotatedKey is one data key rotation as printed: fingerprints, never keys.
type rotatedKey struct {
	Account        silo.AccountID `json:"account"`
	OldFingerprint string         `json:"old_fingerprint"`
	NewFingerprint string         `json:"new_fingerprint"`
}

func newRotateCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rotate",
		Short: "Rotate encryption keys of the local provider (data keys, master key)",
		Long: `Key rotation is crash-safe: every step is written durably before the next, so an interruption
(even kill -9) leaves every secret readable, and running the same command again completes it.
Only fingerprints are printed, never keys.`,
	}
	var all bool
	dataKey := &cobra.Command{
		Use:   "data-key ACCOUNT|--all",
		Short: "Give an account (or every account) a new data key, reseal its secrets and destroy the old key",
		Example: `  silo rotate data-key acme
  silo rotate data-key --all --output json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			if all == (len(args) == 1) || len(args) > 1 {
				return usageError{"silo rotate data-key needs exactly one of an account ID or --all; see silo rotate data-key --help"}
			}
			if err := localOnly(g, "to rotate the server's keys, run silo rotate data-key on the server's machine with --data-dir set to its data dir"); err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := openApp(ctx, g)
			if err != nil {
				return err
			}
			defer a.Close()
			if _, err := a.rotator(); err != nil {
				return err
			}
			var ids []silo.AccountID
			if all {
				if ids, err = a.provider.Accounts(ctx); err != nil {
					return err
				}
			} else {
				// One account is looked up as every action looks it up: a
				// deleted one says so, not that the provider lacks it.
				if _, err := a.plane.LiveAccount(ctx, silo.AccountID(args[0])); err != nil {
					return err
				}
				ids = []silo.AccountID{silo.AccountID(args[0])}
			}
			done := []rotatedKey{}
			failed := map[silo.AccountID]string{}
			for _, id := range ids {
				r, err := rotateDataKey(ctx, a, id)
				if err != nil {
					if len(ids) == 1 {
						return err
					}
					failed[id] = silo.UserMessage(err) // the other accounts go on
					continue
				}
				done = append(done, r)
			}
			if err := printRotated(g, done, failed); err != nil {
				return err
			}
			if len(failed) > 0 {
				return silo.Errorf(silo.CodeUnavailable, "the data keys of %d of %d accounts were not rotated (each failure is listed above); fix the cause and run silo rotate data-key ACCOUNT for each", len(failed), len(ids))
			}
			return nil
		},
	}
	dataKey.Flags().BoolVar(&all, "all", false, "rotate the data key of every account")

	masterKey := &cobra.Command{
		Use:   "master-key",
		Short: "Replace the master key and rewrap every account's data keys under it",
		Long: `Generates a new master key, rewraps every account's data keys under it (secrets are not
re-encrypted: their data keys do not change) and destroys the old master key. Back up master.key
afterwards: backups of the old one no longer open anything.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := localOnly(g, "to rotate the server's keys, run silo rotate master-key on the server's machine with --data-dir set to its data dir"); err != nil {
				return err
			}
			ctx := cmd.Context()
			a, err := openApp(ctx, g)
			if err != nil {
				return err
			}
			defer a.Close()
			r, err := a.rotator()
			if err != nil {
				return err
			}
			ids, err := a.provider.Accounts(ctx)
			if err != nil {
				return err
			}
			old := r.MasterFingerprint()
			if err := r.RotateMasterKey(ctx); err != nil {
				return err
			}
			nu := r.MasterFingerprint()
			if err := auditRotation(ctx, a, "key.rotate-master", "", old, nu); err != nil {
				return err
			}
			return g.print(map[string]any{"old_fingerprint": old, "new_fingerprint": nu, "accounts": len(ids)}, func(w io.Writer) {
				fmt.Fprintf(w, "master key rotated: %s -> %s (data keys of %d accounts rewrapped)\n", old, nu, len(ids))
			})
		},
	}
	cmd.AddCommand(dataKey, masterKey)
	return cmd
}

// keyRotator is a provider that rotates its keys itself (the local
// provider: data keys and the master key in the data dir).
type keyRotator interface {
	RotateDataKey(ctx context.Context, id silo.AccountID) error
	RotateMasterKey(ctx context.Context) error
	MasterFingerprint() string
}

// rotator returns the app's provider as a keyRotator.
//
// # Errors
//
// CodeInvalid, saying why, when the provider does not rotate keys.
func (a *app) rotator() (keyRotator, error) {
	r, ok := a.provider.(keyRotator)
	if !ok {
		return nil, silo.Errorf(silo.CodeInvalid, "only the local provider's keys can be rotated with silo rotate; the accounts of this data dir are on the %s provider, whose keys silo does not rotate", a.provider.Name())
	}
	return r, nil
}

func rotateDataKey(ctx context.Context, a *app, id silo.AccountID) (rotatedKey, error) {
	r, err := a.rotator()
	if err != nil {
		return rotatedKey{}, err
	}
	before, err := a.provider.KeyInfo(ctx, id)
	if err != nil {
		return rotatedKey{}, err
	}
	if err := r.RotateDataKey(ctx, id); err != nil {
		return rotatedKey{}, err
	}
	after, err := a.provider.KeyInfo(ctx, id)
	if err != nil {
		return rotatedKey{}, err
	}
	if err := auditRotation(ctx, a, "key.rotate-data", id, before.Fingerprint, after.Fingerprint); err != nil {
		return rotatedKey{}, err
	}
	return rotatedKey{Account: id, OldFingerprint: before.Fingerprint, NewFingerprint: after.Fingerprint}, nil
}

func printRotated(g *globals, done []rotatedKey, failed map[silo.AccountID]string) error {
	out := map[string]any{"rotated": done}
	if len(failed) > 0 {
		out["failed"] = failed
	}
	return g.print(out, func(w io.Writer) {
		for _, r := range done {
			fmt.Fprintf(w, "data key of %s rotated: %s -> %s\n", r.Account, r.OldFingerprint, r.NewFingerprint)
		}
		ids := make([]silo.AccountID, 0, len(failed))
		for id := range failed {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		for _, id := range ids {
			fmt.Fprintf(w, "data key of %s NOT rotated: %s\n", id, failed[id])
		}
		if len(done) == 0 && len(failed) == 0 {
			fmt.Fprintln(w, "no accounts; nothing rotated")
		}
	})
}

// auditRotation records a rotation in the audit log: the fingerprints, never
// a key.
func auditRotation(ctx context.Context, a *app, action string, id silo.AccountID, old, nu string) error {
	detail, _ := json.Marshal(map[string]string{"old_fingerprint": old, "new_fingerprint": nu})
	return a.store.Update(ctx, func(tx store.Tx) error {
		_, err := tx.AppendAudit(store.AuditEvent{Time: time.Now(), Actor: actor(), Action: action, Account: id, Detail: detail})
		return err
	})
}
