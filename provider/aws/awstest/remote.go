package awstest

import (
	"context"
	"io"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/smithy-go/middleware"
)

// endpointPath is where the management front tells another process the
// endpoint of a member account (Remote).
const endpointPath = "/_awstest/endpoint/"

// URL returns the address another process gives Remote to reach this
// organization: the management account's front.
func (o *Org) URL() string { return o.front.url }

// Remote returns, for a process that did not start the organization (a
// child process a test kills), the AWS config and the endpoint function of
// the organization at url (Org.URL): member accounts' endpoints are asked
// of the process that runs the organization, which starts their kumo.
func Remote(url string) (aws.Config, func(account string) string) {
	cfg := aws.Config{
		Region:      Region,
		Credentials: credentials.NewStaticCredentialsProvider("AKIDEMULATED", "emulated", ""),
	}
	return cfg, func(account string) string {
		if account == "" {
			return url
		}
		resp, err := http.Get(url + endpointPath + account)
		if err != nil {
			return "http://127.0.0.1:1"
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			return "http://127.0.0.1:1"
		}
		return strings.TrimSpace(string(b))
	}
}

// serveEndpoint answers a Remote's question for the endpoint of a member
// account.
func (o *Org) serveEndpoint(w http.ResponseWriter, r *http.Request) {
	account := strings.TrimPrefix(r.URL.Path, endpointPath)
	if !o.front.created(account) {
		http.Error(w, "no such account", http.StatusNotFound)
		return
	}
	io.WriteString(w, o.Endpoint(account))
}

// OnCall adds to cfg a middleware that calls fn with "Service.Operation"
// after each AWS call AWS answered without error, before the caller sees
// the answer: where a test kills the process to crash it between two
// calls.
func OnCall(cfg *aws.Config, fn func(op string)) {
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("awstest-oncall", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			out, md, err := next.HandleInitialize(ctx, in)
			if err == nil {
				fn(awsmiddleware.GetServiceID(ctx) + "." + awsmiddleware.GetOperationName(ctx))
			}
			return out, md, err
		}), middleware.After)
	})
}
