package postgres

import (
	"encoding/json"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// AppendAudit chains e to the head of the log. It locks the single head row,
// so concurrent appends (from any server) serialize on it; under
// SERIALIZABLE the loser fails to serialize and Update runs it again on the
// new head.
func (t *tx) AppendAudit(e store.AuditEvent) (store.AuditEntry, error) {
	op := "append audit " + e.Action
	if err := t.writable(op); err != nil {
		return store.AuditEntry{}, err
	}
	e.Actor = store.ActorOf(t.ctx, e.Actor)
	e, err := store.PrepareAuditEvent(e, time.Now())
	if err != nil {
		return store.AuditEntry{}, err
	}
	var headSeq int64
	var prev string
	if err := t.queryRow(`SELECT seq, hash FROM audit_head WHERE id = 1 FOR UPDATE`).Scan(&headSeq, &prev); err != nil {
		return store.AuditEntry{}, t.err(op, err)
	}
	ent := store.AuditEntry{Seq: headSeq + 1, Event: e, Prev: prev}
	ent.Hash = store.ChainHash(prev, ent.Seq, e)
	var detail *string
	if len(e.Detail) > 0 {
		d := string(e.Detail)
		detail = &d
	}
	if _, err := t.exec(op, `INSERT INTO audit (seq, time, actor, action, account, detail, prev, hash) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		ent.Seq, e.Time, e.Actor, e.Action, string(e.Account), detail, ent.Prev, ent.Hash); err != nil {
		return store.AuditEntry{}, err
	}
	if _, err := t.exec(op, `UPDATE audit_head SET seq = $1, hash = $2 WHERE id = 1`, ent.Seq, ent.Hash); err != nil {
		return store.AuditEntry{}, err
	}
	return ent, nil
}

func (t *tx) Audit(after int64, limit int) ([]store.AuditEntry, error) {
	q := `SELECT seq, time, actor, action, account, detail, prev, hash FROM audit WHERE seq > $1 ORDER BY seq`
	args := []any{after}
	if limit > 0 {
		q += " LIMIT $2"
		args = append(args, limit)
	}
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return nil, t.err("read audit", err)
	}
	defer rows.Close()
	var out []store.AuditEntry
	for rows.Next() {
		var ent store.AuditEntry
		var account string
		var detail *string
		if err := rows.Scan(&ent.Seq, &ent.Event.Time, &ent.Event.Actor, &ent.Event.Action, &account, &detail, &ent.Prev, &ent.Hash); err != nil {
			return nil, t.err("read audit", err)
		}
		ent.Event.Time = ent.Event.Time.UTC()
		ent.Event.Account = silo.AccountID(account)
		if detail != nil && *detail != "" {
			ent.Event.Detail = json.RawMessage(*detail)
		}
		out = append(out, ent)
	}
	if err := rows.Err(); err != nil {
		return nil, t.err("read audit", err)
	}
	return out, nil
}
