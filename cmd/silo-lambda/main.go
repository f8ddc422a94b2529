// Command silo-lambda is the silo Lambda host: a custom runtime
// (provided.al2023, linux/arm64 or linux/amd64) that runs a silo function's
// .wasm module on AWS Lambda, in the tenant's own AWS account.
//
// The function's deployment package (provider/aws, lambdapkg.go) holds this
// program as "bootstrap", the module as "function.wasm" and the function's
// spec as "function.json" and, when it was built on the function's
// architecture, the module prepared by "bootstrap prepare DIR" (validated,
// instrumented and compiled to machine code, with the module's skeleton to
// load that code through) under "prepared/". At start the host loads that
// code, or else serves on wazero's interpreter while it
// compiles the module in the background (code.go); every invocation (an API Gateway HTTP API event, payload format 2.0) is checked
// against the account's own API key records, then runs in the runtime
// package with all of its guards (memory, table and size limits, the
// deadline, instrumented checkpoints against loop-free recursion, log
// limits), its host calls bound through the decision point to the
// account's data plane (DynamoDB, S3, and SSM for config and SecureString
// secrets), reached with the function's own execution role. Logs are JSON lines on stdout, which
// Lambda sends to CloudWatch Logs.
//
// Build it with
//
//	GOOS=linux GOARCH=arm64 CGO_ENABLED=0 go build -tags lambda.norpc -ldflags='-s -w' -o bootstrap ./cmd/silo-lambda
//
// This command is the only package that imports github.com/aws/aws-lambda-go.
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	silo "github.com/silo-run/silo"
	siloaws "github.com/silo-run/silo/provider/aws"
)

// The environment the provider gives the function (provider/aws, lambda.go).
const (
	envAccount    = "SILO_ACCOUNT"
	envAWSAccount = "SILO_AWS_ACCOUNT"
	envFunction   = "SILO_FUNCTION"
	envRelease    = "SILO_RELEASE"      // the release the version serves under
	envEndpoint   = "SILO_AWS_ENDPOINT" // the emulator only; empty on Lambda
	// The production exports the function reads: production's AWS account,
	// the exports' specs by name (JSON) and, on the emulator, production's
	// endpoint.
	envProduction         = "SILO_PRODUCTION_AWS_ACCOUNT"
	envExports            = "SILO_EXPORTS"
	envProductionEndpoint = "SILO_PRODUCTION_AWS_ENDPOINT"
)

func main() {
	ctx := context.Background()
	if len(os.Args) == 3 && os.Args[1] == "prepare" {
		if err := prepare(ctx, os.Args[2]); err != nil {
			fmt.Fprintf(os.Stderr, "silo-lambda prepare: %v\n", err)
			os.Exit(1)
		}
		return
	}
	var why bytes.Buffer
	h, code := setup(ctx, os.Getenv, os.Stdout, io.MultiWriter(os.Stderr, &why))
	if h == nil {
		initError(os.Getenv("AWS_LAMBDA_RUNTIME_API"), strings.TrimSpace(strings.TrimPrefix(why.String(), "silo-lambda: ")))
		os.Exit(code)
	}
	lambda.StartWithOptions(h.serve, lambda.WithContext(ctx))
}

// initError tells Lambda's Runtime API at api why the host cannot start
// (POST /runtime/init/error, as a custom runtime does), so that the
// function's invocations fail with that message rather than with Lambda's
// "Runtime exited"; best effort, for at most two seconds.
func initError(api, msg string) {
	if api == "" {
		return
	}
	body, _ := json.Marshal(map[string]string{"errorType": siloaws.HostStartError, "errorMessage": msg})
	req, err := http.NewRequest(http.MethodPost, "http://"+api+"/2018-06-01/runtime/init/error", bytes.NewReader(body))
	if err != nil {
		return
	}
	req.Header.Set("Lambda-Runtime-Function-Error-Type", siloaws.HostStartError)
	c := &http.Client{Timeout: 2 * time.Second}
	if resp, err := c.Do(req); err == nil {
		resp.Body.Close()
	}
}

// setup reads the environment and the deployment package and returns the
// host, or nil and the exit code after saying what is wrong on stderr.
func setup(ctx context.Context, getenv func(string) string, stdout, stderr io.Writer) (*host, int) {
	log := slog.New(slog.NewJSONHandler(stdout, nil))
	h, err := load(ctx, getenv, log)
	if h != nil {
		h.rec = stdout
	}
	if err != nil {
		fmt.Fprintf(stderr, "silo-lambda: %s\n", silo.UserMessage(err))
		log.Error("start", "err", err)
		return nil, 1
	}
	return h, 0
}

func load(ctx context.Context, getenv func(string) string, log *slog.Logger) (*host, error) {
	acct, fn := silo.AccountID(getenv(envAccount)), getenv(envFunction)
	if acct == "" || fn == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "%s and %s are not set; the function was not deployed by silo", envAccount, envFunction)
	}
	root := getenv("LAMBDA_TASK_ROOT")
	if root == "" {
		root = "/var/task"
	}
	b := bundle{wasm: sync.OnceValues(func() ([]byte, error) {
		wasm, err := os.ReadFile(filepath.Join(root, "function.wasm"))
		if err != nil {
			return nil, &silo.Error{Code: silo.CodeInvalid, Message: fmt.Sprintf("function %s of account %s: its package holds no module; deploy it again", fn, acct), Err: err}
		}
		return wasm, nil
	})}
	spec, err := os.ReadFile(filepath.Join(root, "function.json"))
	if err != nil {
		return nil, &silo.Error{Code: silo.CodeInvalid, Message: fmt.Sprintf("function %s of account %s: its package holds no spec; deploy it again", fn, acct), Err: err}
	}
	if err := json.Unmarshal(spec, &b.Spec); err != nil {
		return nil, &silo.Error{Code: silo.CodeInvalid, Message: fmt.Sprintf("function %s of account %s: its spec does not decode; deploy it again", fn, acct), Err: err}
	}
	if e := getenv(envExports); e != "" {
		if err := json.Unmarshal([]byte(e), &b.Exports); err != nil {
			return nil, &silo.Error{Code: silo.CodeInvalid, Message: fmt.Sprintf("function %s of account %s: the production exports in %s do not decode; deploy it again", fn, acct, envExports), Err: err}
		}
	}
	b.prepared, b.code = readPrepared(root, b.Spec, log)
	b.preparedModule = sync.OnceValues(func() ([]byte, error) { return readModule(root) })
	if b.prepared == nil {
		if _, err := b.wasm(); err != nil {
			return nil, err
		}
	}
	// The AWS clients are made while the module loads: both are a part of
	// every cold start, and neither waits for the other.
	type awsHost struct {
		h   *siloaws.Host
		err error
	}
	made := make(chan awsHost, 1)
	go func() {
		ah, err := siloaws.NewHost(ctx, siloaws.HostConfig{Account: acct, AWSAccount: getenv(envAWSAccount), Function: fn, Endpoint: getenv(envEndpoint),
			Production: getenv(envProduction), ProductionEndpoint: getenv(envProductionEndpoint)})
		made <- awsHost{ah, err}
	}()
	h, err := newHost(ctx, acct, fn, b, getenv(envEngine), log)
	a := <-made
	if err != nil {
		return nil, err
	}
	h.release = getenv(envRelease)
	ah, err := a.h, a.err
	if err != nil {
		h.close(ctx)
		return nil, err
	}
	h.bind(ah.Data(), ah.Production(), ah)
	return h, nil
}
