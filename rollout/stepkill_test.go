package rollout_test

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// The small fleet of TestKillAtEveryStep: production, one canary tenant and
// three tenants in ring everyone, each ring one account at a time so that
// the order of step boundaries, and so what boundary N is, is the same in
// every run.
const (
	stepKillTenants = 4
	stepKillCanary  = 1
	stepKillOwner   = "stepkill-test"
)

func stepKillStack() string {
	src := replaceOnce(replaceOnce(fmtStack("", "0"), "      bake: 5m\n", ""),
		"      gates: {max_error_rate: 0.05, max_p99_increase: 0.5, min_requests: 100}\n", "")
	return replaceOnce(replaceOnce(src, "concurrency: 4", "concurrency: 1"), "concurrency: 8", "concurrency: 1")
}

// TestStepKillChild is the runner process of TestKillAtEveryStep: it
// recovers the journal and drives the active rollout, counting every step
// boundary of the engine (intents committed, each provider call, results
// committed) and of the runner (claims, applied, finished, ring phases,
// bakes, state changes), and SIGKILLs itself at boundary SILO_STEPKILL_AT.
// It prints the boundary it dies at, or the number of boundaries it went
// through when it finishes.
func TestStepKillChild(t *testing.T) {
	dir := os.Getenv("SILO_STEPKILL_DIR")
	if dir == "" {
		t.Skip("child process of TestKillAtEveryStep")
	}
	at, err := strconv.Atoi(os.Getenv("SILO_STEPKILL_AT"))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	n := 0
	step := func(point string, account silo.AccountID) {
		mu.Lock()
		defer mu.Unlock()
		n++
		if n == at {
			// Unbuffered: the line is out before the signal.
			fmt.Fprintf(os.Stderr, "stepkill-at: %d %s %s\n", n, point, account)
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {}
		}
	}
	e := newEnv(t, dir, opts{})
	e.eng = engine.New(engine.Config{Store: e.store, Provider: e.prov, Hook: func(s engine.Step) {
		step("engine."+s.Point, s.Account)
	}})
	run, err := rollout.New(rollout.Config{Store: e.store, Engine: e.eng, Provider: e.prov, Owner: stepKillOwner,
		Poll: 20 * time.Millisecond, Hook: func(ev rollout.Event) {
			step("runner."+ev.Point, ev.Account)
		}})
	if err != nil {
		t.Fatal(err)
	}
	driveActive(t, e.eng, run)
	mu.Lock()
	fmt.Fprintf(os.Stderr, "stepkill-total: %d\n", n)
	mu.Unlock()
}

// driveActive recovers the journal and runs active rollouts until none is.
func driveActive(t testing.TB, eng *engine.Engine, run *rollout.Runner) engine.RecoveryReport {
	t.Helper()
	ctx := context.Background()
	rep, err := eng.Recover(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for {
		r, err := run.Active(ctx)
		if errors.Is(err, silo.ErrNotFound) {
			return rep
		}
		if err != nil {
			t.Fatal(err)
		}
		if r.State != rollout.StateRunning {
			t.Fatalf("rollout %s is %s: %s", r.ID, r.State, r.Reason)
		}
		if err := run.Run(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKillAtEveryStep SIGKILLs the runner process of a small rollout at step
// boundary N, for N = 1, 2, 3, ... until a run finishes without reaching N,
// so that every boundary, in particular every "after the provider call,
// before the results commit", is a kill point. After each kill a new runner
// on the same directory recovers and finishes the rollout, and then: every
// account runs the target release with no drift, no resource is duplicated,
// the provider holds no account the registry does not, no intent is
// pending, the journal's sequence numbers have no gap, the audit chain
// verifies from its first entry, and each account's move to the target is
// audited exactly once.
func TestKillAtEveryStep(t *testing.T) {
	if os.Getenv("SILO_STEPKILL_DIR") != "" {
		t.Skip("in the child")
	}
	covered := map[string]int{} // boundary kind → kills there
	total := -1
	for at := 1; total < 0; at++ {
		if at > 1000 {
			t.Fatalf("the rollout still had not finished at boundary %d", at)
		}
		ok := t.Run(fmt.Sprintf("at=%d", at), func(t *testing.T) {
			kind, n := stepKillOnce(t, at)
			if n >= 0 {
				total = n
				if n >= at {
					t.Fatalf("the runner went through %d boundaries without being killed at %d", n, at)
				}
				return
			}
			covered[kind]++
		})
		if !ok {
			t.FailNow()
		}
	}
	kinds := make([]string, 0, len(covered))
	kills := 0
	for k, n := range covered {
		kinds = append(kinds, fmt.Sprintf("%s=%d", k, n))
		kills += n
	}
	sort.Strings(kinds)
	t.Logf("%d step boundaries, killed at each of them: %s", total, strings.Join(kinds, " "))
	if kills != total {
		t.Errorf("killed at %d boundaries of %d", kills, total)
	}
	// Must: every kind of boundary was a kill point, the one between a
	// provider call and its results commit once per tenant at least (the
	// change touches only tenants' functions: production's move to the
	// target is a release label and calls no provider).
	for _, k := range []string{"engine.journaled", "engine.provider", "engine.recorded",
		"runner.claimed", "runner.applied", "runner.finished", "runner.phase", "runner.state"} {
		if covered[k] == 0 {
			t.Errorf("no kill at a %s boundary", k)
		}
	}
	if covered["engine.provider"] < stepKillTenants {
		t.Errorf("%d kills after a provider call, want at least one per tenant (%d)", covered["engine.provider"], stepKillTenants)
	}
}

// stepKillOnce seeds a rollout in a fresh directory, runs a child runner
// that kills itself at boundary at, restarts a runner that finishes the
// rollout, and checks the result. It returns the kind of boundary the child
// died at, or, if the child finished, the number of boundaries it went
// through (else -1).
func stepKillOnce(t *testing.T, at int) (kind string, total int) {
	ctx := context.Background()
	dir := t.TempDir()
	e := newEnv(t, dir, opts{})
	src := stepKillStack()
	v1 := release(t, e, src, "sha256:1111")
	v2 := release(t, e, src, "sha256:2222")
	seed(t, e, v1, stepKillTenants, stepKillCanary)
	r, err := e.run.Start(ctx, v2.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.prov.Close()
	e.store.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestStepKillChild$", "-test.count=1")
	cmd.Env = append(os.Environ(), "SILO_STEPKILL_DIR="+dir, "SILO_STEPKILL_AT="+strconv.Itoa(at))
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	var acct string
	total = -1
	switch {
	case errors.As(err, &ee) && ee.Sys().(syscall.WaitStatus).Signaled():
		line := outputLine(out, "stepkill-at: ")
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != strconv.Itoa(at) {
			t.Fatalf("child killed without saying where (%q):\n%s", line, out)
		}
		kind = f[1]
		if len(f) > 2 {
			acct = f[2]
		}
		t.Logf("killed at %s", line)
	case err != nil:
		t.Fatalf("runner: %v\n%s", err, out)
	default:
		if total, err = strconv.Atoi(outputLine(out, "stepkill-total: ")); err != nil {
			t.Fatalf("child finished without a boundary count: %v\n%s", err, out)
		}
	}

	// Restart on the same directory, under the same owner name, as a
	// restarted server would.
	e = newEnv(t, dir, opts{owner: stepKillOwner, wall: true})
	rep := driveActive(t, e.eng, e.run)
	switch kind {
	case "engine.journaled":
		// Intents committed, provider not called: nothing to confirm.
		// Production's move is a release label and journals no change.
		if (rep.Pending == 0 && acct != string(silo.ProductionID)) || rep.Confirmed != 0 {
			t.Errorf("killed after the intents commit of %s, recovery found %+v, want pending intents and none confirmed", acct, rep)
		}
	case "engine.provider":
		// Provider called, results not committed: recovery confirms them.
		if rep.Pending == 0 || rep.Confirmed == 0 {
			t.Errorf("killed after a provider call, recovery found %+v, want pending intents confirmed", rep)
		}
	}
	got := get(t, e, r.ID)
	if got.State != rollout.StateSucceeded {
		t.Fatalf("rollout %s: %s (%s), want succeeded", r.ID, got.State, got.Reason)
	}
	for _, ring := range got.Rings {
		if ring.Failed != 0 {
			t.Errorf("ring %s: %d accounts failed", ring.Name, ring.Failed)
		}
	}
	for id, rel := range releases(t, e) {
		if rel != v2.ID {
			t.Errorf("%s on %s, want the target %s", id, rel, v2.ID)
		}
	}
	checkFleet(t, e, map[string]engine.Release{v2.ID: v2})
	checkJournal(t, e, dir, r.ID, v2.ID)
	return kind, total
}

func outputLine(out []byte, prefix string) string {
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if s, ok := strings.CutPrefix(sc.Text(), prefix); ok {
			return s
		}
	}
	return ""
}

// checkJournal checks that the intent journal's sequence numbers run 1..n
// with no gap and agree with the store's reading by key, that no intent is
// pending, that the audit log verifies as one chain from its first entry,
// that rollout id claimed every account's step once and finished it, and
// that every account's move to target is audited exactly once.
func checkJournal(t *testing.T, e *env, dir, id, target string) {
	t.Helper()
	ctx := context.Background()
	// The Store contract has no listing of finished intents: read the
	// journal table itself, read-only.
	db, err := sql.Open("sqlite", filepath.Join(dir, "state.db")+"?_pragma=query_only(1)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, "SELECT seq, key, state FROM intents ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	type row struct {
		seq        int64
		key, state string
	}
	var intents []row
	for rows.Next() {
		var r row
		if err := rows.Scan(&r.seq, &r.key, &r.state); err != nil {
			t.Fatal(err)
		}
		intents = append(intents, r)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	rows.Close()
	if len(intents) == 0 {
		t.Fatal("the journal is empty")
	}
	claims := map[silo.AccountID]int{}
	if err := e.store.View(ctx, func(tx store.Tx) error {
		for i, r := range intents {
			if r.seq != int64(i)+1 {
				t.Errorf("journal entry %d has sequence %d (a gap or reordering)", i+1, r.seq)
			}
			if r.state == string(store.IntentPending) {
				t.Errorf("intent %d %s still pending", r.seq, r.key)
			}
			in, err := tx.IntentByKey(r.key)
			if err != nil {
				return err
			}
			if in.Seq != r.seq || string(in.State) != r.state {
				t.Errorf("intent %s: store says %d %s, table says %d %s", r.key, in.Seq, in.State, r.seq, r.state)
			}
		}
		steps, err := tx.Steps(id)
		if err != nil {
			return err
		}
		for _, st := range steps {
			claims[st.Account]++
			if st.Step != "apply" || st.State != store.IntentDone {
				t.Errorf("step %s is %s", st.StepKey, st.State)
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}

	var audit []store.AuditEntry
	if err := e.store.View(ctx, func(tx store.Tx) error {
		for after := int64(0); ; {
			page, err := tx.Audit(after, 500)
			if err != nil || len(page) == 0 {
				return err
			}
			audit = append(audit, page...)
			after = page[len(page)-1].Seq
		}
	}); err != nil {
		t.Fatal(err)
	}
	if n, err := store.VerifyChain("", 0, audit); err != nil || n != len(audit) {
		t.Errorf("audit chain: %d of %d entries verify: %v", n, len(audit), err)
	}
	moved := map[silo.AccountID]int{}
	for _, a := range audit {
		if a.Event.Action != "release.apply" {
			continue
		}
		var d struct {
			Release string `json:"release"`
		}
		if err := json.Unmarshal(a.Event.Detail, &d); err != nil {
			t.Fatalf("audit entry %d: %v", a.Seq, err)
		}
		if d.Release == target {
			moved[a.Event.Account]++
		}
	}
	ids := []silo.AccountID{silo.ProductionID}
	for i := 0; i < stepKillTenants; i++ {
		ids = append(ids, tenant(i))
	}
	for _, a := range ids {
		if moved[a] != 1 {
			t.Errorf("%s: move to the target audited %d times, want once", a, moved[a])
		}
		if claims[a] != 1 {
			t.Errorf("%s: claimed %d times by rollout %s, want once", a, claims[a], id)
		}
	}
}
