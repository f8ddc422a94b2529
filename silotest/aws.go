package silotest

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"os/exec"
	goruntime "runtime"
	"strings"
	"sync"
	"testing"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/logs"
	"github.com/silo-run/silo/platform"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// NewAWS starts a platform like New whose provider is the AWS provider on
// an emulated organization (provider/aws/awstest: one kumo process per AWS
// account), with functions on Lambda: every account is an AWS account of
// the organization, its functions run in the silo Lambda host
// (cmd/silo-lambda) behind the account's own HTTP API, and its data is in
// DynamoDB, S3 and SSM (secrets as SecureString parameters).
//
// A Tenant's requests then go to the tenant's own API (the URL silo shows
// for it, on the account's emulator), not to silo's gateway. The emulator
// runs no function itself, so before each request the platform plays
// Lambda's part: it runs a container of what each function's live alias
// names (awstest.Org.Run), started anew when the alias has moved; Logs
// puts the containers' output into CloudWatch Logs as Lambda would and
// reads it back through the platform. ByPath and Metrics are the local
// gateway's and do not apply; Requests does.
//
// It skips the test under -short (it builds the Lambda host and starts
// several emulator processes) and where kumo cannot be built.
func NewAWS(t testing.TB, opts ...Option) *Platform {
	t.Helper()
	if testing.Short() {
		t.Skip("runs the platform on an emulated AWS organization")
	}
	if out, err := exec.Command("go", "tool", "-n", "kumo").CombinedOutput(); err != nil {
		t.Skipf("kumo, the AWS emulator, cannot be built here (go tool -n kumo: %v: %s)", err, strings.TrimSpace(string(out)))
	}
	if _, err := awstest.LambdaHost(); err != nil {
		t.Fatal(err)
	}
	a := &onAWS{org: awstest.NewFunctionOrg(t)}
	arch := "x86_64"
	if goruntime.GOARCH != "amd64" {
		arch = goruntime.GOARCH
	}
	var dataDir string // the platform's, once it is open
	prov, err := siloaws.New(siloaws.Config{
		AWS: a.org.Config(), Email: "aws@example.com", Endpoint: a.org.Endpoint, PollInterval: time.Millisecond,
		Functions: &siloaws.FunctionCode{
			Arch: arch,
			Host: func(ctx context.Context, arch string) ([]byte, error) { return awstest.LambdaHost() },
			Artifact: func(ctx context.Context, digest string) ([]byte, error) {
				return platform.ReadArtifact(dataDir, digest)
			},
		},
	})
	if err != nil {
		t.Fatalf("silotest: AWS provider: %v", err)
	}
	a.prov = prov
	opts = append(opts, WithConfig(func(c *platform.Config) { c.Provider = onLambda{Provider: prov, a: a} }))
	p := New(t, opts...)
	dataDir = p.p.Config().DataDir
	p.aws = a
	return p
}

// onAWS is what a Platform started by NewAWS adds.
type onAWS struct {
	org  *awstest.Org
	prov *siloaws.Provider

	mu    sync.Mutex
	awsID map[silo.AccountID]string
}

// onLambda is the AWS provider as the platform sees it, with Lambda's part
// played before each smoke test.
type onLambda struct {
	*siloaws.Provider
	a *onAWS
}

func (l onLambda) Smoke(ctx context.Context, acct silo.AccountID, fn string) error {
	if err := l.a.run(ctx, acct); err != nil {
		return err
	}
	return l.Provider.Smoke(ctx, acct, fn)
}

// OnAWS reports whether the platform was started by NewAWS.
func (p *Platform) OnAWS() bool { return p.aws != nil }

// AWS returns the emulated organization and the provider of a platform
// started by NewAWS (nil, nil otherwise).
func (p *Platform) AWS() (*awstest.Org, *siloaws.Provider) {
	if p.aws == nil {
		return nil, nil
	}
	return p.aws.org, p.aws.prov
}

func (a *onAWS) id(ctx context.Context, acct silo.AccountID) (string, error) {
	a.mu.Lock()
	id, ok := a.awsID[acct]
	a.mu.Unlock()
	if ok {
		return id, nil
	}
	id, err := a.prov.AWSAccountID(ctx, acct)
	if err != nil {
		return "", err
	}
	a.mu.Lock()
	if a.awsID == nil {
		a.awsID = map[silo.AccountID]string{}
	}
	a.awsID[acct] = id
	a.mu.Unlock()
	return id, nil
}

// run makes a container of each of acct's functions run what its live
// alias names.
func (a *onAWS) run(ctx context.Context, acct silo.AccountID) error {
	id, err := a.id(ctx, acct)
	if err != nil {
		return err
	}
	for _, name := range a.org.Functions(id) {
		a.org.Run(id, name, "live")
	}
	return nil
}

// do sends req (whose body is body), addressed to a path of the tenant,
// to the tenant's own HTTP API: execute-api on the account's emulator,
// addressed by the API's host name from the URL silo shows for the
// tenant (the provider's, which silo tenant show shows: asking the
// provider alone spares each request the rest of what show reads). While
// no container polls for the function yet, the emulated API answers 500
// itself (without the host's X-Request-Id); such answers are retried for
// up to a minute.
func (a *onAWS) do(t TB, p *Platform, tn *Tenant, req *http.Request, body string) *Response {
	t.Helper()
	ctx := context.Background()
	api, err := a.prov.URL(ctx, tn.ID)
	if err != nil {
		t.Fatalf("silotest: the URL of %s: %v", tn.ID, err)
	}
	u, err := url.Parse(api)
	if err != nil || u.Host == "" {
		t.Fatalf("silotest: the URL silo shows for %s is %q", tn.ID, api)
	}
	id, err := a.id(ctx, tn.ID)
	if err != nil {
		t.Fatalf("silotest: AWS account of %s: %v", tn.ID, err)
	}
	base, err := url.Parse(a.org.Endpoint(id))
	if err != nil {
		t.Fatalf("silotest: endpoint of %s: %v", tn.ID, err)
	}
	req.URL.Scheme, req.URL.Host, req.Host = base.Scheme, base.Host, u.Host
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		if err := a.run(ctx, tn.ID); err != nil {
			t.Fatalf("silotest: run the functions of %s: %v", tn.ID, err)
		}
		r := req.Clone(ctx)
		r.Body = io.NopCloser(strings.NewReader(body))
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatalf("silotest: %s %s on %s's API: %v", req.Method, req.URL.Path, tn.ID, err)
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("silotest: read response of %s %s: %v", req.Method, req.URL.Path, err)
		}
		// The host puts X-Request-Id on every answer, a function's own 500
		// included; the emulated API's own 500 has none.
		if resp.StatusCode != http.StatusInternalServerError || resp.Header.Get("X-Request-Id") != "" || time.Now().After(deadline) {
			return &Response{Status: resp.StatusCode, Header: resp.Header, Body: b, RequestID: resp.Header.Get("X-Request-Id")}
		}
	}
}

// logs puts the output of acct's containers into CloudWatch Logs and reads
// the account's log through the platform.
func (a *onAWS) logs(t TB, p *Platform, acct silo.AccountID) []logs.Entry {
	t.Helper()
	ctx := context.Background()
	id, err := a.id(ctx, acct)
	if err != nil {
		t.Fatalf("silotest: AWS account of %s: %v", acct, err)
	}
	if err := a.org.ShipLogs(ctx, id); err != nil {
		t.Fatalf("silotest: %v", err)
	}
	es, err := p.p.ReadLogs(ctx, acct, logs.Query{})
	if err != nil {
		t.Fatalf("silotest: read logs of %s: %v", acct, err)
	}
	return es
}

// requests returns the requests acct's functions served under the
// account's release, as the rollout gates count them on Lambda.
func (a *onAWS) requests(t TB, p *Platform, acct silo.AccountID) uint64 {
	t.Helper()
	ctx := context.Background()
	id, err := a.id(ctx, acct)
	if err != nil {
		t.Fatalf("silotest: AWS account of %s: %v", acct, err)
	}
	if err := a.org.ShipLogs(ctx, id); err != nil {
		t.Fatalf("silotest: %v", err)
	}
	acc, err := p.p.Plane.Account(ctx, acct)
	if err != nil {
		t.Fatalf("silotest: account %s: %v", acct, err)
	}
	s, err := a.prov.Invocations(acct, acc.Release)
	if err != nil {
		t.Fatalf("silotest: requests of %s: %v", acct, err)
	}
	return s.Requests
}
