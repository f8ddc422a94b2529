package isolation

import (
	"context"
	"fmt"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
)

// Fleet is the input of the verifier: every account with its recorded
// resources, every API key, and the operators with what they may do. Load it
// from the store with LoadFleet, or build it by hand in tests.
type Fleet struct {
	Accounts  []AccountState `json:"accounts"`
	Keys      []Key          `json:"keys"`
	Operators []Operator     `json:"operators"`
	// DataKeysKnown says whether AccountState.HasDataKey was filled from the
	// provider (AddDataKeys). Without it I5 cannot be checked and the result
	// is incomplete, never proved.
	DataKeysKnown bool `json:"data_keys_known"`
}

// AccountState is one account as the verifier sees it.
type AccountState struct {
	Account   silo.Account    `json:"account"`
	Resources []silo.Resource `json:"resources"`
	// HasDataKey says whether the provider still holds the account's data key.
	HasDataKey bool `json:"has_data_key"`
}

// Key is one API key binding.
type Key struct {
	ID      string         `json:"id"`
	Account silo.AccountID `json:"account"`
	Revoked bool           `json:"revoked,omitempty"`
}

// Operator is a control-plane principal and the actions it holds on every
// account.
type Operator struct {
	Name    string   `json:"name"`
	Actions []Action `json:"actions"`
	Origin  string   `json:"origin"`
}

// ControlPlane is the one operator silo has: the control plane (CLI and
// server), holding ControlActions on every account.
func ControlPlane() Operator {
	return Operator{
		Name:    "control-plane",
		Actions: append([]Action(nil), ControlActions...),
		Origin:  "control plane API (package control, provider.Provider): no method reads tenant data or a secret value",
	}
}

// LoadFleet reads the fleet from the store: every account including deleted
// ones, their recorded resources and their keys, in one read transaction.
// The operator is ControlPlane. Call AddDataKeys to complete it with what the
// provider holds.
func LoadFleet(ctx context.Context, st store.Store) (*Fleet, error) {
	f := &Fleet{Operators: []Operator{ControlPlane()}}
	err := st.View(ctx, func(tx store.Tx) error {
		var after silo.AccountID
		for {
			page, err := tx.Accounts(store.Filter{IncludeDeleted: true, After: after, Limit: 1000})
			if err != nil {
				return fmt.Errorf("list accounts: %w", err)
			}
			for _, a := range page {
				rs, err := tx.Resources(a.ID)
				if err != nil {
					return fmt.Errorf("resources of %s: %w", a.ID, err)
				}
				f.Accounts = append(f.Accounts, AccountState{Account: a, Resources: rs})
				ks, err := tx.Keys(a.ID)
				if err != nil {
					return fmt.Errorf("keys of %s: %w", a.ID, err)
				}
				now := time.Now()
				for _, k := range ks {
					// A key in its grace period (revoked from a later time)
					// still opens its account: it is live.
					f.Keys = append(f.Keys, Key{ID: k.ID, Account: k.Account, Revoked: k.Revoked != nil && !now.Before(*k.Revoked)})
				}
			}
			if len(page) < 1000 {
				return nil
			}
			after = page[len(page)-1].ID
		}
	})
	if err != nil {
		return nil, fmt.Errorf("load fleet: %w", err)
	}
	return f, nil
}

// AddDataKeys records, for every account of the fleet, whether the provider
// still holds it (and so its data key), and marks the fleet DataKeysKnown.
func (f *Fleet) AddDataKeys(ctx context.Context, p provider.Provider) error {
	ids, err := p.Accounts(ctx)
	if err != nil {
		return fmt.Errorf("list provider accounts: %w", err)
	}
	held := make(map[silo.AccountID]bool, len(ids))
	for _, id := range ids {
		held[id] = true
	}
	for i := range f.Accounts {
		f.Accounts[i].HasDataKey = held[f.Accounts[i].Account.ID]
	}
	f.DataKeysKnown = true
	return nil
}

// Clone returns a deep enough copy of f for a mutation: account, key and
// operator slices are copied; resources slices are copied per account.
func (f *Fleet) Clone() *Fleet {
	g := &Fleet{DataKeysKnown: f.DataKeysKnown}
	g.Accounts = make([]AccountState, len(f.Accounts))
	for i, a := range f.Accounts {
		a.Resources = append([]silo.Resource(nil), a.Resources...)
		g.Accounts[i] = a
	}
	g.Keys = append([]Key(nil), f.Keys...)
	for _, o := range f.Operators {
		o.Actions = append([]Action(nil), o.Actions...)
		g.Operators = append(g.Operators, o)
	}
	return g
}

// account returns a pointer to the state of account id, or nil.
func (f *Fleet) account(id silo.AccountID) *AccountState {
	for i := range f.Accounts {
		if f.Accounts[i].Account.ID == id {
			return &f.Accounts[i]
		}
	}
	return nil
}
