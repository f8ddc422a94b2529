package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/internal/apikey"
	"github.com/silo-run/silo/internal/build"
	"github.com/silo-run/silo/provider/aws/awstest"
)

// outcome is what a user sees of a failure: the error's code and message,
// or the code and message of silo's error body in an HTTP answer.
type outcome struct {
	code silo.Code
	msg  string
}

func errOutcome(err error) outcome {
	if err == nil {
		return outcome{}
	}
	return outcome{silo.ErrorCode(err), silo.UserMessage(err)}
}

func httpOutcome(r reply) outcome {
	var b struct {
		Error struct {
			Code    silo.Code `json:"code"`
			Message string    `json:"message"`
		} `json:"error"`
	}
	json.Unmarshal([]byte(r.body), &b)
	return outcome{b.Error.Code, b.Error.Message}
}

// awsText is what would betray AWS's own error text in a message meant
// for a user.
var awsText = []string{"injected fault", "api error", "StatusCode", "Exception", "Sandbox.", "Runtime.", "RequestId", "https://"}

// TestLambdaBadInputGivesOneClearError runs, on the emulated organization,
// what can go wrong with a function on Lambda: a module the host cannot
// compile, a host stuck past the function's Lambda timeout, a guest past
// its own timeout or memory, a Lambda call AWS denies, a code update AWS
// throttles. Each gives one error with the right code that names the
// tenant, the function and the step (and, when AWS denied a call, the IAM
// action), holds no AWS text, and the next attempt, the cause gone,
// completes. The twin of the throttled update: throttled twice, the
// update is retried and completes.
func TestLambdaBadInputGivesOneClearError(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and functions")
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	garbage := []byte("\x00asm\x01\x00\x00\x00 not a module")
	sum := sha256.Sum256(garbage)
	badPath := filepath.Join(t.TempDir(), "bad.wasm")
	if err := os.WriteFile(badPath, garbage, 0o644); err != nil {
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
	arts := map[string]build.Artifact{
		"list": example(t, "list"), "guest": guest,
		"bad": {Digest: hex.EncodeToString(sum[:]), Path: badPath},
	}
	o := newFnOrg(t, arts, func(c *Config) { c.MaxBackoff = time.Millisecond })
	ctx := context.Background()
	if err := o.p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	awsID := o.awsID(t, "acme")
	mustApply(t, o.p, "acme", silo.TypeTable, "findings", struct{}{})
	mustApply(t, o.p, "acme", silo.TypeTable, "items", struct{}{})
	list := func(timeout time.Duration) silo.FunctionSpec {
		return silo.FunctionSpec{Artifact: arts["list"].Digest, Timeout: timeout, Tables: map[string]string{"findings": "read"}}
	}
	mustApply(t, o.p, "acme", silo.TypeFunction, "list", list(2*time.Second))
	mustApply(t, o.p, "acme", silo.TypeFunction, "guest", silo.FunctionSpec{Artifact: guest.Digest, Memory: 16 << 20, Timeout: time.Second,
		Tables: map[string]string{"items": "read-write"}})
	mustApply(t, o.p, "acme", silo.TypeRoute, "ANY /{path...}", silo.RouteSpec{Path: "/{path...}", Function: "guest"})
	key, k, err := apikey.New("acme")
	if err != nil {
		t.Fatal(err)
	}
	if err := o.p.PutAPIKey(ctx, "acme", k.ID, k.Hash, nil); err != nil {
		t.Fatal(err)
	}

	// run starts (or keeps) the container of what fn's alias names.
	run := func(t *testing.T, fn string) *awstest.Container {
		t.Helper()
		c, ok := o.org.Run(awsID, lambdaName(fn), liveAlias)
		if !ok {
			t.Fatalf("function %s has no %s alias", fn, liveAlias)
		}
		return c
	}
	// smoke runs fn's smoke test, retried while its container starts.
	smoke := func(t *testing.T, fn string) error {
		t.Helper()
		var err error
		for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			run(t, fn)
			if err = o.p.Smoke(ctx, "acme", fn); err == nil {
				return nil
			}
		}
		return err
	}
	if err := smoke(t, "list"); err != nil {
		t.Fatalf("smoke of list before the table: %v", err)
	}
	var frozen *awstest.Container

	tests := []struct {
		name string
		act  func(t *testing.T) outcome
		code silo.Code // "" : the act succeeds
		says []string
		// faulted, if set, is how many calls of op the fault answered
		// (the SDK's attempts).
		op      string
		faulted int
		// resume removes the cause and shows the next attempt completing.
		resume func(t *testing.T) error
	}{
		{
			name: "a module the host refuses when it is packaged",
			act: func(t *testing.T) outcome {
				if !canPrepare(lambdaArch()) {
					t.Skip("this machine cannot run the host it packages")
				}
				r, err := silo.NewResource(silo.TypeFunction, "broken", silo.FunctionSpec{Artifact: arts["bad"].Digest, Timeout: 2 * time.Second,
					Tables: map[string]string{"findings": "read"}})
				if err != nil {
					t.Fatal(err)
				}
				err = o.p.Apply(ctx, "acme", silo.Change{Op: silo.OpCreate, Type: silo.TypeFunction, Name: "broken", Desired: &r})
				if _, ok := o.org.Function(awsID, lambdaName("broken"), liveAlias); ok {
					t.Errorf("a function whose module the host refuses was published")
				}
				return errOutcome(err)
			},
			code: silo.CodeInvalid,
			says: []string{"function broken of account acme", "the silo Lambda host refuses the module: function module is not valid wasm"},
			resume: func(t *testing.T) error {
				mustApply(t, o.p, "acme", silo.TypeFunction, "broken", list(2*time.Second))
				return smoke(t, "broken")
			},
		},
		{
			// A server on another architecture than the function's packages
			// no prepared code: the host meets the module at its start.
			name: "a module the host cannot compile",
			act: func(t *testing.T) outcome {
				prepares := canPrepare
				canPrepare = func(string) bool { return false }
				t.Cleanup(func() { canPrepare = prepares })
				mustApply(t, o.p, "acme", silo.TypeFunction, "broken", silo.FunctionSpec{Artifact: arts["bad"].Digest, Timeout: 2 * time.Second,
					Tables: map[string]string{"findings": "read"}})
				c := run(t, "broken")
				for deadline := time.Now().Add(2 * time.Minute); !c.Exited() && time.Now().Before(deadline); {
					time.Sleep(50 * time.Millisecond)
				}
				if !c.Exited() {
					t.Fatalf("the host of a module that does not compile is still running:\n%s", c.Output())
				}
				return errOutcome(o.p.Smoke(ctx, "acme", "broken"))
			},
			code: silo.CodeFailedCheck,
			says: []string{"smoke function broken of acme did not start on Lambda", "function broken of account acme: compile its module"},
			resume: func(t *testing.T) error {
				mustApply(t, o.p, "acme", silo.TypeFunction, "broken", list(2*time.Second))
				return smoke(t, "broken")
			},
		},
		{
			name: "a host stuck past the function's Lambda timeout",
			act: func(t *testing.T) outcome {
				frozen = run(t, "list")
				frozen.Freeze()
				return errOutcome(o.p.Smoke(ctx, "acme", "list"))
			},
			code: silo.CodeFailedCheck,
			says: []string{"smoke function list of acme ran past its Lambda timeout"},
			resume: func(t *testing.T) error {
				frozen.Thaw()
				return smoke(t, "list")
			},
		},
		{
			name: "a guest past its own timeout",
			act: func(t *testing.T) outcome {
				run(t, "guest")
				r := o.callReady(t, "acme", "GET", "/sleep", key, "")
				if r.status != http.StatusServiceUnavailable {
					t.Errorf("GET /sleep: %d %s, want 503", r.status, r.body)
				}
				return httpOutcome(r)
			},
			code: silo.CodeUnavailable,
			says: []string{`function "guest" timed out (limit 1s)`},
			resume: func(t *testing.T) error {
				if r := o.call(t, "acme", "GET", "/echo", key, ""); r.status != http.StatusOK {
					return silo.Errorf(silo.CodeInternal, "GET /echo: %d %s", r.status, r.body)
				}
				return nil
			},
		},
		{
			name: "a guest past its memory",
			act: func(t *testing.T) outcome {
				r := o.call(t, "acme", "GET", "/membomb", key, "")
				if r.status != http.StatusInternalServerError {
					t.Errorf("GET /membomb: %d %s, want 500", r.status, r.body)
				}
				return httpOutcome(r)
			},
			// The runtime's own message, as locally; the guest's "out of
			// memory" is in its log.
			code: silo.CodeInternal,
			says: []string{`function "guest" crashed`, "probably ran out of memory", "see its logs"},
			resume: func(t *testing.T) error {
				if r := o.call(t, "acme", "GET", "/echo", key, ""); r.status != http.StatusOK {
					return silo.Errorf(silo.CodeInternal, "GET /echo: %d %s", r.status, r.body)
				}
				return nil
			},
		},
		{
			name: "UpdateFunctionCode denied",
			act: func(t *testing.T) outcome {
				o.org.Inject(awsID, "UpdateFunctionCode", awstest.Fault{Code: "AccessDeniedException", Status: http.StatusForbidden})
				return errOutcome(applyFn(o.p, "list", list(3*time.Second)))
			},
			code: silo.CodeInternal,
			says: []string{"AWS denied silo lambda:UpdateFunctionCode", "update the code of function list of account acme"},
			resume: func(t *testing.T) error {
				o.org.Clear(awsID)
				before, _ := o.p.LiveVersion(ctx, "acme", "list")
				if err := applyFn(o.p, "list", list(3*time.Second)); err != nil {
					return err
				}
				if v, _ := o.p.LiveVersion(ctx, "acme", "list"); v == before {
					return silo.Errorf(silo.CodeInternal, "the live alias stayed on version %s", v)
				}
				return nil
			},
		},
		{
			name: "Invoke denied to the smoke test",
			act: func(t *testing.T) outcome {
				o.org.Inject(awsID, "Invoke", awstest.Fault{Code: "AccessDeniedException", Status: http.StatusForbidden})
				return errOutcome(o.p.Smoke(ctx, "acme", "list"))
			},
			code: silo.CodeInternal,
			says: []string{"AWS denied silo lambda:InvokeFunction", "invoke smoke function list of account acme"},
			resume: func(t *testing.T) error {
				o.org.Clear(awsID)
				return smoke(t, "list")
			},
		},
		{
			name: "UpdateFunctionCode throttled for good",
			act: func(t *testing.T) outcome {
				o.org.Inject(awsID, "UpdateFunctionCode", awstest.Fault{Code: "TooManyRequestsException", Status: http.StatusTooManyRequests})
				return errOutcome(applyFn(o.p, "list", list(4*time.Second)))
			},
			code:    silo.CodeUnavailable,
			says:    []string{"AWS is busy and refused to update the code of function list of account acme", "try again"},
			op:      "UpdateFunctionCode",
			faulted: defaultMaxAttempts,
			resume: func(t *testing.T) error {
				o.org.Clear(awsID)
				return applyFn(o.p, "list", list(4*time.Second))
			},
		},
		{
			name: "UpdateFunctionCode throttled twice, then served",
			act: func(t *testing.T) outcome {
				o.org.Inject(awsID, "UpdateFunctionCode", awstest.Fault{Code: "TooManyRequestsException", Status: http.StatusTooManyRequests, Times: 2})
				return errOutcome(applyFn(o.p, "list", list(5*time.Second)))
			},
			op:      "UpdateFunctionCode",
			faulted: 2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := 0
			if tt.op != "" {
				before = o.org.Faulted(awsID, tt.op)
			}
			got := tt.act(t)
			if got.code != tt.code {
				t.Fatalf("got %s: %q; want code %q", got.code, got.msg, tt.code)
			}
			for _, s := range tt.says {
				if !strings.Contains(got.msg, s) {
					t.Errorf("message %q does not say %q", got.msg, s)
				}
			}
			for _, s := range awsText {
				if strings.Contains(got.msg, s) {
					t.Errorf("message %q holds AWS text %q", got.msg, s)
				}
			}
			if strings.Count(got.msg, "\n") > 0 {
				t.Errorf("message %q is more than one line", got.msg)
			}
			if tt.faulted > 0 {
				if n := o.org.Faulted(awsID, tt.op) - before; n != tt.faulted {
					t.Errorf("%s answered with the fault %d times, want %d", tt.op, n, tt.faulted)
				}
			}
			if tt.resume != nil {
				if err := tt.resume(t); err != nil {
					t.Errorf("the next attempt, the cause gone: %v", err)
				}
			}
		})
	}
}

// applyFn applies function fn with spec, as a change of a release would.
func applyFn(p *Provider, fn string, spec silo.FunctionSpec) error {
	r, err := silo.NewResource(silo.TypeFunction, fn, spec)
	if err != nil {
		return err
	}
	return p.Apply(context.Background(), "acme", silo.Change{Op: silo.OpUpdate, Type: silo.TypeFunction, Name: fn, Desired: &r})
}

// TestResourcesShowLambdaDrift changes a function on Lambda outside silo:
// its live alias moved to a version silo did not publish shows with an
// empty hash (drift, applied again), and a function deleted outside silo
// is left out (created again). The control: as silo applied it, the
// function shows with its hash, and applying it again restores it.
func TestResourcesShowLambdaDrift(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the Lambda host and an example function")
	}
	if _, err := lambdaHost(); err != nil {
		t.Fatal(err)
	}
	arts := map[string]build.Artifact{"list": example(t, "list")}
	o := newFnOrg(t, arts)
	ctx := context.Background()
	if err := o.p.CreateAccount(ctx, "acme", silo.KindTenant); err != nil {
		t.Fatal(err)
	}
	spec := silo.FunctionSpec{Artifact: arts["list"].Digest, Timeout: 2 * time.Second}
	mustApply(t, o.p, "acme", silo.TypeFunction, "list", spec)
	want, err := silo.NewResource(silo.TypeFunction, "list", spec)
	if err != nil {
		t.Fatal(err)
	}
	shown := func(t *testing.T) (silo.Resource, bool) {
		t.Helper()
		rs, err := o.p.Resources(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			if r.Type == silo.TypeFunction && r.Name == "list" {
				return r, true
			}
		}
		return silo.Resource{}, false
	}
	if r, ok := shown(t); !ok || r.Hash != want.Hash {
		t.Fatalf("list as silo applied it: %+v, shown %v; want its hash %s", r, ok, want.Hash)
	}

	fn := o.p.member(o.awsID(t, "acme")).fn
	name := aws.String(lambdaName("list"))
	v, err := fn.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: name, Description: aws.String("by hand")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := fn.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: name, Name: aws.String(liveAlias), FunctionVersion: v.Version}); err != nil {
		t.Fatal(err)
	}
	if r, ok := shown(t); !ok || r.Hash != "" {
		t.Errorf("list re-pointed by hand: %+v, shown %v; want it shown with an empty hash", r, ok)
	}
	mustApply(t, o.p, "acme", silo.TypeFunction, "list", spec)
	if r, ok := shown(t); !ok || r.Hash != want.Hash {
		t.Errorf("list applied again: %+v, shown %v; want its hash again", r, ok)
	}

	if _, err := fn.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: name}); err != nil {
		t.Fatal(err)
	}
	if r, ok := shown(t); ok {
		t.Errorf("list deleted by hand is still shown: %+v", r)
	}
	mustApply(t, o.p, "acme", silo.TypeFunction, "list", spec)
	if r, ok := shown(t); !ok || r.Hash != want.Hash {
		t.Errorf("list created again: %+v, shown %v; want its hash", r, ok)
	}
}
