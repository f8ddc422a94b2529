package main

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/sqlite"
)

func newAuditCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Check the tamper-evident control-plane audit log; sign and export checkpoints of it"}
	cmd.AddCommand(newAuditListCmd(g), newAuditVerifyCmd(g), newAuditCheckpointCmd(g), newAuditWitnessCmd(g))
	return cmd
}

func newAuditListCmd(g *globals) *cobra.Command {
	var acct string
	var after int64
	var limit int
	cmd := &cobra.Command{
		Use:   "list [--account ID] [--after SEQ] [--limit N]",
		Short: "List audit log entries, oldest first: who changed what, when (never a secret's value)",
		Args:  exactArgs(0, "no arguments"),
		RunE: withAPI(g, func(ctx context.Context, api controlAPI, args []string) error {
			if limit < 1 || limit > 1000 {
				return usageError{"--limit must be between 1 and 1000; see silo audit list --help"}
			}
			es, err := api.AuditLog(ctx, after, limit, silo.AccountID(acct))
			if err != nil {
				return err
			}
			if es == nil {
				es = []store.AuditEntry{} // JSON: [], not null
			}
			return g.print(es, func(w io.Writer) {
				tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "SEQ\tTIME\tACTOR\tACTION\tACCOUNT\tDETAIL")
				for _, e := range es {
					ev := e.Event
					fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, ev.Time.Local().Format(time.DateTime), ev.Actor, ev.Action, orDash(string(ev.Account)), orDash(string(ev.Detail)))
				}
				tw.Flush()
				if len(es) == limit {
					fmt.Fprintf(w, "(more: --after %d)\n", es[len(es)-1].Seq)
				}
			})
		}),
	}
	cmd.Flags().StringVar(&acct, "account", "", "only entries about this account")
	cmd.Flags().Int64Var(&after, "after", 0, "only entries after this sequence number")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many entries (up to 1000)")
	return cmd
}

func newAuditVerifyCmd(g *globals) *cobra.Command {
	var checkpoints []string
	var pin string
	cmd := &cobra.Command{
		Use:   "verify [--checkpoint FILE]...",
		Short: "Verify the audit log: its hash chain, its witness, and that it extends every checkpoint given",
		Long: `Every control-plane mutation (tenant created, key issued, secret set — never its value —
release applied, rollback) is appended to a hash-chained audit log in the same transaction as the
change, and the chain's head is written to a witness file in the data dir after each commit.
silo audit verify checks every link, that a control plane holding accounts has a non-empty log,
and that the log still reaches the witnessed head, so an edited, deleted, reordered, duplicated
or truncated entry is detected. It first checks every page of the state file (as silo doctor
does). It only reads: it never creates or moves the witness.

The chain and the witness sit in the data dir, so someone who can write the data dir can rewrite
both together. Checkpoints catch that: silo audit checkpoint signs the log's head, you keep the
file where this host cannot rewrite it, and --checkpoint FILE (repeatable) proves the log still
extends each one: no entry up to it was changed and none was cut, and no older copy of the data
dir was put back. --checkpoint-key FINGERPRINT|KEYFILE requires every checkpoint to be signed by
that key.`,
		Example: `  silo audit verify
  silo audit verify --checkpoint /mnt/audit/2026-12-01.json --checkpoint /mnt/audit/2026-12-06.json
  silo audit verify --checkpoint cp.json --checkpoint-key 3b6a27bcceb6a42d62a3a8d02a6f0d73653215771de243a63ac048a18b59da29`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			var trusted []string
			if pin != "" {
				var err error
				if trusted, err = loadPin(ctx, pin); err != nil {
					return err
				}
			}
			var cps []isolation.Checkpoint
			for _, file := range checkpoints {
				b, err := os.ReadFile(file)
				if err != nil {
					return silo.Errorf(silo.CodeInvalid, "cannot read checkpoint %s: %v", file, durable.Cause(err))
				}
				c, err := isolation.ParseCheckpoint(b, trusted)
				if err != nil {
					return silo.Errorf(silo.CodeFailedCheck, "checkpoint %s: %s", file, silo.UserMessage(err))
				}
				cps = append(cps, c)
			}
			if g.server != "" || os.Getenv("SILO_SERVER") != "" {
				if len(cps) > 0 {
					return silo.Errorf(silo.CodeInvalid, "--checkpoint works on the local data dir only; run silo audit verify --checkpoint on the server's host")
				}
				return withAPI(g, func(ctx context.Context, api controlAPI, _ []string) error {
					n, err := api.VerifyAudit(ctx)
					if err != nil {
						return err
					}
					return g.print(map[string]any{"intact": true, "entries": n}, func(w io.Writer) {
						fmt.Fprintf(w, "audit log intact: %d entries verified, and it reaches its witnessed head\n", n)
					})
				})(cmd, args)
			}
			held := providerAccounts(g.dataDir)
			st, err := openStateReadOnly(ctx, g)
			if silo.ErrorCode(err) == silo.CodeNotFound && held > 0 {
				return silo.Errorf(silo.CodeFailedCheck, "the control-plane state and its audit log are gone but the local provider holds %d account(s): the state was deleted; restore it from a backup", held)
			}
			if err != nil {
				return err
			}
			defer st.Close()
			if err := checkStore(ctx, st); err != nil { // every page, the log's and the others
				return err
			}
			res, err := isolation.VerifyAudit(ctx, st, filepath.Join(g.dataDir, isolation.WitnessFile), cps...)
			if err != nil {
				return err
			}
			if res.Entries == 0 && held > 0 {
				return silo.Errorf(silo.CodeFailedCheck, "the audit log is empty but the local provider holds %d account(s), each created through the log: the log was deleted", held)
			}
			return g.print(map[string]any{"intact": true, "entries": res.Entries, "head": res.Head, "witness": res.Witness, "checkpoints": res.Checkpoints}, func(w io.Writer) {
				fmt.Fprintf(w, "audit log intact: %d entries verified, and it reaches its witnessed head\n", res.Entries)
				for _, c := range cps {
					fmt.Fprintf(w, "it extends the checkpoint of %s\n", c)
				}
				if len(cps) > 0 && len(trusted) == 0 {
					fmt.Fprintf(w, "the checkpoints' signers were not checked against a key you gave (--checkpoint-key)\n")
				}
				if len(cps) == 0 {
					fmt.Fprintf(w, "no checkpoint given: a rewrite of both the log and its witness by someone who can write the data dir would not show; see silo audit checkpoint\n")
				}
			})
		},
	}
	cmd.Flags().StringArrayVar(&checkpoints, "checkpoint", nil, "a checkpoint file written by silo audit checkpoint; the log must extend it (repeatable)")
	cmd.Flags().StringVar(&pin, "checkpoint-key", "", "require checkpoints signed by this key: its fingerprint or a PEM public key file")
	return cmd
}

// openStateReadOnly opens the control-plane store for reading the audit
// log, without opening the platform (which would recover work and so
// write): the PostgreSQL store --store names (whose schema Open brings up
// to date), or else the data dir's SQLite state, never creating a state
// file.
func openStateReadOnly(ctx context.Context, g *globals) (store.Store, error) {
	if g.store != "" {
		return openStore(ctx, g.store)
	}
	return openSQLiteState(ctx, g)
}

// checkStore runs a store's full integrity check (sqlite.Store.Check reads
// every page), where the store has one.
func checkStore(ctx context.Context, st store.Store) error {
	if c, ok := st.(interface{ Check(context.Context) error }); ok {
		return c.Check(ctx)
	}
	return nil
}

// openSQLiteState opens the data dir's SQLite control-plane state, never
// creating it.
func openSQLiteState(ctx context.Context, g *globals) (*sqlite.Store, error) {
	path := filepath.Join(g.dataDir, "state.db")
	if _, err := os.Stat(path); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, silo.Errorf(silo.CodeNotFound, "no control-plane state at %s; pass --data-dir or set $SILO_DATA_DIR", g.dataDir)
		}
		return nil, silo.Errorf(silo.CodeUnavailable, "cannot read the data dir's control-plane state (state.db) in %s: %v; run silo as the user that owns the data dir", g.dataDir, durable.Cause(err))
	}
	return sqlite.Open(ctx, path)
}

// providerAccounts counts the accounts the local provider holds in
// dataDir (accounts/accounts/<id>/data.key, the provider's layout), by
// listing directories only: it opens nothing and writes nothing.
func providerAccounts(dataDir string) int {
	keys, _ := filepath.Glob(filepath.Join(dataDir, "accounts", "accounts", "*", "data.key"))
	return len(keys)
}

func newAuditCheckpointCmd(g *globals) *cobra.Command {
	var keyPath, out string
	cmd := &cobra.Command{
		Use:   "checkpoint [--key FILE] [--out FILE]",
		Short: "Sign the audit log's current head and write it where the host cannot rewrite it",
		Long: `silo audit checkpoint checks the audit log and writes a signed checkpoint of its head (the
sequence number and hash of the last entry) to stdout or to --out FILE (never overwriting one).
Keep checkpoints where someone who can write this host's data dir cannot change them: a file on
another machine or volume, or an append-only object store (on AWS, an S3 bucket with Object Lock
in another account). silo audit verify --checkpoint FILE then proves the log extends each one.

The signing key is --key FILE, else $SILO_AUDIT_KEY: a file holding a base64 ed25519 seed, mode
0600, kept apart from the data dir (create one with: head -c 32 /dev/urandom | base64 > FILE;
chmod 600 FILE). Without either, the report signing key in the data dir signs, and the command
notes so on stderr (it is not an error): the checkpoint then shows which installation made it,
but someone who can write the data dir could sign others.`,
		Example: `  silo audit checkpoint --key /etc/silo/audit.key --out /mnt/audit/$(date -u +%F).json
  silo audit checkpoint --key /etc/silo/audit.key | aws s3 cp - s3://audit-bucket/silo/$(date -u +%FT%H%M).json`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if err := localOnly(g, "run silo audit checkpoint on the server's host"); err != nil {
				return err
			}
			if keyPath == "" {
				keyPath = os.Getenv("SILO_AUDIT_KEY")
			}
			var key ed25519.PrivateKey
			var err error
			note := ""
			if keyPath != "" {
				if key, err = loadCheckpointKey(keyPath); err != nil {
					return err
				}
			} else {
				if err := needDataDir(g); err != nil {
					return err
				}
				if key, err = report.LoadOrCreateKey(g.dataDir); err != nil {
					return err
				}
				note = "note: signed with the report signing key in the data dir, which whoever can write the data dir can use too; pass --key FILE (or set $SILO_AUDIT_KEY) to sign with a key kept apart from it"
			}
			st, err := openStateReadOnly(ctx, g)
			if err != nil {
				return err
			}
			defer st.Close()
			c, err := isolation.MakeCheckpoint(ctx, st, key, time.Now())
			if err != nil {
				return err
			}
			if out == "" || out == "-" {
				_, err = g.stdout.Write(c.Encode())
			} else {
				err = writeNew(out, c.Encode())
			}
			if err != nil {
				return err
			}
			if note != "" {
				fmt.Fprintln(g.stderr, note)
			}
			if out != "" && out != "-" {
				fmt.Fprintf(g.stderr, "checkpoint of %s written to %s\n", c, out)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&keyPath, "key", "", "signing key file (base64 ed25519 seed, mode 0600) kept apart from the data dir ($SILO_AUDIT_KEY)")
	cmd.Flags().StringVar(&out, "out", "", "write the checkpoint to this new file instead of stdout")
	return cmd
}

// loadCheckpointKey reads the checkpoint signing key the user named: a
// file holding a base64 ed25519 seed, mode 0600.
//
// # Errors
//
// CodeNotFound or CodeInvalid naming the file and how to make a good one.
func loadCheckpointKey(path string) (ed25519.PrivateKey, error) {
	create := fmt.Sprintf("head -c 32 /dev/urandom | base64 > %s; chmod 600 %s", path, path)
	fi, err := os.Stat(path)
	switch {
	case errors.Is(err, os.ErrNotExist):
		return nil, silo.Errorf(silo.CodeNotFound, "no signing key at %s; create one with: %s", path, create)
	case err != nil:
		return nil, silo.Errorf(silo.CodeInvalid, "cannot read the signing key %s: %v", path, durable.Cause(err))
	case !fi.Mode().IsRegular():
		return nil, silo.Errorf(silo.CodeInvalid, "the signing key %s is not a file; pass the file holding the key, or create one with: %s", path, create)
	case fi.Mode().Perm()&0o077 != 0:
		return nil, silo.Errorf(silo.CodeInvalid, "the signing key %s is readable by other users (mode %v); run chmod 600 %s", path, fi.Mode().Perm(), path)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, silo.Errorf(silo.CodeInvalid, "cannot read the signing key %s: %v", path, durable.Cause(err))
	}
	seed, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b)))
	if err != nil || len(seed) != ed25519.SeedSize {
		return nil, silo.Errorf(silo.CodeInvalid, "%s is not a checkpoint signing key: it must hold a base64 ed25519 seed (32 bytes); create one with: %s", path, create)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// writeNew writes b to a file that must not exist yet, synced, mode 0644
// (internal/durable, exclusive): a crash leaves no file or all of it.
func writeNew(path string, b []byte) error {
	err := durable.WriteFile(path, b, durable.Options{Exclusive: true, NoDirSync: true, Perm: 0o644})
	if errors.Is(err, os.ErrExist) {
		return silo.Errorf(silo.CodeConflict, "%s exists already; checkpoints are never overwritten, choose a new name", path)
	}
	if err != nil {
		return silo.Errorf(silo.CodeInvalid, "cannot write %s: %v", path, durable.Cause(err))
	}
	return nil
}

func newAuditWitnessCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "witness",
		Short: "Start the audit witness of an installation that has none, trusting the log as it is now",
		Long: `silo audit witness writes the audit log's current head as the witness, for an installation that
has none: one made before the witness existed, or whose witness was lost. silo never does this by
itself, because it would take a log whose tail was cut as the truth. Check the log against your
latest checkpoint first (silo audit verify --checkpoint FILE reports the missing witness, after
proving the log extends the checkpoint). It refuses when a witness exists.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := localOnly(g, "run silo audit witness on the server's host"); err != nil {
				return err
			}
			st, err := openStateReadOnly(cmd.Context(), g)
			if err != nil {
				return err
			}
			defer st.Close()
			w, err := isolation.StartWitness(cmd.Context(), st, filepath.Join(g.dataDir, isolation.WitnessFile))
			if err != nil {
				return err
			}
			return g.print(w, func(out io.Writer) {
				fmt.Fprintf(out, "audit witness started at entry %d (%s)\n", w.Seq, strings.TrimSpace(w.Hash))
			})
		},
	}
}
