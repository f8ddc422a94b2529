package aws

import (
	"context"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	silo "github.com/silo-run/silo"
)

// deployerRole is the role the provider creates in each member account
// when Config.Principal is set, and reaches the account through.
const deployerRole = "silo-deployer"

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement is one statement of an IAM policy document.
type Statement struct {
	Sid       string            `json:"Sid,omitempty"`
	Effect    string            `json:"Effect"`
	Principal map[string]string `json:"Principal,omitempty"`
	Action    []string          `json:"Action"`
	Resource  []string          `json:"Resource,omitempty"`
}

// Unscoped lists the actions of the deployer policy that IAM cannot scope
// to a resource, so they are granted on "*": listing and creating KMS
// keys, listing tables, buckets and secrets.
var Unscoped = []string{"dynamodb:ListTables", "kms:CreateKey", "kms:ListKeys", "s3:ListAllMyBuckets", "secretsmanager:ListSecrets"}

// DeployerPolicy returns the policy of the deployer role of AWS account
// awsID in region: exactly the calls the provider makes, each on silo's
// resources of that account only (tables silo.*, buckets
// silo-<account>-*, parameters under /silo, secrets under silo/secret/,
// the account's KMS keys and the alias alias/silo-data), plus Unscoped on
// "*".
func DeployerPolicy(region, awsID string) Policy {
	arn := func(service, resource string) string {
		return "arn:aws:" + service + ":" + region + ":" + awsID + ":" + resource
	}
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "Tables", Effect: "Allow", Action: []string{
			"dynamodb:CreateTable", "dynamodb:DeleteItem", "dynamodb:DeleteTable", "dynamodb:DescribeTable",
			"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query", "dynamodb:TagResource",
		}, Resource: []string{arn("dynamodb", "table/"+tablePrefix+"*")}},
		{Sid: "Buckets", Effect: "Allow", Action: []string{
			"s3:CreateBucket", "s3:DeleteBucket", "s3:ListBucket", "s3:PutBucketPublicAccessBlock",
			"s3:PutBucketTagging", "s3:PutEncryptionConfiguration",
		}, Resource: []string{"arn:aws:s3:::" + bucketPrefix(awsID) + "*"}},
		{Sid: "Objects", Effect: "Allow", Action: []string{
			"s3:DeleteObject", "s3:GetObject", "s3:PutObject",
		}, Resource: []string{"arn:aws:s3:::" + bucketPrefix(awsID) + "*/*"}},
		{Sid: "Parameters", Effect: "Allow", Action: []string{
			"ssm:DeleteParameter", "ssm:DeleteParameters", "ssm:GetParameter", "ssm:GetParametersByPath", "ssm:PutParameter",
		}, Resource: []string{arn("ssm", "parameter"+siloPath), arn("ssm", "parameter"+siloPath+"/*")}},
		{Sid: "Secrets", Effect: "Allow", Action: []string{
			"secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:GetSecretValue",
			"secretsmanager:PutSecretValue", "secretsmanager:TagResource",
		}, Resource: []string{arn("secretsmanager", "secret:"+secretPrefix+"*")}},
		{Sid: "Keys", Effect: "Allow", Action: []string{
			"kms:CreateAlias", "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey",
			"kms:ScheduleKeyDeletion", "kms:TagResource",
		}, Resource: []string{arn("kms", "key/*")}},
		{Sid: "KeyAlias", Effect: "Allow", Action: []string{"kms:CreateAlias"}, Resource: []string{arn("kms", keyAlias)}},
		{Sid: "Unscoped", Effect: "Allow", Action: Unscoped, Resource: []string{"*"}},
	}}
}

// trustPolicy lets principal, and nothing else, assume the role.
func trustPolicy(principal string) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{{
		Effect: "Allow", Principal: map[string]string{"AWS": principal}, Action: []string{"sts:AssumeRole"},
	}}}
}

// ensureDeployer creates or updates the deployer role of the account
// through the access role, if Config.Principal is set.
func (p *Provider) ensureDeployer(ctx context.Context, id silo.AccountID, awsID string) error {
	if p.cfg.Principal == "" {
		return nil
	}
	c := iam.NewFromConfig(p.roleConfig(awsID, p.cfg.AccessRole), func(o *iam.Options) { p.endpoint(&o.BaseEndpoint, awsID) })
	trust, _ := json.Marshal(trustPolicy(p.cfg.Principal))
	_, err := c.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(deployerRole),
		AssumeRolePolicyDocument: aws.String(string(trust)),
		Description:              aws.String("silo's deployer: exactly the calls silo makes on silo's resources"),
		Tags:                     []iamtypes.Tag{{Key: aws.String(tagAccount), Value: aws.String(string(id))}},
	})
	if isCode(err, "EntityAlreadyExists") {
		_, err = c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(deployerRole), PolicyDocument: aws.String(string(trust))})
	}
	if err != nil {
		return fail(id, "create the deployer role", err)
	}
	doc, _ := json.Marshal(DeployerPolicy(p.cfg.AWS.Region, awsID))
	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(deployerRole), PolicyName: aws.String(deployerRole), PolicyDocument: aws.String(string(doc))})
	if err != nil {
		return fail(id, "grant the deployer role", err)
	}
	return nil
}
