package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
)

// Copied counts what Copy copied.
type Copied struct {
	Accounts       int    `json:"accounts"`
	PurgedAccounts int    `json:"purged_accounts"` // kept for their usage
	Resources      int    `json:"resources"`
	LimitOverrides int    `json:"limit_overrides"`
	Keys           int    `json:"keys"`
	Releases       int    `json:"releases"`
	CurrentRelease string `json:"current_release,omitempty"`
	Rollouts       int    `json:"rollouts"`
	Steps          int    `json:"steps"`
	Intents        int    `json:"intents"`
	Settings       int    `json:"settings"`
	Usage          int    `json:"usage_days"`        // rows: one function of one account on one day
	Stored         int    `json:"stored_bytes_days"` // rows: one account on one day
	ScheduleRuns   int    `json:"schedule_runs"`
	// Metrics counts rows of published request metrics (and heartbeats),
	// which a rollout's gates in progress sum.
	Metrics int `json:"release_metrics"`
	Audit   int `json:"audit"`
}

// Tables returns how many rows Copy wrote into each table of the SQLite
// schema (store/sqlite): every table it has is one Copy copies.
func (n Copied) Tables() map[string]int {
	current := 0
	if n.CurrentRelease != "" {
		current = 1
	}
	return map[string]int{
		"accounts": n.Accounts, "purged_accounts": n.PurgedAccounts, "resources": n.Resources, "limit_overrides": n.LimitOverrides,
		"api_keys": n.Keys, "releases": n.Releases, "current_release": current,
		"rollouts": n.Rollouts, "rollout_steps": n.Steps, "intents": n.Intents,
		"settings": n.Settings, "usage": n.Usage, "stored_usage": n.Stored,
		"schedule_runs": n.ScheduleRuns, "release_metrics": n.Metrics, "audit": n.Audit,
	}
}

// Copy copies the whole control-plane state of src into dst, which must be
// empty: the registry (deleted accounts included, and the purged ones
// whose usage is kept), recorded resources,
// limit overrides, API keys (hashes), releases and which is current,
// rollouts with their steps, the journal, the settings, metered usage and
// stored bytes, schedule claims, the request metrics the servers
// published for the rollout gates and the audit log. It reads src in one
// snapshot and writes dst in one transaction, so dst gets all of it or
// nothing.
//
// Audit entries are appended to dst's chain in order, and each must come
// out with the same sequence number and hash as in src: the chain, and any
// checkpoint or witness of it, stays verifiable. Intents keep their order,
// keys and states; their sequence numbers are dst's.
//
// # Errors
//
// CodeConflict when dst holds anything already; CodeInvalid when a
// store's transactions do not implement Lister; CodeFailedCheck when an
// audit entry would not keep its hash (nothing is written then).
func Copy(ctx context.Context, dst, src Store) (Copied, error) {
	var snap snapshot
	if err := src.View(ctx, snap.read); err != nil {
		return Copied{}, fmt.Errorf("read source store: %w", err)
	}
	var n Copied
	// Entries keep their own actors: their hashes must stay as they are.
	ctx = context.WithValue(ctx, actorKey{}, nil)
	err := dst.Update(ctx, func(tx Tx) error {
		n = Copied{}
		if err := empty(tx); err != nil {
			return err
		}
		return snap.write(tx, &n)
	})
	return n, err
}

type snapshot struct {
	accounts  []silo.Account
	purged    []silo.Account
	resources map[silo.AccountID][]silo.Resource
	keys      []APIKey
	releases  []Release
	current   string
	rollouts  []Rollout
	steps     []RolloutStep
	intents   []Intent
	settings  map[string]string
	overrides map[silo.AccountID]silo.Limits
	days      [][]DayRow // by DayTables
	runs      []ScheduleRun
	metrics   []ReleaseMetrics
	audit     []AuditEntry
}

func (s *snapshot) read(tx Tx) error {
	l, ok := tx.(Lister)
	if !ok {
		return silo.Errorf(silo.CodeInvalid, "the source store cannot list its journal and settings, so it cannot be copied")
	}
	var err error
	if s.accounts, err = tx.Accounts(Filter{IncludeDeleted: true}); err != nil {
		return err
	}
	if s.purged, err = tx.PurgedAccounts(""); err != nil {
		return err
	}
	s.resources = map[silo.AccountID][]silo.Resource{}
	s.overrides = map[silo.AccountID]silo.Limits{}
	for _, a := range s.accounts {
		if s.resources[a.ID], err = tx.Resources(a.ID); err != nil {
			return err
		}
		switch l, err := tx.LimitOverride(a.ID); {
		case err == nil:
			s.overrides[a.ID] = l
		case !errors.Is(err, silo.ErrNotFound):
			return err
		}
		ks, err := tx.Keys(a.ID)
		if err != nil {
			return err
		}
		for i := len(ks) - 1; i >= 0; i-- { // oldest first
			s.keys = append(s.keys, ks[i])
		}
	}
	if s.releases, err = tx.Releases(0, true); err != nil {
		return err
	}
	if s.current, err = tx.CurrentRelease(); err != nil && !errors.Is(err, silo.ErrNotFound) {
		return err
	}
	if s.rollouts, err = tx.Rollouts(0); err != nil {
		return err
	}
	for _, r := range s.rollouts {
		st, err := tx.Steps(r.ID)
		if err != nil {
			return err
		}
		s.steps = append(s.steps, st...)
	}
	if s.intents, err = l.Journal(0, 0); err != nil {
		return err
	}
	if s.settings, err = l.Settings(); err != nil {
		return err
	}
	for _, dt := range DayTables() {
		rows, err := l.DayRows(dt, 0)
		if err != nil {
			return err
		}
		s.days = append(s.days, rows)
	}
	if s.runs, err = l.ScheduleRuns(); err != nil {
		return err
	}
	if s.metrics, err = l.PublishedMetrics(); err != nil {
		return err
	}
	for after := int64(0); ; {
		es, err := tx.Audit(after, 1000)
		if err != nil {
			return err
		}
		if len(es) == 0 {
			return nil
		}
		s.audit = append(s.audit, es...)
		after = es[len(es)-1].Seq
	}
}

// empty refuses a target that holds anything.
func empty(tx Tx) error {
	l, ok := tx.(Lister)
	if !ok {
		return silo.Errorf(silo.CodeInvalid, "the target store cannot list its journal and settings, so it cannot be checked for emptiness")
	}
	as, err := tx.Accounts(Filter{IncludeDeleted: true, Limit: 1})
	if err != nil {
		return err
	}
	es, err := tx.Audit(0, 1)
	if err != nil {
		return err
	}
	rs, err := tx.Releases(1, true)
	if err != nil {
		return err
	}
	ins, err := l.Journal(0, 1)
	if err != nil {
		return err
	}
	set, err := l.Settings()
	if err != nil {
		return err
	}
	ros, err := tx.Rollouts(1)
	if err != nil {
		return err
	}
	purged, err := tx.PurgedAccounts("")
	if err != nil {
		return err
	}
	days := len(purged)
	for _, dt := range DayTables() {
		rows, err := l.DayRows(dt, 1)
		if err != nil {
			return err
		}
		days += len(rows)
	}
	// Limit overrides and schedule claims belong to accounts.
	if len(as)+len(es)+len(rs)+len(ros)+len(ins)+len(set)+days > 0 {
		return silo.Errorf(silo.CodeConflict, "the target store is not empty (it holds accounts, releases, rollouts, journal, settings, usage or audit entries); copy into a new database or schema")
	}
	return nil
}

func (s *snapshot) write(tx Tx, n *Copied) error {
	for _, a := range s.accounts {
		if err := tx.CreateAccount(a); err != nil {
			return fmt.Errorf("copy account %s: %w", a.ID, err)
		}
		n.Accounts++
		for _, r := range s.resources[a.ID] {
			if err := tx.PutResource(a.ID, r); err != nil {
				return fmt.Errorf("copy resource %s/%s of %s: %w", r.Type, r.Name, a.ID, err)
			}
			n.Resources++
		}
		if l, ok := s.overrides[a.ID]; ok {
			if err := tx.PutLimitOverride(a.ID, l); err != nil {
				return fmt.Errorf("copy the limit override of %s: %w", a.ID, err)
			}
			n.LimitOverrides++
		}
	}
	if len(s.purged) > 0 {
		l, ok := tx.(Lister)
		if !ok {
			return silo.Errorf(silo.CodeInvalid, "the target store cannot store purged accounts, so it cannot be copied into")
		}
		for _, a := range s.purged {
			if err := l.PutPurgedAccount(a); err != nil {
				return fmt.Errorf("copy purged account %s created %s: %w", a.ID, a.Created.Format(time.RFC3339), err)
			}
			n.PurgedAccounts++
		}
	}
	for _, k := range s.keys {
		if err := tx.PutKey(k); err != nil {
			return fmt.Errorf("copy key %s: %w", k.ID, err)
		}
		n.Keys++
	}
	for i := len(s.releases) - 1; i >= 0; i-- { // oldest first
		if err := tx.PutRelease(s.releases[i]); err != nil {
			return fmt.Errorf("copy release %s: %w", s.releases[i].ID, err)
		}
		n.Releases++
	}
	if s.current != "" {
		if _, err := tx.SetCurrentRelease(s.current); err != nil {
			return fmt.Errorf("copy the current release %s: %w", s.current, err)
		}
		n.CurrentRelease = s.current
	}
	for i := len(s.rollouts) - 1; i >= 0; i-- { // oldest first
		if err := tx.CreateRollout(s.rollouts[i]); err != nil {
			return fmt.Errorf("copy rollout %s: %w", s.rollouts[i].ID, err)
		}
		n.Rollouts++
	}
	for _, st := range s.steps {
		if err := tx.ClaimStep(st); err != nil {
			return fmt.Errorf("copy rollout step %s: %w", st.StepKey, err)
		}
		n.Steps++
	}
	for _, in := range s.intents {
		seq, err := tx.AddIntent(Intent{Key: in.Key, Account: in.Account, Action: in.Action, Change: in.Change, State: IntentPending, Created: in.Created, Updated: in.Updated})
		if err != nil {
			return fmt.Errorf("copy intent %s: %w", in.Key, err)
		}
		if in.State != IntentPending {
			if err := tx.FinishIntent(seq, in.State, in.Error); err != nil {
				return fmt.Errorf("copy intent %s: %w", in.Key, err)
			}
		}
		n.Intents++
	}
	for name, v := range s.settings {
		if err := tx.PutSetting(name, v); err != nil {
			return fmt.Errorf("copy setting %s: %w", name, err)
		}
		n.Settings++
	}
	if err := s.writeUsage(tx, n); err != nil {
		return err
	}
	for _, e := range s.audit {
		got, err := tx.AppendAudit(e.Event)
		if err != nil {
			return fmt.Errorf("copy audit entry %d: %w", e.Seq, err)
		}
		if got.Seq != e.Seq || got.Hash != e.Hash || got.Prev != e.Prev {
			return silo.Errorf(silo.CodeFailedCheck, "audit entry %d would not keep its place in the chain (seq %d, hash %.12s, want seq %d, hash %.12s); nothing was copied", e.Seq, got.Seq, got.Hash, e.Seq, e.Hash)
		}
		n.Audit++
	}
	return nil
}

// writeUsage writes the metered usage and stored bytes, as stored, and the
// schedule claims: the claim of each schedule's last run, finished or held
// by its owner until it was.
func (s *snapshot) writeUsage(tx Tx, n *Copied) error {
	l, ok := tx.(Lister)
	if !ok {
		return silo.Errorf(silo.CodeInvalid, "the target store cannot store usage as it is, so it cannot be copied into")
	}
	for i, dt := range DayTables() {
		for _, r := range s.days[i] {
			if err := l.PutDayRow(dt, r); err != nil {
				return fmt.Errorf("copy %s of %s on %s: %w", dt.Name, strings.Join(r.Key, "/"), DayTime(r.Day).Format(time.DateOnly), err)
			}
			switch dt.Name {
			case "usage":
				n.Usage++
			case "stored_usage":
				n.Stored++
			}
		}
	}
	for _, r := range s.runs {
		// The target holds no claim yet: this one is the first, whatever
		// the time now.
		if err := tx.ClaimScheduleRun(r.ScheduleClaim, r.Due); err != nil {
			return fmt.Errorf("copy the run of schedule %s of %s: %w", r.Schedule, r.Account, err)
		}
		if r.Finished {
			if err := tx.FinishScheduleRun(r.ScheduleClaim); err != nil {
				return fmt.Errorf("copy the run of schedule %s of %s: %w", r.Schedule, r.Account, err)
			}
		}
		n.ScheduleRuns++
	}
	m, err := copyMetrics(tx, s.metrics)
	n.Metrics += m
	return err
}
