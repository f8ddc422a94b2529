package probe

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/runtime"
	"github.com/silo-run/silo/store"
)

// Control is what the probe needs of the control plane to set up and tear
// down its throwaway accounts. *platform.Platform satisfies it.
type Control interface {
	// CreateAccount onboards an account on the current release.
	CreateAccount(ctx context.Context, req control.CreateRequest) (control.Created, error)
	// DeployProbe builds the app at path into a probe release (marked as
	// such, see store.CheckShip) and applies it to one probe account only.
	DeployProbe(ctx context.Context, path string, id silo.AccountID) (silo.Plan, error)
	// IssueKey issues an API key named name and returns it in plain text.
	IssueKey(ctx context.Context, id silo.AccountID, name string) (string, error)
	// RevokeKey revokes a key by its public ID.
	RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error
	// SetSecret writes a secret value (write-only).
	SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error
	// SetState suspends or resumes an account.
	SetState(ctx context.Context, id silo.AccountID, st silo.State) error
	// DeleteAccount destroys an account and its data key.
	DeleteAccount(ctx context.Context, id silo.AccountID) error
	// VerifyGone fails unless nothing of a deleted account is left.
	VerifyGone(ctx context.Context, id silo.AccountID) error
}

// Invoker runs function fn of a probe account with one request and returns
// its response. Target.Invoke replaces the gateway with one.
type Invoker func(ctx context.Context, acct silo.AccountID, fn string, req runtime.Request) (runtime.Response, error)

// Target is the deployment under attack.
type Target struct {
	// Gateway is the base URL of the running gateway, e.g.
	// "http://127.0.0.1:8080". Only http is supported.
	Gateway string
	// BaseDomain is the gateway's base domain. Default "localhost".
	BaseDomain string
	// Control creates, deploys to, keys, suspends and deletes the two probe
	// accounts.
	Control Control
	// Store is read for the production account's recorded resources (its
	// tables and exports), never for tenant data.
	Store store.Store
	// Provider gives the production account's data plane to the production
	// probe, which runs with production's own handle only.
	Provider provider.Provider
	// Runtime runs the production probe (production is not reachable
	// through the gateway).
	Runtime *runtime.Runtime
	// Logs reads the accounts' function logs, as silo logs does; the
	// deletion surface checks a deleted account's log is gone with it.
	Logs LogStore
	// Report returns the signed isolation report of an account in JSON, as
	// the installation issues it (silo report).
	Report func(ctx context.Context, id silo.AccountID) ([]byte, error)
	// ReportKeys are the fingerprints (report.Fingerprint) of the report
	// signing keys the installation publishes: what a reader pins.
	ReportKeys []string
	// Guest is the probe guest module (see BuildGuest).
	Guest []byte
	// TTL bounds the probe accounts' life should teardown itself fail
	// (they are environment accounts the reaper removes). Default 1h.
	TTL time.Duration
	// Invoke, if set, replaces the gateway for the host-call, tenant-write
	// and residue surfaces: the probe calls it to run its guest in a probe
	// account. It exists so a test can weaken the target on purpose and
	// show the suite reports the breach; leave it nil to attack the real
	// path.
	Invoke Invoker
	// Logf, if set, receives progress lines.
	Logf func(format string, args ...any)
}

// The probe stack's names.
const (
	fnProbe     = store.ProbeAppFunction
	fnProdProbe = "silo-probe"
	tblProbe    = "probe-table"
	bktProbe    = "probe-bucket"
	cfgWhoami   = "probe-whoami"
	cfgMarker   = "probe-cfg"
	secProbe    = "probe-secret"
	keyMarker   = "marker"
	keyCounter  = "counter" // an integer, for the counter (kv.add) attempts
)

// acct is one probe account and what the probe planted in it.
type acct struct {
	id     silo.AccountID
	key    string
	kv     string // value of keyMarker in probe-table
	count  string // value of keyCounter in probe-table: a random integer
	blob   string // blob keyMarker in probe-bucket
	secret string
	cfg    string // value of config probe-cfg
}

func (a *acct) markers() map[string]string {
	return map[string]string{"table value": a.kv, "counter": a.count, "blob": a.blob, "secret": a.secret, "config value": a.cfg}
}

// prodInfo is what the probe learned about the production account.
type prodInfo struct {
	tables, buckets []string
	exports         map[string]silo.ExportSpec
	resources       []silo.Resource
}

// run is the state of one probe run.
type run struct {
	t      Target
	nonce  string
	a, b   *acct
	prod   prodInfo
	digest string
	logf   func(string, ...any)
	// appDir holds the probe app (silo.yaml and the guest), from setup on.
	appDir string
	// accts are the probe accounts created so far, for teardown.
	accts []*acct
}

// Run attacks the deployment t: it creates two throwaway environment
// accounts (A and B) running the probe function, plants markers in both,
// then makes every attempt and control of every surface (the
// hostile-modules and deletion surfaces create a throwaway account each of
// their own), and deletes every probe account again (verifying nothing is
// left), also when it fails.
//
// # Errors
//
// An error when the attack could not be set up or torn down (the target
// is not reachable, accounts cannot be created, teardown left something
// behind); the Report says what the probes found. Check Report.OK.
func Run(ctx context.Context, t Target) (Report, error) {
	if t.Gateway == "" || t.Control == nil || t.Store == nil || t.Provider == nil || t.Runtime == nil || t.Logs == nil || t.Report == nil || len(t.ReportKeys) == 0 || len(t.Guest) == 0 {
		return Report{}, silo.Errorf(silo.CodeInvalid, "probe: the target needs a gateway URL, the control plane, the store, the provider, the runtime, the log store, the report issuer and its published keys, and the probe guest module")
	}
	if !strings.HasPrefix(t.Gateway, "http://") {
		return Report{}, silo.Errorf(silo.CodeInvalid, "probe: gateway %q is not an http:// URL", t.Gateway)
	}
	if t.BaseDomain == "" {
		t.BaseDomain = "localhost"
	}
	t.BaseDomain = strings.TrimSuffix(strings.ToLower(t.BaseDomain), ".")
	if t.TTL <= 0 {
		t.TTL = time.Hour
	}
	var nb [4]byte
	if _, err := rand.Read(nb[:]); err != nil {
		return Report{}, fmt.Errorf("probe nonce: %w", err)
	}
	r := &run{t: t, nonce: hex.EncodeToString(nb[:]), logf: t.Logf}
	if r.logf == nil {
		r.logf = func(string, ...any) {}
	}
	r.a = &acct{id: store.ProbeAccountID(r.nonce, "a")}
	r.b = &acct{id: store.ProbeAccountID(r.nonce, "b")}

	var rep Report
	err := r.setup(ctx)
	if err == nil {
		err = r.attack(ctx, &rep)
	}
	if r.appDir != "" {
		os.RemoveAll(r.appDir)
	}
	// Teardown runs even when the run failed or ctx was cancelled.
	tctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer cancel()
	if terr := r.teardown(tctx, &rep); terr != nil {
		err = errors.Join(err, terr)
	}
	if err != nil {
		rep.Failures = append(rep.Failures, "the probe run did not complete: "+err.Error())
	}
	return rep, err
}

// setup creates and deploys the probe accounts and plants their markers.
func (r *run) setup(ctx context.Context) error {
	if err := r.readProduction(ctx); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "silo-probe-app-")
	if err != nil {
		return fmt.Errorf("probe app dir: %w", err)
	}
	if err := r.writeApp(dir); err != nil {
		os.RemoveAll(dir)
		return err
	}
	r.appDir = dir
	r.digest = runtime.Digest(r.t.Guest)
	for i, a := range []*acct{r.a, r.b} {
		if err := r.createProbeAccount(ctx, a); err != nil {
			return err
		}
		if _, err := r.t.Control.DeployProbe(ctx, dir, a.id); err != nil {
			return fmt.Errorf("probe: deploy the probe function to %s: %w", a.id, err)
		}
		a.kv = "kv-marker-" + r.nonce + "-" + string(a.id)
		a.blob = "blob-marker-" + r.nonce + "-" + string(a.id)
		a.secret = "secret-marker-" + r.nonce + "-" + string(a.id)
		a.cfg = "cfg-of-" + string(a.id)
		var n [4]byte
		rand.Read(n[:])
		// Ten digits, unlike any other value the probe plants; A's and B's
		// differ in the first digit.
		a.count = fmt.Sprintf("%d%09d", 7+i, binary.BigEndian.Uint32(n[:])%1e9)
		if err := r.t.Control.SetSecret(ctx, a.id, secProbe, []byte(a.secret)); err != nil {
			return fmt.Errorf("probe: set the secret of %s: %w", a.id, err)
		}
	}
	// Plant once both accounts exist.
	for _, a := range []*acct{r.a, r.b} {
		res, err := r.batch(ctx, a, []op{
			{Op: "kv.put", Name: tblProbe, Key: keyMarker, Value: []byte(a.kv)},
			{Op: "kv.put", Name: tblProbe, Key: "dir/" + keyMarker, Value: []byte(a.kv)},
			{Op: "kv.put", Name: tblProbe, Key: keyCounter, Value: []byte(a.count)},
			{Op: "blob.put", Name: bktProbe, Key: keyMarker, Value: []byte(a.blob)},
			{Op: "blob.put", Name: bktProbe, Key: "dir/" + keyMarker, Value: []byte(a.blob)},
		})
		if err != nil {
			return fmt.Errorf("probe: plant markers in %s: %w", a.id, err)
		}
		for i, x := range res {
			if x.Status != "ok" {
				return fmt.Errorf("probe: plant markers in %s: op %d: %s", a.id, i, x.Status)
			}
		}
	}
	return nil
}

// createProbeAccount creates the throwaway environment account a.id with
// a key, and counts it for teardown (also if creating it failed halfway).
func (r *run) createProbeAccount(ctx context.Context, a *acct) error {
	r.logf("probe: creating throwaway account %s", a.id)
	if !slices.Contains(r.accts, a) {
		r.accts = append(r.accts, a)
	}
	c, err := r.t.Control.CreateAccount(ctx, control.CreateRequest{
		ID: string(a.id), Kind: silo.KindEnvironment, Name: "isolation probe (throwaway)", TTL: r.t.TTL, WithKey: true,
	})
	if err != nil {
		return fmt.Errorf("probe: create account %s: %w", a.id, err)
	}
	a.key = c.Key
	return nil
}

// readProduction reads the production account's recorded tables, buckets
// and exports.
func (r *run) readProduction(ctx context.Context) error {
	var rs []silo.Resource
	err := r.t.Store.View(ctx, func(tx store.Tx) error {
		var err error
		rs, err = tx.Resources(silo.ProductionID)
		return err
	})
	if err != nil && !errors.Is(err, silo.ErrNotFound) {
		return fmt.Errorf("probe: read the production account's resources: %w", err)
	}
	r.prod = prodInfo{exports: map[string]silo.ExportSpec{}, resources: rs}
	for _, res := range rs {
		switch res.Type {
		case silo.TypeTable:
			r.prod.tables = append(r.prod.tables, res.Name)
		case silo.TypeBucket:
			r.prod.buckets = append(r.prod.buckets, res.Name)
		case silo.TypeExport:
			var es silo.ExportSpec
			if err := json.Unmarshal(res.Spec, &es); err == nil {
				r.prod.exports[res.Name] = es
			}
		}
	}
	return nil
}

// writeApp writes the probe app: silo.yaml and the guest module. Its
// production section mirrors the live production exports so the probe
// function may be granted them; it is never applied to production.
func (r *run) writeApp(dir string) error {
	q := func(s string) string { b, _ := json.Marshal(s); return string(b) }
	var names []string
	for n := range r.prod.exports {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: %s\n", store.ProbeApp)
	fmt.Fprintf(&b, "functions:\n  %s:\n    source: ./probe.wasm\n    timeout: 10s\n", fnProbe)
	fmt.Fprintf(&b, "    tables: {%s: read-write}\n    buckets: {%s: read-write}\n", tblProbe, bktProbe)
	fmt.Fprintf(&b, "    config: [%s, %s]\n    secrets: [%s]\n", cfgWhoami, cfgMarker, secProbe)
	if len(names) > 0 {
		qs := make([]string, len(names))
		for i, n := range names {
			qs[i] = q(n)
		}
		fmt.Fprintf(&b, "    exports: [%s]\n", strings.Join(qs, ", "))
	}
	fmt.Fprintf(&b, "tables:\n  %s: {}\nbuckets:\n  %s: {}\n", tblProbe, bktProbe)
	fmt.Fprintf(&b, "config:\n  %s: \"${tenant.id}\"\n  %s: \"cfg-of-${tenant.id}\"\n", cfgWhoami, cfgMarker)
	fmt.Fprintf(&b, "secrets:\n  %s: {}\n", secProbe)
	fmt.Fprintf(&b, "routes:\n  - {method: GET, path: /probe, function: probe}\n  - {method: POST, path: /probe, function: probe}\n")
	if len(names) > 0 {
		var tables, buckets, config, exports strings.Builder
		for _, n := range names {
			es := r.prod.exports[n]
			switch {
			case es.Table != "":
				fmt.Fprintf(&tables, "    %s: {}\n", q(es.Table))
				fmt.Fprintf(&exports, "    %s: {table: %s}\n", q(n), q(es.Table))
			case es.Bucket != "":
				fmt.Fprintf(&buckets, "    %s: {}\n", q(es.Bucket))
				fmt.Fprintf(&exports, "    %s: {bucket: %s}\n", q(n), q(es.Bucket))
			case es.Config != "":
				fmt.Fprintf(&config, "    %s: \"x\"\n", q(es.Config))
				fmt.Fprintf(&exports, "    %s: {config: %s}\n", q(n), q(es.Config))
			}
		}
		b.WriteString("production:\n")
		for _, s := range []struct{ k, v string }{{"tables", tables.String()}, {"buckets", buckets.String()}, {"config", config.String()}, {"exports", exports.String()}} {
			if s.v != "" {
				b.WriteString("  " + s.k + ":\n" + s.v)
			}
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "silo.yaml"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("write probe app: %w", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "probe.wasm"), r.t.Guest, 0o644); err != nil {
		return fmt.Errorf("write probe module: %w", err)
	}
	return nil
}

// teardown deletes both probe accounts and verifies they are gone. It is a
// control of its own surface: a probe that leaves accounts behind fails.
func (r *run) teardown(ctx context.Context, rep *Report) error {
	t := newTally("teardown", "the throwaway probe accounts are deleted and verified gone")
	var errs []error
	for _, a := range r.teardownAccounts() {
		err := r.t.Control.DeleteAccount(ctx, a.id)
		if err != nil && !errors.Is(err, silo.ErrNotFound) {
			errs = append(errs, fmt.Errorf("probe: delete %s: %w", a.id, err))
			t.control("delete probe account "+string(a.id), silo.UserMessage(err))
			continue
		}
		err = r.t.Control.VerifyGone(ctx, a.id)
		if err != nil {
			errs = append(errs, fmt.Errorf("probe: verify %s is gone: %w", a.id, err))
		}
		t.control("probe account "+string(a.id)+" deleted and gone", errMsg(err))
	}
	// A key of a deleted account is worthless: teardown's own attempt.
	if r.a.key != "" {
		resp, err := r.send(ctx, rawReq{method: "GET", target: "/probe", host: r.host(r.a.id), auth: "Bearer " + r.a.key})
		t.attempt("key of deleted account "+string(r.a.id)+" on its own host", httpOutcome(resp, err), served2xx(resp, err))
	}
	rep.add(t)
	return errors.Join(errs...)
}

// teardownAccounts returns A and B (always, as setup may have failed while
// creating them) and every other probe account created.
func (r *run) teardownAccounts() []*acct {
	out := []*acct{r.a, r.b}
	for _, a := range r.accts {
		if a != r.a && a != r.b {
			out = append(out, a)
		}
	}
	return out
}

func errMsg(err error) string {
	if err == nil {
		return ""
	}
	return silo.UserMessage(err) + " (" + err.Error() + ")"
}

// attack runs every surface.
func (r *run) attack(ctx context.Context, rep *Report) error {
	steps := []func(context.Context, *Report) error{
		r.hostCalls,
		r.residue,
		r.gatewaySurface,
		r.hostileModules,
		r.deletion,
		r.forgery,
	}
	for _, s := range steps {
		if err := s(ctx, rep); err != nil {
			return err
		}
	}
	return nil
}

// op is one host call for the guest to make (see testdata/probe).
type op struct {
	Op     string `json:"op"`
	Name   string `json:"name,omitempty"`
	Key    string `json:"key,omitempty"`
	Value  []byte `json:"value,omitempty"`
	Prefix string `json:"prefix,omitempty"`
	Limit  int    `json:"limit,omitempty"`
}

// result is what the guest reports for one op.
type result struct {
	Status   string   `json:"status"`
	Values   [][]byte `json:"values,omitempty"`
	Global   string   `json:"global,omitempty"`
	HeapHas  bool     `json:"heap_has,omitempty"`
	FreshHas bool     `json:"fresh_has,omitempty"`
}

type batchResp struct {
	Account string   `json:"account"`
	Results []result `json:"results"`
}

// batch runs ops in the probe function of account a (through the gateway
// with a's key, or through Target.Invoke) and returns one result per op.
// It fails if the function ran as any account but a.
func (r *run) batch(ctx context.Context, a *acct, ops []op) ([]result, error) {
	body, err := json.Marshal(ops)
	if err != nil {
		return nil, err
	}
	var status int
	var out []byte
	if r.t.Invoke != nil {
		resp, err := r.t.Invoke(ctx, a.id, fnProbe, runtime.Request{
			ID: "probe-" + r.nonce, Method: "POST", Path: "/probe",
			Header: http.Header{"Content-Type": {"application/json"}}, Body: body,
		})
		if err != nil {
			return nil, err
		}
		status, out = resp.Status, resp.Body
	} else {
		resp, err := r.send(ctx, rawReq{method: "POST", target: "/probe", host: r.host(a.id), auth: "Bearer " + a.key, body: body})
		if err != nil {
			return nil, err
		}
		status, out = resp.status, resp.body
	}
	if status != 200 {
		return nil, fmt.Errorf("probe function of %s answered %d: %.300s", a.id, status, out)
	}
	var br batchResp
	if err := json.Unmarshal(out, &br); err != nil {
		return nil, fmt.Errorf("probe function of %s: bad response: %w", a.id, err)
	}
	if len(br.Results) != len(ops) {
		return nil, fmt.Errorf("probe function of %s returned %d results for %d ops", a.id, len(br.Results), len(ops))
	}
	return br.Results, nil
}

// host returns the gateway host name of an account.
func (r *run) host(id silo.AccountID) string { return string(id) + "." + r.t.BaseDomain }

// leak returns a description of any of the markers found in values, or "".
func leak(values [][]byte, owner silo.AccountID, markers map[string]string) string {
	var found []string
	for what, m := range markers {
		if m == "" {
			continue
		}
		for _, v := range values {
			if bytes.Contains(v, []byte(m)) {
				found = append(found, fmt.Sprintf("%s's %s %q came back", owner, what, m))
				break
			}
		}
	}
	sort.Strings(found)
	return strings.Join(found, "; ")
}
