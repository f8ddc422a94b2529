package postgres

import (
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

func (t *tx) PublishMetrics(incarnation string, at time.Time, ms []store.ReleaseMetrics) error {
	const op = "publish request metrics"
	if err := t.writable(op); err != nil {
		return err
	}
	if err := store.CheckMetrics(incarnation, ms); err != nil {
		return err
	}
	// One statement for all of them, the heartbeat ('', '') included.
	accts, rels, reqs, errs, lats := []string{""}, []string{""}, []int64{0}, []int64{0}, []string{""}
	for _, m := range ms {
		accts, rels = append(accts, string(m.Account)), append(rels, m.Release)
		reqs, errs = append(reqs, int64(m.Requests)), append(errs, int64(m.Errors))
		lats = append(lats, store.EncodeLatency(m.Latency))
	}
	_, err := t.exec(op, `INSERT INTO release_metrics (account, release, incarnation, requests, errors, latency, published)
SELECT a, r, $1, q, e, l, $2 FROM unnest($3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[]) AS m(a, r, q, e, l)
ON CONFLICT (account, release, incarnation) DO UPDATE SET requests = excluded.requests, errors = excluded.errors, latency = excluded.latency, published = excluded.published`,
		incarnation, ts(at), accts, rels, reqs, errs, lats)
	return err
}

func (t *tx) ReleaseMetrics(acct silo.AccountID, release string) ([]store.ReleaseMetrics, error) {
	if acct == "" || release == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "the metrics of an account under a release need both (got %q, %q)", acct, release)
	}
	return t.metrics("read the request metrics of "+string(acct)+" under "+release,
		`SELECT account, release, incarnation, requests, errors, latency, published FROM release_metrics WHERE account = $1 AND release = $2 ORDER BY incarnation`,
		string(acct), release)
}

func (t *tx) PublishedMetrics() ([]store.ReleaseMetrics, error) {
	return t.metrics("list published request metrics",
		`SELECT account, release, incarnation, requests, errors, latency, published FROM release_metrics ORDER BY incarnation, account, release`)
}

func (t *tx) metrics(op, q string, args ...any) ([]store.ReleaseMetrics, error) {
	rows, err := t.tx.Query(t.ctx, q, args...)
	if err != nil {
		return nil, t.err(op, err)
	}
	defer rows.Close()
	var out []store.ReleaseMetrics
	for rows.Next() {
		var m store.ReleaseMetrics
		var acct, lat string
		var reqs, errs int64
		if err := rows.Scan(&acct, &m.Release, &m.Incarnation, &reqs, &errs, &lat, &m.Published); err != nil {
			return nil, t.err(op, err)
		}
		if m.Latency, err = store.DecodeLatency(lat); err != nil {
			return nil, silo.Errorf(silo.CodeInternal, "%s: %v", op, err)
		}
		m.Account, m.Requests, m.Errors, m.Published = silo.AccountID(acct), uint64(reqs), uint64(errs), m.Published.UTC()
		out = append(out, m)
	}
	return out, t.err(op, rows.Err())
}

func (t *tx) DropMetrics(before time.Time) (int64, error) {
	const op = "drop the request metrics of servers no longer heard from"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	tag, err := t.exec(op, `DELETE FROM release_metrics m
WHERE m.release NOT IN (SELECT release FROM rollouts WHERE active)
AND (NOT EXISTS (SELECT 1 FROM release_metrics h WHERE h.account = '' AND h.release = '' AND h.incarnation = m.incarnation AND h.published >= $1)
	OR (m.account <> '' AND (m.account NOT IN (SELECT id FROM accounts WHERE state <> $2)
		OR m.release NOT IN (SELECT release FROM accounts WHERE state <> $2))))`, ts(before), string(silo.StateDeleted))
	if err != nil {
		return 0, err
	}
	return tag.RowsAffected(), nil
}
