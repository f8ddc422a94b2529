package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	silo "github.com/silo-run/silo"
)

// This file holds what the store knows of the live probe (silo verify
// --probe, package isolation/probe): how its throwaway accounts are named,
// how releases it built before they were marked are recognised, and the one
// rule for its releases (CheckShip).

// The names of the apps the live probe builds (their silo.yaml name) and
// the one function each declares.
const (
	ProbeApp               = "silo-probe"
	ProbeAppFunction       = "probe"
	ProbeModuleApp         = "silo-probe-module"
	ProbeModuleAppFunction = "module"
)

// probeNonceLen is the length of the hex nonce in a probe account's ID.
const probeNonceLen = 8

// ProbeAccountID returns the ID of the live probe's throwaway account for
// role (one lower-case letter: "a", "b", "d", "m") in the run of nonce (8
// lower-case hex digits): "probe-<nonce>-<role>".
func ProbeAccountID(nonce, role string) silo.AccountID {
	return silo.AccountID("probe-" + nonce + "-" + role)
}

// IsProbeAccount reports whether a is one of the live probe's throwaway
// accounts: an environment account with an ID ProbeAccountID gives.
func IsProbeAccount(a silo.Account) bool {
	if a.Kind != silo.KindEnvironment {
		return false
	}
	rest, ok := strings.CutPrefix(string(a.ID), "probe-")
	if !ok || len(rest) != probeNonceLen+2 || rest[probeNonceLen] != '-' {
		return false
	}
	for i := 0; i < probeNonceLen; i++ {
		if c := rest[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	role := rest[probeNonceLen+1]
	return role >= 'a' && role <= 'z'
}

// CheckShip is the rule for the releases that are not to be shipped, and
// the only place it lives: a release built by silo verify --probe
// (Release.Probe) runs only in the probe's own throwaway accounts, and one
// only silo dev stored (Release.Origin, checkDev) only in developer
// accounts. It returns the error refusing to make such a release current
// or roll it out (to nil), or to apply it to account to outside those; nil
// for any other release. The stores apply it where a release becomes
// current and where a rollout is recorded, the engine where a release is
// applied to an account, and the rollout runner before it plans a rollout.
//
// # Errors
//
// silo.CodeInvalid, naming the release and what to roll out instead.
func CheckShip(rel Release, to *silo.Account) error {
	if err := checkDev(rel, to); err != nil {
		return err
	}
	if !rel.Probe || to != nil && IsProbeAccount(*to) {
		return nil
	}
	what := "made current or rolled out"
	if to != nil {
		what = "applied to account " + string(to.ID)
	}
	return silo.Errorf(silo.CodeInvalid, "release %s is a probe build made by silo verify --probe for its throwaway accounts; it cannot be %s. Roll out a release of your app instead: silo deploy in the directory holding silo.yaml (silo release list shows your releases)", rel.ID, what)
}

// LegacyProbes returns the IDs of the stored releases that silo verify
// --probe built before releases were marked as probe builds: a release is
// one when its stack is one of the probe's apps (named ProbeApp declaring
// only ProbeAppFunction, or ProbeModuleApp declaring only
// ProbeModuleAppFunction), it is not current, no rollout names it, and no
// account but the probe's own runs it. A store marks them as it upgrades
// its schema; a release of an app that merely shares the name and was
// shipped somewhere is left unmarked.
func LegacyProbes(tx Tx) ([]string, error) {
	rs, err := tx.Releases(0, true)
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	shipped := map[string]bool{}
	cur, err := tx.CurrentRelease()
	if err != nil && !errors.Is(err, silo.ErrNotFound) {
		return nil, err
	}
	shipped[cur] = true
	ros, err := tx.Rollouts(0)
	if err != nil {
		return nil, fmt.Errorf("list rollouts: %w", err)
	}
	for _, ro := range ros {
		shipped[ro.Release], shipped[ro.Previous] = true, true
	}
	f := Filter{IncludeDeleted: true, Limit: 1000}
	for {
		as, err := tx.Accounts(f)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range as {
			if !IsProbeAccount(a) {
				shipped[a.Release] = true
			}
		}
		if len(as) < f.Limit {
			break
		}
		f.After = as[len(as)-1].ID
	}
	var out []string
	for _, r := range rs {
		if !r.Probe && !shipped[r.ID] && probeStack(r.Stack) {
			out = append(out, r.ID)
		}
	}
	return out, nil
}

// probeStack reports whether a stored stack is one of the probe's apps.
func probeStack(stack json.RawMessage) bool {
	var st struct {
		Name      string                     `json:"name"`
		Functions map[string]json.RawMessage `json:"functions"`
	}
	if json.Unmarshal(stack, &st) != nil || len(st.Functions) != 1 {
		return false
	}
	switch st.Name {
	case ProbeApp:
		return st.Functions[ProbeAppFunction] != nil
	case ProbeModuleApp:
		return st.Functions[ProbeModuleAppFunction] != nil
	}
	return false
}

// CheckRolloutRelease applies CheckShip to the release rollout r ships,
// read with release. A release that is not stored is left to the checks
// of whoever creates the rollout.
func CheckRolloutRelease(r Rollout, release func(id string) (Release, error)) error {
	rel, err := release(r.Release)
	if errors.Is(err, silo.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	return CheckShip(rel, nil)
}
