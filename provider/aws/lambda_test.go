package aws

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// lambdaHost is the silo Lambda host the emulated Lambda runs.
var lambdaHost = awstest.LambdaHost

// example builds a function of examples/findings.
func example(t testing.TB, fn string) build.Artifact {
	t.Helper()
	cache := os.Getenv("SILO_TEST_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "silo-test-cache")
	}
	a, err := build.Function(context.Background(), filepath.Join("..", "..", "examples", "findings", "functions", fn), filepath.Join(cache, "builds"))
	if err != nil {
		t.Fatalf("build examples/findings/functions/%s: %v", fn, err)
	}
	return a
}

// lambdaArch is the Lambda architecture of this machine.
func lambdaArch() string {
	if goruntime.GOARCH == "amd64" {
		return "x86_64"
	}
	return goruntime.GOARCH
}

// fnOrg is an emulated organization whose provider deploys functions.
type fnOrg struct {
	org  *awstest.Org
	p    *Provider
	prod sync.Once
}

func newFnOrg(t testing.TB, artifacts map[string]build.Artifact, opts ...func(*Config)) *fnOrg {
	t.Helper()
	org := awstest.NewFunctionOrg(t)
	cfg := Config{
		AWS: org.Config(), Email: "aws@example.com", Endpoint: org.Endpoint, PollInterval: time.Millisecond,
		Functions: &FunctionCode{
			Arch: lambdaArch(),
			Host: func(ctx context.Context, arch string) ([]byte, error) { return lambdaHost() },
			Artifact: func(ctx context.Context, digest string) ([]byte, error) {
				for _, a := range artifacts {
					if a.Digest == digest {
						return os.ReadFile(a.Path)
					}
				}
				return nil, silo.Errorf(silo.CodeNotFound, "no artifact %s", digest)
			},
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fnOrg{org: org, p: p}
}

func mustApply(t testing.TB, p *Provider, acct silo.AccountID, typ silo.ResourceType, name string, spec any) {
	t.Helper()
	r, err := silo.NewResource(typ, name, spec)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Apply(context.Background(), acct, silo.Change{Op: silo.OpCreate, Type: typ, Name: name, Desired: &r}); err != nil {
		t.Fatalf("apply %s %s to %s: %v", typ, name, acct, err)
	}
}

// deployFindings creates tenant acct with the example app's findings table,
// plan config and the ingest and list functions behind their routes, and
// returns a key of the tenant.
func (o *fnOrg) deployFindings(t testing.TB, acct silo.AccountID, arts map[string]build.Artifact) string {
	t.Helper()
	ctx := context.Background()
	o.prod.Do(func() { // the example's production section: ingest reads its export
		if err := o.p.CreateAccount(ctx, "production", silo.KindProduction); err != nil {
			t.Fatal(err)
		}
		mustApply(t, o.p, "production", silo.TypeTable, "threat-intel", struct{}{})
		mustApply(t, o.p, "production", silo.TypeExport, "threat-intel", silo.ExportSpec{Table: "threat-intel"})
	})
	if err := o.p.CreateAccount(ctx, acct, silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	mustApply(t, o.p, acct, silo.TypeTable, "findings", struct{}{})
	mustApply(t, o.p, acct, silo.TypeConfig, "plan", silo.ConfigSpec{Value: "pro"})
	mustApply(t, o.p, acct, silo.TypeFunction, "ingest", silo.FunctionSpec{Artifact: arts["ingest"].Digest, Timeout: 2 * time.Second,
		Tables: map[string]string{"findings": "read-write"}, Config: []string{"plan"}, Secrets: []string{"github-token"}, Exports: []string{"threat-intel"}})
	mustApply(t, o.p, acct, silo.TypeFunction, "list", silo.FunctionSpec{Artifact: arts["list"].Digest, Timeout: 2 * time.Second,
		Tables: map[string]string{"findings": "read"}, Config: []string{"plan"}})
	mustApply(t, o.p, acct, silo.TypeRoute, "POST /findings", silo.RouteSpec{Method: "POST", Path: "/findings", Function: "ingest"})
	mustApply(t, o.p, acct, silo.TypeRoute, "GET /findings", silo.RouteSpec{Method: "GET", Path: "/findings", Function: "list"})
	mustApply(t, o.p, acct, silo.TypeRoute, "GET /findings/{id}", silo.RouteSpec{Method: "GET", Path: "/findings/{id}", Function: "list"})
	plain, k, err := apikey.New(acct)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.p.PutAPIKey(ctx, acct, k.ID, k.Hash, nil); err != nil {
		t.Fatal(err)
	}
	return plain
}

func (o *fnOrg) awsID(t testing.TB, acct silo.AccountID) string {
	t.Helper()
	id, err := o.p.awsID(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// startHost runs what the live alias of function fn of acct runs, as
// Lambda would: the package unpacked in a task root, the function's
// environment plus the credentials of its execution role, its bootstrap
// serving the account's Runtime API. It ends with the test, or when stop
// is called; out holds what it wrote once stop has returned.
func (o *fnOrg) startHost(t testing.TB, acct silo.AccountID, fn string) (stop func(), out *bytes.Buffer) {
	t.Helper()
	return o.startHostWith(t, acct, fn, hostOptions{})
}

// hostOptions change how startHostWith runs a package.
type hostOptions struct {
	env []string // added to the function's environment
	// unpacked, if set, changes the unpacked task root before the host
	// starts (say, to drop or damage the prepared part).
	unpacked func(t testing.TB, root string)
	// started, if set, is called just before the process starts (once the
	// package is unpacked).
	started func()
}

// startHostWith is startHost with options.
func (o *fnOrg) startHostWith(t testing.TB, acct silo.AccountID, fn string, opt hostOptions) (stop func(), out *bytes.Buffer) {
	t.Helper()
	awsID := o.awsID(t, acct)
	code, ok := o.org.Function(awsID, lambdaName(fn), liveAlias)
	if !ok {
		t.Fatalf("function %s of %s has no %s alias", fn, acct, liveAlias)
	}
	root := t.TempDir()
	zr, err := zip.NewReader(bytes.NewReader(code.Zip), int64(len(code.Zip)))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		p := filepath.Join(root, filepath.FromSlash(f.Name))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, b, f.Mode().Perm()); err != nil {
			t.Fatal(err)
		}
	}
	if opt.unpacked != nil {
		opt.unpacked(t, root)
	}
	cmd := exec.Command(filepath.Join(root, "bootstrap"))
	cmd.Env = []string{
		"AWS_LAMBDA_RUNTIME_API=" + o.org.RuntimeAPI(awsID, lambdaName(fn)),
		"LAMBDA_TASK_ROOT=" + root,
		"AWS_REGION=" + awstest.Region, "AWS_ACCESS_KEY_ID=AKIDEMULATED", "AWS_SECRET_ACCESS_KEY=emulated",
		"AWS_EC2_METADATA_DISABLED=true", "HOME=" + root, "TMPDIR=" + t.TempDir(),
	}
	for k, v := range code.Env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, opt.env...)
	out = &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if opt.started != nil {
		opt.started()
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cmd.Process.Kill()
			cmd.Wait()
			if t.Failed() {
				t.Logf("silo-lambda %s/%s:\n%s", acct, fn, out)
			}
		})
	}
	t.Cleanup(stop)
	return stop, out
}

type reply struct {
	status int
	body   string
}

// call sends a request to the HTTP API of acct (execute-api on the
// account's emulator, addressed by the API's own host name).
func (o *fnOrg) call(t *testing.T, acct silo.AccountID, method, path, key, body string) reply {
	t.Helper()
	base, err := o.p.URL(context.Background(), acct)
	if err != nil {
		t.Fatalf("URL of %s: %v", acct, err)
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" {
		t.Fatalf("URL of %s is %q", acct, base)
	}
	req, err := http.NewRequest(method, o.org.Endpoint(o.awsID(t, acct))+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Host = u.Host
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, acct, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b)}
}

// hostStartLimit bounds how long a test waits for a host it started to
// poll kumo's Runtime API: a fraction of a second on an idle machine, but
// the process loads a module and may wait its turn for the CPU.
const hostStartLimit = 2 * time.Minute

// callReady is call, retried while kumo has no handler polling for the
// function yet (it answers 500 before the host's first poll).
func (o *fnOrg) callReady(t *testing.T, acct silo.AccountID, method, path, key, body string) reply {
	t.Helper()
	for deadline := time.Now().Add(hostStartLimit); ; time.Sleep(50 * time.Millisecond) {
		r := o.call(t, acct, method, path, key, body)
		if r.status != http.StatusInternalServerError || time.Now().After(deadline) {
			return r
		}
	}
}

// smokeReady is Provider.Smoke, retried while kumo has no handler polling
// for the function yet (Lambda answers 500 to the provider's attempts,
// which it reports as AWS being unavailable).
func (o *fnOrg) smokeReady(ctx context.Context, acct silo.AccountID, fn string) error {
	for deadline := time.Now().Add(hostStartLimit); ; time.Sleep(50 * time.Millisecond) {
		err := o.p.Smoke(ctx, acct, fn)
		if silo.ErrorCode(err) != silo.CodeUnavailable || time.Now().After(deadline) {
			return err
		}
	}
}

// TestFunctionsServeTenantsEndToEnd is the whole path on the emulated
// organization: an HTTP request to a tenant's own API (execute-api) →
// Lambda → the silo Lambda host as a child process → the example app's
// .wasm → the tenant's DynamoDB table in its own account → the response.
// The twins: a tenant's key is refused by the other tenant's API (I4), and
// what one tenant wrote is not found through the other's functions.
func TestFunctionsServeTenantsEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and the example's functions")
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	arts := map[string]build.Artifact{"ingest": example(t, "ingest"), "list": example(t, "list")}
	o := newFnOrg(t, arts)
	keys := map[silo.AccountID]string{}
	for _, acct := range []silo.AccountID{"acme", "globex"} {
		keys[acct] = o.deployFindings(t, acct, arts)
		o.startHost(t, acct, "ingest")
		o.startHost(t, acct, "list")
	}

	ids := map[silo.AccountID]string{}
	for _, acct := range []silo.AccountID{"acme", "globex"} {
		r := o.callReady(t, acct, "POST", "/findings", keys[acct], `{"severity":"high","title":"`+string(acct)+` leak"}`)
		if r.status != http.StatusCreated {
			t.Fatalf("POST /findings on %s: %d %s, want 201", acct, r.status, r.body)
		}
		var f struct{ ID, Title string }
		if err := json.Unmarshal([]byte(r.body), &f); err != nil || f.ID == "" {
			t.Fatalf("POST /findings on %s answered %s", acct, r.body)
		}
		ids[acct] = f.ID
		r = o.callReady(t, acct, "GET", "/findings", keys[acct], "")
		if r.status != http.StatusOK || !strings.Contains(r.body, f.ID) {
			t.Fatalf("GET /findings on %s: %d %s, want 200 listing %s", acct, r.status, r.body, f.ID)
		}
		r = o.call(t, acct, "GET", "/findings/"+f.ID, keys[acct], "")
		if r.status != http.StatusOK || !strings.Contains(r.body, string(acct)+" leak") {
			t.Fatalf("GET /findings/%s on %s: %d %s, want 200 with the finding", f.ID, acct, r.status, r.body)
		}
	}

	t.Run("functions read production's export", func(t *testing.T) {
		// Production's table, exported to the tenants (deployFindings).
		pd, err := o.p.Data(context.Background(), silo.ProductionID)
		if err != nil {
			t.Fatal(err)
		}
		if err := pd.Put(context.Background(), "threat-intel", "cve:CVE-2024-3094", []byte(`{"threat_level":"critical","known_exploited":true}`)); err != nil {
			t.Fatal(err)
		}
		for _, acct := range []silo.AccountID{"acme", "globex"} {
			r := o.call(t, acct, "POST", "/findings", keys[acct], `{"severity":"high","cve":"CVE-2024-3094"}`)
			if r.status != http.StatusCreated || !strings.Contains(r.body, `"known_exploited":true`) {
				t.Errorf("POST /findings with a known CVE on %s: %d %s, want 201 enriched from production's export", acct, r.status, r.body)
			}
			// Twin: a CVE production does not hold is not enriched.
			r = o.call(t, acct, "POST", "/findings", keys[acct], `{"severity":"low","cve":"CVE-1999-0001"}`)
			if r.status != http.StatusCreated || strings.Contains(r.body, `"known_exploited":true`) {
				t.Errorf("POST /findings with an unknown CVE on %s: %d %s, want 201 without enrichment", acct, r.status, r.body)
			}
		}
	})

	t.Run("a key is worthless on another tenant's API", func(t *testing.T) {
		for _, c := range []struct{ api, key silo.AccountID }{{"acme", "globex"}, {"globex", "acme"}} {
			r := o.call(t, c.api, "GET", "/findings", keys[c.key], "")
			if r.status != http.StatusUnauthorized {
				t.Errorf("%s's key on %s's API: %d %s, want 401", c.key, c.api, r.status, r.body)
			}
		}
		if r := o.call(t, "acme", "GET", "/findings", "", ""); r.status != http.StatusUnauthorized {
			t.Errorf("no key on acme's API: %d %s, want 401", r.status, r.body)
		}
	})

	t.Run("a tenant's functions reach only its own table", func(t *testing.T) {
		for _, c := range []struct{ api, other silo.AccountID }{{"acme", "globex"}, {"globex", "acme"}} {
			r := o.call(t, c.api, "GET", "/findings/"+ids[c.other], keys[c.api], "")
			if r.status != http.StatusNotFound {
				t.Errorf("%s's finding through %s's API: %d %s, want 404", c.other, c.api, r.status, r.body)
			}
			r = o.call(t, c.api, "GET", "/findings", keys[c.api], "")
			if strings.Contains(r.body, ids[c.other]) {
				t.Errorf("%s's list shows %s's finding: %s", c.api, c.other, r.body)
			}
		}
	})
}

// TestHostileGuestsContainedInLambdaHost runs the runtime's hostile test
// guest on Lambda: a loop without end, a memory bomb, a deep recursion and
// an exit are each stopped by the guards the host shares with the local
// runtime, answered with an error, and the same host process answers the
// next request. It runs on the package's machine code and on the
// interpreter (which serves first when there is none).
func TestHostileGuestsContainedInLambdaHost(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and the runtime's test guest")
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	cache := os.Getenv("SILO_TEST_CACHE")
	if cache == "" {
		cache = filepath.Join(os.TempDir(), "silo-test-cache")
	}
	guest, err := build.Function(context.Background(), filepath.Join("..", "..", "runtime", "testdata", "guest"), filepath.Join(cache, "builds"))
	if err != nil {
		t.Fatal(err)
	}
	o := newFnOrg(t, map[string]build.Artifact{"guest": guest})
	ctx := context.Background()
	if err := o.p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	mustApply(t, o.p, "acme", silo.TypeTable, "items", struct{}{})
	// The timeout leaves the interpreter, which serves first, time to
	// reach the call stack cap on a busy machine (1 s did not, at load 15).
	mustApply(t, o.p, "acme", silo.TypeFunction, "guest", silo.FunctionSpec{Artifact: guest.Digest, Memory: 16 << 20, Timeout: 3 * time.Second,
		Tables: map[string]string{"items": "read-write"}})
	mustApply(t, o.p, "acme", silo.TypeRoute, "ANY /{path...}", silo.RouteSpec{Path: "/{path...}", Function: "guest"})
	plain, k, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.p.PutAPIKey(ctx, "acme", k.ID, k.Hash, nil); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ engine, want string }{
		{"", `"code":"precompiled"`},            // the package's machine code
		{"interpreter", `"code":"interpreter"`}, // what serves first without it
	} {
		t.Run("code "+strings.Trim(c.want[7:], `"`), func(t *testing.T) {
			stop, out := o.startHostWith(t, "acme", "guest", hostOptions{env: []string{"SILO_LAMBDA_ENGINE=" + c.engine}})
			if r := o.callReady(t, "acme", "GET", "/echo", plain, ""); r.status != http.StatusOK {
				t.Fatalf("GET /echo: %d %s, want 200", r.status, r.body)
			}
			// A counter in the tenant's DynamoDB table, through the
			// function's own role: two Adds, the second sees the first.
			var sums [2]int
			for i := range sums {
				r := o.call(t, "acme", "GET", "/kv/add?key=hits&d=5", plain, "")
				n, err := strconv.Atoi(r.body)
				if r.status != http.StatusOK || err != nil {
					t.Fatalf("GET /kv/add: %d %s, want 200 and the sum", r.status, r.body)
				}
				sums[i] = n
			}
			if sums[1] != sums[0]+5 || sums[0]%5 != 0 {
				t.Errorf("two Adds of 5 on Lambda answered %v; want consecutive multiples of 5", sums)
			}
			for _, c := range []struct {
				path string
				want int
			}{
				{"/loop", http.StatusServiceUnavailable},                 // the deadline, through the checkpoints
				{"/sleep", http.StatusServiceUnavailable},                // the deadline, in a sleep
				{"/membomb", http.StatusInternalServerError},             // the memory limit
				{"/recurse?n=100000000", http.StatusInternalServerError}, // the call stack cap
				{"/exit", http.StatusInternalServerError},                // an exit discards the instance only
			} {
				if r := o.call(t, "acme", "GET", c.path, plain, ""); r.status != c.want {
					t.Errorf("GET %s: %d %s, want %d", c.path, r.status, r.body, c.want)
				}
				if r := o.call(t, "acme", "GET", "/echo", plain, ""); r.status != http.StatusOK {
					t.Fatalf("GET /echo after %s: %d %s, want 200 from the same host", c.path, r.status, r.body)
				}
			}
			stop()
			if !strings.Contains(out.String(), c.want) {
				t.Errorf("the host did not serve from the code wanted (%s):\n%s", c.want, out)
			}
		})
	}
}

// TestRollbackSwitchesTheAliasBack applies a function, a new release of it
// and the first again: the second publishes a version and moves the live
// alias; the third (a rollback) publishes nothing and moves the alias back
// to the first version, whose package is the first package.
func TestRollbackSwitchesTheAliasBack(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and an example function")
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	list := example(t, "list")
	o := newFnOrg(t, map[string]build.Artifact{"list": list})
	ctx := context.Background()
	if err := o.p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	awsID := o.awsID(t, "acme")
	release := func(timeout time.Duration) silo.FunctionSpec {
		return silo.FunctionSpec{Artifact: list.Digest, Timeout: timeout, Tables: map[string]string{"findings": "read"}}
	}
	steps := []struct {
		name        string
		spec        silo.FunctionSpec
		wantVersion string
		wantTimeout int32 // Lambda's, in seconds
	}{
		{"first release", release(2 * time.Second), "1", 3},
		{"the same again", release(2 * time.Second), "1", 3},
		{"a new release", release(4 * time.Second), "2", 5},
		{"rollback", release(2 * time.Second), "1", 3},
		{"roll forward", release(4 * time.Second), "2", 5},
	}
	packages := map[string][]byte{}
	for _, s := range steps {
		mustApply(t, o.p, "acme", silo.TypeFunction, "list", s.spec)
		v, err := o.p.LiveVersion(ctx, "acme", "list")
		if err != nil || v != s.wantVersion {
			t.Fatalf("%s: live version %q, %v; want %q", s.name, v, err, s.wantVersion)
		}
		code, ok := o.org.Function(awsID, lambdaName("list"), liveAlias)
		if !ok {
			t.Fatalf("%s: the live alias names no code", s.name)
		}
		if prev, seen := packages[v]; seen && !bytes.Equal(prev, code.Zip) {
			t.Errorf("%s: version %s runs another package than when it was published", s.name, v)
		}
		packages[v] = code.Zip
		if s.wantVersion == "1" || s.wantVersion == "2" {
			spec := unzipFile(t, code.Zip, "function.json")
			var fs silo.FunctionSpec
			if err := json.Unmarshal(spec, &fs); err != nil || fs.Timeout != s.spec.Timeout {
				t.Errorf("%s: the live package's spec has timeout %s (%v), want %s", s.name, fs.Timeout, err, s.spec.Timeout)
			}
		}
	}
	if _, ok := o.org.Function(awsID, lambdaName("list"), "3"); ok {
		t.Error("a rollback or an unchanged apply published a version; it should only move the alias")
	}
	cfg, err := o.p.member(awsID).fn.GetFunctionConfiguration(ctx, &lambda.GetFunctionConfigurationInput{FunctionName: aws.String(lambdaName("list"))})
	if err != nil {
		t.Fatal(err)
	}
	if got := aws.ToInt32(cfg.Timeout); got != 5 {
		t.Errorf("Lambda timeout %d s, want 5 (the spec's 4 s and a second)", got)
	}
	if got := aws.ToInt32(cfg.MemorySize); got != minFunctionMiB {
		t.Errorf("Lambda memory %d MB, want %d", got, minFunctionMiB)
	}
	if got, want := aws.ToString(cfg.Role), "arn:aws:iam::"+awsID+":role/silo/silo-fn-list"; got != want {
		t.Errorf("execution role %s, want %s", got, want)
	}

	// Deleting the function deletes it from Lambda.
	if err := o.p.Apply(ctx, "acme", silo.Change{Op: silo.OpDelete, Type: silo.TypeFunction, Name: "list"}); err != nil {
		t.Fatal(err)
	}
	if _, err := o.p.LiveVersion(ctx, "acme", "list"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("live version after delete: %v, want CodeNotFound", err)
	}
}

func unzipFile(t *testing.T, zipped []byte, name string) []byte {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(zipped), int64(len(zipped)))
	if err != nil {
		t.Fatal(err)
	}
	rc, err := zr.Open(name)
	if err != nil {
		t.Fatalf("package has no %s: %v", name, err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

// TestSmokeFailsABadReleaseAndRollbackRestores runs a release's smoke test
// on Lambda the way a rollout does: the smoke function passes on a good
// release, fails on a bad one (its grant on the table is gone), and passes
// again once the rollback has moved the alias back. Each time Lambda would
// start the new version's containers; the test starts the host with the
// code the alias names.
func TestSmokeFailsABadReleaseAndRollbackRestores(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and an example function")
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	list := example(t, "list")
	o := newFnOrg(t, map[string]build.Artifact{"list": list})
	ctx := context.Background()
	if err := o.p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	mustApply(t, o.p, "acme", silo.TypeTable, "findings", struct{}{})
	good := silo.FunctionSpec{Artifact: list.Digest, Timeout: 2 * time.Second, Tables: map[string]string{"findings": "read"}}
	bad := silo.FunctionSpec{Artifact: list.Digest, Timeout: 2 * time.Second}

	mustApply(t, o.p, "acme", silo.TypeFunction, "list", good)
	stop, _ := o.startHost(t, "acme", "list")
	if err := o.smokeReady(ctx, "acme", "list"); err != nil {
		t.Fatalf("smoke on the good release: %v", err)
	}

	mustApply(t, o.p, "acme", silo.TypeFunction, "list", bad)
	stop()
	stop, _ = o.startHost(t, "acme", "list")
	err := o.smokeReady(ctx, "acme", "list")
	if silo.ErrorCode(err) != silo.CodeFailedCheck || !strings.Contains(silo.UserMessage(err), "smoke function list of acme answered 503") {
		t.Fatalf("smoke on the bad release: %v, want CodeFailedCheck naming the function, tenant and status", err)
	}

	mustApply(t, o.p, "acme", silo.TypeFunction, "list", good) // the rollback
	if v, err := o.p.LiveVersion(ctx, "acme", "list"); err != nil || v != "1" {
		t.Fatalf("live version after rollback: %q, %v; want 1", v, err)
	}
	stop()
	o.startHost(t, "acme", "list")
	if err := o.smokeReady(ctx, "acme", "list"); err != nil {
		t.Fatalf("smoke after rollback: %v", err)
	}
}

// TestLogsReadTheHostsLines reads back, through Provider.Logs, the lines a
// real silo Lambda host wrote while serving a request, put into the
// function's log group as Lambda puts a function's output (the emulator
// does not collect it). Lambda's own lines and a line naming another
// account are left out.
func TestLogsReadTheHostsLines(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and the example's functions")
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	arts := map[string]build.Artifact{"ingest": example(t, "ingest"), "list": example(t, "list")}
	o := newFnOrg(t, arts)
	ctx := context.Background()
	start := time.Now().Add(-time.Second)
	key := o.deployFindings(t, "acme", arts)
	stop, out := o.startHost(t, "acme", "ingest")
	r := o.callReady(t, "acme", "POST", "/findings", key, `{"severity":"high","title":"leak"}`)
	if r.status != http.StatusCreated {
		t.Fatalf("POST /findings: %d %s", r.status, r.body)
	}
	stop()

	// Lambda's part: the host's stdout, line by line, into the function's
	// log group, with its own START line; plus a forged line.
	awsID := o.awsID(t, "acme")
	cwl := o.p.member(awsID).cwl
	group, stream := aws.String("/aws/lambda/"+lambdaName("ingest")), aws.String("2026/01/01/[1]abc")
	if _, err := cwl.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: group}); err != nil {
		t.Fatal(err)
	}
	if _, err := cwl.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: group, LogStreamName: stream}); err != nil {
		t.Fatal(err)
	}
	now := time.Now().UnixMilli()
	events := []cwltypes.InputLogEvent{{Timestamp: aws.Int64(now), Message: aws.String("START RequestId: 1 Version: 1")}}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		events = append(events, cwltypes.InputLogEvent{Timestamp: aws.Int64(now), Message: aws.String(line)})
	}
	forged := `{"time":"` + time.Now().UTC().Format(time.RFC3339Nano) + `","level":"INFO","msg":"forged","account":"globex"}`
	events = append(events, cwltypes.InputLogEvent{Timestamp: aws.Int64(now), Message: aws.String(forged)})
	if _, err := cwl.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream, LogEvents: events}); err != nil {
		t.Fatal(err)
	}

	lines, err := o.p.Logs(ctx, "acme", start, 0)
	if err != nil {
		t.Fatal(err)
	}
	var stored *logs.Entry
	for i, l := range lines {
		if l.Account != "acme" || strings.HasPrefix(l.Msg, "START") || l.Msg == "forged" {
			t.Errorf("Logs returned a line it should leave out: %+v", l)
		}
		if l.Msg == "finding stored" {
			stored = &lines[i]
		}
	}
	if stored == nil {
		t.Fatalf("Logs lacks the function's line \"finding stored\"; got %+v\nhost output:\n%s", lines, out)
	}
	if stored.Function != "ingest" || stored.Level != "INFO" || stored.RequestID == "" || stored.Attrs["severity"] != "high" {
		t.Errorf("the line reads %+v; want function ingest, level INFO, a request ID and severity=high", *stored)
	}
}

// TestRouteToAMissingFunction applies a route before its function: one
// clear error that changes nothing; after the function, the same route
// applies.
func TestRouteToAMissingFunction(t *testing.T) {
	list := example(t, "list")
	o := newFnOrg(t, map[string]build.Artifact{"list": list})
	ctx := context.Background()
	if err := o.p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	route, err := silo.NewResource(silo.TypeRoute, "GET /findings", silo.RouteSpec{Method: "GET", Path: "/findings", Function: "list"})
	if err != nil {
		t.Fatal(err)
	}
	err = o.p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: silo.TypeRoute, Name: route.Name, Desired: &route})
	if silo.ErrorCode(err) != silo.CodeInvalid || !strings.Contains(silo.UserMessage(err), "function list, which is not deployed") {
		t.Fatalf("route before its function: %v, want CodeInvalid naming the function", err)
	}
	if rs, err := o.p.Resources(ctx, "acme"); err != nil || len(rs) != 0 {
		t.Fatalf("resources after the refused route: %v, %v; want none", rs, err)
	}
	if u, err := o.p.URL(ctx, "acme"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Fatalf("URL after the refused route: %q, %v; want CodeNotFound (no API created)", u, err)
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	mustApply(t, o.p, "acme", silo.TypeFunction, "list", silo.FunctionSpec{Artifact: list.Digest})
	mustApply(t, o.p, "acme", silo.TypeRoute, route.Name, silo.RouteSpec{Method: "GET", Path: "/findings", Function: "list"})
	if u, err := o.p.URL(ctx, "acme"); err != nil || !strings.HasPrefix(u, "https://") {
		t.Errorf("URL after the route: %q, %v; want the API's https endpoint", u, err)
	}
}
