package awstest

import (
	"encoding/json"
	"encoding/xml"
	"net/http"
	"net/url"
	"strings"
	"sync"
)

// Fault is an AWS error the emulated organization answers instead of
// serving a call, as AWS would on a throttled, failing or denied call.
type Fault struct {
	// Code is the AWS error code, such as "ThrottlingException",
	// "AccessDeniedException" or "InternalFailure".
	Code string
	// Status is the HTTP status (default 400; 5xx for a failing service).
	Status int
	// Times is how many matching calls fail; 0 or less: every call until
	// the fault is cleared.
	Times int
	// Fields are added to a JSON error body, e.g. {"Reason":
	// "ACCOUNT_NUMBER_LIMIT_EXCEEDED"} for Organizations'
	// ConstraintViolationException.
	Fields map[string]string
}

// faults holds the faults injected in one account's front.
type faults struct {
	mu     sync.Mutex
	by     map[string]*Fault // operation ("*" for every one) → fault
	fired  map[string]int    // operation → calls answered with its fault
	before map[string]func() // operation → what runs before its next call
}

// Inject makes calls of operation op (such as "CreateAccount",
// "DeleteTable" or "AssumeRole"; "*" for every call) to account ("" for
// the management account) fail with f until it has failed f.Times calls or
// Clear is called. It matches the JSON protocols (X-Amz-Target: DynamoDB,
// KMS, SSM, Secrets Manager, Organizations), the query protocol (IAM,
// STS), S3's object calls ("GetObject", "PutObject", "DeleteObject",
// "ListObjectsV2": what an account's data plane calls; S3's other calls
// are not matched) and, in a NewFunctionOrg, Lambda's REST calls by their
// operation name ("UpdateFunctionCode", "Invoke", "PublishVersion", ...).
// A member account's kumo is started if not yet running.
func (o *Org) Inject(account, op string, f Fault) {
	fs := o.faultsOf(account)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.by[op] = &f
}

// Before makes fn run once, when the next call of operation op to account
// ("" for the management account) arrives, before the call is served, as
// another client's calls landing between two of the caller's: fn may call
// the account itself (its calls, of op too, are served as usual). Such a
// call is matched like Inject's faults, and an injected fault still
// answers it after fn returns.
func (o *Org) Before(account, op string, fn func()) {
	fs := o.faultsOf(account)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.before[op] = fn
}

// Clear removes every fault injected in account.
func (o *Org) Clear(account string) {
	fs := o.faultsOf(account)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	clear(fs.by)
}

// Faulted returns how many calls of op to account were answered with an
// injected fault.
func (o *Org) Faulted(account, op string) int {
	fs := o.faultsOf(account)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.fired[op]
}

func (o *Org) faultsOf(account string) *faults {
	if account == "" {
		return o.front.faults
	}
	o.Endpoint(account) // starts the account's kumo and fronts
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.memberFaults[account]
}

func newFaults() *faults {
	return &faults{by: map[string]*Fault{}, fired: map[string]int{}, before: map[string]func(){}}
}

// protocol is how an AWS service answers an error.
type protocol int

const (
	protoJSON  protocol = iota // the JSON and REST-JSON protocols
	protoQuery                 // the query protocol's XML
	protoS3                    // S3's REST-XML
)

// operation returns the AWS operation of a request, and the protocol its
// errors are answered in; "" for a call not matched.
func operation(r *http.Request, body []byte) (op string, proto protocol) {
	if t := r.Header.Get("X-Amz-Target"); t != "" {
		_, op, _ = strings.Cut(t, ".")
		return op, protoJSON
	}
	if strings.HasPrefix(r.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		v, _ := url.ParseQuery(string(body))
		return v.Get("Action"), protoQuery
	}
	if strings.Contains(r.Header.Get("Authorization"), "/s3/aws4_request") {
		return s3Operation(r), protoS3
	}
	return "", protoJSON
}

// s3Operation names a path-style S3 call (/bucket/key, /bucket) of an
// account's data plane: an object's GetObject, PutObject and DeleteObject,
// and a bucket's ListObjectsV2; "" for any other.
func s3Operation(r *http.Request) string {
	_, key, _ := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/")
	q := r.URL.Query()
	if id := q.Get("x-id"); id != "" {
		q.Del("x-id") // aws-sdk-go-v2 names its object calls so
	}
	switch {
	case key != "" && len(q) == 0 && r.Method == http.MethodGet:
		return "GetObject"
	case key != "" && len(q) == 0 && r.Method == http.MethodPut && r.Header.Get("X-Amz-Copy-Source") == "":
		return "PutObject"
	case key != "" && len(q) == 0 && r.Method == http.MethodDelete:
		return "DeleteObject"
	case key == "" && q.Get("list-type") == "2" && r.Method == http.MethodGet:
		return "ListObjectsV2"
	}
	return ""
}

// answer writes the injected fault for the request, if one matches, and
// reports whether it did.
func (fs *faults) answer(w http.ResponseWriter, r *http.Request, body []byte) bool {
	if fs == nil {
		return false
	}
	op, proto := operation(r, body)
	if op == "" {
		return false
	}
	return fs.answerOp(w, op, proto)
}

// answerOp writes the injected fault for operation op, if one matches, in
// the protocol's error format, and reports whether it did.
func (fs *faults) answerOp(w http.ResponseWriter, op string, proto protocol) bool {
	if fs == nil {
		return false
	}
	fs.mu.Lock()
	if fn := fs.before[op]; fn != nil {
		delete(fs.before, op)
		fs.mu.Unlock()
		fn()
		fs.mu.Lock()
	}
	f, key := fs.by[op], op
	if f == nil {
		f, key = fs.by["*"], "*"
	}
	if f == nil {
		fs.mu.Unlock()
		return false
	}
	fault := *f
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			delete(fs.by, key)
		}
	}
	fs.fired[op]++
	fs.mu.Unlock()
	status := fault.Status
	if status == 0 {
		status = http.StatusBadRequest
	}
	msg := "injected fault " + fault.Code
	switch proto {
	case protoS3:
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(status)
		xml.NewEncoder(w).Encode(struct {
			XMLName xml.Name `xml:"Error"`
			Code    string   `xml:"Code"`
			Message string   `xml:"Message"`
		}{Code: fault.Code, Message: msg})
		return true
	case protoQuery:
		w.Header().Set("Content-Type", "text/xml")
		w.WriteHeader(status)
		type errXML struct {
			Type    string `xml:"Type"`
			Code    string `xml:"Code"`
			Message string `xml:"Message"`
		}
		xml.NewEncoder(w).Encode(struct {
			XMLName xml.Name `xml:"ErrorResponse"`
			Error   errXML   `xml:"Error"`
		}{Error: errXML{Type: "Sender", Code: fault.Code, Message: msg}})
		return true
	}
	out := map[string]string{"__type": fault.Code, "message": msg}
	for k, v := range fault.Fields {
		out[k] = v
	}
	w.Header().Set("Content-Type", "application/x-amz-json-1.1")
	w.Header().Set("X-Amzn-ErrorType", fault.Code)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(out)
	return true
}
