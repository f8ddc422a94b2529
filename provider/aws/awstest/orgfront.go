package awstest

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
)

// front stands before the management account's kumo. kumo v0.33.1 serves
// Organizations' CreateAccount, DescribeAccount, ListAccounts, ListRoots
// and the OU calls, but not DescribeCreateAccountStatus,
// ListCreateAccountStatus, ListParents, MoveAccount or CloseAccount, and
// its CreateAccount finishes at once. The front serves exactly those five,
// makes account creation asynchronous as on AWS (CreateAccount answers
// IN_PROGRESS and ListAccounts leaves the account out until a
// DescribeCreateAccountStatus answers SUCCEEDED: the first one, or the one
// after Org.SlowCreations more), and shows closed
// accounts as CLOSED in kumo's ListAccounts and DescribeAccount answers.
// Everything else, STS included, goes to kumo unchanged.
type front struct {
	url       string
	kumo      *process
	t         T
	stateFile string // where the state is kept (orgstate.go); "": nowhere

	mu       sync.Mutex
	statuses map[string]map[string]any // request ID → kumo's final status
	pending  map[string]int            // request IDs IN_PROGRESS → polls that still answer IN_PROGRESS
	slow     int                       // polls a new request answers IN_PROGRESS
	root     string                    // the root ID, once read
	accounts map[string]bool           // created account IDs
	parents  map[string]string         // account ID → parent, once moved
	closed   map[string]bool
	calls    map[string]int // Organizations operation → calls
	faults   *faults
	remote   http.HandlerFunc             // answers Remote
	member   func(account string) string  // a member account's endpoint, for route.go (Serve); nil: no routing
	keys     map[string]string            // access key ID AssumeRole returned → its member account (route.go)
	tags     map[string]map[string]string // account ID → tags set by TagResource
	names    map[string]string            // account ID → name set by PutAccountName
	failWith string                       // FailCreations' reason for the next creations
	failed   map[string]bool              // account IDs of creations that failed: never listed
}

const orgTarget = "AWSOrganizationsV20161128."

func newFront(t T, kumo *process, addr string) *front {
	f := &front{
		t:        t,
		kumo:     kumo,
		statuses: map[string]map[string]any{},
		pending:  map[string]int{},
		accounts: map[string]bool{},
		parents:  map[string]string{},
		closed:   map[string]bool{},
		calls:    map[string]int{},
		faults:   newFaults(),
		tags:     map[string]map[string]string{},
		names:    map[string]string{},
		failed:   map[string]bool{},
		keys:     map[string]string{},
	}
	f.url = serveOn(t, addr, f.serve)
	return f
}

// serveOn serves h on addr (host:port, port 0 for a free one) until t
// ends, and returns its URL.
func serveOn(t T, addr string, h http.HandlerFunc) string {
	t.Helper()
	l, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener.Close()
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return srv.URL
}

func (f *front) created(account string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.accounts[account]
}

func (f *front) serve(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, endpointPath) && f.remote != nil {
		f.remote(w, r)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	if f.routed(w, r, body) {
		return
	}
	defer f.save()
	op, isOrg := strings.CutPrefix(r.Header.Get("X-Amz-Target"), orgTarget)
	if isOrg {
		f.mu.Lock()
		f.calls[op]++
		f.mu.Unlock()
	}
	if f.faults.answer(w, r, body) {
		return
	}
	if r.URL.Path == "/putAccountName" {
		f.mu.Lock()
		f.calls["PutAccountName"]++
		f.mu.Unlock()
		f.putAccountName(w, body)
		return
	}
	if !isOrg {
		f.forward(w, r, body, nil)
		return
	}
	var raw map[string]any
	json.Unmarshal(body, &raw)
	in := map[string]string{}
	for k, v := range raw {
		if s, ok := v.(string); ok {
			in[k] = s
		}
	}
	switch op {
	case "CreateAccount":
		f.forward(w, r, body, func(out map[string]any) { f.createAccount(out, raw["Tags"]) })
	case "DescribeCreateAccountStatus":
		req := in["CreateAccountRequestId"]
		f.mu.Lock()
		st, ok := f.statuses[req]
		left, inProgress := f.pending[req]
		switch {
		case inProgress && left > 0:
			f.pending[req] = left - 1
			st = map[string]any{"Id": req, "AccountName": st["AccountName"], "State": "IN_PROGRESS", "RequestedTimestamp": st["RequestedTimestamp"]}
		default:
			delete(f.pending, req)
		}
		f.mu.Unlock()
		if !ok {
			orgError(w, "CreateAccountStatusNotFoundException", "no such create account request")
			return
		}
		reply(w, map[string]any{"CreateAccountStatus": st})
	case "ListCreateAccountStatus":
		f.listInProgress(w, raw)
	case "ListParents":
		f.listParents(w, r, in["ChildId"])
	case "MoveAccount":
		f.moveAccount(w, r, in)
	case "CloseAccount":
		f.mu.Lock()
		defer f.mu.Unlock()
		switch a := in["AccountId"]; {
		case !f.accounts[a]:
			orgError(w, "AccountNotFoundException", "no such account")
		case f.closed[a]:
			orgError(w, "AccountAlreadyClosedException", "the account is closed")
		default:
			f.closed[a] = true
			reply(w, map[string]any{})
		}
	case "ListAccounts", "DescribeAccount":
		f.forward(w, r, body, f.overlay)
	case "TagResource", "UntagResource", "ListTagsForResource":
		f.tagCall(w, op, raw)
	default:
		f.forward(w, r, body, nil)
	}
}

// putAccountName serves the Account Management API's PutAccountName
// (kumo lacks that API): the new name shows in ListAccounts and
// DescribeAccount.
func (f *front) putAccountName(w http.ResponseWriter, body []byte) {
	var in struct{ AccountId, AccountName string }
	json.Unmarshal(body, &in)
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case !f.accounts[in.AccountId] || f.closed[in.AccountId]:
		w.Header().Set("X-Amzn-ErrorType", "ResourceNotFoundException")
		w.WriteHeader(http.StatusNotFound)
		json.NewEncoder(w).Encode(map[string]string{"message": "no such account"})
	case in.AccountName == "" || len(in.AccountName) > 50:
		w.Header().Set("X-Amzn-ErrorType", "ValidationException")
		w.WriteHeader(http.StatusBadRequest)
		json.NewEncoder(w).Encode(map[string]string{"message": "invalid account name"})
	default:
		f.names[in.AccountId] = in.AccountName
		w.WriteHeader(http.StatusOK)
	}
}

// tagCall serves the Organizations tag calls on accounts, which kumo
// lacks. One page.
func (f *front) tagCall(w http.ResponseWriter, op string, in map[string]any) {
	a, _ := in["ResourceId"].(string)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.accounts[a] {
		orgError(w, "TargetNotFoundException", "no such account")
		return
	}
	tags := f.tags[a]
	if tags == nil {
		tags = map[string]string{}
		f.tags[a] = tags
	}
	switch op {
	case "TagResource":
		list, _ := in["Tags"].([]any)
		setTags(tags, list)
		reply(w, map[string]any{})
	case "UntagResource":
		keys, _ := in["TagKeys"].([]any)
		for _, k := range keys {
			if k, ok := k.(string); ok {
				delete(tags, k)
			}
		}
		reply(w, map[string]any{})
	default:
		out := []any{}
		for k, v := range tags {
			out = append(out, map[string]string{"Key": k, "Value": v})
		}
		reply(w, map[string]any{"Tags": out})
	}
}

// setTags sets the tags of an Organizations request's Tags list on tags.
func setTags(tags map[string]string, list []any) {
	for _, x := range list {
		if t, ok := x.(map[string]any); ok {
			k, _ := t["Key"].(string)
			v, _ := t["Value"].(string)
			tags[k] = v
		}
	}
}

// Tags returns the tags CreateAccount or TagResource set on an account.
func (o *Org) Tags(account string) map[string]string {
	o.front.mu.Lock()
	defer o.front.mu.Unlock()
	out := map[string]string{}
	for k, v := range o.front.tags[account] {
		out[k] = v
	}
	return out
}

// createAccount records kumo's finished status and the request's tags
// (kumo drops them), and answers IN_PROGRESS.
func (f *front) createAccount(out map[string]any, tags any) {
	st, _ := out["CreateAccountStatus"].(map[string]any)
	if st == nil {
		return
	}
	id, _ := st["Id"].(string)
	acct, _ := st["AccountId"].(string)
	f.mu.Lock()
	if f.failWith != "" {
		// As AWS does: the request fails at a later poll, and no account
		// appears.
		st = map[string]any{"Id": id, "AccountName": st["AccountName"], "State": "FAILED", "FailureReason": f.failWith, "RequestedTimestamp": st["RequestedTimestamp"]}
		f.failed[acct] = true
	} else {
		f.accounts[acct] = true
		list, _ := tags.([]any)
		f.tags[acct] = map[string]string{}
		setTags(f.tags[acct], list)
	}
	f.statuses[id] = st
	f.pending[id] = f.slow
	f.mu.Unlock()
	out["CreateAccountStatus"] = map[string]any{
		"Id": id, "AccountName": st["AccountName"], "State": "IN_PROGRESS", "RequestedTimestamp": st["RequestedTimestamp"],
	}
}

// moveAccount serves MoveAccount as the AWS API reference describes it:
// the account moves only if it is under SourceParentId (its OU once
// moved, else the root), so that MoveAccount is a compare-and-swap on the
// account's parent. An account already in the destination is answered
// DuplicateAccountException, one under another parent
// SourceParentNotFoundException; AWS's own choice between those errors is
// not documented further, and the provider treats both, with
// AccountNotFoundException and ConcurrentModificationException, as "moved
// by someone else". Moving back to the root is allowed.
func (f *front) moveAccount(w http.ResponseWriter, r *http.Request, in map[string]string) {
	f.mu.Lock()
	root := f.root
	f.mu.Unlock()
	if root == "" {
		var err error
		if root, err = f.readRoot(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadGateway)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	a, src, dst := in["AccountId"], in["SourceParentId"], in["DestinationParentId"]
	cur, moved := f.parents[a]
	if !moved {
		cur = root
	}
	switch {
	case !f.accounts[a] || f.closed[a]:
		orgError(w, "AccountNotFoundException", "no such account")
	case dst != root && !strings.HasPrefix(dst, "ou-"):
		orgError(w, "DestinationParentNotFoundException", "no such destination")
	case cur == dst:
		orgError(w, "DuplicateAccountException", "the account is already in the destination")
	case cur != src:
		orgError(w, "SourceParentNotFoundException", "the account is not in the source parent")
	case dst == root:
		delete(f.parents, a)
		reply(w, map[string]any{})
	default:
		f.parents[a] = dst
		reply(w, map[string]any{})
	}
}

// listInProgress answers ListCreateAccountStatus: the requests not yet
// polled are IN_PROGRESS, the others SUCCEEDED. One page.
func (f *front) listInProgress(w http.ResponseWriter, in map[string]any) {
	want := map[string]bool{}
	states, _ := in["States"].([]any)
	for _, s := range states {
		if s, ok := s.(string); ok {
			want[s] = true
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	out := []any{}
	for id, st := range f.statuses {
		state := "SUCCEEDED"
		if _, ok := f.pending[id]; ok {
			state = "IN_PROGRESS"
		}
		if len(want) > 0 && !want[state] {
			continue
		}
		if state == "IN_PROGRESS" {
			out = append(out, map[string]any{"Id": id, "AccountName": st["AccountName"], "State": state, "RequestedTimestamp": st["RequestedTimestamp"]})
		} else {
			out = append(out, st)
		}
	}
	reply(w, map[string]any{"CreateAccountStatuses": out})
}

// listParents answers ListParents for an account: its OU once moved, else
// the root, read from kumo.
func (f *front) listParents(w http.ResponseWriter, r *http.Request, child string) {
	f.mu.Lock()
	parent, moved := f.parents[child]
	known := f.accounts[child]
	root := f.root
	f.mu.Unlock()
	switch {
	case !known:
		orgError(w, "ChildNotFoundException", "no such account")
	case moved:
		reply(w, map[string]any{"Parents": []any{map[string]any{"Id": parent, "Type": "ORGANIZATIONAL_UNIT"}}})
	default:
		if root == "" {
			var err error
			if root, err = f.readRoot(r); err != nil {
				http.Error(w, err.Error(), http.StatusBadGateway)
				return
			}
		}
		reply(w, map[string]any{"Parents": []any{map[string]any{"Id": root, "Type": "ROOT"}}})
	}
}

// readRoot asks kumo for the organization's root ID.
func (f *front) readRoot(r *http.Request) (string, error) {
	req, err := http.NewRequestWithContext(r.Context(), http.MethodPost, f.kumo.url+"/", strings.NewReader("{}"))
	if err != nil {
		return "", err
	}
	req.Header.Set("X-Amz-Target", orgTarget+"ListRoots")
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var out struct{ Roots []struct{ Id string } }
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || len(out.Roots) == 0 {
		return "", fmt.Errorf("kumo ListRoots: %v (%d roots)", err, len(out.Roots))
	}
	f.mu.Lock()
	f.root = out.Roots[0].Id
	f.mu.Unlock()
	return out.Roots[0].Id, nil
}

// overlay shows accounts as AWS does: closed ones CLOSED, and ones whose
// creation was not yet polled not at all.
func (f *front) overlay(out map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	pending := map[string]bool{}
	for req := range f.pending {
		if acct, _ := f.statuses[req]["AccountId"].(string); acct != "" {
			pending[acct] = true
		}
	}
	mark := func(a map[string]any) {
		id, _ := a["Id"].(string)
		if f.closed[id] {
			a["Status"], a["State"] = "SUSPENDED", "CLOSED"
		}
		if name, ok := f.names[id]; ok {
			a["Name"] = name
		}
	}
	if a, ok := out["Account"].(map[string]any); ok {
		mark(a)
	}
	list, ok := out["Accounts"].([]any)
	if !ok {
		return
	}
	kept := []any{}
	for _, x := range list {
		a, ok := x.(map[string]any)
		if !ok {
			continue
		}
		if id, _ := a["Id"].(string); pending[id] || f.failed[id] {
			continue
		}
		mark(a)
		kept = append(kept, a)
	}
	out["Accounts"] = kept
}

// forward sends the request to kumo; edit, if set, rewrites a successful
// JSON answer.
func (f *front) forward(w http.ResponseWriter, r *http.Request, body []byte, edit func(map[string]any)) {
	var edited func([]byte) []byte
	if edit != nil {
		edited = func(out []byte) []byte {
			var m map[string]any
			if json.Unmarshal(out, &m) != nil {
				return out
			}
			edit(m)
			b, _ := json.Marshal(m)
			return b
		}
	}
	proxy(w, r, body, f.kumo.url, edited)
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	json.NewEncoder(w).Encode(v)
}

func orgError(w http.ResponseWriter, code, msg string) {
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", code)
	w.WriteHeader(http.StatusBadRequest)
	json.NewEncoder(w).Encode(map[string]string{"__type": code, "message": msg})
}

// FailCreations makes every account creation requested from now on fail
// with reason (such as "ACCOUNT_LIMIT_EXCEEDED") at its first poll; ""
// lets them succeed again.
func (o *Org) FailCreations(reason string) {
	o.front.mu.Lock()
	defer o.front.mu.Unlock()
	o.front.failWith = reason
}

// Parent returns the parent the account was moved to, or "" if it was
// never moved.
func (o *Org) Parent(account string) string {
	o.front.mu.Lock()
	defer o.front.mu.Unlock()
	return o.front.parents[account]
}

// Closed reports whether the account was closed.
func (o *Org) Closed(account string) bool {
	o.front.mu.Lock()
	defer o.front.mu.Unlock()
	return o.front.closed[account]
}

// OrgCalls returns how many times each Organizations operation was called.
func (o *Org) OrgCalls() map[string]int {
	o.front.mu.Lock()
	defer o.front.mu.Unlock()
	out := make(map[string]int, len(o.front.calls))
	for k, v := range o.front.calls {
		out[k] = v
	}
	return out
}
