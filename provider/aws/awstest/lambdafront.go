package awstest

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strconv"
	"strings"
	"sync"
)

// lambdaFront stands before a member account's kumo and serves the Lambda
// calls kumo v0.33.1 lacks: PublishVersion, versions and aliases (kumo keeps
// $LATEST only and lists no aliases). It also keeps every function's code
// and settings as they pass through, so that a test can run the code a
// version or alias names (Org.Function). Everything else goes to kumo
// unchanged, Host header included (execute-api is virtual-hosted).
//
// It also plays two parts of Lambda that kumo does not: the Runtime API
// of a function's handler processes passes through it (Org.RuntimeAPI), so
// that an initialization error a handler posts (/runtime/init/error) is
// what every invocation of the function answers, as on Lambda, until a
// handler polls for work again; and it answers the faults injected for
// Lambda's operations (Org.Inject).
type lambdaFront struct {
	url     string
	account string
	proxy   *httputil.ReverseProxy
	runtime *httputil.ReverseProxy // straight to kumo's Runtime API
	faults  *faults

	mu      sync.Mutex
	fns     map[string]*frontFn
	initErr map[string][]byte // function → the init error its handler posted
}

// FunctionCode is one version of a function as a test runs it: its
// deployment package and environment.
type FunctionCode struct {
	Version string
	Zip     []byte
	Env     map[string]string
}

type frontFn struct {
	latest   FunctionCode
	versions []frontVersion // version i+1
	aliases  map[string]string
}

type frontVersion struct {
	FunctionCode
	desc string
}

const lambdaPrefix = "/2015-03-31/functions"

// newLambdaFront serves before next (the member front), whose kumo is
// kumo, and injects faults.
func newLambdaFront(t T, next, kumo *process, account string, faults *faults) *lambdaFront {
	t.Helper()
	target, _ := url.Parse(next.url)
	rt, _ := url.Parse(kumo.url)
	f := &lambdaFront{account: account, proxy: httputil.NewSingleHostReverseProxy(target), runtime: httputil.NewSingleHostReverseProxy(rt),
		faults: faults, fns: map[string]*frontFn{}, initErr: map[string][]byte{}}
	// A connection per request: no race between kumo closing an idle
	// connection and the front reusing it for a call that cannot be retried.
	f.proxy.Transport = &http.Transport{DisableKeepAlives: true}
	f.runtime.Transport = &http.Transport{DisableKeepAlives: true}
	f.runtime.FlushInterval = -1
	// A handler's poll ends when its container is stopped: not worth a
	// line in the test's output.
	f.runtime.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) { w.WriteHeader(http.StatusBadGateway) }
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: f}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	f.url = "http://" + l.Addr().String()
	return f
}

// ServeHTTP serves the calls kumo lacks and forwards the rest.
func (f *lambdaFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, runtimePrefix); ok {
		f.serveRuntime(w, r, rest)
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, lambdaPrefix)
	if !ok {
		f.proxy.ServeHTTP(w, r)
		return
	}
	parts := strings.Split(strings.Trim(rest, "/"), "/")
	for i, p := range parts {
		if u, err := url.PathUnescape(p); err == nil {
			parts[i] = u
		}
	}
	if f.faults.answerOp(w, lambdaOperation(r.Method, parts), protoJSON) {
		return
	}
	switch {
	case len(parts) == 2 && parts[1] == "invocations" && r.Method == http.MethodPost:
		f.mu.Lock()
		payload, failed := f.initErr[parts[0]]
		f.mu.Unlock()
		if !failed {
			f.proxy.ServeHTTP(w, r)
			return
		}
		// As Lambda answers while the function's runtime cannot start: the
		// invocation fails with the error the runtime posted.
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Amz-Function-Error", "Unhandled")
		w.WriteHeader(http.StatusOK)
		w.Write(payload)
	case len(parts) == 1 && parts[0] == "" && r.Method == http.MethodPost:
		f.createFunction(w, r)
	case len(parts) == 2 && parts[1] == "code" && r.Method == http.MethodPut:
		f.update(w, r, parts[0], true)
	case len(parts) == 2 && parts[1] == "configuration" && r.Method == http.MethodPut:
		f.update(w, r, parts[0], false)
	case len(parts) == 1 && r.Method == http.MethodDelete:
		f.forward(w, r, nil, func() { f.mu.Lock(); delete(f.fns, parts[0]); f.mu.Unlock() })
	case len(parts) == 2 && parts[1] == "versions":
		f.versions(w, r, parts[0])
	case len(parts) >= 2 && parts[1] == "aliases":
		alias := ""
		if len(parts) == 3 {
			alias = parts[2]
		}
		f.aliases(w, r, parts[0], alias)
	default:
		f.proxy.ServeHTTP(w, r)
	}
}

const runtimePrefix = "/_runtime/"

// serveRuntime passes a handler's Runtime API call (rest: the function's
// name and the API's path) to kumo, keeping the init error it posts.
func (f *lambdaFront) serveRuntime(w http.ResponseWriter, r *http.Request, rest string) {
	name, path, _ := strings.Cut(rest, "/")
	switch {
	case strings.HasSuffix(path, "/runtime/init/error") && r.Method == http.MethodPost:
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		f.mu.Lock()
		f.initErr[name] = body
		f.mu.Unlock()
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "OK"})
		return
	case strings.HasSuffix(path, "/runtime/invocation/next"):
		// A handler that polls for work has started.
		f.mu.Lock()
		delete(f.initErr, name)
		f.mu.Unlock()
	}
	f.runtime.ServeHTTP(w, r)
}

// lambdaOperation names the Lambda API operation of a REST call, given the
// path after /2015-03-31/functions split at '/'; "" for one it does not
// name.
func lambdaOperation(method string, parts []string) string {
	get, post, put, del := method == http.MethodGet, method == http.MethodPost, method == http.MethodPut, method == http.MethodDelete
	n := len(parts)
	switch {
	case n == 1 && parts[0] == "" && post:
		return "CreateFunction"
	case n == 1 && get:
		return "GetFunction"
	case n == 1 && del:
		return "DeleteFunction"
	case n == 2 && parts[1] == "code" && put:
		return "UpdateFunctionCode"
	case n == 2 && parts[1] == "configuration" && put:
		return "UpdateFunctionConfiguration"
	case n == 2 && parts[1] == "configuration" && get:
		return "GetFunctionConfiguration"
	case n == 2 && parts[1] == "invocations" && post:
		return "Invoke"
	case n == 2 && parts[1] == "versions" && post:
		return "PublishVersion"
	case n == 2 && parts[1] == "versions" && get:
		return "ListVersionsByFunction"
	case n == 2 && parts[1] == "policy" && post:
		return "AddPermission"
	case n == 2 && parts[1] == "aliases" && post:
		return "CreateAlias"
	case n == 3 && parts[1] == "aliases" && get:
		return "GetAlias"
	case n == 3 && parts[1] == "aliases" && put:
		return "UpdateAlias"
	}
	return ""
}

// fnConfig is the part of CreateFunction and UpdateFunction* bodies the
// front keeps.
type fnConfig struct {
	FunctionName string
	Code         struct{ ZipFile []byte }
	ZipFile      []byte
	Environment  *struct{ Variables map[string]string }
}

// forward sends r (with body) to kumo and calls ok if kumo succeeded.
func (f *lambdaFront) forward(w http.ResponseWriter, r *http.Request, body []byte, ok func()) {
	if body != nil {
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	rec := &statusWriter{ResponseWriter: w}
	f.proxy.ServeHTTP(rec, r)
	if rec.status < 300 {
		ok()
	}
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (f *lambdaFront) createFunction(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var c fnConfig
	json.Unmarshal(body, &c)
	f.forward(w, r, body, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		fn := &frontFn{aliases: map[string]string{}, latest: FunctionCode{Version: "$LATEST", Zip: c.Code.ZipFile}}
		if c.Environment != nil {
			fn.latest.Env = c.Environment.Variables
		}
		f.fns[c.FunctionName] = fn
	})
}

func (f *lambdaFront) update(w http.ResponseWriter, r *http.Request, name string, code bool) {
	body, _ := io.ReadAll(r.Body)
	var c fnConfig
	json.Unmarshal(body, &c)
	f.forward(w, r, body, func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		fn := f.fns[name]
		if fn == nil {
			return
		}
		if code {
			fn.latest.Zip = c.ZipFile
		} else if c.Environment != nil {
			fn.latest.Env = c.Environment.Variables
		}
	})
}

func lambdaError(w http.ResponseWriter, status int, typ, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Amzn-Errortype", typ)
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(map[string]string{"Type": "User", "Message": msg})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (f *lambdaFront) arn(name string) string {
	return "arn:aws:lambda:" + Region + ":" + f.account + ":function:" + name
}

func (f *lambdaFront) versionJSON(name string, v frontVersion) map[string]any {
	sum := sha256.Sum256(v.Zip)
	return map[string]any{
		"FunctionName": name, "FunctionArn": f.arn(name) + ":" + v.Version, "Version": v.Version,
		"Description": v.desc, "CodeSha256": base64.StdEncoding.EncodeToString(sum[:]), "CodeSize": len(v.Zip),
		"State": "Active", "LastUpdateStatus": "Successful",
	}
}

// versions serves PublishVersion (POST) and ListVersionsByFunction (GET).
func (f *lambdaFront) versions(w http.ResponseWriter, r *http.Request, name string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn := f.fns[name]
	if fn == nil {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+f.arn(name))
		return
	}
	switch r.Method {
	case http.MethodPost:
		var in struct{ Description string }
		json.NewDecoder(r.Body).Decode(&in)
		v := frontVersion{FunctionCode: fn.latest, desc: in.Description}
		v.Version = strconv.Itoa(len(fn.versions) + 1)
		fn.versions = append(fn.versions, v)
		writeJSON(w, http.StatusCreated, f.versionJSON(name, v))
	case http.MethodGet:
		list := []map[string]any{f.versionJSON(name, frontVersion{FunctionCode: fn.latest})}
		for _, v := range fn.versions {
			list = append(list, f.versionJSON(name, v))
		}
		writeJSON(w, http.StatusOK, map[string]any{"Versions": list})
	default:
		lambdaError(w, http.StatusMethodNotAllowed, "InvalidParameterValueException", r.Method+" is not served")
	}
}

// aliases serves CreateAlias, GetAlias, UpdateAlias, DeleteAlias and
// ListAliases.
func (f *lambdaFront) aliases(w http.ResponseWriter, r *http.Request, name, alias string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn := f.fns[name]
	if fn == nil {
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Function not found: "+f.arn(name))
		return
	}
	aliasJSON := func(a string) map[string]any {
		return map[string]any{"AliasArn": f.arn(name) + ":" + a, "Name": a, "FunctionVersion": fn.aliases[a]}
	}
	var in struct{ Name, FunctionVersion string }
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		json.NewDecoder(r.Body).Decode(&in)
		if n, err := strconv.Atoi(in.FunctionVersion); in.FunctionVersion != "$LATEST" && (err != nil || n < 1 || n > len(fn.versions)) {
			lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", fmt.Sprintf("Function not found: %s:%s", f.arn(name), in.FunctionVersion))
			return
		}
	}
	_, exists := fn.aliases[alias]
	switch {
	case alias == "" && r.Method == http.MethodPost:
		if _, ok := fn.aliases[in.Name]; ok {
			lambdaError(w, http.StatusConflict, "ResourceConflictException", "Alias already exists: "+in.Name)
			return
		}
		fn.aliases[in.Name] = in.FunctionVersion
		writeJSON(w, http.StatusCreated, aliasJSON(in.Name))
	case alias == "" && r.Method == http.MethodGet:
		list := []map[string]any{}
		for a := range fn.aliases {
			list = append(list, aliasJSON(a))
		}
		writeJSON(w, http.StatusOK, map[string]any{"Aliases": list})
	case !exists:
		lambdaError(w, http.StatusNotFound, "ResourceNotFoundException", "Alias not found: "+f.arn(name)+":"+alias)
	case r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, aliasJSON(alias))
	case r.Method == http.MethodPut:
		fn.aliases[alias] = in.FunctionVersion
		writeJSON(w, http.StatusOK, aliasJSON(alias))
	case r.Method == http.MethodDelete:
		delete(fn.aliases, alias)
		w.WriteHeader(http.StatusNoContent)
	default:
		lambdaError(w, http.StatusMethodNotAllowed, "InvalidParameterValueException", r.Method+" is not served")
	}
}

// code returns what qualifier (a version, an alias or "$LATEST") of
// function name runs.
func (f *lambdaFront) code(name, qualifier string) (FunctionCode, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn := f.fns[name]
	if fn == nil {
		return FunctionCode{}, false
	}
	if v, ok := fn.aliases[qualifier]; ok {
		qualifier = v
	}
	if qualifier == "$LATEST" {
		return fn.latest, true
	}
	n, err := strconv.Atoi(qualifier)
	if err != nil || n < 1 || n > len(fn.versions) {
		return FunctionCode{}, false
	}
	return fn.versions[n-1].FunctionCode, true
}
