package aws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/smithy-go"
	silo "github.com/silo-run/silo"
)

// Retries. Every client of the provider retries a throttled call, a 5xx
// answer and a broken connection with the SDK's standard retryer: full
// jitter over an exponential backoff capped at Config.MaxBackoff, at most
// Config.MaxAttempts attempts per call, and a token bucket per client that
// stops retrying when most recent calls failed; a data-plane call with a
// deadline retries until its deadline instead (untilDeadline). Organizations' and IAM's
// ConcurrentModificationException is retried too (AWS says "try again").
// An endpoint that refuses the connection, whose name does not resolve, or
// that does not answer in time (unreachable: a connection never accepted,
// an answer that does not start within Config.AnswerTimeout) is not
// retried: nothing listens there, no such region exists, or the network
// drops what is sent there, and none of these heals within a call's
// retries, each of which would wait as long again; the command fails after
// one attempt with one sentence saying so.
const (
	defaultMaxAttempts = 5
	defaultMaxBackoff  = 20 * time.Second
	// defaultAnswerTimeout is Config.AnswerTimeout's default.
	defaultAnswerTimeout = 30 * time.Second
)

func (c *Config) retryer() func() aws.Retryer {
	return func() aws.Retryer {
		return retry.NewStandard(func(o *retry.StandardOptions) {
			o.MaxAttempts = c.MaxAttempts
			o.MaxBackoff = c.MaxBackoff
			o.Retryables = append([]retry.IsErrorRetryable{retry.IsErrorRetryableFunc(func(err error) aws.Ternary {
				if unreachable(err) != "" {
					return aws.FalseTernary
				}
				return aws.UnknownTernary
			})}, o.Retryables...)
			o.Retryables = append(o.Retryables, retry.RetryableErrorCode{Codes: map[string]struct{}{
				"ConcurrentModificationException": {},
			}})
		})
	}
}

// A call of an account's data plane (tables, blobs, config, secrets:
// data.go) whose context has a deadline is not bounded by a count: it
// retries a retryable failure (a throttled call, a 5xx answer, an
// unreachable endpoint) until that deadline, and ends with the context's
// error. Its caller gave it that much time, and a count would end it at
// a moment that depends on the jittered waits: for a function's table
// call, sometimes before the function's deadline, the function then
// answering the failure itself, sometimes at the deadline, silo then
// saying the function waited for AWS. Ending at the deadline always gives
// the second answer, which says what happened. Such retries take no token
// from the client's retry quota either (the quota stops retrying when
// most recent calls failed, another count), and leave it to the calls
// without a deadline; the backoff between attempts and the deadline bound
// them. A call without a deadline keeps Config.MaxAttempts.
type untilDeadline struct{ aws.Retryer }

// MaxAttempts is 0: no limit.
func (untilDeadline) MaxAttempts() int { return 0 }

// IsErrorRetryable is the wrapped retryer's, and true for an unreachable
// endpoint too: the deadline bounds those retries.
func (r untilDeadline) IsErrorRetryable(err error) bool {
	return unreachable(err) != "" || r.Retryer.IsErrorRetryable(err)
}

// unreachable says why err's endpoint cannot be reached at all ("nothing
// accepts connections at its address", "the name of its endpoint does not
// resolve", "nothing answered at its address in time"), or "" if err is
// no such failure. A network timeout (a connection that is never
// accepted, an answer that never starts within Config.AnswerTimeout) is
// one; a context's deadline or cancellation is not: the caller ended the
// call.
func unreachable(err error) string {
	var dns *net.DNSError
	var timeout interface{ Timeout() bool }
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing accepts connections at its address"
	case errors.As(err, &dns) && dns.IsNotFound:
		return "the name of its endpoint does not resolve"
	case contextEnded(err):
		return ""
	case errors.As(err, &timeout) && timeout.Timeout():
		return "nothing answered at its address in time"
	}
	return ""
}

// contextEnded reports whether err is, or wraps, a context's error
// (context.DeadlineExceeded, context.Canceled) itself. errors.Is is not
// enough: net/http's own timeouts match context.DeadlineExceeded too.
func contextEnded(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e == context.DeadlineExceeded || e == context.Canceled {
			return true
		}
	}
	return false
}

// GetRetryToken takes nothing from the retry quota.
func (untilDeadline) GetRetryToken(context.Context, error) (func(error) error, error) {
	return func(error) error { return nil }, nil
}

// GetAttemptToken is the wrapped retryer's.
func (r untilDeadline) GetAttemptToken(ctx context.Context) (func(error) error, error) {
	if v2, ok := r.Retryer.(aws.RetryerV2); ok {
		return v2.GetAttemptToken(ctx)
	}
	return r.GetInitialToken(), nil
}

// retryUntilDeadline returns r for a call without a deadline, and r
// retrying until ctx's deadline for one with (untilDeadline).
func retryUntilDeadline(ctx context.Context, r aws.Retryer) aws.Retryer {
	if _, ok := ctx.Deadline(); !ok || r == nil {
		return r
	}
	return untilDeadline{r}
}

// The per-call options that apply retryUntilDeadline to a data-plane call.
func ddbRetry(ctx context.Context) func(*dynamodb.Options) {
	return func(o *dynamodb.Options) { o.Retryer = retryUntilDeadline(ctx, o.Retryer) }
}

func s3Retry(ctx context.Context) func(*s3.Options) {
	return func(o *s3.Options) { o.Retryer = retryUntilDeadline(ctx, o.Retryer) }
}

func ssmRetry(ctx context.Context) func(*ssm.Options) {
	return func(o *ssm.Options) { o.Retryer = retryUntilDeadline(ctx, o.Retryer) }
}

// seeCause says where the cause of a failure that persists is: the error
// chain, logged by a server, printed by the CLI under SILO_DEBUG.
const seeCause = "if it persists, see its cause in the server log (or, for a command run without a server, run it again with SILO_DEBUG=1)"

// fail turns an error from AWS at step of account id ("" for the
// organization as a whole) into the error a user sees: one sentence naming
// the account and the step (and, when AWS denied a call, the IAM action),
// never the AWS text, which stays in the chain for logs.
func fail(id silo.AccountID, step string, err error) error {
	if err == nil {
		return nil
	}
	var se *silo.Error
	if errors.As(err, &se) || contextEnded(err) || (errors.Is(err, context.DeadlineExceeded) && unreachable(err) == "") {
		return err
	}
	of := " of account " + string(id)
	if id == "" {
		of = ""
	}
	cause := fmt.Errorf("%s%s: %w", step, of, err)
	e := func(code silo.Code, format string, args ...any) error {
		return &silo.Error{Code: code, Message: fmt.Sprintf(format, args...), Err: cause}
	}
	var limit *orgtypes.ConstraintViolationException
	if errors.As(err, &limit) && limit.Reason == orgtypes.ConstraintViolationExceptionReasonAccountNumberLimitExceeded {
		return e(silo.CodeUnavailable, "AWS refused to %s%s: the organization has reached its account quota; close unused accounts or ask AWS for a higher quota (Service Quotas, AWS Organizations)", step, of)
	}
	switch apiCode(err) {
	case "ThrottlingException", "Throttling", "TooManyRequestsException", "RequestLimitExceeded",
		"ProvisionedThroughputExceededException", "ServiceUnavailable", "SlowDown",
		"ConcurrentModificationException", "LimitExceededException":
		return e(silo.CodeUnavailable, "AWS is busy and refused to %s%s; silo retried and gave up; try again in a minute", step, of)
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AccessDeniedForDependencyException":
		action, where := deniedCall(err)
		if action == "" {
			return e(silo.CodeInternal, "AWS denied silo the right to %s%s; check the management and deployer role permissions (docs/aws.md)", step, of)
		}
		if where == "STS" {
			return e(silo.CodeInternal, "AWS denied silo %s to %s%s: the management principal may not assume the account's role, or the role does not trust it; check both (docs/aws.md)", action, step, of)
		}
		return e(silo.CodeInternal, "AWS denied silo %s to %s%s; grant that action to the principal silo uses there (docs/aws.md lists the policies)", action, step, of)
	case "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
		"SignatureDoesNotMatch", "InvalidSignatureException", "IncompleteSignature", "AuthFailure":
		return e(silo.CodeInvalid, "AWS refused silo's credentials when trying to %s%s; check the management account's credentials (AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY) and that they have not expired", step, of)
	}
	if why := unreachable(err); why != "" {
		service := "AWS"
		if _, s := deniedCall(err); s != "" {
			service = "AWS " + s
		}
		return e(silo.CodeUnavailable, "silo cannot reach %s to %s%s: %s; check the network, the region and AWS_ENDPOINT_URL if set, then try again", service, step, of, why)
	}
	var gaveUp *retry.MaxAttemptsError
	if errors.As(err, &gaveUp) {
		return e(silo.CodeUnavailable, "AWS kept failing to %s%s; silo retried and gave up; try again in a minute, and %s", step, of, seeCause)
	}
	return e(silo.CodeInternal, "AWS failed to %s%s; try again, and %s", step, of, seeCause)
}

// deniedCall returns the IAM action of the innermost AWS call in err (the
// call AWS answered: an AssumeRole under a DynamoDB call, say) and its
// service, or "".
func deniedCall(err error) (action, service string) {
	var inner *smithy.OperationError
	for e := err; e != nil; e = errors.Unwrap(e) {
		if oe, ok := e.(*smithy.OperationError); ok {
			inner = oe
		}
	}
	if inner == nil {
		return "", ""
	}
	prefix, ok := iamPrefix[inner.ServiceID]
	if !ok {
		prefix = strings.ToLower(strings.ReplaceAll(inner.ServiceID, " ", ""))
	}
	action = prefix + ":" + inner.OperationName
	if a, ok := iamAction[action]; ok {
		action = a
	}
	return action, inner.ServiceID
}

// iamAction maps the API operations whose IAM action has another name.
var iamAction = map[string]string{
	"lambda:Invoke": "lambda:InvokeFunction",
}

// iamPrefix maps the SDK's service IDs to the prefixes of IAM actions.
var iamPrefix = map[string]string{
	"Organizations":   "organizations",
	"Account":         "account",
	"STS":             "sts",
	"IAM":             "iam",
	"DynamoDB":        "dynamodb",
	"S3":              "s3",
	"SSM":             "ssm",
	"Secrets Manager": "secretsmanager",
	"KMS":             "kms",
	"Lambda":          "lambda",
	"ApiGatewayV2":    "apigateway",
}

// FaultsDoc is where the documentation says what to do about a failure of
// the AWS provider.
const FaultsDoc = `docs/aws.md ("Faults and bad input")`

// ReadFailure says, in a few words, why err (an error of this provider)
// kept silo from reading an account ("AWS unreachable", "AWS denied
// access"), where the documentation says what to do (FaultsDoc), and
// whether AWS could not be reached at all: every further call would then
// fail the same way, after as long a wait, so a caller reading several
// things of the account stops at the first.
func (p *Provider) ReadFailure(err error) (why, doc string, down bool) {
	switch apiCode(err) {
	case "AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AccessDeniedForDependencyException":
		return "AWS denied access", FaultsDoc, false
	case "UnrecognizedClientException", "InvalidClientTokenId", "ExpiredToken", "ExpiredTokenException",
		"SignatureDoesNotMatch", "InvalidSignatureException", "IncompleteSignature", "AuthFailure":
		return "AWS refused the credentials", FaultsDoc, false
	}
	if unreachable(err) != "" {
		return "AWS unreachable", FaultsDoc, true
	}
	if silo.ErrorCode(err) == silo.CodeUnavailable {
		return "AWS busy or failing", FaultsDoc, false
	}
	return "AWS failed", FaultsDoc, false
}
