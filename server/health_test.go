package server_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/server"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres"
	"github.com/silo-run/silo/store/postgres/pgtest"
)

// clock is a settable clock for Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// getHealth answers GET /v1/health of f.
func getHealth(t *testing.T, f *fixture) (int, server.Health) {
	t.Helper()
	resp, err := http.Get(f.url + "/v1/health")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h server.Health
	if err := json.NewDecoder(resp.Body).Decode(&h); err != nil {
		t.Fatalf("health body: %v", err)
	}
	return resp.StatusCode, h
}

// A server whose PostgreSQL database is dropped under it says so: its
// health check answers 503 with the reason (once its last answer, at most
// a second old, has expired), and the API answers 503 unavailable with
// the one sentence for it, not 500 internal. When the database is created
// again, empty, both say the database no longer holds the control plane.
// The twin: while the database is there, health is 200 and the API
// answers.
func TestHealthFollowsTheStore(t *testing.T) {
	dsn, name := pgtest.FreshDatabase(t)
	st, err := postgres.Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	// A write, so that silo's tables exist (Open creates them only then).
	if err := st.Update(context.Background(), func(tx store.Tx) error { return tx.PutSetting("health-test", "1") }); err != nil {
		t.Fatal(err)
	}
	clk := &clock{t: time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)}
	f := startOn(t, t.TempDir(), st, clk.Now)
	ctx := context.Background()

	check := func(t *testing.T, wantStatus int, wantReason string) {
		t.Helper()
		status, h := getHealth(t, f)
		if status != wantStatus || !strings.Contains(h.Reason, wantReason) {
			t.Errorf("health: %d %+v; want %d with reason %q", status, h, wantStatus, wantReason)
		}
		if wantStatus == http.StatusOK {
			if h.Status != "ok" || h.Error != nil {
				t.Errorf("health: %+v, want status ok and no error", h)
			}
			if _, err := f.client.Accounts(ctx, store.Filter{}); err != nil {
				t.Errorf("accounts: %v, want an answer", err)
			}
			return
		}
		if h.Status != "unavailable" || h.Error == nil || h.Error.Code != silo.CodeUnavailable {
			t.Errorf("health: %+v, want status unavailable with error code unavailable", h)
		}
		if err := f.client.Health(ctx); silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(silo.UserMessage(err), wantReason) {
			t.Errorf("client health: %v (code %s), want unavailable: %q", err, silo.ErrorCode(err), wantReason)
		}
		_, err := f.client.Accounts(ctx, store.Filter{})
		if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(silo.UserMessage(err), wantReason) {
			t.Errorf("accounts: %v (code %s), want unavailable: %q", err, silo.ErrorCode(err), wantReason)
		}
	}

	t.Run("database there", func(t *testing.T) { check(t, http.StatusOK, "") })

	pgtest.DropDatabase(t, name)
	t.Run("answer reused for a second", func(t *testing.T) {
		clk.Advance(healthTTL - time.Millisecond)
		if status, h := getHealth(t, f); status != http.StatusOK {
			t.Errorf("health %s after the last check: %d %+v; want the last answer, 200", healthTTL-time.Millisecond, status, h)
		}
	})
	clk.Advance(time.Millisecond)
	t.Run("database dropped", func(t *testing.T) {
		check(t, http.StatusServiceUnavailable, "the control-plane database cannot be reached; try again shortly")
	})

	pgtest.Exec(t, pgtest.DSN(t), "CREATE DATABASE "+name)
	clk.Advance(healthTTL)
	t.Run("database created again, empty", func(t *testing.T) {
		check(t, http.StatusServiceUnavailable, "no longer holds silo's control plane")
	})
}

// healthTTL is how long the server reuses a health check's answer.
const healthTTL = time.Second
