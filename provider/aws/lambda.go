package aws

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	lambdatypes "github.com/aws/aws-sdk-go-v2/service/lambda/types"
	silo "github.com/silo-run/silo"
)

// FunctionCode is where the provider finds what it deploys to Lambda. Both
// functions must be safe for concurrent use.
type FunctionCode struct {
	// Host returns the silo Lambda host (cmd/silo-lambda) built for linux
	// and arch ("arm64" or "x86_64").
	Host func(ctx context.Context, arch string) ([]byte, error)
	// Artifact returns the .wasm module whose SHA-256 is digest (hex).
	Artifact func(ctx context.Context, digest string) ([]byte, error)
	// Arch is the architecture functions run on: "arm64" (the default, the
	// cheaper per GB-second) or "x86_64".
	Arch string
}

const (
	// liveAlias is the alias every function is invoked through (the routes'
	// integrations name it): a rollout points it at a new version, a
	// rollback back at the old one.
	liveAlias = "live"
	// fnPrefix starts the name of every function and execution role silo
	// creates.
	fnPrefix = "silo-fn-"
	// hostOverheadMiB is the memory the host itself needs on top of the
	// guest's limit (the Go runtime, the compiled module, buffers);
	// minFunctionMiB is the least a function gets, because Lambda gives
	// CPU in proportion to memory and a cold start compiles the module.
	hostOverheadMiB = 256
	minFunctionMiB  = 512
	// defaultGuestTimeout is the runtime's default invocation timeout.
	defaultGuestTimeout = 10 * time.Second
)

// RunsFunctions reports whether the provider runs functions itself, on
// Lambda behind each account's HTTP API (Config.Functions is set), so that
// its Smoke, Logs, URL and API key records apply rather than silo's own
// runtime and gateway.
func (p *Provider) RunsFunctions() bool { return p.cfg.Functions != nil }

// lambdaName is the name of function fn's Lambda function and of its
// execution role: fnPrefix and the name when it fits Lambda's rules
// (letters, digits, '-' and '_', at most 64 characters), else fnPrefix and
// a hash of it.
func lambdaName(fn string) string {
	ok := len(fnPrefix)+len(fn) <= 64
	for i := 0; ok && i < len(fn); i++ {
		ok = isAlnum(fn[i]) || fn[i] == '-' || fn[i] == '_'
	}
	if ok {
		return fnPrefix + fn
	}
	sum := sha256.Sum256([]byte(fn))
	return fnPrefix + "h-" + hex.EncodeToString(sum[:16])
}

// functionRoleARN is the execution role of function fn in AWS account
// awsID (iam.go creates it with exactly the function's grants).
func functionRoleARN(awsID, fn string) string {
	return "arn:aws:iam::" + awsID + ":role/silo/" + lambdaName(fn)
}

// aliasARN is the ARN the routes of function fn invoke.
func (p *Provider) aliasARN(awsID, fn string) string {
	return fmt.Sprintf("arn:aws:lambda:%s:%s:function:%s:%s", p.cfg.AWS.Region, awsID, lambdaName(fn), liveAlias)
}

// settings are a function's Lambda settings derived from its spec.
type settings struct {
	memoryMiB, timeoutSec int32
}

func settingsOf(fn string, fs silo.FunctionSpec) (settings, error) {
	guest := int64(fs.Memory+(1<<20)-1) >> 20
	if fs.Memory == 0 {
		guest = 32 // the runtime's default limit
	}
	mem := max(guest+hostOverheadMiB, minFunctionMiB)
	if mem > 10240 {
		return settings{}, silo.Errorf(silo.CodeInvalid, "function %s: memory %d MiB plus the host's %d MiB is over Lambda's 10240 MB; lower its memory", fn, guest, hostOverheadMiB)
	}
	t := fs.Timeout
	if t <= 0 {
		t = defaultGuestTimeout
	}
	// The host stops the guest at its own timeout and answers; Lambda's
	// timeout, a second later, is the backstop.
	sec := int64((t+time.Second-1)/time.Second) + 1
	if sec > 900 {
		return settings{}, silo.Errorf(silo.CodeInvalid, "function %s: timeout %s is over Lambda's 15 minutes; shorten it", fn, fs.Timeout)
	}
	return settings{memoryMiB: int32(mem), timeoutSec: int32(sec)}, nil
}

// versionTag names what a version of a function runs: the resource's hash
// (spec, artifact, grants), the package's bytes (the host) and the release
// its environment names (its invocations count toward that release's
// rollout gates, lambdametrics.go). It is the version's description, so
// applying a spec that a version already runs under the same release only
// moves the alias.
func versionTag(hash, release string, pkg []byte) string {
	b := []byte(hash + "\x00")
	if release != "" {
		b = append(b, release+"\x00"...)
	}
	sum := sha256.Sum256(append(b, pkg...))
	return "silo " + hex.EncodeToString(sum[:])
}

// deployFunction makes function r run on Lambda in the account: it finds a
// published version running exactly r and its package, or updates the
// function (creating it first if needed) and publishes one, then points
// the alias at it. A rollback applies the old spec again and so only moves
// the alias back. release, if set, is in the function's environment
// (SILO_RELEASE): the host's metrics records name it.
func (p *Provider) deployFunction(ctx context.Context, id silo.AccountID, m *member, r silo.Resource, release string) error {
	fc := p.cfg.Functions
	var fs silo.FunctionSpec
	if err := json.Unmarshal(r.Spec, &fs); err != nil {
		return silo.Errorf(silo.CodeInvalid, "function %s: its spec does not decode; deploy again", r.Name)
	}
	set, err := settingsOf(r.Name, fs)
	if err != nil {
		return err
	}
	arch := fc.Arch
	if arch == "" {
		arch = string(lambdatypes.ArchitectureArm64)
	}
	wasm, err := fc.Artifact(ctx, fs.Artifact)
	if err != nil {
		return fmt.Errorf("function %s of account %s: read artifact %.12s: %w", r.Name, id, fs.Artifact, err)
	}
	host, err := fc.Host(ctx, arch)
	if err != nil {
		return fmt.Errorf("function %s of account %s: read the silo Lambda host for %s: %w", r.Name, id, arch, err)
	}
	pkg, err := p.pkgs.get(ctx, arch, host, wasm, r.Spec)
	if code := silo.ErrorCode(err); code == silo.CodeInvalid {
		return &silo.Error{Code: code, Err: err, Message: fmt.Sprintf("function %s of account %s: package it: %s", r.Name, id, silo.UserMessage(err))}
	}
	if err != nil {
		return fmt.Errorf("function %s of account %s: package: %w", r.Name, id, err)
	}
	if len(pkg) > 50<<20 {
		return silo.Errorf(silo.CodeInvalid, "function %s: its package is %d MiB, over the 50 MiB Lambda takes directly; make the module smaller", r.Name, len(pkg)>>20)
	}
	name := aws.String(lambdaName(r.Name))
	tag := versionTag(r.Hash, release, pkg)
	step := func(s string) string { return s + " of function " + r.Name }

	versions, exists, err := m.versions(ctx, id, r.Name)
	if err != nil {
		return err
	}
	if v, ok := versions[tag]; ok {
		return m.pointAlias(ctx, id, r.Name, v)
	}
	env := &lambdatypes.Environment{Variables: map[string]string{
		"SILO_ACCOUNT": string(id), "SILO_AWS_ACCOUNT": m.id, "SILO_FUNCTION": r.Name,
	}}
	if release != "" {
		env.Variables["SILO_RELEASE"] = release
	}
	if p.cfg.Endpoint != nil {
		env.Variables["SILO_AWS_ENDPOINT"] = p.cfg.Endpoint(m.id)
	}
	if err := p.exportEnv(ctx, id, fs.Exports, env.Variables); err != nil {
		return err
	}
	role := aws.String(functionRoleARN(m.id, r.Name))
	if !exists {
		_, err := m.fn.CreateFunction(ctx, &lambda.CreateFunctionInput{
			FunctionName:  name,
			Role:          role,
			Runtime:       lambdatypes.RuntimeProvidedal2023,
			Handler:       aws.String("bootstrap"),
			Architectures: []lambdatypes.Architecture{lambdatypes.Architecture(arch)},
			Code:          &lambdatypes.FunctionCode{ZipFile: pkg},
			MemorySize:    aws.Int32(set.memoryMiB),
			Timeout:       aws.Int32(set.timeoutSec),
			Environment:   env,
			Tags:          map[string]string{tagAccount: string(id), tagResource: r.Key()},
		})
		if err != nil && !isCode(err, "ResourceConflictException") {
			return fail(id, step("create"), err)
		}
	} else {
		_, err := m.fn.UpdateFunctionConfiguration(ctx, &lambda.UpdateFunctionConfigurationInput{
			FunctionName: name, Role: role, Runtime: lambdatypes.RuntimeProvidedal2023, Handler: aws.String("bootstrap"),
			MemorySize: aws.Int32(set.memoryMiB), Timeout: aws.Int32(set.timeoutSec), Environment: env,
		})
		if err != nil {
			return fail(id, step("configure"), err)
		}
		if err := m.waitUpdated(ctx, id, r.Name); err != nil {
			return err
		}
		_, err = m.fn.UpdateFunctionCode(ctx, &lambda.UpdateFunctionCodeInput{
			FunctionName: name, ZipFile: pkg, Architectures: []lambdatypes.Architecture{lambdatypes.Architecture(arch)},
		})
		if err != nil {
			return fail(id, step("update the code"), err)
		}
	}
	if err := m.waitUpdated(ctx, id, r.Name); err != nil {
		return err
	}
	out, err := m.fn.PublishVersion(ctx, &lambda.PublishVersionInput{FunctionName: name, Description: aws.String(tag)})
	if err != nil {
		return fail(id, step("publish a version"), err)
	}
	return m.pointAlias(ctx, id, r.Name, aws.ToString(out.Version))
}

// waitUpdated waits until the last update of function fn is done, at most
// five minutes.
func (m *member) waitUpdated(ctx context.Context, id silo.AccountID, fn string) error {
	w := lambda.NewFunctionUpdatedV2Waiter(m.fn, func(o *lambda.FunctionUpdatedV2WaiterOptions) { o.MinDelay = time.Second })
	if err := w.Wait(ctx, &lambda.GetFunctionInput{FunctionName: aws.String(lambdaName(fn))}, 5*time.Minute); err != nil {
		return fail(id, "wait for the update of function "+fn, err)
	}
	return nil
}

// versions returns the published versions of function fn by tag, and
// whether the function exists.
func (m *member) versions(ctx context.Context, id silo.AccountID, fn string) (map[string]string, bool, error) {
	out := map[string]string{}
	in := &lambda.ListVersionsByFunctionInput{FunctionName: aws.String(lambdaName(fn))}
	for {
		page, err := m.fn.ListVersionsByFunction(ctx, in)
		if isCode(err, "ResourceNotFoundException") {
			return nil, false, nil
		}
		if err != nil {
			return nil, false, fail(id, "list the versions of function "+fn, err)
		}
		for _, v := range page.Versions {
			if v.Version != nil && *v.Version != "$LATEST" && v.Description != nil {
				out[*v.Description] = *v.Version
			}
		}
		if page.NextMarker == nil {
			return out, true, nil
		}
		in.Marker = page.NextMarker
	}
}

// pointAlias points function fn's live alias at version, creating it if
// needed.
func (m *member) pointAlias(ctx context.Context, id silo.AccountID, fn, version string) error {
	name := aws.String(lambdaName(fn))
	_, err := m.fn.UpdateAlias(ctx, &lambda.UpdateAliasInput{FunctionName: name, Name: aws.String(liveAlias), FunctionVersion: aws.String(version)})
	if isCode(err, "ResourceNotFoundException") {
		_, err = m.fn.CreateAlias(ctx, &lambda.CreateAliasInput{FunctionName: name, Name: aws.String(liveAlias), FunctionVersion: aws.String(version)})
	}
	if err != nil {
		return fail(id, "point the alias of function "+fn+" at version "+version, err)
	}
	return nil
}

// liveIsOurs reports whether function fn and its live alias exist, and
// whether the alias points at a version silo published (its description
// is one of silo's version tags): a function deleted or re-pointed outside
// silo is drift.
func (m *member) liveIsOurs(ctx context.Context, id silo.AccountID, fn string) (exists, ours bool, err error) {
	out, err := m.fn.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(lambdaName(fn)), Name: aws.String(liveAlias)})
	if isCode(err, "ResourceNotFoundException") {
		return false, false, nil
	}
	if err != nil {
		return false, false, fail(id, "read the alias of function "+fn, err)
	}
	versions, found, err := m.versions(ctx, id, fn)
	if err != nil || !found {
		return found, false, err
	}
	live := aws.ToString(out.FunctionVersion)
	for tag, v := range versions {
		if v == live && strings.HasPrefix(tag, "silo ") {
			return true, true, nil
		}
	}
	return true, false, nil
}

// LiveVersion returns the version function fn's live alias points at in
// account id: what its routes run.
//
// # Errors
//
// CodeNotFound if the account, the function or its alias does not exist.
func (p *Provider) LiveVersion(ctx context.Context, id silo.AccountID, fn string) (string, error) {
	if err := parseID(id); err != nil {
		return "", err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return "", err
	}
	out, err := p.member(awsID).fn.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(lambdaName(fn)), Name: aws.String(liveAlias)})
	if isCode(err, "ResourceNotFoundException") {
		return "", silo.Errorf(silo.CodeNotFound, "function %s is not deployed in account %s", clip(fn), id)
	}
	if err != nil {
		return "", fail(id, "read the alias of function "+fn, err)
	}
	return aws.ToString(out.FunctionVersion), nil
}

// removeFunction deletes function fn, all its versions and its alias; a
// missing one is a no-op.
func (m *member) removeFunction(ctx context.Context, id silo.AccountID, fn string) error {
	_, err := m.fn.DeleteFunction(ctx, &lambda.DeleteFunctionInput{FunctionName: aws.String(lambdaName(fn))})
	if err != nil && !isCode(err, "ResourceNotFoundException") {
		return fail(id, "delete function "+fn, err)
	}
	return nil
}

// Smoke invokes the live alias of function fn of account id once, directly
// (lambda:Invoke through the deployer role, not through the account's HTTP
// API, so it needs no API key), with GET /, as a rollout's smoke test does
// after applying a release (it satisfies rollout.Smoke).
//
// # Errors
//
// CodeFailedCheck if the function fails or answers with status 400 or
// above, naming the tenant, the function and the request; the errors of
// Apply for an account or a call that fails.
func (p *Provider) Smoke(ctx context.Context, id silo.AccountID, fn string) error {
	if err := parseID(id); err != nil {
		return err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return err
	}
	var b [8]byte
	rand.Read(b[:])
	rid := "smoke-" + hex.EncodeToString(b[:])
	payload, _ := json.Marshal(map[string]any{"silo_invoke": map[string]string{"method": "GET", "path": "/", "request_id": rid}})
	out, err := p.member(awsID).fn.Invoke(ctx, &lambda.InvokeInput{
		FunctionName: aws.String(lambdaName(fn)), Qualifier: aws.String(liveAlias), Payload: payload,
	}, func(o *lambda.Options) {
		if p.invokeHTTP != nil { // Lambda answers when the function returns
			o.HTTPClient = p.invokeHTTP
		}
	})
	if isCode(err, "ResourceNotFoundException") {
		return silo.Errorf(silo.CodeNotFound, "smoke function %s is not deployed in account %s", clip(fn), id)
	}
	if err != nil {
		return fail(id, "invoke smoke function "+fn, err)
	}
	if out.FunctionError != nil {
		return smokeFailed(id, fn, rid, out.Payload)
	}
	var resp struct {
		StatusCode int `json:"statusCode"`
	}
	if json.Unmarshal(out.Payload, &resp) != nil || resp.StatusCode == 0 {
		return silo.Errorf(silo.CodeFailedCheck, "smoke function %s of %s failed on Lambda (request %s); see its logs", fn, id, rid)
	}
	if resp.StatusCode >= 400 {
		return silo.Errorf(silo.CodeFailedCheck, "smoke function %s of %s answered %d (request %s); see its logs", fn, id, resp.StatusCode, rid)
	}
	return nil
}

// HostStartError is the error type the silo Lambda host posts to Lambda's
// Runtime API when it cannot start (its module does not compile, its
// package lacks a file): Lambda answers the function's invocations with
// it, and its message is the host's own line naming the tenant, the
// function and the step, which holds no AWS text.
const HostStartError = "silo.Start"

// smokeFailed is the error of a smoke invocation that Lambda reports as
// failed (payload: Lambda's error document): the host's own reason when it
// could not start, a timeout when Lambda stopped it, else a failure
// without Lambda's text (which names Lambda's internals, not the
// function's).
func smokeFailed(id silo.AccountID, fn, rid string, payload []byte) error {
	var e struct {
		Type    string `json:"errorType"`
		Message string `json:"errorMessage"`
	}
	json.Unmarshal(payload, &e)
	switch e.Type {
	case HostStartError:
		msg := strings.Join(strings.Fields(e.Message), " ")
		if len(msg) > 400 {
			msg = msg[:400] + "…"
		}
		return silo.Errorf(silo.CodeFailedCheck, "smoke function %s of %s did not start on Lambda: %s", fn, id, msg)
	case "Sandbox.Timedout":
		return silo.Errorf(silo.CodeFailedCheck, "smoke function %s of %s ran past its Lambda timeout and was stopped by Lambda (request %s); see its logs", fn, id, rid)
	}
	return silo.Errorf(silo.CodeFailedCheck, "smoke function %s of %s failed on Lambda (request %s); see its logs", fn, id, rid)
}
