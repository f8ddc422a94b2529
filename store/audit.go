package store

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// ChainHash returns the hash of the audit entry with sequence number seq,
// event e and previous hash prev. Every Store computes entries with it, and
// VerifyChain checks them with it.
func ChainHash(prev string, seq int64, e AuditEvent) string {
	ev, _ := json.Marshal(canonicalEvent(e))
	h := sha256.New()
	h.Write([]byte(prev))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(seq))
	h.Write(n[:])
	h.Write(ev)
	return hex.EncodeToString(h.Sum(nil))
}

// canonicalEvent normalizes an event so that its JSON is the same after a
// round trip through any store (UTC, microsecond time; compacted detail).
func canonicalEvent(e AuditEvent) AuditEvent {
	e.Time = e.Time.UTC().Truncate(1000)
	if len(e.Detail) > 0 {
		var v any
		if json.Unmarshal(e.Detail, &v) == nil {
			e.Detail, _ = json.Marshal(v)
		}
	}
	return e
}

// CanonicalEvent is the form in which stores must persist an event so that
// its hash verifies after reading it back.
func CanonicalEvent(e AuditEvent) AuditEvent { return canonicalEvent(e) }

// VerifyChain checks that entries form an unbroken chain starting after the
// entry with sequence number after whose hash is prev ("" and 0 for the
// start of the log). It returns the number of entries checked and the first
// problem found: an edited entry, a gap, a reordering or a duplicate.
func VerifyChain(prev string, after int64, entries []AuditEntry) (int, error) {
	for i, e := range entries {
		want := after + int64(i) + 1
		if e.Seq != want {
			return i, fmt.Errorf("audit entry %d: found sequence %d where %d was expected (entries deleted, duplicated or reordered)", want, e.Seq, want)
		}
		if e.Prev != prev {
			return i, fmt.Errorf("audit entry %d: its link to the previous entry is broken (an earlier entry was edited, deleted or reordered)", e.Seq)
		}
		if h := ChainHash(prev, e.Seq, e.Event); h != e.Hash {
			return i, fmt.Errorf("audit entry %d: content does not match its hash (the entry was edited)", e.Seq)
		}
		prev = e.Hash
	}
	return len(entries), nil
}

type actorKey struct{}

// WithActor returns ctx carrying who acts: the API caller, a console
// session, one of the platform's own loops. Every audit event appended in a
// transaction run with that context (View or Update) records actor in
// place of the event's own Actor, which then only names the process's
// default (for instance cli:USER). An empty actor leaves ctx as it is.
func WithActor(ctx context.Context, actor string) context.Context {
	if actor == "" {
		return ctx
	}
	return context.WithValue(ctx, actorKey{}, actor)
}

// ActorOf returns the actor ctx carries (WithActor), or def.
func ActorOf(ctx context.Context, def string) string {
	if ctx != nil {
		if a, ok := ctx.Value(actorKey{}).(string); ok {
			return a
		}
	}
	return def
}
