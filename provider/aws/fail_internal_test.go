package aws

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/smithy-go"
	silo "github.com/silo-run/silo"
)

func TestFailMapsAWSErrors(t *testing.T) {
	api := func(code string) error {
		return &smithy.GenericAPIError{Code: code, Message: "secret vendor detail arn:aws:kms:xyz"}
	}
	notFound := silo.Errorf(silo.CodeNotFound, "account acme does not exist; create it first")
	tests := []struct {
		name    string
		err     error
		code    silo.Code
		mention string
	}{
		{"throttled", api("ThrottlingException"), silo.CodeUnavailable, "try again in a minute"},
		{"dynamodb throughput", api("ProvisionedThroughputExceededException"), silo.CodeUnavailable, "try again in a minute"},
		{"denied", api("AccessDenied"), silo.CodeInternal, "deployer role"},
		{"other", api("InternalFailure"), silo.CodeInternal, "server log"},
		{"silo error kept", notFound, silo.CodeNotFound, "create it first"},
		{"cancelled kept", context.Canceled, silo.CodeInternal, "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := fail("acme", "create table findings", tt.err)
			if got := silo.ErrorCode(err); got != tt.code {
				t.Errorf("code: got %s, want %s", got, tt.code)
			}
			msg := silo.UserMessage(err)
			if !strings.Contains(msg, tt.mention) {
				t.Errorf("message %q does not say %q", msg, tt.mention)
			}
			if strings.Contains(msg, "vendor detail") || strings.Contains(msg, "arn:") {
				t.Errorf("message %q leaks the AWS error", msg)
			}
			if !errors.Is(err, tt.err) {
				t.Errorf("the cause is lost: %v", err)
			}
		})
	}
	if fail("acme", "x", nil) != nil {
		t.Errorf("fail(nil) is not nil")
	}
}
