package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func readAudit(t *testing.T, s store.Store, after int64, limit int) []store.AuditEntry {
	t.Helper()
	var es []store.AuditEntry
	view(t, s, func(tx store.Tx) error {
		var err error
		es, err = tx.Audit(after, limit)
		return err
	})
	return es
}

func testAudit(t *testing.T, s store.Store) {
	if es := readAudit(t, s, 0, 0); len(es) != 0 {
		t.Fatalf("new store has %d audit entries, want 0", len(es))
	}
	var appended []store.AuditEntry
	for i := range 5 {
		update(t, s, func(tx store.Tx) error {
			e, err := tx.AppendAudit(store.AuditEvent{
				Time: T0.Add(time.Duration(i) * time.Second).Add(123 * time.Nanosecond), Actor: "operator:ann",
				Action: "tenant.create", Account: silo.AccountID(fmt.Sprintf("t%d", i)),
				Detail: json.RawMessage(fmt.Sprintf(`{ "z": 1, "a": [1, 2], "n": %d }`, i)),
			})
			appended = append(appended, e)
			return err
		})
	}
	update(t, s, func(tx store.Tx) error { // several in one transaction, no detail
		for range 3 {
			e, err := tx.AppendAudit(store.AuditEvent{Time: T0, Actor: "server", Action: "rollout.step"})
			if err != nil {
				return err
			}
			appended = append(appended, e)
		}
		return nil
	})
	all := readAudit(t, s, 0, 0)
	if d := cmp.Diff(appended, all, cmpOpts...); d != "" {
		t.Errorf("stored entries differ from those AppendAudit returned (-returned +stored):\n%s", d)
	}
	if n, err := store.VerifyChain("", 0, all); err != nil || n != 8 {
		t.Fatalf("VerifyChain: %d, %v; want 8, nil", n, err)
	}
	if all[0].Prev != "" || all[0].Seq != 1 {
		t.Errorf("first entry: seq %d prev %q, want 1 and empty", all[0].Seq, all[0].Prev)
	}

	// A window verifies from the hash before it.
	win := readAudit(t, s, 3, 2)
	if len(win) != 2 || win[0].Seq != 4 || win[1].Seq != 5 {
		t.Fatalf("Audit(3, 2): got %d entries starting %v, want seq 4 and 5", len(win), win)
	}
	if _, err := store.VerifyChain(all[2].Hash, 3, win); err != nil {
		t.Errorf("VerifyChain of window: %v", err)
	}

	// Must-not twin: the check the suite relies on does catch tampering.
	tampered := append([]store.AuditEntry(nil), all...)
	tampered[2].Event.Actor = "operator:mallory"
	if _, err := store.VerifyChain("", 0, tampered); err == nil {
		t.Errorf("VerifyChain accepted an edited entry")
	}

	err := s.Update(context.Background(), func(tx store.Tx) error {
		_, err := tx.AppendAudit(store.AuditEvent{Actor: "x", Action: "y", Detail: json.RawMessage(`{not json`)})
		return err
	})
	wantCode(t, "audit detail that is not JSON", err, silo.CodeInvalid)
	if n := len(readAudit(t, s, 0, 0)); n != 8 {
		t.Errorf("after refused append: %d entries, want 8", n)
	}
}

func testAuditConcurrent(t *testing.T, s store.Store) {
	const workers, each = 6, 15
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(context.Background(), func(tx store.Tx) error {
					_, err := tx.AppendAudit(store.AuditEvent{Time: T0, Actor: fmt.Sprintf("worker:%d", w), Action: "test.append", Detail: json.RawMessage(fmt.Sprintf(`{"i":%d}`, i))})
					return err
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("concurrent append: %v", err)
	}
	all := readAudit(t, s, 0, 0)
	if n, err := store.VerifyChain("", 0, all); err != nil || n != workers*each {
		t.Fatalf("VerifyChain: %d, %v; want %d, nil", n, err, workers*each)
	}
	seen := map[string]bool{}
	for _, e := range all {
		k := e.Event.Actor + string(e.Event.Detail)
		if seen[k] {
			t.Errorf("event %s stored twice", k)
		}
		seen[k] = true
	}
}
