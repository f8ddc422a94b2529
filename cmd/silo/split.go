package main

import (
	"fmt"
	"io"
	"slices"
	"strings"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// maxNamed is how many accounts on one release a split names.
const maxNamed = 10

// accountsOn lists, through list (the store's or the server's account
// listing), the IDs of the accounts that run release, sorted.
func accountsOn(list func(store.Filter) ([]silo.Account, error), release string) ([]silo.AccountID, error) {
	var out []silo.AccountID
	f := store.Filter{Limit: 500}
	for {
		page, err := list(f)
		if err != nil {
			return nil, fmt.Errorf("list accounts: %w", err)
		}
		for _, a := range page {
			if a.Release == release {
				out = append(out, a.ID)
			}
		}
		if len(page) < f.Limit {
			return out, nil
		}
		f.After = page[len(page)-1].ID
	}
}

// writeSplit says, after an abort, where a stopped rollout left the
// accounts of its rings (RingStatus.Releases) when it left some on its
// release, which is not current (only a rollout that succeeds makes it
// so), naming those (moved), and the two ways to bring the fleet onto one
// release. It writes nothing when no account of its rings runs its
// release.
func writeSplit(w io.Writer, r rollout.Rollout, moved []silo.AccountID) {
	counts := map[string]int{}
	for _, ring := range r.Rings {
		for rel, n := range ring.Releases {
			counts[rel] += n
		}
	}
	if counts[r.Release] == 0 {
		return
	}
	names := make([]string, 0, maxNamed+1)
	for _, id := range moved[:min(len(moved), maxNamed)] {
		names = append(names, string(id))
	}
	if len(moved) > maxNamed {
		names = append(names, fmt.Sprintf("%d more", len(moved)-maxNamed))
	}
	on := fmt.Sprintf("%d account(s) on release %s", counts[r.Release], r.Release)
	if len(names) > 0 {
		on += " (" + strings.Join(names, ", ") + ")"
	}
	others := make([]string, 0, len(counts))
	for rel := range counts {
		if rel != r.Release {
			others = append(others, rel)
		}
	}
	slices.Sort(others)
	for _, rel := range others {
		label := "release " + rel
		switch rel {
		case r.Previous:
			label += " (previous)"
		case "":
			label = "no release"
		}
		on += fmt.Sprintf(", %d on %s", counts[rel], label)
	}
	if len(others) > 0 {
		fmt.Fprintf(w, "The abort leaves the fleet split between releases: %s.\n", on)
	} else {
		fmt.Fprintf(w, "The abort leaves %s, every account its rings reached.\n", on)
	}
	if r.RollbackOf == "" && r.Previous != "" && r.Previous != r.Release {
		// Only a rollout that succeeds makes its release current.
		fmt.Fprintf(w, "Release %s is not current: an account created now gets %s.\n", r.Release, r.Previous)
	}
	fmt.Fprintln(w, "To bring every account onto one release:")
	if r.RollbackOf == "" && r.Previous != "" {
		fmt.Fprintf(w, "  silo rollout rollback %s    go back: return every account it moved to the release it ran before\n", r.ID)
		fmt.Fprintf(w, "  silo deploy --release %s    go forward: roll %s out to every account, through its rings and gates\n", r.Release, r.Release)
		return
	}
	for _, rel := range []string{r.Release, r.Previous} {
		if rel != "" {
			fmt.Fprintf(w, "  silo deploy --release %s    roll %s out to every account, through its rings and gates\n", rel, rel)
		}
	}
}
