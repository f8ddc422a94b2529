package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/silo-run/silo/store"
)

// FuzzVerifyChain feeds arbitrary audit records to the chain check: it
// never panics, and it accepts a chain only if every entry's hash is the one
// ChainHash computes from its content and its predecessor.
func FuzzVerifyChain(f *testing.F) {
	good := chain(3)
	b, _ := json.Marshal(good)
	f.Add(b)
	f.Add([]byte(`[{"seq":1,"prev":"","hash":"00"}]`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var es []store.AuditEntry
		if json.Unmarshal(data, &es) != nil {
			return
		}
		n, err := store.VerifyChain("", 0, es)
		if err != nil {
			return
		}
		if n != len(es) {
			t.Fatalf("accepted %d of %d entries without an error", n, len(es))
		}
		prev := ""
		for i, e := range es {
			if e.Seq != int64(i+1) || e.Prev != prev || e.Hash != store.ChainHash(prev, e.Seq, e.Event) {
				t.Fatalf("accepted a broken chain at entry %d", i+1)
			}
			prev = e.Hash
		}
	})
}

func chain(n int) []store.AuditEntry {
	var es []store.AuditEntry
	prev := ""
	for i := 1; i <= n; i++ {
		ev := store.CanonicalEvent(store.AuditEvent{Time: time.Unix(int64(i), 0), Actor: "test", Action: "tenant.create"})
		h := store.ChainHash(prev, int64(i), ev)
		es = append(es, store.AuditEntry{Seq: int64(i), Event: ev, Prev: prev, Hash: h})
		prev = h
	}
	return es
}

// TestVerifyChainDetectsTampering: the untouched chain verifies (the must);
// an edited, dropped, reordered or duplicated entry does not (the must-nots).
func TestVerifyChainDetectsTampering(t *testing.T) {
	if _, err := store.VerifyChain("", 0, chain(4)); err != nil {
		t.Fatalf("untouched chain: %v", err)
	}
	for name, tamper := range map[string]func([]store.AuditEntry) []store.AuditEntry{
		"edit":      func(es []store.AuditEntry) []store.AuditEntry { es[1].Event.Actor = "mallory"; return es },
		"delete":    func(es []store.AuditEntry) []store.AuditEntry { return append(es[:1], es[2:]...) },
		"reorder":   func(es []store.AuditEntry) []store.AuditEntry { es[1], es[2] = es[2], es[1]; return es },
		"duplicate": func(es []store.AuditEntry) []store.AuditEntry { return append(es[:2], es[1:]...) },
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := store.VerifyChain("", 0, tamper(chain(4))); err == nil {
				t.Fatal("tampered chain verified")
			}
		})
	}
}

// TestVerifyChainChecksTheLastEntry: the last entry is checked like every
// other. Nothing follows it whose link would break, so an edit of it shows
// only in its own hash.
func TestVerifyChainChecksTheLastEntry(t *testing.T) {
	if n, err := store.VerifyChain("", 0, chain(4)); err != nil || n != 4 {
		t.Fatalf("untouched chain: %d %v", n, err)
	}
	for name, tamper := range map[string]func(e *store.AuditEntry){
		"edit its event":  func(e *store.AuditEntry) { e.Event.Actor = "mallory" },
		"edit its detail": func(e *store.AuditEntry) { e.Event.Detail = json.RawMessage(`{"n":1}`) },
		"edit its hash":   func(e *store.AuditEntry) { e.Hash = store.ChainHash("", 4, e.Event) },
		"edit its link":   func(e *store.AuditEntry) { e.Prev = "00" },
		"edit its seq":    func(e *store.AuditEntry) { e.Seq = 5 },
	} {
		t.Run(name, func(t *testing.T) {
			es := chain(4)
			tamper(&es[3])
			n, err := store.VerifyChain("", 0, es)
			if err == nil {
				t.Fatal("a chain with its last entry edited verified")
			}
			if n != 3 {
				t.Errorf("got %d entries checked before the problem, want 3", n)
			}
		})
	}
	// A one-entry chain: its only entry is the last.
	es := chain(1)
	es[0].Event.Action = "tenant.delete"
	if _, err := store.VerifyChain("", 0, es); err == nil {
		t.Error("a one-entry chain with its entry edited verified")
	}
}
