// Package awstest emulates an AWS organization for tests of the AWS
// provider: one kumo process (github.com/sivchari/kumo, a third-party AWS
// emulator) for the management account and one per member account, since
// kumo serves a single account and keeps its state in the process. A small
// front for the management account adds the Organizations calls kumo lacks
// (orgfront.go), and one before each member account's kumo the DynamoDB
// resource policy calls (memberfront.go); docs/aws.md lists them.
//
// It is imported by tests, and by cmd/silo-aws-emulator, which offers one
// organization to silo on this machine (Serve). Like provider/aws it may
// import aws-sdk-go-v2; it must not import any other project package but
// the root.
package awstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
)

// Region is the region the emulated organization lives in.
const Region = "us-east-1"

// T is what the emulation needs of its owner: a test's testing.TB, or the
// emulator command's own. Cleanup runs when the owner ends; Fatal and
// Fatalf end the owner.
type T interface {
	Helper()
	Cleanup(func())
	Errorf(format string, args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Logf(format string, args ...any)
}

var (
	kumoMu   sync.Mutex
	kumoPath string // once built
	kumoErr  error  // a build that failed by itself (not stopped by its context)
)

// Kumo returns the path of the kumo binary, built once per process from
// the tool dependency in go.mod (BuildKumo). It fails t if kumo cannot be
// built.
func Kumo(t T) string {
	t.Helper()
	p, err := BuildKumo(context.Background())
	if err != nil {
		t.Fatalf("kumo, the AWS emulator, is not available: it is built from the tool dependency in silo's go.mod, so run this from a clone of silo (with the go command on PATH); building it failed: %v", err)
	}
	return p
}

// BuildKumo builds kumo, if the build cache lacks it, and returns its
// path; later calls return the same path. When ctx ends first, the build
// stops, its compiler processes with it, and BuildKumo returns ctx's
// error; the next call builds again.
func BuildKumo(ctx context.Context) (string, error) {
	kumoMu.Lock()
	defer kumoMu.Unlock()
	if kumoPath != "" || kumoErr != nil {
		return kumoPath, kumoErr
	}
	// "go tool -n" builds the tool into the build cache if needed and
	// prints its path.
	out, err := buildCmd(ctx, "tool", "-n", "kumo").Output()
	if ctx.Err() != nil {
		return "", ctx.Err()
	}
	if err == nil {
		if p := strings.TrimSpace(string(out)); p != "" {
			if _, err := os.Stat(p); err == nil {
				kumoPath = p
				return p, nil
			}
		}
	}
	dir, err := os.MkdirTemp("", "kumo-")
	if err != nil {
		kumoErr = err
		return "", err
	}
	p := filepath.Join(dir, "kumo")
	b, err := buildCmd(ctx, "build", "-o", p, "github.com/sivchari/kumo/cmd/kumo").CombinedOutput()
	switch {
	case ctx.Err() != nil:
		os.RemoveAll(dir)
		return "", ctx.Err()
	case err != nil:
		kumoErr = fmt.Errorf("go build kumo: %v: %s", err, b)
		return "", kumoErr
	}
	kumoPath = p
	return p, nil
}

// buildCmd is the go command with args, in a process group of its own
// that ctx's end kills whole: the go command and the compilers it runs.
func buildCmd(ctx context.Context, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.SysProcAttr = groupAttr()
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	return cmd
}

// process is one running kumo.
type process struct {
	url string
	cmd *exec.Cmd
	out *bytes.Buffer
}

// kumoOpts are how a kumo process is run.
type kumoOpts struct {
	// withParent: the kernel also ends the process when the thread that
	// started it ends (an emulator killed by SIGKILL leaves no kumo
	// running; not in tests, where a thread that ends must not take a kumo
	// with it).
	withParent bool
	// dataDir, if set, is where kumo keeps its state across restarts; the
	// process is then stopped with SIGTERM, so that it writes it out.
	dataDir string
	env     []string // added to its environment
}

// start runs kumo on a free local port and waits until it accepts
// connections. t.Cleanup stops it.
func start(t T, o kumoOpts) *process {
	t.Helper()
	bin := Kumo(t)
	addr := freeAddr(t)
	t.Cleanup(func() { releaseAddr(addr) })
	_, port, _ := net.SplitHostPort(addr)
	out := &bytes.Buffer{}
	cmd := exec.Command(bin, "--host", "127.0.0.1", "--port", port)
	// KUMO_HOST and KUMO_PORT tell kumo its own address, which execute-api
	// calls to invoke a function.
	cmd.Env = append(cleanEnv(), "KUMO_LOG_LEVEL=error", "KUMO_HOST=127.0.0.1", "KUMO_PORT="+port)
	if o.dataDir != "" {
		if err := os.MkdirAll(o.dataDir, 0o700); err != nil {
			t.Fatalf("make kumo's data dir: %v", err)
		}
		if err := repairSnapshot(o.dataDir); err != nil {
			t.Fatalf("read kumo's state in %s: %v", o.dataDir, err)
		}
		cmd.Env = append(cmd.Env, "KUMO_DATA_DIR="+o.dataDir)
	}
	cmd.Env = append(cmd.Env, o.env...)
	cmd.Stdout, cmd.Stderr = out, out
	if o.withParent {
		cmd.SysProcAttr = childAttr()
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kumo: %v", err)
	}
	p := &process{url: "http://" + addr, cmd: cmd, out: out}
	t.Cleanup(func() { stop(cmd, o.dataDir != "") })
	for deadline := time.Now().Add(60 * time.Second); ; {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("kumo on %s did not start: %v; output: %s", addr, err, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// stop ends a kumo process: at once, or, gracefully, with SIGTERM and up
// to 10 s to write its state out.
func stop(cmd *exec.Cmd, gracefully bool) {
	if gracefully && cmd.Process.Signal(syscall.SIGTERM) == nil {
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
			return
		case <-time.After(10 * time.Second):
		}
		cmd.Process.Kill()
		<-done
		return
	}
	cmd.Process.Kill()
	cmd.Wait()
}

// handed are the addresses freeAddr gave to kumo processes still running
// (or starting) in this test binary.
var (
	handedMu sync.Mutex
	handed   = map[string]bool{}
)

// freeAddr returns a free local address no other kumo of this binary
// holds: several kumo processes start at once, and the kernel may give a
// port closed by one caller to the next before the first kumo bound it.
func freeAddr(t T) string {
	t.Helper()
	handedMu.Lock()
	defer handedMu.Unlock()
	for {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		if !handed[addr] {
			handed[addr] = true
			return addr
		}
	}
}

func releaseAddr(addr string) {
	handedMu.Lock()
	defer handedMu.Unlock()
	delete(handed, addr)
}

// cleanEnv is the environment without KUMO_ settings (a data dir would
// make state outlive the process) and AWS endpoint overrides.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KUMO_") && !strings.HasPrefix(kv, "AWS_ENDPOINT") {
			env = append(env, kv)
		}
	}
	return env
}

// Org is an emulated AWS organization. It is safe for concurrent use.
type Org struct {
	t     T
	front *front

	lambda  bool   // member accounts get a Lambda front (NewFunctionOrg)
	serving bool   // offered to other processes (Serve)
	dir     string // where the organization is kept across restarts (Serve); "": in memory

	mu      sync.Mutex
	members map[string]*process     // AWS account ID → its kumo
	fronts  map[string]*lambdaFront // AWS account ID → the Lambda front before its member front
	urls    map[string]string       // AWS account ID → its endpoint: the outermost front

	memberFaults map[string]*faults       // AWS account ID → the faults its member front injects
	starting     map[string]chan struct{} // AWS account ID → closed once its kumo started (or failed)
	memberEnv    []string                 // added to member kumo processes' environment

	containers map[string]*Container // account/function → its running container (Run)
}

// NewOrg starts the management account's kumo and its Organizations front
// and creates the organization (with all features), as an administrator
// would before installing silo. Processes end with t.
func NewOrg(t T) *Org {
	t.Helper()
	return newOrg(t, "127.0.0.1:0", false, "")
}

// Serve is NewOrg for a process that offers the organization to others
// (cmd/silo-aws-emulator): its management front listens on addr, and
// every account is reached there, as every account of AWS is reached at
// one endpoint per service. A call signed with credentials that an
// AssumeRole into a member account returned goes to that account's kumo
// (route.go), so silo needs nothing but AWS_ENDPOINT_URL set to URL.
//
// With dir set, the organization is kept there across restarts: each
// account's kumo keeps its state in a directory of its own
// (dir/management, dir/accounts/<ID>) and the front its own in
// dir/organization.json; Serve on the same dir goes on with it. Without
// it, everything is in memory and ends with t.
func Serve(t T, addr, dir string) *Org {
	t.Helper()
	o := newOrg(t, addr, true, dir)
	o.front.member = o.Endpoint
	return o
}

func newOrg(t T, addr string, serving bool, dir string) *Org {
	t.Helper()
	o := &Org{t: t, serving: serving, dir: dir, members: map[string]*process{}, fronts: map[string]*lambdaFront{}, urls: map[string]string{}, memberFaults: map[string]*faults{}, starting: map[string]chan struct{}{}}
	kumo := kumoOpts{withParent: serving}
	if dir != "" {
		kumo.dataDir = filepath.Join(dir, "management")
	}
	o.front = newFront(t, start(t, kumo), addr)
	o.front.remote = o.serveEndpoint
	if dir != "" && o.front.keep(filepath.Join(dir, "organization.json")) {
		return o // an organization kept from an earlier run
	}
	org := organizations.NewFromConfig(o.Config(), func(op *organizations.Options) { op.BaseEndpoint = aws.String(o.front.url) })
	if _, err := org.CreateOrganization(context.Background(), &organizations.CreateOrganizationInput{FeatureSet: orgtypes.OrganizationFeatureSetAll}); err != nil {
		t.Fatalf("create the emulated organization: %v", err)
	}
	o.front.save()
	return o
}

// NewFunctionOrg is NewOrg for tests that deploy functions: each member
// account's kumo sits behind a front that serves the Lambda versions and
// aliases kumo lacks (lambdafront.go), and Function and RuntimeAPI let a
// test run what an alias names.
func NewFunctionOrg(t T) *Org {
	t.Helper()
	o := NewOrg(t)
	o.lambda = true
	return o
}

// Config returns an AWS config for the emulated organization: its region
// and static credentials (kumo does not check them).
func (o *Org) Config() aws.Config {
	return aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEMULATED", "emulated", ""),
	}
}

// Endpoint returns the endpoint of an AWS account: "" is the management
// account; a member account's kumo is started on first use, behind its
// member front (and its Lambda front in a NewFunctionOrg). An ID the organization did not create
// fails the test. Several accounts' kumo processes start concurrently; a
// second caller for an account that is starting waits for it.
func (o *Org) Endpoint(account string) string {
	if account == "" {
		return o.front.url
	}
	o.mu.Lock()
	if u, ok := o.urls[account]; ok {
		o.mu.Unlock()
		return u
	}
	if ready, ok := o.starting[account]; ok {
		o.mu.Unlock()
		<-ready
		o.mu.Lock()
		defer o.mu.Unlock()
		if u, ok := o.urls[account]; ok {
			return u
		}
		return "http://127.0.0.1:1" // its start failed the test
	}
	if !o.front.created(account) {
		o.mu.Unlock()
		o.t.Errorf("the provider asked for the endpoint of account %q, which the organization never created", account)
		return "http://127.0.0.1:1"
	}
	ready := make(chan struct{})
	o.starting[account] = ready
	env := o.memberEnv
	o.mu.Unlock()
	defer func() {
		o.mu.Lock()
		delete(o.starting, account)
		o.mu.Unlock()
		close(ready)
	}()

	kumo := kumoOpts{withParent: o.serving, env: env}
	if o.dir != "" {
		kumo.dataDir = filepath.Join(o.dir, "accounts", account)
	}
	p := start(o.t, kumo)
	mf := newMemberFront(o.t, p)
	u := mf.url
	var lf *lambdaFront
	if o.lambda {
		lf = newLambdaFront(o.t, &process{url: u}, p, account, mf.faults)
		u = lf.url
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	o.members[account] = p
	o.memberFaults[account] = mf.faults
	if lf != nil {
		o.fronts[account] = lf
	}
	o.urls[account] = u
	return u
}

// SetMemberEnv adds environment settings (such as "GOGC=50") to the member
// accounts' kumo processes started from now on; the management account's
// kumo keeps the default.
func (o *Org) SetMemberEnv(env ...string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.memberEnv = append(o.memberEnv, env...)
}

// SlowCreations makes every account creation requested from now on answer
// IN_PROGRESS to its first n DescribeCreateAccountStatus polls (and stay
// out of ListAccounts) before it succeeds; by default the first poll
// succeeds. It lets tests see a creation outlast the provider's wait.
func (o *Org) SlowCreations(n int) {
	o.front.mu.Lock()
	defer o.front.mu.Unlock()
	o.front.slow = n
}

// FinishCreations makes every account creation in progress succeed at its
// next poll.
func (o *Org) FinishCreations() {
	o.front.mu.Lock()
	defer o.front.mu.Unlock()
	for req := range o.front.pending {
		o.front.pending[req] = 0
	}
}

// Function returns the code and environment that qualifier (a version, an
// alias or "$LATEST") of Lambda function name in AWS account runs, as
// deployed through Endpoint; false if there is no such function or
// qualifier.
func (o *Org) Function(account, name, qualifier string) (FunctionCode, bool) {
	o.mu.Lock()
	f := o.fronts[account]
	o.mu.Unlock()
	if f == nil {
		return FunctionCode{}, false
	}
	return f.code(name, qualifier)
}

// RuntimeAPI returns what a handler process of Lambda function name in AWS
// account sets AWS_LAMBDA_RUNTIME_API to: the account's Lambda front (which
// passes the calls to its kumo) and the function's Runtime API prefix. The
// account's kumo must be running.
func (o *Org) RuntimeAPI(account, name string) string {
	o.mu.Lock()
	defer o.mu.Unlock()
	f := o.fronts[account]
	if f == nil {
		o.t.Errorf("no Lambda front runs for account %q", account)
		return "127.0.0.1:1"
	}
	return strings.TrimPrefix(f.url, "http://") + runtimePrefix + name
}

// PIDs returns the process IDs of the organization's kumo processes, the
// management account's first.
func (o *Org) PIDs() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	pids := []int{o.front.kumo.cmd.Process.Pid}
	for _, p := range o.members {
		pids = append(pids, p.cmd.Process.Pid)
	}
	return pids
}

// Members returns how many member kumo processes run.
func (o *Org) Members() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return len(o.members)
}
