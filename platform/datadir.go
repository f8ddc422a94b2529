package platform

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// CheckRegistry checks that the control-plane registry and the accounts
// the provider holds belong together, as Open does before it recovers or
// serves anything: the registry is not empty while the provider holds
// accounts (control.Plane.CheckRegistry), and the local provider in the
// data dir holds at least one of the registry's live (active or
// suspended) accounts. The second fails for a data dir that is not the
// one the installation's servers use (a server started on a shared
// PostgreSQL store with another --data-dir) or whose account files were
// lost: every account would then look gone, and what each account's
// problem suggests (apply, delete) would act on the shared registry for a
// cause that is the whole data dir.
//
// # Errors
//
// CodeFailedCheck, one sentence saying which of the two and what to do.
func (p *Platform) CheckRegistry(ctx context.Context) error {
	cfg := p.cfg
	if err := p.Plane.CheckRegistry(ctx, p.stateName); err != nil {
		if cfg.Store != nil && silo.ErrorCode(err) == silo.CodeFailedCheck {
			return silo.Errorf(silo.CodeFailedCheck, "the PostgreSQL control-plane database holds no accounts, but the provider in %s holds some: this data dir's state is elsewhere; if it is still in %s, copy it with silo store migrate --to <the same URL> (no --store), else restore the database from a backup (see docs/operations.md)", cfg.DataDir, filepath.Join(cfg.DataDir, "state.db"))
		}
		return err
	}
	return p.checkAccountsHere(ctx)
}

// checkAccountsHere is CheckRegistry's second check. It reads at most
// liveSample live accounts of each state and looks for their files until
// it finds one, so that it costs little at every start whatever the
// fleet's size.
func (p *Platform) checkAccountsHere(ctx context.Context) error {
	d, ok := p.Provider.(accountDirs)
	if !ok {
		return nil // the accounts are outside the data dir
	}
	const liveSample = 100
	var live []silo.AccountID
	n := 0
	err := p.db.View(ctx, func(tx store.Tx) error {
		for _, st := range []silo.State{silo.StateActive, silo.StateSuspended} {
			c, err := tx.CountAccounts(store.Filter{State: st})
			if err != nil {
				return err
			}
			n += c
			accts, err := tx.Accounts(store.Filter{State: st, Limit: liveSample})
			if err != nil {
				return err
			}
			for _, a := range accts {
				live = append(live, a.ID)
			}
		}
		return nil
	})
	if err != nil || len(live) == 0 {
		return err
	}
	// One look per account, stopping at the first held (the local
	// provider's layout: an account exists while its data.key does).
	for _, id := range live {
		if _, err := os.Lstat(filepath.Join(d.Dir(), "accounts", string(id), "data.key")); err == nil {
			return nil
		}
	}
	slices.Sort(live)
	names := make([]string, 0, 6)
	for i, id := range live {
		if i == 5 {
			names = append(names, "...")
			break
		}
		names = append(names, string(id))
	}
	accounts := filepath.Join(p.cfg.DataDir, "accounts")
	if p.cfg.Store != nil {
		return silo.Errorf(silo.CodeFailedCheck, "this data dir (%s) is not the one the installation's servers use, or its account files were lost: the PostgreSQL control-plane database holds %d live account(s) (%s) and %s holds none of them; point --data-dir (or $SILO_DATA_DIR) at the data dir the other servers use, or stop every silo process and restore that data dir from a backup (docs/operations.md); no account needs deleting or applying", p.cfg.DataDir, n, strings.Join(names, ", "), accounts)
	}
	return silo.Errorf(silo.CodeFailedCheck, "the account files of this data dir (%s) were lost or moved: %s holds %d live account(s) (%s) and %s holds none of them; stop every silo process on this data dir and restore %s from the backup that matches %s (docs/operations.md); no account needs deleting or applying", p.cfg.DataDir, p.stateName, n, strings.Join(names, ", "), accounts, accounts, p.stateName)
}
