package aws

import (
	"context"
	"fmt"
	"regexp"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// HostConfig says where the silo Lambda host (cmd/silo-lambda) runs. The
// provider writes it into the function's environment when it deploys the
// function (lambda.go); cmd/silo-lambda reads it back.
type HostConfig struct {
	Account    silo.AccountID // silo's account the function belongs to
	AWSAccount string         // its 12-digit AWS account ID
	Function   string         // the function's name in silo.yaml
	// Endpoint, if not empty, is the URL every AWS call goes to instead of
	// the regional endpoints. It exists for the emulator; on Lambda it is
	// empty.
	Endpoint string
	// Production is the 12-digit AWS account ID of silo's production
	// account, set when the function reads production exports;
	// ProductionEndpoint is its Endpoint (the emulator only).
	Production, ProductionEndpoint string
}

var awsAccountID = regexp.MustCompile(`^[0-9]{12}$`)

// Host is what the silo Lambda host reaches in the AWS account it runs in,
// with the credentials of its environment: on Lambda, the function's own
// execution role (silo-fn-<function>), so AWS itself confines it to that
// account and to the function's grants. It holds no way into any other
// account. Safe for concurrent use.
type Host struct {
	cfg  HostConfig
	data *data
	prod *data // production's exports, when the function reads any (hostexports.go)
}

// NewHost returns the data plane of the account the caller runs in, reached
// with the AWS credentials and region of the process environment (the
// AWS_* variables Lambda sets).
//
// # Errors
//
// CodeInvalid for a malformed account or AWS account ID, or an environment
// without region or credentials.
func NewHost(ctx context.Context, hc HostConfig) (*Host, error) {
	if err := parseID(hc.Account); err != nil {
		return nil, err
	}
	if !awsAccountID.MatchString(hc.AWSAccount) {
		return nil, silo.Errorf(silo.CodeInvalid, "the silo Lambda host needs its 12-digit AWS account ID (got %q); redeploy the function", hc.AWSAccount)
	}
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, &silo.Error{Code: silo.CodeInvalid, Message: "the function's AWS environment cannot be read", Err: fmt.Errorf("load AWS config: %w", err)}
	}
	if cfg.Region == "" {
		return nil, silo.Errorf(silo.CodeInvalid, "the function's environment has no AWS region (AWS_REGION)")
	}
	if hc.Production != "" && !awsAccountID.MatchString(hc.Production) {
		return nil, silo.Errorf(silo.CodeInvalid, "the silo Lambda host needs production's 12-digit AWS account ID to read its exports (got %q); redeploy the function", hc.Production)
	}
	return newHost(hc, cfg), nil
}

func newHost(hc HostConfig, cfg aws.Config) *Host {
	h := &Host{cfg: hc, data: &data{id: hc.Account, awsID: hc.AWSAccount, own: hostMember(hc.AWSAccount, hc.Endpoint, cfg)}}
	if hc.Production != "" {
		h.prod = productionData(hc, cfg)
	}
	return h
}

// hostMember returns the clients of AWS account awsID as the host reaches
// it: with the credentials of cfg, at endpoint if not empty.
func hostMember(awsID, endpoint string, cfg aws.Config) *member {
	ep := func(base **string) {
		if endpoint != "" {
			*base = aws.String(endpoint)
		}
	}
	return &member{
		id:  awsID,
		ddb: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { ep(&o.BaseEndpoint) }),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			ep(&o.BaseEndpoint)
			o.UsePathStyle = endpoint != ""
		}),
		ssm: ssm.NewFromConfig(cfg, func(o *ssm.Options) { ep(&o.BaseEndpoint) }),
		kms: kms.NewFromConfig(cfg, func(o *kms.Options) { ep(&o.BaseEndpoint) }),
	}
}

// Data returns the account's data plane: the same mapping of tables,
// buckets, config and secrets onto DynamoDB, S3 and SSM as Provider.Data,
// without assuming any role.
func (h *Host) Data() provider.Data { return h.data }

// Account returns silo's account the host serves.
func (h *Host) Account() silo.AccountID { return h.cfg.Account }
