package platform_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	cwltypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/silo-run/silo/control"
	siloaws "github.com/silo-run/silo/provider/aws"
	"github.com/silo-run/silo/provider/aws/awstest"
	"github.com/silo-run/silo/rollout"
	"github.com/silo-run/silo/silotest"
)

// gatedLambdaApp is lambdaApp with list's timeout set to timeout (so that
// each release changes list, whose versions then name their release) and a
// ring gated on list's traffic: at most 20% errors, at least 10 requests,
// baked for bake.
func gatedLambdaApp(t *testing.T, dir string, grant bool, timeout string, bake time.Duration) {
	t.Helper()
	lambdaApp(t, dir, grant)
	p := filepath.Join(dir, "silo.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "timeout: 2s", "timeout: "+timeout, 1)
	y = strings.Replace(y, "      bake: 0s\n      gates: {smoke: list}\n",
		"      bake: "+bake.String()+"\n      gates: {max_error_rate: 0.2, min_requests: 10}\n", 1)
	if !strings.Contains(y, "min_requests") {
		t.Fatalf("the ring's gates were not set in:\n%s", y)
	}
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGatesOnLambdaReadTheHostsCounters rolls releases out to a tenant
// whose functions run on Lambda, gated on error rate and traffic: while a
// ring bakes, the test sends requests to the tenant's API and, as Lambda
// would, puts the host's output into the function's log group, from which
// the provider's Snapshot counts the release's requests. A release that
// errors fails its gate and is rolled back; a healthy one with enough
// traffic passes; one with too little traffic is inconclusive.
func TestGatesOnLambdaReadTheHostsCounters(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	o := newLambdaOrg(t, 0)
	ctx := context.Background()
	pp := o.p.Platform()
	app := silotest.CopyExample(t)
	const bake = time.Minute // on the platform's fake clock
	gatedLambdaApp(t, app, true, "2s", bake)
	o.p.Deploy(t, app)
	c, err := pp.CreateAccount(ctx, control.CreateRequest{ID: "acme", WithKey: true})
	if err != nil {
		t.Fatalf("create acme: %v", err)
	}
	awsID := o.awsID("acme")
	cwl := cloudwatchlogs.NewFromConfig(o.org.Config(), func(opt *cloudwatchlogs.Options) { opt.BaseEndpoint = aws.String(o.org.Endpoint(awsID)) })
	group := aws.String("/aws/lambda/silo-fn-list")
	if _, err := cwl.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: group}); err != nil {
		t.Fatal(err)
	}
	streams := 0

	// roll builds the app as it now is and rolls it out; while the ring
	// bakes it sends n requests to GET /findings and puts the host's
	// output into list's log group. It returns the finished (or paused)
	// rollout and the statuses answered.
	roll := func(t *testing.T, n int) (rollout.Rollout, map[int]int) {
		t.Helper()
		rel, err := pp.Build(ctx, app)
		if err != nil {
			t.Fatal(err)
		}
		r, err := pp.Runner.Start(ctx, rel.ID, rollout.Options{})
		if err != nil {
			t.Fatal(err)
		}
		statuses := map[int]int{}
		sent := false
		deadline := time.Now().Add(5 * time.Minute)
		for r.State == rollout.StateRunning && time.Now().Before(deadline) {
			if !sent && r.Rings[r.Ring].Phase == rollout.PhaseBaking {
				sent = true
				h := o.ensureHost("acme", "list") // Lambda's containers of the new version
				for range n {
					st, _ := o.call("acme", "GET", "/findings", c.Key)
					statuses[st]++
				}
				out := h.Output()
				streams++
				stream := aws.String("2026/01/01/[" + string(rune('0'+streams)) + "]gates")
				if _, err := cwl.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: group, LogStreamName: stream}); err != nil {
					t.Fatal(err)
				}
				var events []cwltypes.InputLogEvent
				now := time.Now().UnixMilli()
				lines := strings.Split(strings.TrimSpace(out), "\n")
				// Lambda's own line and a record naming another account,
				// which count for nothing.
				lines = append(lines, "START RequestId: 1 Version: 2",
					string(siloaws.InvocationRecord{Account: "hooli", Function: "list", Release: rel.ID, Status: 200, Micros: 10}.Line()))
				for _, line := range lines {
					events = append(events, cwltypes.InputLogEvent{Timestamp: aws.Int64(now), Message: aws.String(line)})
				}
				if _, err := cwl.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: group, LogStreamName: stream, LogEvents: events}); err != nil {
					t.Fatal(err)
				}
				// The provider reads its counters again at most every 5
				// seconds: wait until they hold the requests, then end the
				// bake on the platform's clock.
				for until := time.Now().Add(time.Minute); time.Now().Before(until); time.Sleep(500 * time.Millisecond) {
					if s, err := o.prov.Invocations("acme", rel.ID); err == nil && s.Requests >= uint64(n) {
						break
					}
				}
				o.p.Clock().Advance(bake)
			}
			time.Sleep(100 * time.Millisecond)
			if r, err = pp.Runner.Get(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		if !sent {
			t.Fatalf("rollout of %s: %s (%s %s) before its ring baked", rel.ID, r.State, r.Reason, ringReasons(r))
		}
		return r, statuses
	}

	t.Run("a release that errors fails its gate and is rolled back", func(t *testing.T) {
		before, err := o.prov.LiveVersion(ctx, "acme", "list")
		if err != nil {
			t.Fatal(err)
		}
		gatedLambdaApp(t, app, false, "3s", bake)
		r, statuses := roll(t, 12)
		if statuses[http.StatusServiceUnavailable] != 12 {
			t.Fatalf("the bad release answered %v, want 12 × 503", statuses)
		}
		if r.State != rollout.StateFailed || !strings.Contains(r.Reason+ringReasons(r), "error rate") {
			t.Fatalf("rollout of the bad release: %s (%s %s), want failed by its error rate", r.State, r.Reason, ringReasons(r))
		}
		s, err := o.prov.Invocations("acme", r.Release)
		if err != nil || s.Requests != 12 || s.Errors != 12 || len(s.Latency) == 0 {
			t.Errorf("the bad release's metrics on Lambda: %+v, %v; want 12 requests, 12 errors, a latency", s, err)
		}
		if v, err := o.prov.LiveVersion(ctx, "acme", "list"); err != nil || v != before {
			t.Errorf("live version of list after the rollback: %q, %v; want %q again", v, err, before)
		}
	})

	t.Run("a healthy release with enough traffic passes its gate", func(t *testing.T) {
		gatedLambdaApp(t, app, true, "4s", bake)
		r, statuses := roll(t, 12)
		if statuses[http.StatusOK] != 12 {
			t.Fatalf("the healthy release answered %v, want 12 × 200", statuses)
		}
		if r.State != rollout.StateSucceeded {
			t.Fatalf("rollout of the healthy release: %s (%s %s), want succeeded", r.State, r.Reason, ringReasons(r))
		}
		s, err := o.prov.Invocations("acme", r.Release)
		if err != nil || s.Requests != 12 || s.Errors != 0 {
			t.Errorf("the healthy release's metrics on Lambda: %+v, %v; want 12 requests, no errors", s, err)
		}
	})

	t.Run("too little traffic is inconclusive", func(t *testing.T) {
		gatedLambdaApp(t, app, true, "5s", bake)
		r, statuses := roll(t, 2)
		if statuses[http.StatusOK] != 2 {
			t.Fatalf("the release answered %v, want 2 × 200", statuses)
		}
		if r.State != rollout.StatePaused || !strings.Contains(r.Reason, "inconclusive") {
			t.Fatalf("rollout with 2 requests: %s (%s %s), want paused as inconclusive", r.State, r.Reason, ringReasons(r))
		}
	})

}

// latencyLambdaApp is lambdaApp with guest's handler set to handler
// ("handle", or the guest's "slow", which answers a second late) and its
// timeout to timeout (so that each release changes guest, whose versions
// then name their release), and a ring gated on p99 latency, at least 10
// requests, baked for bake. The gate allows 4000% over the previous
// release's p99 (41×): the slow handler's second is ≈ 2000× a fast
// release's p99 of ≈ 0.5 ms, so the margin is ≈ 45× either way, and a
// fast release's p99, the second-slowest of 200 requests, may grow with
// the machine's load without failing the gate (it measured 8× its
// baseline once at load ≈ 30).
func latencyLambdaApp(t *testing.T, dir, handler, timeout string, bake time.Duration) {
	t.Helper()
	lambdaApp(t, dir, true)
	p := filepath.Join(dir, "silo.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "    source: ./functions/guest\n    timeout: 2s\n",
		"    source: ./functions/guest\n    handler: "+handler+"\n    timeout: "+timeout+"\n", 1)
	y = strings.Replace(y, "      bake: 0s\n      gates: {smoke: list}\n",
		"      bake: "+bake.String()+"\n      gates: {max_p99_increase: 4000%, min_requests: 10}\n", 1)
	if !strings.Contains(y, "handler: "+handler) || !strings.Contains(y, "max_p99_increase") {
		t.Fatalf("the guest's handler or the ring's gates were not set in:\n%s", y)
	}
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

// lambdaRig is a tenant acme on a platform whose functions run on Lambda
// (silotest.NewAWS), with the app in app, whose releases roll out through
// a ring baked for bake on the platform's clock.
type lambdaRig struct {
	p     *silotest.Platform
	org   *awstest.Org
	prov  *siloaws.Provider
	acme  *silotest.Tenant
	awsID string
	app   string
	bake  time.Duration
}

// newLambdaRig deploys the app that write writes into the app's directory
// and creates acme.
func newLambdaRig(t *testing.T, bake time.Duration, write func(dir string)) *lambdaRig {
	t.Helper()
	g := &lambdaRig{p: silotest.NewAWS(t), app: silotest.CopyExample(t), bake: bake}
	g.org, g.prov = g.p.AWS()
	write(g.app)
	g.p.Deploy(t, g.app)
	g.acme = g.p.Tenant(t, "acme")
	var err error
	if g.awsID, err = g.prov.AWSAccountID(context.Background(), "acme"); err != nil {
		t.Fatal(err)
	}
	return g
}

// traffic sends n requests to each of paths and puts the host's output into
// CloudWatch Logs as Lambda would, then waits until the provider counts at
// least want requests under release. It returns the statuses answered.
func (g *lambdaRig) traffic(t *testing.T, release string, n int, want uint64, paths ...string) map[int]int {
	t.Helper()
	statuses := map[int]int{}
	for _, path := range paths {
		for range n {
			statuses[g.acme.GET(t, path).Status]++
		}
	}
	ctx := context.Background()
	if err := g.org.ShipLogs(ctx, g.awsID); err != nil {
		t.Fatal(err)
	}
	for until := time.Now().Add(time.Minute); time.Now().Before(until); time.Sleep(500 * time.Millisecond) {
		if s, err := g.prov.Invocations("acme", release); err == nil && s.Requests >= want {
			return statuses
		}
	}
	t.Fatalf("the provider did not count %d requests of release %s", want, release)
	return nil
}

// roll builds the app as it now is and rolls it out, calling bake with the
// release while the ring bakes, then ending the bake.
func (g *lambdaRig) roll(t *testing.T, bake func(release string)) rollout.Rollout {
	t.Helper()
	ctx := context.Background()
	pp := g.p.Platform()
	rel, err := pp.Build(ctx, g.app)
	if err != nil {
		t.Fatal(err)
	}
	r, err := pp.Runner.Start(ctx, rel.ID, rollout.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sent := false
	for deadline := time.Now().Add(5 * time.Minute); r.State == rollout.StateRunning && time.Now().Before(deadline); {
		if !sent && r.Rings[r.Ring].Phase == rollout.PhaseBaking {
			sent = true
			bake(rel.ID)
			g.p.Clock().Advance(g.bake)
		}
		time.Sleep(100 * time.Millisecond)
		if r, err = pp.Runner.Get(ctx, r.ID); err != nil {
			t.Fatal(err)
		}
	}
	if !sent {
		t.Fatalf("rollout of %s: %s (%s %s) before its ring baked", rel.ID, r.State, r.Reason, ringReasons(r))
	}
	return r
}

// TestLatencyGateOnLambda rolls releases out to a tenant whose functions
// run on Lambda, gated on p99 latency against the previous release, from
// the host's own counters (the host's output put into CloudWatch Logs as
// Lambda would): a release whose function answers a second late fails
// max_p99_increase and is rolled back (the alias is back on the old
// version); its twin, a release as fast as the previous one, passes.
func TestLatencyGateOnLambda(t *testing.T) {
	const bake = time.Minute // on the platform's fake clock
	g := newLambdaRig(t, bake, func(dir string) { latencyLambdaApp(t, dir, "handle", "2s", bake) })
	ctx := context.Background()
	acc, err := g.p.Platform().Plane.Account(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	// The previous release's latency. Each release's first request on a
	// new container instantiates the module, and with fewer than 100
	// requests p99 is the slowest one; 200 requests put that first one
	// above p99, for the fast releases alike.
	g.traffic(t, acc.Release, 200, 200, "/log")
	before, err := g.prov.LiveVersion(ctx, "acme", "guest")
	if err != nil {
		t.Fatal(err)
	}

	t.Run("a slow release fails its latency gate and is rolled back", func(t *testing.T) {
		latencyLambdaApp(t, g.app, "slow", "3s", bake)
		r := g.roll(t, func(rel string) { g.traffic(t, rel, 12, 12, "/log") })
		if r.State != rollout.StateFailed || !strings.Contains(r.Reason+ringReasons(r), "p99 latency") {
			b, _ := json.Marshal(r.Rings)
			t.Fatalf("rollout of the slow release: %s (%s %s), want failed by its p99 latency; rings: %s", r.State, r.Reason, ringReasons(r), b)
		}
		if v, err := g.prov.LiveVersion(ctx, "acme", "guest"); err != nil || v != before {
			t.Errorf("live version of guest after the rollback: %q, %v; want %q again", v, err, before)
		}
	})

	t.Run("a release as fast as the previous one passes", func(t *testing.T) {
		latencyLambdaApp(t, g.app, "handle", "4s", bake)
		r := g.roll(t, func(rel string) { g.traffic(t, rel, 200, 200, "/log") })
		if r.State != rollout.StateSucceeded {
			t.Fatalf("rollout of the fast release: %s (%s %s), want succeeded", r.State, r.Reason, ringReasons(r))
		}
	})
}

// changedOnlyApp is lambdaApp with list's and guest's timeouts set (a
// release changes a function by changing its timeout), a route to the
// guest's /panic (which answers 500), and a ring gated on error rate: at
// most 20%, at least 10 requests, baked for bake.
func changedOnlyApp(t *testing.T, dir, listTimeout, guestTimeout string, bake time.Duration) {
	t.Helper()
	lambdaApp(t, dir, true)
	p := filepath.Join(dir, "silo.yaml")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	y := strings.Replace(string(b), "    source: ./functions/list\n    timeout: 2s\n", "    source: ./functions/list\n    timeout: "+listTimeout+"\n", 1)
	y = strings.Replace(y, "    source: ./functions/guest\n    timeout: 2s\n", "    source: ./functions/guest\n    timeout: "+guestTimeout+"\n", 1)
	y = strings.Replace(y, "  - {method: GET, path: /log, function: guest}\n",
		"  - {method: GET, path: /log, function: guest}\n  - {method: GET, path: /panic, function: guest}\n", 1)
	y = strings.Replace(y, "      bake: 0s\n      gates: {smoke: list}\n",
		"      bake: "+bake.String()+"\n      gates: {max_error_rate: 20%, min_requests: 10}\n", 1)
	for _, want := range []string{"timeout: " + listTimeout, "timeout: " + guestTimeout, "/panic", "max_error_rate"} {
		if !strings.Contains(y, want) {
			t.Fatalf("%q was not set in:\n%s", want, y)
		}
	}
	if err := os.WriteFile(p, []byte(y), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestGatesCountOnlyTheFunctionsTheReleaseChanged: while a ring bakes, a
// function the release left as it was keeps serving under the release that
// last changed it, so its errors do not count against the new release: a
// release that changes only list passes its error-rate gate while guest,
// unchanged, answers 500 to half the requests. Its twin, a release that
// changes guest too, fails the gate with the same traffic and is rolled
// back.
func TestGatesCountOnlyTheFunctionsTheReleaseChanged(t *testing.T) {
	t.Parallel() // its own emulated organization and platform

	const bake = time.Minute // on the platform's fake clock
	g := newLambdaRig(t, bake, func(dir string) { changedOnlyApp(t, dir, "2s", "2s", bake) })
	ctx := context.Background()

	t.Run("an unchanged function's errors do not count", func(t *testing.T) {
		changedOnlyApp(t, g.app, "3s", "2s", bake) // list only
		r := g.roll(t, func(rel string) {
			st := g.traffic(t, rel, 12, 12, "/findings", "/panic")
			if st[http.StatusOK] != 12 || st[http.StatusInternalServerError] != 12 {
				t.Errorf("the release answered %v, want 12 × 200 (list) and 12 × 500 (guest)", st)
			}
		})
		if r.State != rollout.StateSucceeded {
			t.Fatalf("rollout of a release that changes list only: %s (%s %s), want succeeded", r.State, r.Reason, ringReasons(r))
		}
		if s, err := g.prov.Invocations("acme", r.Release); err != nil || s.Requests != 12 || s.Errors != 0 {
			t.Errorf("the release's counters: %+v, %v; want list's 12 requests and no errors", s, err)
		}
	})

	t.Run("a changed function's errors count", func(t *testing.T) {
		before, err := g.prov.LiveVersion(ctx, "acme", "guest")
		if err != nil {
			t.Fatal(err)
		}
		changedOnlyApp(t, g.app, "4s", "3s", bake) // list and guest
		r := g.roll(t, func(rel string) { g.traffic(t, rel, 12, 24, "/findings", "/panic") })
		if r.State != rollout.StateFailed || !strings.Contains(r.Reason+ringReasons(r), "error rate") {
			t.Fatalf("rollout of a release that changes guest too: %s (%s %s), want failed by its error rate", r.State, r.Reason, ringReasons(r))
		}
		// The rollback applies the previous release, which left guest as
		// the one before had it: the same package, published again as a
		// version naming the previous release (docs/aws.md, known limits).
		was, _ := g.org.Function(g.awsID, "silo-fn-guest", before)
		now, ok := g.org.Function(g.awsID, "silo-fn-guest", "live")
		if !ok || !bytes.Equal(now.Zip, was.Zip) {
			t.Errorf("guest after the rollback runs another package than version %s, which it ran before", before)
		}
	})
}

// TestThrottledRolloutOnLambdaResumes rolls a release out while AWS
// throttles every UpdateFunctionCode of the tenant's account: the ring
// fails with one clear error naming the tenant, the function and the step
// and no AWS text, and is rolled back; once AWS serves the call again, a
// rollout of the same release, confirmed as the retry of a failed one,
// completes.
func TestThrottledRolloutOnLambdaResumes(t *testing.T) {
	t.Parallel() // its own emulated organization and platform
	g := newLambdaRig(t, 0, func(dir string) { lambdaApp(t, dir, true) })
	ctx := context.Background()
	pp := g.p.Platform()
	before, err := g.prov.LiveVersion(ctx, "acme", "list")
	if err != nil {
		t.Fatal(err)
	}
	y, err := os.ReadFile(filepath.Join(g.app, "silo.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	// The release changes list's timeout, so applying it updates list's code.
	if err := os.WriteFile(filepath.Join(g.app, "silo.yaml"), []byte(strings.Replace(string(y), "timeout: 2s", "timeout: 3s", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, err := pp.Build(ctx, g.app)
	if err != nil {
		t.Fatal(err)
	}
	run := func(t *testing.T, opt rollout.Options) rollout.Rollout {
		t.Helper()
		r, err := pp.Runner.Start(ctx, rel.ID, opt)
		if err != nil {
			t.Fatal(err)
		}
		for deadline := time.Now().Add(5 * time.Minute); r.State == rollout.StateRunning && time.Now().Before(deadline); {
			time.Sleep(100 * time.Millisecond)
			if r, err = pp.Runner.Get(ctx, r.ID); err != nil {
				t.Fatal(err)
			}
		}
		return r
	}

	g.org.Inject(g.awsID, "UpdateFunctionCode", awstest.Fault{Code: "TooManyRequestsException", Status: http.StatusTooManyRequests})
	r := run(t, rollout.Options{})
	why := r.Reason + " " + ringReasons(r)
	if r.State != rollout.StateFailed || !strings.Contains(why, "AWS is busy and refused to update the code of function list of account acme") {
		t.Fatalf("rollout while AWS throttles: %s (%s), want failed naming acme, list and the step", r.State, why)
	}
	for _, s := range []string{"TooManyRequests", "injected fault", "api error", "StatusCode"} {
		if strings.Contains(why, s) {
			t.Errorf("the rollout's failure %q holds AWS text %q", why, s)
		}
	}
	if v, err := g.prov.LiveVersion(ctx, "acme", "list"); err != nil || v != before {
		t.Errorf("live version of list after the failed rollout: %q, %v; want %q", v, err, before)
	}

	g.org.Clear(g.awsID)
	r = run(t, rollout.Options{RetryFailed: true})
	if r.State != rollout.StateSucceeded {
		t.Fatalf("the same release once AWS serves again: %s (%s %s), want succeeded", r.State, r.Reason, ringReasons(r))
	}
	if v, err := g.prov.LiveVersion(ctx, "acme", "list"); err != nil || v == before {
		t.Errorf("live version of list after the rollout: %q, %v; want a new version", v, err)
	}
}
