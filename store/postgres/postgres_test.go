package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/store/postgres/pgtest"
	"github.com/silo-run/silo/store/storetest"
)

func openFresh(t testing.TB) *Store {
	t.Helper()
	s, err := Open(context.Background(), pgtest.Fresh(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestStore(t *testing.T) {
	pgtest.DSN(t)
	storetest.Run(t, func(t *testing.T) store.Store { return openFresh(t) })
}

// TestTwoServersOneChain runs two Stores on one schema, as two silo servers
// sharing a database would, appending audit entries concurrently.
func TestTwoServersOneChain(t *testing.T) {
	dsn := pgtest.Fresh(t)
	var stores []*Store
	for range 2 {
		s, err := Open(context.Background(), dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	const perWorker, workersPerStore = 12, 3
	var wg sync.WaitGroup
	errs := make(chan error, len(stores)*workersPerStore)
	for si, s := range stores {
		for w := range workersPerStore {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range perWorker {
					err := s.Update(context.Background(), func(tx store.Tx) error {
						_, err := tx.AppendAudit(store.AuditEvent{Actor: fmt.Sprintf("server:%d", si), Action: "test.append", Detail: json.RawMessage(fmt.Sprintf(`{"w":%d,"i":%d}`, w, i))})
						return err
					})
					if err != nil {
						errs <- err
						return
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("append: %v", err)
	}
	want := len(stores) * workersPerStore * perWorker
	for i, s := range stores { // both servers read the same chain
		var es []store.AuditEntry
		if err := s.View(context.Background(), func(tx store.Tx) error {
			var err error
			es, err = tx.Audit(0, 0)
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if n, err := store.VerifyChain("", 0, es); err != nil || n != want {
			t.Errorf("server %d: VerifyChain = %d, %v; want %d, nil", i, n, err, want)
		}
	}
}

// TestTwoServersOneAccount has two Stores race to create the same accounts:
// each ID is created exactly once, and (the twin) distinct IDs all succeed.
func TestTwoServersOneAccount(t *testing.T) {
	dsn := pgtest.Fresh(t)
	a, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	const n = 20
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := map[string]int{}
	for si, s := range []*Store{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range n {
				for _, id := range []string{fmt.Sprintf("shared-%d", i), fmt.Sprintf("own-%d-%d", si, i)} {
					err := s.Update(context.Background(), func(tx store.Tx) error {
						return tx.CreateAccount(silo.Account{ID: silo.AccountID(id), Kind: silo.KindTenant, State: silo.StateActive})
					})
					mu.Lock()
					switch {
					case err == nil:
						wins[id]++
					case !errors.Is(err, silo.ErrConflict):
						t.Errorf("create %s: %v", id, err)
					}
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	for i := range n {
		if w := wins[fmt.Sprintf("shared-%d", i)]; w != 1 {
			t.Errorf("shared-%d created %d times, want 1", i, w)
		}
		for si := range 2 {
			if w := wins[fmt.Sprintf("own-%d-%d", si, i)]; w != 1 {
				t.Errorf("own-%d-%d created %d times, want 1", si, i, w)
			}
		}
	}
}

// TestConcurrentOpen starts several Stores on a new schema at once: the
// advisory lock lets exactly one apply the schema and the rest find it.
func TestConcurrentOpen(t *testing.T) {
	dsn := pgtest.Fresh(t)
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := Open(context.Background(), dsn)
			if err != nil {
				errs <- err
				return
			}
			s.Close()
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("concurrent Open: %v", err)
	}
}

func TestOpenErrors(t *testing.T) {
	good := pgtest.Fresh(t)
	tests := []struct {
		name, dsn string
		want      silo.Code // "" means it opens
	}{
		{"good", good, ""},
		{"unparsable", "postgres://user@host:notaport/db", silo.CodeInvalid},
		{"nobody listening", "postgres://postgres@127.0.0.1:1/test?sslmode=disable&connect_timeout=2", silo.CodeUnavailable},
		{"missing schema", pgtest.WithSearchPath(t, pgtest.DSN(t), "silo_no_such_schema"), silo.CodeInvalid},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(context.Background(), tc.dsn)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				s.Close()
				return
			}
			if err == nil {
				s.Close()
				t.Fatal("Open: got no error")
			}
			if got := silo.ErrorCode(err); got != tc.want {
				t.Errorf("got %v (code %s), want code %s", err, got, tc.want)
			}
			t.Logf("error: %v", err)
		})
	}
}

// TestSerializationRetry interleaves two transactions so that the first
// must fail to serialize: with retries Update runs fn again and succeeds
// on the new value; with retries used up (the must-not twin) it reports
// CodeUnavailable and keeps nothing.
func TestSerializationRetry(t *testing.T) {
	for _, attempts := range []int{60, 1} {
		t.Run(fmt.Sprintf("attempts=%d", attempts), func(t *testing.T) {
			s := openFresh(t)
			s.maxAttempts = attempts
			ctx := context.Background()
			if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutSetting("v", "0") }); err != nil {
				t.Fatal(err)
			}
			read, proceed := make(chan struct{}), make(chan struct{})
			calls := 0
			done := make(chan error, 1)
			go func() {
				done <- s.Update(ctx, func(tx store.Tx) error {
					calls++
					v, err := tx.Setting("v")
					if err != nil {
						return err
					}
					if calls == 1 {
						close(read)
						<-proceed
					}
					return tx.PutSetting("v", v+"a")
				})
			}()
			<-read
			if err := s.Update(ctx, func(tx store.Tx) error { return tx.PutSetting("v", "x") }); err != nil {
				t.Fatal(err)
			}
			close(proceed)
			err := <-done
			var got string
			if err := s.View(ctx, func(tx store.Tx) error { var err error; got, err = tx.Setting("v"); return err }); err != nil {
				t.Fatal(err)
			}
			if attempts > 1 {
				if err != nil || calls != 2 || got != "xa" {
					t.Errorf("got err %v, %d calls, value %q; want nil, 2, %q", err, calls, got, "xa")
				}
				return
			}
			if silo.ErrorCode(err) != silo.CodeUnavailable || calls != 1 || got != "x" {
				t.Errorf("got err %v (code %s), %d calls, value %q; want unavailable, 1, %q", err, silo.ErrorCode(err), calls, got, "x")
			}
		})
	}
}

// legacySchema writes, on a fresh schema, what a silo of schema 2 held
// (storetest.LegacyData), and returns the DSN.
func legacySchema(t *testing.T) string {
	t.Helper()
	dsn := pgtest.Fresh(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	legacy := storetest.LegacyData()
	type stmt struct {
		q    string
		args []any
	}
	stmts := []stmt{{`CREATE TABLE silo_schema (version int NOT NULL)`, nil}, {migrations[0], nil}, {migrations[1], nil}, {`INSERT INTO silo_schema (version) VALUES (2)`, nil}}
	for _, r := range legacy.Releases {
		stmts = append(stmts, stmt{`INSERT INTO releases (id, created) VALUES ($1, $2)`, []any{r.ID, r.Created}})
	}
	for n, v := range legacy.Settings {
		stmts = append(stmts, stmt{`INSERT INTO settings (name, value) VALUES ($1, $2)`, []any{n, v}})
	}
	for _, in := range legacy.Intents {
		stmts = append(stmts, stmt{`INSERT INTO intents (key, account, action, state, error, created, updated) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			[]any{in.Key, string(in.Account), in.Action, string(in.State), in.Error, in.Created, in.Updated}})
	}
	for _, st := range stmts {
		if _, err := conn.Exec(ctx, st.q, st.args...); err != nil {
			t.Fatalf("write the schema 2 tables: %v", err)
		}
	}
	return dsn
}

// TestUpgradeFromSchema2: a schema written by a silo that kept the current
// release and rollouts in settings and rollout steps in the journal opens
// with them as records (storetest.CheckUpgraded).
func TestUpgradeFromSchema2(t *testing.T) {
	s, err := Open(context.Background(), legacySchema(t))
	if err != nil {
		t.Fatalf("Open of a schema 2 database: %v", err)
	}
	defer s.Close()
	storetest.CheckUpgraded(t, s)
}

// TestNewerSchemaRefused: a schema of a newer silo is refused with one
// clear error and left as it is; the same schema at this silo's version
// opens (must twin).
func TestNewerSchemaRefused(t *testing.T) {
	dsn := pgtest.Fresh(t)
	s, err := Open(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Update(context.Background(), func(tx store.Tx) error { return tx.PutSetting("x", "1") }); err != nil {
		t.Fatal(err) // the first write creates the tables
	}
	s.Close()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `UPDATE silo_schema SET version = $1`, len(migrations)+1); err != nil {
		t.Fatal(err)
	}
	_, err = Open(ctx, dsn)
	if silo.ErrorCode(err) != silo.CodeUnavailable || !strings.Contains(silo.UserMessage(err), "run a newer silo") {
		t.Errorf("got %v, want an unavailable error asking for a newer silo", err)
	}
	var v int
	if err := conn.QueryRow(ctx, `SELECT version FROM silo_schema`).Scan(&v); err != nil || v != len(migrations)+1 {
		t.Errorf("schema version after the refusal: %d, %v; want it left at %d", v, err, len(migrations)+1)
	}
	if _, err := conn.Exec(ctx, `UPDATE silo_schema SET version = $1`, len(migrations)); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open at this silo's version: %v", err)
	}
	s.Close()
}

// silo's tables are created by the first write that commits, in its own
// transaction: Open, reads and a write that fails leave an empty schema
// empty (a refused command changes nothing), reads see an empty store, and
// the tables come with the first write that succeeds (the must twin),
// once however many stores race to make it.
func TestTablesComeWithTheFirstWrite(t *testing.T) {
	dsn := pgtest.Fresh(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tables := func() int {
		t.Helper()
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var as []silo.Account
	if err := s.View(ctx, func(tx store.Tx) error {
		var err error
		as, err = tx.Accounts(store.Filter{})
		return err
	}); err != nil || len(as) != 0 {
		t.Fatalf("View on an empty schema: %v, %v; want no accounts and no error", as, err)
	}
	refused := errors.New("refused")
	if err := s.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutSetting("x", "1"); err != nil {
			return err
		}
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("a failing Update: got %v, want its error", err)
	}
	if err := s.Update(ctx, func(tx store.Tx) error {
		_, _, err := tx.PruneUsage(time.Now(), time.Now()) // changes no row
		return err
	}); err != nil {
		t.Fatalf("an Update that changes nothing: %v", err)
	}
	if n := tables(); n != 0 {
		t.Fatalf("after Open, a View, a failed Update and one that changed nothing the schema holds %d tables, want none", n)
	}

	// Several stores write at once: one creates the tables, every write
	// lands.
	const writers = 4
	errs := make(chan error, writers)
	for i := range writers {
		go func() {
			w, err := Open(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			defer w.Close()
			errs <- w.Update(ctx, func(tx store.Tx) error { return tx.PutSetting(fmt.Sprintf("w%d", i), "1") })
		}()
	}
	for range writers {
		if err := <-errs; err != nil {
			t.Errorf("concurrent first write: %v", err)
		}
	}
	if n := tables(); n == 0 {
		t.Fatal("after writes that succeeded the schema holds no tables")
	}
	var settings map[string]string
	if err := s.View(ctx, func(tx store.Tx) error {
		var err error
		settings, err = tx.(store.Lister).Settings()
		return err
	}); err != nil || len(settings) != writers || settings["x"] != "" {
		t.Errorf("settings after the writes: %v, %v; want w0..w%d and not the failed x", settings, err, writers-1)
	}
}

// TestUpgradeMarksLegacyProbes: a schema of version 5, written by a silo
// that did not mark the releases silo verify --probe builds, opens with
// exactly the probe's releases marked (storetest.CheckLegacyProbes).
func TestUpgradeMarksLegacyProbes(t *testing.T) {
	dsn := pgtest.Fresh(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	storetest.LegacyProbeData(t, s)
	s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range append(schema6, `ALTER TABLE releases DROP COLUMN probe`, `UPDATE silo_schema SET version = 5`) {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("take the schema back to version 5: %v", err)
		}
	}
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open of a version 5 schema: %v", err)
	}
	defer s.Close()
	storetest.CheckLegacyProbes(t, s)
}

// schema8 takes a schema of version 9 back to version 8: releases without
// origins.
var schema8 = []string{
	`ALTER TABLE releases DROP COLUMN origin`,
	`ALTER TABLE releases DROP COLUMN origin_from`,
	`UPDATE silo_schema SET version = 8`,
}

// TestUpgradeKeepsReleasesUnrecorded: a schema of version 8, written by a
// silo that did not record where releases came from, opens with its
// releases of no origin, shippable, and upgraded by a deploy
// (storetest.CheckOriginsUpgraded).
func TestUpgradeKeepsReleasesUnrecorded(t *testing.T) {
	dsn := pgtest.Fresh(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	storetest.LegacyOriginData(t, s)
	s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range schema8 {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("take the schema back to version 8: %v", err)
		}
	}
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open of a version 8 schema: %v", err)
	}
	defer s.Close()
	storetest.CheckOriginsUpgraded(t, s)
}

// schema6 takes a schema of version 9 back to version 6: no release
// origins, no published request metrics, usage and stored bytes kept per
// ID, no purged accounts. Each ID must have one account's rows only.
var schema6 = append(schema8[:2:2],
	`DROP TABLE release_metrics`,
	`DROP TABLE purged_accounts`,
	`ALTER TABLE usage DROP CONSTRAINT usage_pkey`,
	`ALTER TABLE usage DROP COLUMN created`,
	`ALTER TABLE usage ADD PRIMARY KEY (day, account, function)`,
	`ALTER TABLE stored_usage DROP CONSTRAINT stored_usage_pkey`,
	`ALTER TABLE stored_usage DROP COLUMN created`,
	`ALTER TABLE stored_usage ADD PRIMARY KEY (day, account)`,
	`UPDATE silo_schema SET version = 6`,
)

// TestUpgradeKeepsUsagePerAccount: a schema of version 6, which kept usage
// per ID, opens with each row under the account registered with its ID
// (storetest.CheckUsageUpgraded).
func TestUpgradeKeepsUsagePerAccount(t *testing.T) {
	dsn := pgtest.Fresh(t)
	ctx := context.Background()
	s, err := Open(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	storetest.UsageByIDData(t, s)
	s.Close()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range schema6 {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("take the schema back to version 6: %v", err)
		}
	}
	s, err = Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open of a version 6 schema: %v", err)
	}
	defer s.Close()
	storetest.CheckUsageUpgraded(t, s)
}
