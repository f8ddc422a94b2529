package sqlite

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
	const q = `INSERT INTO release_metrics (account, release, incarnation, requests, errors, latency, published) VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (account, release, incarnation) DO UPDATE SET requests = excluded.requests, errors = excluded.errors, latency = excluded.latency, published = excluded.published`
	if _, err := t.exec(op, q, "", "", incarnation, 0, 0, "", micros(at)); err != nil { // the heartbeat
		return err
	}
	for _, m := range ms {
		if _, err := t.exec(op, q, m.Account, m.Release, incarnation, int64(m.Requests), int64(m.Errors), store.EncodeLatency(m.Latency), micros(at)); err != nil {
			return err
		}
	}
	return nil
}

func (t *tx) ReleaseMetrics(acct silo.AccountID, release string) ([]store.ReleaseMetrics, error) {
	if acct == "" || release == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "the metrics of an account under a release need both (got %q, %q)", acct, release)
	}
	return t.metrics("read the request metrics of "+string(acct)+" under "+release,
		`SELECT account, release, incarnation, requests, errors, latency, published FROM release_metrics WHERE account = ? AND release = ? ORDER BY incarnation`,
		acct, release)
}

func (t *tx) PublishedMetrics() ([]store.ReleaseMetrics, error) {
	return t.metrics("list published request metrics",
		`SELECT account, release, incarnation, requests, errors, latency, published FROM release_metrics ORDER BY incarnation, account, release`)
}

func (t *tx) metrics(op, q string, args ...any) ([]store.ReleaseMetrics, error) {
	rows, err := t.tx.QueryContext(t.ctx, q, args...)
	if err != nil {
		return nil, t.s.dbErr(op, err)
	}
	defer rows.Close()
	var out []store.ReleaseMetrics
	for rows.Next() {
		var m store.ReleaseMetrics
		var lat string
		var reqs, errs, published int64
		if err := rows.Scan(&m.Account, &m.Release, &m.Incarnation, &reqs, &errs, &lat, &published); err != nil {
			return nil, t.s.dbErr(op, err)
		}
		if m.Latency, err = store.DecodeLatency(lat); err != nil {
			return nil, silo.Errorf(silo.CodeInternal, "%s: %v", op, err)
		}
		m.Requests, m.Errors, m.Published = uint64(reqs), uint64(errs), fromMicros(published)
		out = append(out, m)
	}
	return out, t.s.dbErr(op, rows.Err())
}

func (t *tx) DropMetrics(before time.Time) (int64, error) {
	const op = "drop the request metrics of servers no longer heard from"
	if err := t.writable(op); err != nil {
		return 0, err
	}
	res, err := t.exec(op, `DELETE FROM release_metrics
WHERE release NOT IN (SELECT release FROM rollouts WHERE active = 1)
AND (NOT EXISTS (SELECT 1 FROM release_metrics h WHERE h.account = '' AND h.release = '' AND h.incarnation = release_metrics.incarnation AND h.published >= ?)
	OR (account <> '' AND (account NOT IN (SELECT id FROM accounts WHERE state <> ?)
		OR release NOT IN (SELECT release FROM accounts WHERE state <> ?))))`, micros(before), silo.StateDeleted, silo.StateDeleted)
	if err != nil {
		return 0, err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, t.s.dbErr(op, err)
	}
	return n, nil
}
