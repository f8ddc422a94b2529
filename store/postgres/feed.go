package postgres

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/silo-run/silo/store"
)

var _ store.Feed = (*Store)(nil)

// channel is the LISTEN/NOTIFY channel of the store's change feed: one per
// schema, so installations sharing a database do not hear each other.
func (s *Store) channel() string { return "silo_changes:" + s.schema }

// Announce sends c on the store's channel with pg_notify, in a transaction
// of its own: when Announce returns, the notification is committed and
// every connected listener (Listen, in any process) will receive it.
//
// # Errors
//
// CodeUnavailable when PostgreSQL cannot be reached.
func (s *Store) Announce(ctx context.Context, c store.Change) error {
	payload, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("announce change: %w", err)
	}
	if _, err := s.pool.Exec(ctx, `SELECT pg_notify($1, $2)`, s.channel(), string(payload)); err != nil {
		return dbErr("announce change", err)
	}
	return nil
}

// Listen receives the store's change feed on a connection of its own (not
// one of the pool's) and calls fn for each change, in the order PostgreSQL
// delivers them. It calls fn with a store.ChangeResync Change once it
// listens, and again each time it listens again after a lost connection
// (retried every second), since notifications sent meanwhile are lost.
// It returns ctx's error once ctx is done. Payloads it cannot decode are
// delivered as a resync.
func (s *Store) Listen(ctx context.Context, fn func(store.Change)) error {
	cfg := s.pool.Config().ConnConfig.Copy()
	for {
		// listenOnce returns when ctx is done or the connection is lost
		// (its error says which; either way the loop knows from ctx).
		s.listenOnce(ctx, cfg, fn)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

func (s *Store) listenOnce(ctx context.Context, cfg *pgx.ConnConfig, fn func(store.Change)) error {
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return dbErr("connect change feed", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{s.channel()}.Sanitize()); err != nil {
		return dbErr("listen change feed", err)
	}
	fn(store.Change{What: store.ChangeResync})
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return dbErr("wait for change", err)
		}
		var c store.Change
		if json.Unmarshal([]byte(n.Payload), &c) != nil || c.What == "" {
			c = store.Change{What: store.ChangeResync}
		}
		fn(c)
	}
}
