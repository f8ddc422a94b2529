package control

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// SettingInstallation names the setting that holds the installation's ID:
// 32 random hex digits, made the first time a provider needs one. A
// provider whose accounts may be found by another installation (the AWS
// provider: one organization, accounts found by name) tags each account
// with it and acts only on accounts that bear it.
const SettingInstallation = "installation.id"

// InstallationID returns a function that reads the installation's ID from
// st and, with create, makes one if there is none yet. The ID is read and
// made in one transaction, so servers that share st agree on the first one
// written; without create, and none yet, it returns "".
func InstallationID(st store.Store) func(ctx context.Context, create bool) (string, error) {
	return func(ctx context.Context, create bool) (string, error) {
		var id string
		read := func(tx store.Tx) error {
			v, err := tx.Setting(SettingInstallation)
			if errors.Is(err, silo.ErrNotFound) {
				return nil
			}
			id = v
			return err
		}
		if err := st.View(ctx, read); err != nil || id != "" || !create {
			return id, err
		}
		err := st.Update(ctx, func(tx store.Tx) error {
			id = "" // the store may run this again after a conflict
			if err := read(tx); err != nil || id != "" {
				return err
			}
			var b [16]byte
			if _, err := crand.Read(b[:]); err != nil {
				return err
			}
			id = hex.EncodeToString(b[:])
			return tx.PutSetting(SettingInstallation, id)
		})
		return id, err
	}
}
