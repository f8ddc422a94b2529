package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/store"
)

// TestVerifyCountsWhatExists: silo verify's accounts and principals are
// those of the accounts that exist, as the store holds them (each live
// account's functions and keys, and the control plane): a probe run, whose
// throwaway accounts are deleted at its end, leaves them as they were, and
// the keys of the deleted accounts are reported apart, as checked for I5.
// Twin: creating a tenant raises both counts by what it adds.
func TestVerifyCountsWhatExists(t *testing.T) {
	file, _ := initProject(t)
	c := &cli{t: t, dataDir: filepath.Join(t.TempDir(), "data"), file: file}
	c.ok("tenant", "create", "acme")
	verify := func() isolation.Result {
		t.Helper()
		var out struct {
			Proof isolation.Result `json:"proof"`
		}
		if err := json.Unmarshal([]byte(c.ok("verify", "-o", "json")), &out); err != nil {
			t.Fatal(err)
		}
		if out.Proof.Status != isolation.StatusProved {
			t.Fatalf("verify: %+v, want proved", out.Proof)
		}
		return out.Proof
	}
	// exists counts, from the store, what verify must: the accounts not
	// deleted, their functions and keys plus the control plane; and the
	// deleted accounts with their keys.
	type counts struct{ accounts, principals, deleted, deletedKeys int }
	exists := func() counts {
		t.Helper()
		a, err := openApp(context.Background(), &globals{dataDir: c.dataDir, file: file, stdout: io.Discard, stderr: io.Discard})
		if err != nil {
			t.Fatal(err)
		}
		defer a.Close()
		n := counts{principals: 1} // the control plane
		err = a.store.View(context.Background(), func(tx store.Tx) error {
			as, err := tx.Accounts(store.Filter{IncludeDeleted: true})
			if err != nil {
				return err
			}
			for _, acct := range as {
				ks, err := tx.Keys(acct.ID)
				if err != nil {
					return err
				}
				if acct.State == silo.StateDeleted {
					n.deleted++
					n.deletedKeys += len(ks)
					continue
				}
				rs, err := tx.Resources(acct.ID)
				if err != nil {
					return err
				}
				n.accounts++
				n.principals += len(ks)
				for _, r := range rs {
					if r.Type == silo.TypeFunction {
						n.principals++
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	check := func(when string) counts {
		t.Helper()
		r, want := verify(), exists()
		if got := (counts{r.Accounts, r.Principals, r.Deleted, r.DeletedKeys}); got != want {
			t.Errorf("%s: verify counts %+v, want what the store holds %+v", when, got, want)
		}
		return want
	}
	before := check("before the probe run")
	c.ok("verify", "--probe")
	after := check("after the probe run")
	if after.accounts != before.accounts || after.principals != before.principals {
		t.Errorf("the probe run changed the counts: %+v before, %+v after; its accounts are deleted", before, after)
	}
	if after.deleted == 0 || after.deletedKeys == 0 {
		t.Fatalf("after the probe run: %+v; want its deleted accounts and their keys", after)
	}
	want := fmt.Sprintf("also checked for I5: %d key(s) of %d deleted account(s), not counted above; a deleted account whose ID was used again is not among them (its keys were removed when the ID was taken)", after.deletedKeys, after.deleted)
	if out := c.ok("verify"); !strings.Contains(out, want) {
		t.Errorf("verify output lacks %q:\n%s", want, out)
	}

	// Twin: a new tenant is counted, with its functions and keys.
	c.ok("tenant", "create", "beta")
	grown := check("after creating a tenant")
	if grown.accounts != after.accounts+1 || grown.principals <= after.principals {
		t.Errorf("creating a tenant: %+v before, %+v after; want one more account and more principals", after, grown)
	}
	// An ID used again: the deleted beta is no longer a deleted account
	// (its keys went with it as the new beta took the ID), and the new
	// one is counted as any account.
	c.ok("tenant", "delete", "beta", "--yes")
	gone := check("after deleting the tenant")
	if gone.deleted != grown.deleted+1 {
		t.Errorf("deleting beta: %+v before, %+v after; want one more deleted account", grown, gone)
	}
	c.ok("tenant", "create", "beta")
	if again := check("after creating the tenant again"); again.deleted != grown.deleted || again.accounts != grown.accounts {
		t.Errorf("beta created again: %+v; want the deleted accounts and the accounts as before beta's deletion, %+v", again, grown)
	}
}
