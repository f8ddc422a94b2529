package platform

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/internal/durable"
	"github.com/silo-run/silo/store"
)

// CheckRegistry checks that the control-plane registry and the accounts
// the provider holds belong together, as Open does before it recovers or
// serves anything: the registry is not empty while the provider holds
// accounts (control.Plane.CheckRegistry); the data dir belongs to the
// store's installation (the installation ID recorded in the data dir, see
// checkInstallation); and the provider (the local provider in the data
// dir, or an AWS organization) holds at least one of the registry's live
// (active or suspended) accounts. The last two fail for a data dir that is
// not the one the installation's servers use (a server started on a
// shared PostgreSQL store with another --data-dir), whose account files
// were lost, or whose provider is another (an emptied) organization:
// every account would then look gone, what each account's problem
// suggests (apply, delete) would act on the shared registry for a cause
// that is the whole data dir, and finishing a half-done onboarding would
// create the account in the wrong place.
//
// Once the checks pass, a data dir that records no installation ID yet (a
// new one, or one of a silo version before the record) records the
// store's, making one if the store has none and holds accounts (see
// recordInstallation).
//
// # Errors
//
// CodeFailedCheck, one sentence saying which check failed and what to do;
// the store's errors, and CodeUnavailable when the record cannot be
// written.
func (p *Platform) CheckRegistry(ctx context.Context) error {
	cfg := p.cfg
	if err := p.Plane.CheckRegistry(ctx, p.stateName); err != nil {
		if cfg.Store != nil && silo.ErrorCode(err) == silo.CodeFailedCheck {
			return silo.Errorf(silo.CodeFailedCheck, "the PostgreSQL control-plane database holds no accounts, but the provider in the data dir %s holds some: this data dir's state is elsewhere; if it is still in the data dir's state.db, copy it with silo store migrate --to <the same URL> (no --store), else restore the database from a backup (see docs/operations.md)", cfg.dataDirName)
		}
		return err
	}
	here, err := p.checkInstallation(ctx)
	if err != nil {
		return err
	}
	if err := p.checkAccountsHere(ctx, here != ""); err != nil {
		return err
	}
	if cfg.Store != nil {
		// The data dir is this store's: a command on it without the
		// store must not open (and make) a state.db beside it.
		if err := recordStore(cfg.DataDir); err != nil {
			return silo.Errorf(silo.CodeUnavailable, "cannot write %s in the data dir %s: %v; make the data dir writable by the user running silo", StoreFile, cfg.dataDirName, durable.Cause(err))
		}
	}
	if here != "" {
		return nil
	}
	return p.recordInstallation(ctx)
}

// recordInstallation records the store's installation ID in the data dir,
// making the ID first if the store has none and holds accounts. A store
// without accounts is left as it is, and the data dir records nothing yet
// (the first open after the first account is created does): a first
// command that is refused must leave a new store empty.
func (p *Platform) recordInstallation(ctx context.Context) error {
	ids := control.InstallationID(p.db)
	id, err := ids(ctx, false)
	if err != nil {
		return fmt.Errorf("read the installation ID: %w", err)
	}
	if id == "" {
		var n int
		if err := p.db.View(ctx, func(tx store.Tx) error {
			var err error
			n, err = tx.CountAccounts(store.Filter{IncludeDeleted: true, Limit: 1})
			return err
		}); err != nil || n == 0 {
			return err
		}
		if id, err = ids(ctx, true); err != nil {
			return fmt.Errorf("make the installation ID: %w", err)
		}
	}
	if err := durable.WriteFile(filepath.Join(p.cfg.DataDir, InstallationFile), []byte(id+"\n"), durable.Options{}); err != nil {
		return silo.Errorf(silo.CodeUnavailable, "cannot write %s: %v; make the data dir writable by the user running silo", p.installationRecord(), durable.Cause(err))
	}
	return nil
}

// InstallationFile is the file in the data dir that records the ID of the
// installation (control.InstallationID) whose store the data dir was first
// opened with.
const InstallationFile = "installation.id"

// checkInstallation compares the installation ID recorded in the data dir
// with the store's and returns it when both are there and agree. It
// returns "" when either is missing (a data dir or a store of a silo
// version before the record, a new data dir): CheckRegistry then relies on
// the accounts sample and records the ID.
//
// # Errors
//
// CodeFailedCheck when they differ, naming both, or when the file holds no
// ID.
func (p *Platform) checkInstallation(ctx context.Context) (string, error) {
	path := filepath.Join(p.cfg.DataDir, InstallationFile)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		fix := "restore " + InstallationFile + " from a backup of the data dir (docs/operations.md)"
		if errors.Is(err, fs.ErrPermission) {
			fix = "check the owner and permissions of the data dir and its files: run silo as the user that owns them"
		}
		return "", silo.Errorf(silo.CodeFailedCheck, "cannot read %s, which says which installation the data dir belongs to: %v; %s", p.installationRecord(), durable.Cause(err), fix)
	}
	here := strings.TrimSpace(string(b))
	if !validInstallationID(here) {
		return "", silo.Errorf(silo.CodeFailedCheck, "%s does not hold an installation ID (32 hex digits); restore %s from a backup of the data dir, or remove it to have silo check the data dir by its accounts and record the ID again (docs/operations.md)", p.installationRecord(), InstallationFile)
	}
	id, err := control.InstallationID(p.db)(ctx, false)
	if err != nil {
		return "", fmt.Errorf("read the installation ID: %w", err)
	}
	if id == "" {
		return "", nil
	}
	if id != here && p.cfg.Store == nil {
		return "", silo.Errorf(silo.CodeFailedCheck, "this data dir (%s) belongs to installation %s, but %s is installation %s's: the state was replaced by another installation's; stop every silo process on this data dir and restore %s from the backup that matches this data dir (docs/operations.md)", p.cfg.dataDirName, here, p.stateName, id, p.stateName)
	}
	if id != here {
		return "", silo.Errorf(silo.CodeFailedCheck, "this data dir (%s) belongs to installation %s, but the PostgreSQL control-plane database is installation %s's: point --data-dir (or $SILO_DATA_DIR) at the data dir installation %s's servers use, or --store at installation %s's database; silo will not start on the data dir and the store of two installations (docs/operations.md)", p.cfg.dataDirName, here, id, id, here)
	}
	return here, nil
}

// validInstallationID reports whether id has the form control.InstallationID
// makes: 32 lower-case hex digits.
func validInstallationID(id string) bool {
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil && strings.ToLower(id) == id
}

// installationRecord names InstallationFile for users: what it is, and
// the data dir as they gave it.
func (p *Platform) installationRecord() string {
	return fmt.Sprintf("the installation record (%s) in the data dir %s", InstallationFile, p.cfg.dataDirName)
}

// checkAccountsHere is CheckRegistry's last check. It reads at most
// liveSample live accounts of each state and looks for their files until
// it finds one (for a provider that keeps the accounts elsewhere, such as
// AWS, for them in its list of accounts, read once), so that it costs
// little at every start whatever the fleet's size. A provider holding none
// of them is refused: Resume would otherwise create the installation's
// half-onboarded accounts in it. bound says the data dir records the store's installation:
// it is the right data dir, and only its account files can be missing.
func (p *Platform) checkAccountsHere(ctx context.Context, bound bool) error {
	n, live, ok, err := p.liveHeld(ctx)
	if err != nil || ok {
		return err
	}
	_, local := p.Provider.(accountDirs)
	names := silo.ShortList(live, 5)
	if !local {
		return silo.Errorf(silo.CodeFailedCheck, "the %s provider holds none of the %d live account(s) of %s (%s): it is not this installation's organization, or the installation's accounts in it were lost; point the provider at the installation's own organization, or restore its accounts; silo will not start (nor create accounts) on an organization that holds none of the installation's", p.Provider.Name(), n, p.stateName, names)
	}
	accounts := "its accounts directory (accounts)"
	if p.cfg.Store != nil && bound {
		return silo.Errorf(silo.CodeFailedCheck, "the account files of this data dir (%s) were lost or moved: the PostgreSQL control-plane database holds %d live account(s) (%s) and %s holds none of them; stop every silo process on this data dir and restore %s from a backup of the data dir (docs/operations.md); no account needs deleting or applying", p.cfg.dataDirName, n, names, accounts, accounts)
	}
	if p.cfg.Store != nil {
		return silo.Errorf(silo.CodeFailedCheck, "this data dir (%s) is not the one the installation's servers use, or its account files were lost: the PostgreSQL control-plane database holds %d live account(s) (%s) and %s holds none of them; point --data-dir (or $SILO_DATA_DIR) at the data dir the other servers use, or stop every silo process and restore that data dir from a backup (docs/operations.md); no account needs deleting or applying", p.cfg.dataDirName, n, names, accounts)
	}
	return silo.Errorf(silo.CodeFailedCheck, "the account files of this data dir (%s) were lost or moved: %s holds %d live account(s) (%s) and %s holds none of them; stop every silo process on this data dir and restore %s from the backup that matches %s (docs/operations.md); no account needs deleting or applying", p.cfg.dataDirName, p.stateName, n, names, accounts, accounts, p.stateName)
}

// liveHeld reads at most liveSample live accounts of each state (n counts
// them all) and reports whether the provider holds any of them, looking
// until it finds one: for the local provider at each account's files, for
// a provider that keeps the accounts elsewhere (AWS) in its list of
// accounts, read once. It returns the sample, sorted.
func (p *Platform) liveHeld(ctx context.Context) (n int, live []silo.AccountID, held bool, err error) {
	const liveSample = 100
	err = p.db.View(ctx, func(tx store.Tx) error {
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
		return n, live, true, err
	}
	d, local := p.Provider.(accountDirs)
	holds := func(id silo.AccountID) bool {
		// The local provider's layout: an account exists while its
		// data.key does.
		_, err := os.Lstat(filepath.Join(d.Dir(), "accounts", string(id), "data.key"))
		return err == nil
	}
	if !local {
		// A provider holding the accounts elsewhere (an AWS
		// organization) is asked for its list, once.
		ids, err := p.Provider.Accounts(ctx)
		if err != nil {
			return n, live, false, fmt.Errorf("list the %s provider's accounts: %w", p.Provider.Name(), err)
		}
		holds = func(id silo.AccountID) bool { return slices.Contains(ids, id) }
	}
	// One look per account, stopping at the first held.
	for _, id := range live {
		if holds(id) {
			return n, live, true, nil
		}
	}
	slices.Sort(live)
	return n, live, false, nil
}
