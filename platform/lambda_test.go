package platform_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/control"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/platform"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// lambdaHost is the silo Lambda host the emulated Lambda runs.
var lambdaHost = awstest.LambdaHost

// lambdaOrg is a platform whose AWS provider runs the functions on Lambda
// in the emulated organization. The emulator runs no function itself, so
// the harness plays Lambda's part (awstest.Org.Run): a container of the
// code a function's live alias names serves the account's Runtime API,
// started anew when the alias has moved, before each smoke test.
type lambdaOrg struct {
	t    *testing.T
	p    *silotest.Platform
	prov *siloaws.Provider
	org  *awstest.Org

	mu     sync.Mutex
	smokes int // smoke tests run through the provider
}

// runsLambda is the AWS provider as the platform sees it, with the
// harness's part of Lambda before each smoke test.
type runsLambda struct {
	*siloaws.Provider
	o *lambdaOrg
}

func (r runsLambda) Smoke(ctx context.Context, acct silo.AccountID, fn string) error {
	r.o.ensureHost(acct, fn)
	r.o.mu.Lock()
	r.o.smokes++
	r.o.mu.Unlock()
	return r.Provider.Smoke(ctx, acct, fn)
}

// newLambdaOrg starts it; the provider waits at most pollTimeout for AWS
// to create an account (0: its default, a minute).
func newLambdaOrg(t *testing.T, pollTimeout time.Duration) *lambdaOrg {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the Lambda host and functions")
	}
	if out, err := exec.Command("go", "tool", "-n", "kumo").CombinedOutput(); err != nil {
		t.Skipf("kumo, the AWS emulator, cannot be built here (go tool -n kumo: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	o := &lambdaOrg{t: t, org: awstest.NewFunctionOrg(t)}
	arch := "x86_64"
	if goruntime.GOARCH != "amd64" {
		arch = goruntime.GOARCH
	}
	var artifacts string // the platform's, once it is open
	prov, err := siloaws.New(siloaws.Config{
		AWS: o.org.Config(), Email: "aws@example.com", Endpoint: o.org.Endpoint, PollInterval: 2 * time.Millisecond, PollTimeout: pollTimeout, // a first wait past a 1 ms timeout: one poll per call
		Functions: &siloaws.FunctionCode{
			Arch: arch,
			Host: func(ctx context.Context, arch string) ([]byte, error) { return lambdaHost() },
			Artifact: func(ctx context.Context, digest string) ([]byte, error) {
				return os.ReadFile(filepath.Join(artifacts, digest+".wasm"))
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	o.prov = prov
	o.p = silotest.New(t, silotest.WithConfig(func(c *platform.Config) { c.Provider = runsLambda{Provider: prov, o: o} }))
	artifacts = filepath.Join(o.p.Platform().Config().DataDir, "artifacts")
	return o
}

func (o *lambdaOrg) awsID(acct silo.AccountID) string {
	o.t.Helper()
	id, err := o.prov.AWSAccountID(context.Background(), acct)
	if err != nil {
		o.t.Fatal(err)
	}
	return id
}

// ensureHost makes the container of function fn of acct run the code its
// live alias names, and returns it.
func (o *lambdaOrg) ensureHost(acct silo.AccountID, fn string) *awstest.Container {
	c, ok := o.org.Run(o.awsID(acct), "silo-fn-"+fn, "live")
	if !ok {
		o.t.Errorf("function %s of %s has no live alias", fn, acct)
	}
	return c
}

// call sends a request to acct's own HTTP API (execute-api on the
// account's emulator, addressed by the API's host name from the URL the
// control plane shows: the provider's, which TestFunctionsOnLambda checks
// Show gives), retried while no host polls for the function yet.
func (o *lambdaOrg) call(acct silo.AccountID, method, path, key string) (int, string) {
	t := o.t
	t.Helper()
	api, err := o.prov.URL(context.Background(), acct)
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(api)
	if err != nil || u.Host == "" {
		t.Fatalf("the URL silo shows for %s is %q", acct, api)
	}
	for i := 0; ; i++ {
		req, err := http.NewRequest(method, o.org.Endpoint(o.awsID(acct))+path, nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Host = u.Host
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s %s on %s: %v", method, path, acct, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusInternalServerError || i == 600 {
			return resp.StatusCode, string(b)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// lambdaApp writes into dir (a copy of the example, silotest.CopyExample)
// a stack with the example's list function (the ring's smoke function) and
// the runtime's test guest. With grant false, list loses its grant on the
// table: a bad release, whose smoke test answers 503.
func lambdaApp(t *testing.T, dir string, grant bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "runtime", "testdata", "guest", "main.go"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(dir, "functions", "guest"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "functions", "guest", "main.go"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "seed")); err != nil { // the example's seed data, for tables this stack lacks
		t.Fatal(err)
	}
	list, guest := "./functions/list", "./functions/guest"
	tables := "\n    tables: {findings: read}"
	if !grant {
		tables = ""
	}
	yaml := `version: 1
name: lambda
functions:
  list:
    source: ` + list + `
    timeout: 2s` + tables + `
  guest:
    source: ` + guest + `
    timeout: 2s
    tables: {items: read-write}
tables:
  findings: {}
  items: {}
routes:
  - {method: GET, path: /findings, function: list}
  - {method: GET, path: /log, function: guest}
rollout:
  rings:
    - name: everyone
      select: {kind: tenant}
      bake: 0s
      gates: {smoke: list}
`
	if err := os.WriteFile(filepath.Join(dir, "silo.yaml"), []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestFunctionsOnLambdaThroughThePlatform runs a tenant whose functions are
// on Lambda (the AWS provider with functions, on the emulated
// organization) through the platform: the tenant's URL is shown, a key
// issued by the control plane works on the tenant's own HTTP API and is
// refused once revoked, a release whose smoke test fails on Lambda is
// rolled back by the rollout runner (the alias moves back), and the
// account's logs are read from the provider.
func TestFunctionsOnLambdaThroughThePlatform(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	o := newLambdaOrg(t, 0)
	ctx := context.Background()
	pp := o.p.Platform()
	app := silotest.CopyExample(t)
	lambdaApp(t, app, true)
	o.p.Deploy(t, app)
	c, err := pp.CreateAccount(ctx, control.CreateRequest{ID: "acme", WithKey: true})
	if err != nil {
		t.Fatalf("create acme: %v", err)
	}

	t.Run("the account shows its URL", func(t *testing.T) {
		d, err := pp.Plane.Show(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		want, err := o.prov.URL(ctx, "acme")
		if err != nil || !strings.HasPrefix(want, "https://") {
			t.Fatalf("the provider's URL of acme: %q, %v", want, err)
		}
		if d.URL != want {
			t.Errorf("Show(acme).URL = %q, want the account's API %q", d.URL, want)
		}
		b, _ := json.Marshal(d)
		if !strings.Contains(string(b), `"url":"`+want+`"`) {
			t.Errorf("the account view lacks its URL: %s", b)
		}
		// Twin: an account without routes has no URL.
		if d, err := pp.Plane.Show(ctx, silo.ProductionID); err != nil || d.URL != "" {
			t.Errorf("Show(production).URL = %q, %v; want none (it has no routes)", d.URL, err)
		}
	})

	o.ensureHost("acme", "list")
	guest := o.ensureHost("acme", "guest")

	t.Run("keys issued and revoked by the control plane", func(t *testing.T) {
		if st, body := o.call("acme", "GET", "/findings", c.Key); st != http.StatusOK {
			t.Fatalf("GET /findings with acme's first key: %d %s, want 200", st, body)
		}
		second, _, err := pp.Plane.IssueKey(ctx, "acme", "ci")
		if err != nil {
			t.Fatal(err)
		}
		if st, body := o.call("acme", "GET", "/findings", second); st != http.StatusOK {
			t.Fatalf("GET /findings with a key issued later: %d %s, want 200", st, body)
		}
		if err := pp.Plane.RevokeKey(ctx, "acme", c.KeyID); err != nil {
			t.Fatal(err)
		}
		// The host caches a key record for 10 s: poll until the revocation
		// reaches it.
		st, body := 0, ""
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
			if st, body = o.call("acme", "GET", "/findings", c.Key); st == http.StatusUnauthorized {
				break
			}
		}
		if st != http.StatusUnauthorized {
			t.Errorf("GET /findings with the revoked key: %d %s, want 401", st, body)
		}
		// Twin: the key not revoked still works.
		if st, body := o.call("acme", "GET", "/findings", second); st != http.StatusOK {
			t.Errorf("GET /findings with the other key after the revocation: %d %s, want 200", st, body)
		}
		c.Key = second
	})

	t.Run("a bad release fails its smoke test on Lambda and is rolled back", func(t *testing.T) {
		before, err := o.prov.LiveVersion(ctx, "acme", "list")
		if err != nil {
			t.Fatal(err)
		}
		lambdaApp(t, app, false)
		rel, err := pp.Build(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pp.Runner.Start(ctx, rel.ID, rollout.Options{})
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(5 * time.Minute)
		for r.State == rollout.StateRunning && time.Now().Before(deadline) {
			time.Sleep(100 * time.Millisecond)
			if r, err = pp.Runner.Get(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		if r.State != rollout.StateFailed || !strings.Contains(r.Reason+ringReasons(r), "answered 503") {
			t.Fatalf("rollout of the bad release: %s (%s %s), want failed by the smoke function's 503", r.State, r.Reason, ringReasons(r))
		}
		o.mu.Lock()
		smokes := o.smokes
		o.mu.Unlock()
		if smokes == 0 {
			t.Error("the ring's smoke test did not run on Lambda (Provider.Smoke was not called)")
		}
		if v, err := o.prov.LiveVersion(ctx, "acme", "list"); err != nil || v != before {
			t.Errorf("live version of list after the rollback: %q, %v; want %q again", v, err, before)
		}
		o.ensureHost("acme", "list")
		if st, body := o.call("acme", "GET", "/findings", c.Key); st != http.StatusOK {
			t.Errorf("GET /findings after the rollback: %d %s, want 200", st, body)
		}
	})

	t.Run("logs come from the account", func(t *testing.T) {
		if st, body := o.call("acme", "GET", "/log", c.Key); st != http.StatusOK {
			t.Fatalf("GET /log: %d %s, want 200", st, body)
		}
		// Lambda's part: the host's output into the function's log group.
		out := guest.Output()
		awsID := o.awsID("acme")
		cwl := cloudwatchlogs.NewFromConfig(o.org.Config(), func(opt *cloudwatchlogs.Options) { opt.BaseEndpoint = aws.String(o.org.Endpoint(awsID)) })
		group, stream := aws.String("/aws/lambda/silo-fn-guest"), aws.String("2026/01/01/[1]abc")
		if _, err := cwl.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: group}); err != nil {
			t.Fatal(err)
		}
		if _, err := cwl.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: group, LogStreamName: stream}); err != nil {
			t.Fatal(err)
		}
		var events []cwltypes.InputLogEvent
		now := time.Now().UnixMilli()
		for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
			events = append(events, cwltypes.InputLogEvent{Timestamp: aws.Int64(now), Message: aws.String(line)})
		}
		if _, err := cwl.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream, LogEvents: events}); err != nil {
			t.Fatal(err)
		}
		es, err := pp.ReadLogs(ctx, "acme", logs.Query{Function: "guest"})
		if err != nil {
			t.Fatal(err)
		}
		var hello *logs.Entry
		for i, e := range es {
			if e.Msg == "hello from guest" {
				hello = &es[i]
			}
		}
		if hello == nil || hello.Account != "acme" || hello.RequestID == "" || hello.Attrs["n"] != "42" {
			t.Fatalf("acme's logs read through the platform: %+v; want the guest's line with its request ID and n=42\nhost output:\n%s", es, out)
		}
		// Twin: the query still filters (another function has no lines).
		if es, err := pp.ReadLogs(ctx, "acme", logs.Query{Function: "list"}); err != nil || len(es) != 0 {
			t.Errorf("acme's logs of function list: %+v, %v; want none", es, err)
		}
		// Following starts with the same line.
		fctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		var followed logs.Entry
		err = pp.FollowLogs(fctx, "acme", logs.Query{RequestID: hello.RequestID}, func(e logs.Entry) error {
			followed = e
			cancel()
			return nil
		})
		if err != nil || followed.Msg != "hello from guest" {
			t.Errorf("following acme's logs: %+v, %v; want the guest's line", followed, err)
		}
	})
}

// TestKeyOfAnAccountStillBeingCreated: a key issued while AWS is still
// creating the account (the first key of an onboarding that returned
// provisioning) is written into the account once the creation finishes.
func TestKeyOfAnAccountStillBeingCreated(t *testing.T) {
	o := newLambdaOrg(t, time.Millisecond)
	ctx := context.Background()
	pp := o.p.Platform()
	app := silotest.CopyExample(t)
	lambdaApp(t, app, true)
	o.p.Deploy(t, app)
	o.org.SlowCreations(2) // AWS answers IN_PROGRESS to the first two polls
	c, err := pp.CreateAccount(ctx, control.CreateRequest{ID: "hooli", WithKey: true})
	if err != nil || c.Account.State != silo.StateProvisioning || c.Key == "" {
		t.Fatalf("create hooli: %+v, %v; want it provisioning, with its first key", c, err)
	}
	var rep control.ResumeReport
	for i := 0; i < 5 && len(rep.Resumed) == 0; i++ { // the server's reaper pass, until AWS is done
		if rep, err = pp.Plane.Resume(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if len(rep.Resumed) != 1 {
		t.Fatalf("resume: %+v; want hooli finished", rep)
	}
	awsID := o.awsID("hooli")
	t.Setenv("AWS_REGION", awstest.Region)
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDEMULATED")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "emulated")
	h, err := siloaws.NewHost(ctx, siloaws.HostConfig{Account: "hooli", AWSAccount: awsID, Function: "list", Endpoint: o.org.Endpoint(awsID)})
	if err != nil {
		t.Fatal(err)
	}
	k, err := h.APIKey(ctx, c.KeyID)
	if err != nil || k.Account != "hooli" || k.Revoked != nil {
		t.Fatalf("hooli's first key in its account: %+v, %v; want its record, not revoked", k, err)
	}
	// Twin: a key never issued has no record.
	if _, err := h.APIKey(ctx, "sk_hooli_0000"); silo.ErrorCode(err) != silo.CodeNotFound {
		t.Errorf("a key never issued: %v, want no record", err)
	}
}

// ringReasons joins the rings' failure reasons.
func ringReasons(r rollout.Rollout) string {
	var s []string
	for _, ring := range r.Rings {
		s = append(s, ring.Failures...)
	}
	return strings.Join(s, "; ")
}
