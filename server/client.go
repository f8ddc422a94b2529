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

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/engine"
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
		return silo.Errorf(silo.CodeUnavailable, "cannot reach the silo server at %s: %w; is silo server running there?", c.base, err)
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
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode server response: %w", err)
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
func (c *Client) UpdateParams(ctx context.Context, id silo.AccountID, set map[string]string, name string) (engine.Plan, error) {
	var out engine.Plan
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

// DeleteAccount destroys an account and its data key.
func (c *Client) DeleteAccount(ctx context.Context, id silo.AccountID) error {
	return c.call(ctx, http.MethodDelete, "/v1/accounts/"+esc(string(id)), nil, nil)
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

// RevokeKey revokes one key of an account.
func (c *Client) RevokeKey(ctx context.Context, id silo.AccountID, keyID string) error {
	return c.call(ctx, http.MethodDelete, "/v1/accounts/"+esc(string(id))+"/keys/"+esc(keyID), nil, nil)
}

// SetSecret stores a secret value in an account. There is no way to read it
// back through the API.
func (c *Client) SetSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error {
	return c.do(ctx, http.MethodPut, "/v1/accounts/"+esc(string(id))+"/secrets/"+esc(name), bytes.NewReader(value), "application/octet-stream", nil)
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

// Releases lists releases, newest first.
func (c *Client) Releases(ctx context.Context, limit int) ([]ReleaseInfo, error) {
	var out []ReleaseInfo
	err := c.call(ctx, http.MethodGet, "/v1/releases?limit="+strconv.Itoa(max(limit, 1)), nil, &out)
	return out, err
}

// Release returns one release, with its stack.
func (c *Client) Release(ctx context.Context, id string) (ReleaseInfo, error) {
	var out ReleaseInfo
	err := c.call(ctx, http.MethodGet, "/v1/releases/"+esc(id), nil, &out)
	return out, err
}

// StartRollout starts a rollout of a stored release. A second concurrent
// deploy is refused with CodeConflict and a message naming the active one.
func (c *Client) StartRollout(ctx context.Context, release string) (rollout.Rollout, error) {
	var out rollout.Rollout
	err := c.call(ctx, http.MethodPost, "/v1/rollouts", StartRequest{Release: release}, &out)
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

// Rollback starts a rollback rollout and returns it.
func (c *Client) Rollback(ctx context.Context, id string) (rollout.Rollout, error) {
	return c.op(ctx, id, "rollback")
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
		return silo.Errorf(silo.CodeUnavailable, "cannot reach the silo server at %s: %w", c.base, err)
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
			return fmt.Errorf("decode rollout stream: %w", err)
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		return silo.Errorf(silo.CodeUnavailable, "lost the connection to the server (%v); run silo rollout status %s --follow to reattach", err, id)
	}
	return nil
}
