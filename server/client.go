package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/internal/jsonerr"
	"github.com/silo-run/silo/isolation"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/provider"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/store"
)

// Client talks to a silo server. Errors the server returns come back as
// *silo.Error with the server's code and message, so callers branch on
// them exactly as on local errors. Safe for concurrent use.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// NewClient returns a client of the server at baseURL (e.g.
// "http://127.0.0.1:8080") using the operator token. hc may be nil.
func NewClient(baseURL, token string, hc *http.Client) *Client {
	if hc == nil {
		hc = &http.Client{}
	}
	return &Client{base: strings.TrimRight(baseURL, "/"), token: token, http: hc}
}

func (c *Client) do(ctx context.Context, method, path string, body io.Reader, ctype string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, body)
	if err != nil {
		return silo.Errorf(silo.CodeInvalid, "bad server URL %q: %v", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	return decodeResponse(resp, out)
}

func decodeResponse(resp *http.Response, out any) error {
	if resp.StatusCode >= 300 {
		var eb ErrorBody
		b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		if json.Unmarshal(b, &eb) != nil || eb.Error.Code == "" {
			return silo.Errorf(silo.CodeInternal, "server answered %s", resp.Status)
		}
		return &silo.Error{Code: eb.Error.Code, Message: eb.Error.Message}
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		return nil
	}
	if rb, ok := out.(rawBody); ok {
		if _, err := io.Copy(rb.w, resp.Body); err != nil {
			return silo.Errorf(silo.CodeUnavailable, "reading the server's answer failed: %v", err)
		}
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return answerError(err)
	}
	return nil
}

func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	ctype := ""
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body, ctype = bytes.NewReader(b), "application/json"
	}
	return c.do(ctx, method, path, body, ctype, out)
}

func esc(s string) string { return url.PathEscape(s) }

// Health checks that the server answers (no token needed).
func (c *Client) Health(ctx context.Context) error {
	return c.call(ctx, http.MethodGet, "/v1/health", nil, nil)
}

// CreateAccount creates a tenant, developer or environment account.
func (c *Client) CreateAccount(ctx context.Context, req control.CreateRequest) (control.Created, error) {
	var out control.Created
	body := CreateAccountRequest{ID: req.ID, Kind: req.Kind, Name: req.Name, Params: req.Params, WithKey: req.WithKey}
	if req.TTL > 0 {
		body.TTL = req.TTL.String()
	}
	err := c.call(ctx, http.MethodPost, "/v1/accounts", body, &out)
	return out, err
}

// Accounts lists accounts matching f.
func (c *Client) Accounts(ctx context.Context, f store.Filter) ([]silo.Account, error) {
	q := url.Values{}
	if f.Kind != "" {
		q.Set("kind", string(f.Kind))
	}
	if f.State != "" {
		q.Set("state", string(f.State))
	}
	if f.After != "" {
		q.Set("after", string(f.After))
	}
	if f.Limit > 0 {
		q.Set("limit", strconv.Itoa(f.Limit))
	}
	if f.IncludeDeleted {
		q.Set("deleted", "true")
	}
	var out []silo.Account
	err := c.call(ctx, http.MethodGet, "/v1/accounts?"+q.Encode(), nil, &out)
	return out, err
}

// Show returns an account's detail, including drift.
func (c *Client) Show(ctx context.Context, id silo.AccountID) (control.Detail, error) {
	var out control.Detail
	err := c.call(ctx, http.MethodGet, "/v1/accounts/"+esc(string(id)), nil, &out)
	return out, err
}

// UpdateParams sets parameters ("" removes one) and the display name, and
// applies the current release with them.
func (c *Client) UpdateParams(ctx context.Context, id silo.AccountID, set map[string]string, name string) (silo.Plan, error) {
	var out silo.Plan
	err := c.call(ctx, http.MethodPatch, "/v1/accounts/"+esc(string(id)), UpdateAccountRequest{Params: set, Name: name}, &out)
	return out, err
}

// Suspend suspends an account; Resume resumes it.
func (c *Client) Suspend(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	var out silo.Account
	err := c.call(ctx, http.MethodPost, "/v1/accounts/"+esc(string(id))+"/suspend", nil, &out)
	return out, err
}

// Resume resumes a suspended account.
func (c *Client) Resume(ctx context.Context, id silo.AccountID) (silo.Account, error) {
	var out silo.Account
	err := c.call(ctx, http.MethodPost, "/v1/accounts/"+esc(string(id))+"/resume", nil, &out)
	return out, err
}

// DeleteAccount destroys a tenant's account and its data key and returns
// what the provider reported it did; the server refuses a developer or
// environment account (DeleteEnv deletes those) and the production
// account.
func (c *Client) DeleteAccount(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	var out Deleted
	err := c.call(ctx, http.MethodDelete, "/v1/accounts/"+esc(string(id)), nil, &out)
	return out.Deletion, err
}

// DestroyOrphan destroys an account the provider holds that the registry
// does not know (control.Plane.DestroyOrphan) and returns what the
// provider reported it did.
func (c *Client) DestroyOrphan(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	var out Deleted
	err := c.call(ctx, http.MethodDelete, "/v1/orphans/"+esc(string(id)), nil, &out)
	return out.Deletion, err
}

// IssueKey issues an API key; the plain key is returned once.
func (c *Client) IssueKey(ctx context.Context, id silo.AccountID, name string) (string, store.APIKey, error) {
	var out IssuedKey
	err := c.call(ctx, http.MethodPost, "/v1/accounts/"+esc(string(id))+"/keys", KeyRequest{Name: name}, &out)
	return out.Key, out.Info, err
}

// Keys lists an account's keys (never their secrets).
func (c *Client) Keys(ctx context.Context, id silo.AccountID) ([]store.APIKey, error) {
	var out []store.APIKey
	err := c.call(ctx, http.MethodGet, "/v1/accounts/"+esc(string(id))+"/keys", nil, &out)
	return out, err
}

// AuditLog returns up to limit audit entries after sequence number after
// (of one account when acct is not empty).
func (c *Client) AuditLog(ctx context.Context, after int64, limit int, acct silo.AccountID) ([]store.AuditEntry, error) {
	q := url.Values{}
	q.Set("after", strconv.FormatInt(after, 10))
	q.Set("limit", strconv.Itoa(limit))
	if acct != "" {
		q.Set("account", string(acct))
	}
	var out []store.AuditEntry
	err := c.call(ctx, http.MethodGet, "/v1/audit?"+q.Encode(), nil, &out)
	return out, err
}

// RevokeKey revokes one key of an account.
func (c *Client) RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error {
	return c.RevokeKeyAfter(ctx, id, keyID, 0)
}

// RevokeKeyAfter revokes one key of an account once grace has passed.
func (c *Client) RevokeKeyAfter(ctx context.Context, id silo.AccountID, keyID string, grace time.Duration) error {
	path := "/v1/accounts/" + esc(string(id)) + "/keys/" + esc(keyID)
	if grace > 0 {
		path += "?grace=" + url.QueryEscape(grace.String())
	}
	return c.call(ctx, http.MethodDelete, path, nil, nil)
}

// RemoveKey removes the record of an API key that the isolation verifier
// flags (control.Plane.RemoveKey).
func (c *Client) RemoveKey(ctx context.Context, keyID string) (control.RemovedKey, error) {
	var out control.RemovedKey
	err := c.call(ctx, http.MethodDelete, "/v1/keys/"+esc(keyID), nil, &out)
	return out, err
}

// SetSecret stores a secret value in an account. There is no way to read it
// back through the API.
func (c *Client) SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error {
	return c.do(ctx, http.MethodPut, "/v1/accounts/"+esc(string(id))+"/secrets/"+esc(name), bytes.NewReader(value), "application/octet-stream", nil)
}

// DeleteSecret removes a secret's value from an account and reports
// whether there was one (false: it was not set, and nothing changed).
func (c *Client) DeleteSecret(ctx context.Context, id silo.AccountID, name string) (bool, error) {
	var out DeletedSecret
	err := c.call(ctx, http.MethodDelete, "/v1/accounts/"+esc(string(id))+"/secrets/"+esc(name), nil, &out)
	return out.Deleted, err
}

// Secrets lists an account's secrets: declared, set, or both (never a
// value).
func (c *Client) Secrets(ctx context.Context, id silo.AccountID) ([]control.SecretState, error) {
	var out []control.SecretState
	err := c.call(ctx, http.MethodGet, "/v1/accounts/"+esc(string(id))+"/secrets", nil, &out)
	return out, err
}

// VerifyAudit checks the audit log's hash chain on the server.
func (c *Client) VerifyAudit(ctx context.Context) (int, error) {
	var out AuditResult
	err := c.call(ctx, http.MethodGet, "/v1/audit/verify", nil, &out)
	return out.Entries, err
}

// PutArtifact uploads an artifact and returns its digest (hex SHA-256).
// Uploading one the server has is cheap and not an error.
func (c *Client) PutArtifact(ctx context.Context, data []byte) (string, error) {
	sum := sha256.Sum256(data)
	d := hex.EncodeToString(sum[:])
	if c.do(ctx, http.MethodHead, "/v1/artifacts/"+d, nil, "", nil) == nil {
		return d, nil
	}
	return d, c.do(ctx, http.MethodPut, "/v1/artifacts/"+d, bytes.NewReader(data), "application/wasm", nil)
}

// UploadRelease stores a release built from the silo.yaml text and the
// digests of its uploaded artifacts. The same inputs give the same ID.
func (c *Client) UploadRelease(ctx context.Context, req ReleaseRequest) (ReleaseInfo, error) {
	var out ReleaseInfo
	err := c.call(ctx, http.MethodPost, "/v1/releases", req, &out)
	return out, err
}

// Releases lists up to limit releases, newest first; the builds of silo
// verify --probe only when probes is set (ReleaseInfo.Probe marks them).
func (c *Client) Releases(ctx context.Context, limit int, probes bool) ([]ReleaseInfo, error) {
	var out []ReleaseInfo
	path := "/v1/releases?limit=" + strconv.Itoa(max(limit, 1))
	if probes {
		path += "&probes=true"
	}
	err := c.call(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// Release returns one release, with its stack.
func (c *Client) Release(ctx context.Context, id string) (ReleaseInfo, error) {
	var out ReleaseInfo
	err := c.call(ctx, http.MethodGet, "/v1/releases/"+esc(id), nil, &out)
	return out, err
}

// StartRollout starts a rollout of a stored release. A second concurrent
// deploy is refused with CodeConflict and a message naming the active one,
// a rollout that destroys data without opt allowing it with
// CodeNeedsConfirm, one that would destroy other than the preview
// opt.LossesDigest names with CodeConflict, and one of a release whose
// latest rollout failed without opt.RetryFailed with CodeFailedCheck. A
// release current on every account its rings select starts nothing: the
// error is then a *rollout.UpToDate, as Runner.Start's.
func (c *Client) StartRollout(ctx context.Context, release string, opt rollout.Options) (rollout.Rollout, error) {
	return c.start(ctx, StartRequest{Release: release, AllowDataLoss: opt.AllowDataLoss, LossesDigest: opt.LossesDigest, RetryFailed: opt.RetryFailed})
}

// StartUpload is StartRollout of up, a release not stored yet (its
// artifacts uploaded): the server stores it only if the rollout starts
// (StartRequest.Upload).
func (c *Client) StartUpload(ctx context.Context, up ReleaseRequest, opt rollout.Options) (rollout.Rollout, error) {
	return c.start(ctx, StartRequest{Upload: &up, AllowDataLoss: opt.AllowDataLoss, LossesDigest: opt.LossesDigest, RetryFailed: opt.RetryFailed})
}

func (c *Client) start(ctx context.Context, req StartRequest) (rollout.Rollout, error) {
	var raw json.RawMessage
	var out rollout.Rollout
	err := c.call(ctx, http.MethodPost, "/v1/rollouts", req, &raw)
	if err != nil {
		return out, err
	}
	var none struct {
		Started *bool `json:"started"`
		rollout.UpToDate
	}
	if err := json.Unmarshal(raw, &none); err != nil {
		return out, answerError(err)
	}
	if none.Started != nil && !*none.Started {
		return out, &none.UpToDate
	}
	if err := json.Unmarshal(raw, &out); err != nil {
		return out, answerError(err)
	}
	return out, nil
}

// PreviewRollout returns what StartRollout of release would destroy (see
// rollout.Runner.PreviewStart); nothing changes.
func (c *Client) PreviewRollout(ctx context.Context, release string) (rollout.Preview, error) {
	var out rollout.Preview
	err := c.call(ctx, http.MethodGet, "/v1/rollouts/preview?release="+url.QueryEscape(release), nil, &out)
	return out, err
}

// PreviewUpload is PreviewRollout of up, a release not stored yet (its
// artifacts uploaded); nothing is stored.
func (c *Client) PreviewUpload(ctx context.Context, up ReleaseRequest) (rollout.Preview, error) {
	var out rollout.Preview
	err := c.call(ctx, http.MethodPost, "/v1/rollouts/preview", up, &out)
	return out, err
}

// PreviewRollback returns what Rollback of rollout id would destroy (see
// rollout.Runner.PreviewRollback); nothing changes.
func (c *Client) PreviewRollback(ctx context.Context, id string) (rollout.Preview, error) {
	var out rollout.Preview
	err := c.call(ctx, http.MethodGet, "/v1/rollouts/"+esc(id)+"/rollback/preview", nil, &out)
	return out, err
}

// Rollout returns a rollout; id may be "active" or "latest".
func (c *Client) Rollout(ctx context.Context, id string) (rollout.Rollout, error) {
	var out rollout.Rollout
	err := c.call(ctx, http.MethodGet, "/v1/rollouts/"+esc(id), nil, &out)
	return out, err
}

// Rollouts lists recent rollouts, newest first.
func (c *Client) Rollouts(ctx context.Context) ([]rollout.Rollout, error) {
	var out []rollout.Rollout
	err := c.call(ctx, http.MethodGet, "/v1/rollouts", nil, &out)
	return out, err
}

// Pause, Resume, Abort and Rollback operate on a rollout (see rollout.Runner).
func (c *Client) Pause(ctx context.Context, id string) (rollout.Rollout, error) {
	return c.op(ctx, id, "pause")
}

// ResumeRollout continues a paused rollout.
func (c *Client) ResumeRollout(ctx context.Context, id string) (rollout.Rollout, error) {
	return c.op(ctx, id, "resume")
}

// Abort stops a rollout, leaving accounts where they are.
func (c *Client) Abort(ctx context.Context, id string) (rollout.Rollout, error) {
	return c.op(ctx, id, "abort")
}

// Rollback starts a rollback rollout and returns it. One that destroys
// data without opt allowing it is refused with CodeNeedsConfirm, one that
// would destroy other than the preview opt.LossesDigest names with
// CodeConflict.
func (c *Client) Rollback(ctx context.Context, id string, opt rollout.Options) (rollout.Rollout, error) {
	var out rollout.Rollout
	err := c.call(ctx, http.MethodPost, "/v1/rollouts/"+esc(id)+"/rollback", RollbackRequest{AllowDataLoss: opt.AllowDataLoss, LossesDigest: opt.LossesDigest}, &out)
	return out, err
}

func (c *Client) op(ctx context.Context, id, op string) (rollout.Rollout, error) {
	var out rollout.Rollout
	err := c.call(ctx, http.MethodPost, "/v1/rollouts/"+esc(id)+"/"+op, nil, &out)
	return out, err
}

// Follow calls fn with every state of the rollout until it stops running.
// If the connection drops, call Follow again: it reattaches.
func (c *Client) Follow(ctx context.Context, id string, fn func(rollout.Rollout) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/rollouts/"+esc(id)+"/follow", nil)
	if err != nil {
		return silo.Errorf(silo.CodeInvalid, "bad server URL %q: %v", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeResponse(resp, nil)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var r rollout.Rollout
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			return answerError(err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return silo.Errorf(silo.CodeUnavailable, "lost the connection to the server (%v); %s", err, GoesOn(id))
	}
	return nil
}

// GoesOn says what a client that stopped following rollout id (its
// connection lost, or interrupted) can do about it: the server goes on
// running it, and a command reattaches, stops or undoes it.
func GoesOn(id string) string {
	return fmt.Sprintf("rollout %s goes on in the server; run silo rollout status %s --follow to reattach, silo rollout abort %s to stop it, or silo rollout rollback %s to undo it", id, id, id, id)
}

// Plan plans a stored release ("" : the current one) for one account
// (one != "") or the whole fleet. Nothing changes.
func (c *Client) Plan(ctx context.Context, release string, one silo.AccountID) (PlanSummary, error) {
	q := url.Values{}
	if release != "" {
		q.Set("release", release)
	}
	if one != "" {
		q.Set("account", string(one))
	}
	var out PlanSummary
	err := c.call(ctx, http.MethodGet, "/v1/plan?"+q.Encode(), nil, &out)
	return out, err
}

// PlanUpload plans up, a release not stored (its artifacts uploaded), for
// one account (one != "") or the whole fleet. Nothing is stored.
func (c *Client) PlanUpload(ctx context.Context, up ReleaseRequest, one silo.AccountID) (PlanSummary, error) {
	p := "/v1/plan"
	if one != "" {
		p += "?account=" + url.QueryEscape(string(one))
	}
	var out PlanSummary
	err := c.call(ctx, http.MethodPost, p, up, &out)
	return out, err
}

// Drift compares what the provider holds with recorded state, for one
// account (one != "") or all.
func (c *Client) Drift(ctx context.Context, one silo.AccountID) (DriftReport, error) {
	p := "/v1/drift"
	if one != "" {
		p = "/v1/accounts/" + esc(string(one)) + "/drift"
	}
	var out DriftReport
	err := c.call(ctx, http.MethodGet, p, nil, &out)
	return out, err
}

// Verify proves the isolation invariants over the server's fleet.
func (c *Client) Verify(ctx context.Context) (isolation.Result, error) {
	var out isolation.Result
	err := c.call(ctx, http.MethodGet, "/v1/verify", nil, &out)
	return out, err
}

// Report returns the signed isolation report of an account, produced and
// signed on the server, as "html" or "json".
func (c *Client) Report(ctx context.Context, id silo.AccountID, format string) ([]byte, error) {
	var buf bytes.Buffer
	err := c.do(ctx, http.MethodGet, "/v1/accounts/"+esc(string(id))+"/report?format="+url.QueryEscape(format), nil, "", rawBody{&buf})
	return buf.Bytes(), err
}

// Probe runs the live probe suite in the server against its own gateway
// and decodes its report into out. It takes as long as the run (seconds to
// minutes); ctx bounds it.
func (c *Client) Probe(ctx context.Context, out any) error {
	return c.call(ctx, http.MethodPost, "/v1/verify/probe", nil, out)
}

// ReportKey returns the public keys the server publishes for checking its
// isolation reports, as PEM (report.PublicPEM): the current key first.
func (c *Client) ReportKey(ctx context.Context) ([]byte, error) {
	var buf bytes.Buffer
	err := c.do(ctx, http.MethodGet, "/v1/report-key", nil, "", rawBody{&buf})
	return buf.Bytes(), err
}

// rawBody makes decodeResponse copy the body instead of decoding JSON.
type rawBody struct{ w io.Writer }

// CreateEnv creates an environment on the server's current release. A
// local req.SeedDir is read and uploaded with the request.
func (c *Client) CreateEnv(ctx context.Context, req EnvRequest) (Env, error) {
	body := CreateEnvRequest{Name: req.Name, Kind: req.Purpose, TTL: req.TTL.String(), Params: req.Params}
	if req.SeedDir != "" {
		files, err := ReadSeed(req.SeedDir)
		if err != nil {
			return Env{}, err
		}
		body.Seed = files
	}
	var out Env
	err := c.call(ctx, http.MethodPost, "/v1/environments", body, &out)
	return out, err
}

// Envs lists the server's environments.
func (c *Client) Envs(ctx context.Context) ([]silo.Account, error) {
	var out []silo.Account
	err := c.call(ctx, http.MethodGet, "/v1/environments", nil, &out)
	return out, err
}

// DeleteEnv tears an environment or a developer account down on the
// server; the server verifies nothing of it is left.
func (c *Client) DeleteEnv(ctx context.Context, id silo.AccountID) error {
	return c.call(ctx, http.MethodDelete, "/v1/environments/"+esc(string(id)), nil, nil)
}

func logValues(q logs.Query) url.Values {
	v := url.Values{}
	if q.Function != "" {
		v.Set("function", q.Function)
	}
	if q.RequestID != "" {
		v.Set("request", q.RequestID)
	}
	if !q.Since.IsZero() {
		v.Set("since", q.Since.UTC().Format(time.RFC3339Nano))
	}
	if !q.Until.IsZero() {
		v.Set("until", q.Until.UTC().Format(time.RFC3339Nano))
	}
	if q.Last > 0 {
		v.Set("limit", strconv.Itoa(q.Last))
	}
	return v
}

// Logs returns an account's retained log lines matching q, oldest first.
func (c *Client) Logs(ctx context.Context, id silo.AccountID, q logs.Query) ([]logs.Entry, error) {
	var out []logs.Entry
	err := c.call(ctx, http.MethodGet, "/v1/accounts/"+esc(string(id))+"/logs?"+logValues(q).Encode(), nil, &out)
	return out, err
}

// FollowLogs calls fn for every retained line of the account matching q,
// then for each new one, until ctx is done (then it returns nil) or fn
// fails.
func (c *Client) FollowLogs(ctx context.Context, id silo.AccountID, q logs.Query, fn func(logs.Entry) error) error {
	v := logValues(q)
	v.Set("follow", "true")
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/accounts/"+esc(string(id))+"/logs?"+v.Encode(), nil)
	if err != nil {
		return silo.Errorf(silo.CodeInvalid, "bad server URL %q: %v", c.base, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return c.unreachable(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return decodeResponse(resp, nil)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var e logs.Entry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return answerError(err)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if ctx.Err() != nil {
		return nil
	}
	if err := sc.Err(); err != nil {
		return silo.Errorf(silo.CodeUnavailable, "lost the connection to the server (%v); run silo logs %s -f again", err, id)
	}
	return silo.Errorf(silo.CodeUnavailable, "the server ended the log stream of %s; run silo logs %s -f again", id, id)
}

// UnreachableError is the cause of a CodeUnavailable error for a request
// that got no answer from the server: where the client sent it, and the
// transport's error.
type UnreachableError struct {
	Server string // the server's base URL
	Err    error
}

func (e *UnreachableError) Error() string {
	return fmt.Sprintf("cannot reach the silo server at %s: %v", e.Server, e.Err)
}

func (e *UnreachableError) Unwrap() error { return e.Err }

// unreachable is the error for a request to the server that got no
// answer (err, from the transport).
func (c *Client) unreachable(err error) error {
	return &silo.Error{Code: silo.CodeUnavailable, Message: fmt.Sprintf("cannot reach the silo server at %s; is silo server running there?", c.base), Err: &UnreachableError{Server: c.base, Err: err}}
}

// answerError is the one sentence for an answer of the server that does
// not decode: a server of another version, or not a silo server.
func answerError(err error) error {
	return &silo.Error{Code: silo.CodeUnavailable, Err: err,
		Message: "the server's answer is not what this silo understands (" + jsonerr.Describe(err) + "); check that --server names a silo server of the same version"}
}
