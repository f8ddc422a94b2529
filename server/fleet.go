package server

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/isolation/report"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/store"
	"github.com/silo-run/silo/usage/storage"
)

// Ops are the parts of the running platform that the plan-free fleet
// endpoints need beyond the control plane: the provider (verify, report),
// environments, the accounts' function logs and the report signing key.
// The platform builds the Server before these are known to it, so the
// process that serves it sets them with SetOps before serving. An endpoint
// whose part is missing answers CodeUnavailable saying so.
type Ops struct {
	// Provider is the fleet's provider: verify and report read which
	// accounts hold a data key, and a tenant's data key fingerprint.
	Provider provider.Provider
	// Envs creates, lists and deletes environment accounts.
	Envs Envs
	// LogDir is the directory of the per-account function logs (package
	// logs layout: <dir>/<account>.log).
	LogDir string
	// LogKeys opens the sealed records in LogDir (logs.Store.Keys of the
	// store that writes them); nil reads plain records only.
	LogKeys logs.Keys
	// Logs, if set, reads and follows the accounts' function logs instead
	// of LogDir: a provider that runs the functions itself keeps them
	// (platform.Platform's ReadLogs and FollowLogs).
	Logs LogSource
	// ReportKey signs isolation reports (report.LoadOrCreateKey in the
	// server's data dir); readers check them against ReportKeys.
	ReportKey ed25519.PrivateKey
	// ReportKeys are the public keys the installation publishes for
	// checking its reports (report.PublishedKeys: the current key, then
	// retired ones), served as PEM by GET /v1/report-key.
	ReportKeys []ed25519.PublicKey
	// Probe runs the live probe suite against this process's own gateway
	// and records its outcome (POST /v1/verify/probe); it returns the
	// probe report, encoded as JSON for the client.
	Probe func(ctx context.Context) (any, error)
	// Stored returns the bytes an account stores in each of its tables and
	// buckets, with its storage limit (GET /v1/accounts/{id}/storage).
	Stored func(ctx context.Context, id silo.AccountID) ([]storage.Used, error)
}

// Envs manages environment accounts (kind environment, with a TTL).
type Envs interface {
	// CreateEnv creates an environment on the current release, seeded from
	// req.SeedDir if set, with a first API key.
	CreateEnv(ctx context.Context, req EnvRequest) (Env, error)
	// Envs lists the environments that are not deleted.
	Envs(ctx context.Context) ([]silo.Account, error)
	// DeleteEnv tears an environment down and verifies nothing of it is
	// left; CodeInvalid if id is not an environment.
	DeleteEnv(ctx context.Context, id silo.AccountID) error
}

// EnvRequest asks for an environment.
type EnvRequest struct {
	Name    string
	Purpose string // "test" or "demo"
	TTL     time.Duration
	Params  map[string]string
	SeedDir string // a fixture directory on the machine that creates it
}

// Env is a created environment and its first API key (shown once).
type Env struct {
	Account silo.Account `json:"account"`
	Key     string       `json:"key,omitempty"`
}

// CreateEnvRequest is the body of POST /v1/environments. Seed holds the
// files of a fixture directory by slash-separated relative path
// (tables/<table>.json, buckets/<bucket>/<key>), base64 in JSON.
type CreateEnvRequest struct {
	Name   string            `json:"name"`
	Kind   string            `json:"kind"`
	TTL    string            `json:"ttl"`
	Params map[string]string `json:"params,omitempty"`
	Seed   map[string][]byte `json:"seed,omitempty"`
}

// PlanSummary is the plan of a release over the fleet or one account.
type PlanSummary struct {
	Release  string `json:"release"`
	Accounts int    `json:"accounts"`
	// Changed counts the accounts whose resources would change (or that
	// would be provisioned).
	Changed int `json:"changed"`
	// ReleaseOnly counts the accounts that would run the release with no
	// resource change: applying it moves only their release label
	// (silo.Plan.ReleaseOnly).
	ReleaseOnly int `json:"release_only"`
	// Plans are the plans that write anything: Changed and ReleaseOnly.
	Plans  []silo.Plan `json:"plans"`
	Errors []string    `json:"errors,omitempty"`
}

// DriftReport is the drift of one account or all: the provider's holdings
// against recorded state, for the accounts with drift.
type DriftReport struct {
	Accounts int                                 `json:"accounts"`
	Drift    map[silo.AccountID][]silo.DriftItem `json:"drift"`
	// Problems are what is wrong with accounts beyond drift (half-done
	// onboarding or deletion, damaged files, drift that could not be
	// read), each with what to do.
	Problems []control.Problem `json:"problems,omitempty"`
	// Orphans are accounts the provider holds that the registry does not
	// know (fleet drift only).
	Orphans []silo.AccountID `json:"orphans,omitempty"`
	// DataDir, when not empty, says why the provider's accounts look like
	// an older copy of the installation's data dir, and what to check
	// before acting on the problems (fleet drift only).
	DataDir string `json:"data_dir,omitempty"`
	// Provider, when not empty, says why the server refuses every change
	// in the provider: it holds none of the installation's live accounts
	// any more (an emptied organization, or another one), and what to do
	// (fleet drift only; see engine.Engine.Refuse).
	Provider string `json:"provider,omitempty"`
}

// SettingLastProbe is the store setting holding the last live probe
// (report.Probe JSON) for the isolation report.
const SettingLastProbe = "isolation.last_probe"

// SetOps gives the server the platform parts of the fleet endpoints. Call
// it before serving; it may be called again to replace them.
func (s *Server) SetOps(o Ops) {
	s.opsMu.Lock()
	s.cfg.Ops = o
	s.opsMu.Unlock()
}

func (s *Server) ops() Ops {
	s.opsMu.Lock()
	defer s.opsMu.Unlock()
	return s.cfg.Ops
}

func missing(what string) error {
	return silo.Errorf(silo.CodeUnavailable, "this server was started without %s, so it cannot answer this; run silo server (or silo up --api) from a current silo binary", what)
}

// PlanRelease plans rel for one account (one != "") or every account.
// Accounts that cannot be planned are listed in Errors.
//
// # Errors
//
// CodeNotFound for an unknown or a deleted account.
func PlanRelease(ctx context.Context, plane *control.Plane, rel engine.Release, one silo.AccountID) (PlanSummary, error) {
	sum := PlanSummary{Release: rel.ID, Plans: []silo.Plan{}}
	add := func(p silo.Plan, err error) error {
		sum.Accounts++
		if err != nil {
			sum.Errors = append(sum.Errors, fmt.Sprintf("%s: %s", p.Account, silo.UserMessage(err)))
			return nil
		}
		switch {
		case p.ReleaseOnly():
			sum.ReleaseOnly++
		case p.Touches():
			sum.Changed++
		default:
			return nil
		}
		sum.Plans = append(sum.Plans, p)
		return nil
	}
	if one != "" {
		acct, err := plane.Account(ctx, one)
		if err != nil {
			return sum, err
		}
		p, err := plane.Engine.PlanAccount(ctx, acct, rel)
		if err != nil {
			return sum, err
		}
		_ = add(p, nil)
		return sum, nil
	}
	return sum, plane.Engine.PlanFleet(ctx, rel, store.Filter{}, add)
}

// planAccount returns the account of a plan request (?account=), "" for
// the whole fleet.
func planAccount(r *http.Request) (silo.AccountID, error) {
	a := r.URL.Query().Get("account")
	if a == "" {
		return "", nil
	}
	return silo.ParseID(a)
}

// FleetDrift compares what the provider holds with recorded state, for one
// account (one != "") or every account.
//
// # Errors
//
// CodeNotFound for an unknown or a deleted account.
func FleetDrift(ctx context.Context, plane *control.Plane, one silo.AccountID) (DriftReport, error) {
	out := DriftReport{Drift: map[silo.AccountID][]silo.DriftItem{}}
	ids := []silo.AccountID{one}
	if one == "" {
		accts, err := plane.Accounts(ctx, store.Filter{})
		if err != nil {
			return out, err
		}
		ids = ids[:0]
		for _, a := range accts {
			ids = append(ids, a.ID)
		}
	} else if _, err := plane.LiveAccount(ctx, one); err != nil {
		return out, err
	}
	out.Accounts = len(ids)
	created := map[silo.AccountID]time.Time{} // the live accounts
	// One account that cannot be read does not stop the others: each
	// one's problems are reported and the fleet goes on.
	for _, id := range ids {
		a, err := plane.Account(ctx, id)
		if err != nil {
			out.Problems = append(out.Problems, control.Problem{Account: id, Problem: silo.UserMessage(err), Fix: "see docs/operations.md"})
			continue
		}
		if a.State == silo.StateActive || a.State == silo.StateSuspended {
			created[id] = a.Created
		}
		probs := plane.AccountProblems(ctx, a)
		out.Problems = append(out.Problems, probs...)
		if a.State == silo.StateProvisioning || a.State == silo.StateDeleting {
			continue // its resources are not all there by design
		}
		d, err := plane.Engine.Drift(ctx, id)
		if err != nil {
			if len(probs) == 0 {
				out.Problems = append(out.Problems, control.Problem{Account: id, Problem: "drift could not be read: " + silo.UserMessage(err), Fix: "run silo doctor"})
			}
			continue
		}
		if len(d) > 0 {
			out.Drift[id] = d
		}
	}
	if one == "" {
		refused := plane.Engine.Refusing()
		if refused != nil {
			out.Provider = silo.UserMessage(refused)
		}
		orphans, remains, err := plane.Orphans(ctx)
		if err != nil && refused == nil {
			return out, err
		}
		if err != nil {
			// The provider holds none of the installation's accounts
			// (a local accounts directory gone cannot even be
			// listed): the provider finding says what to do; the
			// orphans are looked for once it holds them again.
			return out, nil
		}
		out.Orphans = orphans
		out.Problems = append(out.Problems, remains...)
		out.DataDir = olderCopy(out.Problems, created)
	}
	return out, nil
}

// olderCopy returns why the provider's accounts look like an older copy
// of the installation's, or "": some live accounts are missing (Problem
// Missing) while others are held, and every missing one was created after
// every held one, as when the data dir is a copy taken before they were.
// created maps each live account to when it was created.
func olderCopy(probs []control.Problem, created map[silo.AccountID]time.Time) string {
	missing := map[silo.AccountID]bool{}
	for _, p := range probs {
		if p.Missing {
			missing[p.Account] = true
		}
	}
	if len(missing) == 0 || len(missing) == len(created) {
		return "" // all missing is refused at start (platform.CheckRegistry)
	}
	var newestHeld, oldestMissing time.Time
	for id, t := range created {
		switch {
		case missing[id] && (oldestMissing.IsZero() || t.Before(oldestMissing)):
			oldestMissing = t
		case !missing[id] && t.After(newestHeld):
			newestHeld = t
		}
	}
	if !oldestMissing.After(newestHeld) {
		return ""
	}
	ids := slices.Sorted(maps.Keys(missing))
	names := silo.ShortList(ids, 5)
	return fmt.Sprintf("this data dir may be an older copy of the installation's: the %d account(s) it lacks (%s) are exactly the ones created after the newest it holds (%s); check that --data-dir (or $SILO_DATA_DIR) is the data dir the installation's servers use before acting on any line below, and delete nothing until you have",
		len(ids), names, newestHeld.UTC().Format(time.RFC3339))
}

// ProveFleet loads the fleet (recorded state plus the provider's data
// keys) and verifies the isolation invariants over it, and on the IAM
// policies of a provider that enforces isolation with IAM (AWS).
func ProveFleet(ctx context.Context, st store.Store, prov provider.Provider) (*isolation.Fleet, isolation.Result, error) {
	f, err := isolation.LoadFleet(ctx, st)
	if err != nil {
		return nil, isolation.Result{}, err
	}
	if err := f.AddDataKeys(ctx, prov); err != nil {
		return nil, isolation.Result{}, err
	}
	return f, isolation.ProveIAM(ctx, prov, isolation.Verify(ctx, f)), nil
}

// LastProbe reads the recorded last live probe, nil if none ran.
func LastProbe(ctx context.Context, st store.Store) (*report.Probe, error) {
	var v string
	err := st.View(ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.Setting(SettingLastProbe)
		return err
	})
	if errors.Is(err, silo.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var p report.Probe
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return nil, nil
	}
	return &p, nil
}

// TenantReport proves the fleet and returns the signed isolation report of
// one live tenant, developer or environment account, as JSON or HTML.
//
// # Errors
//
// CodeNotFound for an unknown or a deleted account; CodeInvalid for the
// production account or a format other than html or json.
func TenantReport(ctx context.Context, st store.Store, plane *control.Plane, prov provider.Provider, key ed25519.PrivateKey, id silo.AccountID, format string, now time.Time) ([]byte, error) {
	if format != "html" && format != "json" {
		return nil, silo.Errorf(silo.CodeInvalid, "report format must be html or json, not %q", format)
	}
	acct, err := plane.LiveAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	if acct.Kind == silo.KindProduction {
		return nil, silo.Errorf(silo.CodeInvalid, "account %s is the production account; reports are for tenant, developer and environment accounts", id)
	}
	f, res, err := ProveFleet(ctx, st, prov)
	if err != nil {
		return nil, err
	}
	in := report.Input{Account: acct, Proof: res, ProvedAt: now, Now: now}
	if in.Probe, err = LastProbe(ctx, st); err != nil {
		return nil, err
	}
	// A broken log is said in the report, not refused: the customer is
	// told what silo knows.
	_, err = plane.VerifyAudit(ctx)
	if err != nil && silo.ErrorCode(err) != silo.CodeFailedCheck {
		return nil, err
	}
	in.Audit = report.Audit{Intact: err == nil}
	for _, as := range f.Accounts {
		if as.Account.ID == id {
			in.Resources = as.Resources
		}
	}
	for _, k := range f.Keys {
		if k.Account == id {
			in.Keys = append(in.Keys, k)
		}
	}
	if in.DataKey, err = prov.KeyInfo(ctx, id); err != nil {
		return nil, err
	}
	signed, err := report.Sign(report.Build(ctx, in), key)
	if err != nil {
		return nil, err
	}
	if format == "json" {
		return signed.JSON()
	}
	return signed.HTML()
}

// LogQuery parses the query of GET /v1/accounts/{id}/logs: function,
// request, since (RFC 3339 time, or a duration back from now), until (an
// RFC 3339 time: only lines before it) and limit
// (the last N lines).
func LogQuery(v map[string][]string, now time.Time) (logs.Query, error) {
	get := func(k string) string {
		if len(v[k]) > 0 {
			return v[k][0]
		}
		return ""
	}
	q := logs.Query{Function: get("function"), RequestID: get("request")}
	// Read as silo logs reads --since and --until (one parser).
	var err error
	if s := get("since"); s != "" {
		if q.Since, err = control.When("since", clip(s), now); err != nil {
			return q, err
		}
	}
	if s := get("until"); s != "" {
		if q.Until, err = control.When("until", clip(s), now); err != nil {
			return q, err
		}
	}
	if l := get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 0 {
			return q, silo.Errorf(silo.CodeInvalid, "limit %q is not a count", clip(l))
		}
		q.Last = n
	}
	return q, nil
}

func (s *Server) fleetRoutes() {
	s.handle("GET /v1/plan", func(r *http.Request) (int, any, error) {
		q := r.URL.Query()
		var rel engine.Release
		var err error
		if id := q.Get("release"); id != "" {
			rel, err = s.cfg.Plane.Release(r.Context(), id)
			if errors.Is(err, silo.ErrNotFound) {
				return 0, nil, silo.Errorf(silo.CodeNotFound, "no release %q on the server (silo release list shows them); to plan one not stored, POST it to /v1/plan, as silo plan --server does", clip(id))
			}
		} else {
			rel, err = s.cfg.Plane.CurrentRelease(r.Context())
			if errors.Is(err, silo.ErrNotFound) {
				return 0, nil, silo.Errorf(silo.CodeNotFound, "the server has no current release yet; silo deploy --server URL makes one")
			}
		}
		if err != nil {
			return 0, nil, err
		}
		one, err := planAccount(r)
		if err != nil {
			return 0, nil, err
		}
		sum, err := PlanRelease(r.Context(), s.cfg.Plane, rel, one)
		return http.StatusOK, sum, err
	})
	// A release not stored (its artifacts uploaded), planned as it is:
	// nothing is stored, so a plan changes nothing on the server.
	s.handle("POST /v1/plan", func(r *http.Request) (int, any, error) {
		var req ReleaseRequest
		if err := decode(r, &req); err != nil {
			return 0, nil, err
		}
		one, err := planAccount(r)
		if err != nil {
			return 0, nil, err
		}
		rel, _, err := s.newRelease(r.Context(), req)
		if err != nil {
			return 0, nil, err
		}
		sum, err := PlanRelease(r.Context(), s.cfg.Plane, rel, one)
		return http.StatusOK, sum, err
	})
	s.handle("GET /v1/drift", func(r *http.Request) (int, any, error) {
		d, err := FleetDrift(r.Context(), s.cfg.Plane, "")
		return http.StatusOK, d, err
	})
	s.handle("GET /v1/accounts/{id}/drift", func(r *http.Request) (int, any, error) {
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		d, err := FleetDrift(r.Context(), s.cfg.Plane, id)
		return http.StatusOK, d, err
	})
	s.handle("GET /v1/verify", func(r *http.Request) (int, any, error) {
		o := s.ops()
		if o.Provider == nil {
			return 0, nil, missing("the provider")
		}
		_, res, err := ProveFleet(r.Context(), s.cfg.Store, o.Provider)
		return http.StatusOK, res, err
	})
	s.handle("GET /v1/verify/probe", func(r *http.Request) (int, any, error) {
		p, err := LastProbe(r.Context(), s.cfg.Store)
		if err == nil && p == nil {
			err = silo.Errorf(silo.CodeNotFound, "no live probe has run yet; silo verify --probe runs one against a serving silo")
		}
		return http.StatusOK, p, err
	})
	s.handle("POST /v1/verify/probe", func(r *http.Request) (int, any, error) {
		o := s.ops()
		if o.Probe == nil {
			return 0, nil, missing("the live probe suite")
		}
		rep, err := o.Probe(r.Context())
		return http.StatusOK, rep, err
	})
	s.route("GET /v1/report-key", func(w http.ResponseWriter, r *http.Request) {
		o := s.ops()
		if len(o.ReportKeys) == 0 {
			writeErr(w, missing("the report signing key"))
			return
		}
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(report.PublicPEM(o.ReportKeys...))
	})
	s.route("GET /v1/accounts/{id}/report", func(w http.ResponseWriter, r *http.Request) {
		o := s.ops()
		id, err := accountID(r)
		var b []byte
		format := r.URL.Query().Get("format")
		if format == "" {
			format = "html"
		}
		switch {
		case err != nil:
		case o.Provider == nil || o.ReportKey == nil:
			err = missing("the provider and the report signing key")
		default:
			b, err = TenantReport(r.Context(), s.cfg.Store, s.cfg.Plane, o.Provider, o.ReportKey, id, format, s.cfg.Now())
		}
		if err != nil {
			s.logFailed(r, err)
			writeErr(w, err)
			return
		}
		ct := "text/html; charset=utf-8"
		if format == "json" {
			ct = "application/json"
		}
		w.Header().Set("Content-Type", ct)
		w.Header().Set("Cache-Control", "no-store")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write(b)
	})
	s.handle("POST /v1/environments", func(r *http.Request) (int, any, error) {
		o := s.ops()
		if o.Envs == nil {
			return 0, nil, missing("environments")
		}
		var req CreateEnvRequest
		if err := decodeLimit(r, &req, maxSeed*4/3+maxJSON); err != nil {
			return 0, nil, err
		}
		ttl, err := time.ParseDuration(req.TTL)
		if err != nil || ttl <= 0 {
			return 0, nil, silo.Errorf(silo.CodeInvalid, "ttl %q is not a positive duration such as 2h", clip(req.TTL))
		}
		if _, err := silo.ParseTenantID(req.Name); err != nil {
			return 0, nil, err
		}
		if _, err := s.cfg.Plane.CurrentRelease(r.Context()); errors.Is(err, silo.ErrNotFound) {
			return 0, nil, silo.Errorf(silo.CodeNotFound, "the server has no current release yet; silo deploy --server URL makes one")
		}
		er := EnvRequest{Name: req.Name, Purpose: req.Kind, TTL: ttl, Params: req.Params}
		if len(req.Seed) > 0 {
			dir, err := WriteSeed(req.Seed)
			if err != nil {
				return 0, nil, err
			}
			defer os.RemoveAll(dir)
			er.SeedDir = dir
		}
		// As an account's onboarding, the environment's creation (and its
		// seeding) does not end with the request: a client that goes away
		// gets told the server goes on.
		e, err := o.Envs.CreateEnv(context.WithoutCancel(r.Context()), er)
		return http.StatusCreated, e, err
	})
	s.handle("GET /v1/environments", func(r *http.Request) (int, any, error) {
		o := s.ops()
		if o.Envs == nil {
			return 0, nil, missing("environments")
		}
		es, err := o.Envs.Envs(r.Context())
		if es == nil {
			es = []silo.Account{}
		}
		return http.StatusOK, es, err
	})
	s.handle("DELETE /v1/environments/{id}", func(r *http.Request) (int, any, error) {
		o := s.ops()
		if o.Envs == nil {
			return 0, nil, missing("environments")
		}
		id, err := accountID(r)
		if err != nil {
			return 0, nil, err
		}
		return http.StatusNoContent, nil, o.Envs.DeleteEnv(r.Context(), id)
	})
	s.route("GET /v1/accounts/{id}/logs", s.logs)
}

// LogSource reads an account's function log lines (oldest first) and
// follows them until ctx is done.
type LogSource interface {
	ReadLogs(ctx context.Context, id silo.AccountID, q logs.Query) ([]logs.Entry, error)
	FollowLogs(ctx context.Context, id silo.AccountID, q logs.Query, fn func(logs.Entry) error) error
}

// logs answers an account's log lines as a JSON array, or with follow=true
// as a stream of JSON lines (application/x-ndjson): the retained lines,
// then each new one, until the client goes away.
func (s *Server) logs(w http.ResponseWriter, r *http.Request) {
	o := s.ops()
	id, err := accountID(r)
	var q logs.Query
	if err == nil {
		q, err = LogQuery(r.URL.Query(), s.cfg.Now())
	}
	if err == nil && o.LogDir == "" && o.Logs == nil {
		err = missing("the log directory")
	}
	if err == nil {
		_, err = s.cfg.Plane.LiveAccount(r.Context(), id) // a deleted account's logs went with it
	}
	if err != nil {
		writeErr(w, err)
		return
	}
	if r.URL.Query().Get("follow") != "true" {
		read := func() ([]logs.Entry, error) { return logs.ReadWith(o.LogDir, o.LogKeys, id, q) }
		if o.Logs != nil {
			read = func() ([]logs.Entry, error) { return o.Logs.ReadLogs(r.Context(), id, q) }
		}
		es, err := read()
		if err != nil {
			writeErr(w, err)
			return
		}
		if es == nil {
			es = []logs.Entry{}
		}
		writeJSON(w, http.StatusOK, es)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fl, _ := w.(http.Flusher)
	if fl != nil {
		fl.Flush()
	}
	enc := json.NewEncoder(w)
	send := func(e logs.Entry) error {
		if err := enc.Encode(e); err != nil {
			return err
		}
		if fl != nil {
			fl.Flush()
		}
		return nil
	}
	if o.Logs != nil {
		_ = o.Logs.FollowLogs(r.Context(), id, q, send)
		return
	}
	_ = logs.FollowWith(r.Context(), o.LogDir, o.LogKeys, id, q, 0, send)
}
