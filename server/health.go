package server

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// The store check of GET /v1/health: how long it may take, and how long
// its answer is reused, so that however often load balancers ask, the
// store is read at most once a second per server.
const (
	healthTimeout = 2 * time.Second
	healthTTL     = time.Second
)

// Health is the answer to GET /v1/health: status "ok" (200), or
// "unavailable" (503) with the reason the server cannot serve, also given
// as the API's error (code unavailable) for clients that read errors so.
type Health struct {
	Status string       `json:"status"`
	Reason string       `json:"reason,omitempty"`
	Error  *HealthError `json:"error,omitempty"`
}

// HealthError is the error of an unavailable Health, shaped as ErrorBody's.
type HealthError struct {
	Code    silo.Code `json:"code"`
	Message string    `json:"message"`
}

// healthCheck holds the last store check. Its mutex is held during a
// check, so that concurrent health requests wait for one check rather
// than each reading the store.
type healthCheck struct {
	mu  sync.Mutex
	at  time.Time // when err was found; zero before the first check
	err error
}

// health answers GET /v1/health.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	if err := s.storeHealth(r.Context()); err != nil {
		reason := healthReason(err)
		writeJSON(w, http.StatusServiceUnavailable, Health{Status: "unavailable", Reason: reason, Error: &HealthError{Code: silo.CodeUnavailable, Message: reason}})
		return
	}
	writeJSON(w, http.StatusOK, Health{Status: "ok"})
}

// storeHealth reads one account from the store, within healthTimeout, or
// returns what the last such read found if it was less than healthTTL
// ago (by Config.Now).
func (s *Server) storeHealth(ctx context.Context) error {
	h := &s.healthCheck
	h.mu.Lock()
	defer h.mu.Unlock()
	if now := s.cfg.Now(); !h.at.IsZero() && !now.Before(h.at) && now.Sub(h.at) < healthTTL {
		return h.err
	}
	// Not the client's context: a load balancer that gives up must not
	// leave the cached answer saying the store failed.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), healthTimeout)
	defer cancel()
	err := s.cfg.Store.View(ctx, func(tx store.Tx) error {
		_, err := tx.Accounts(store.Filter{Limit: 1})
		return err
	})
	if err != nil {
		s.cfg.Logger.Warn("health check: the store cannot be read", "err", silo.ForLog(err))
	}
	h.at, h.err = s.cfg.Now(), err
	return err
}

// healthReason is the reason a failed store check gives a client: the
// store's own message where it has one (the database cannot be reached,
// say), one sentence otherwise; never a driver's text.
func healthReason(err error) string {
	switch {
	case silo.ErrorCode(err) == silo.CodeUnavailable:
		return silo.UserMessage(err)
	case errors.Is(err, context.DeadlineExceeded):
		return fmt.Sprintf("the control-plane database did not answer within %s; try again shortly", healthTimeout)
	}
	return "the control-plane database cannot be read; see the server log"
}
