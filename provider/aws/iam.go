package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	silo "github.com/silo-run/silo"
)

// The roles the provider creates in each member account when
// Config.Principal is set: the control plane reaches the account through
// the deployer role, the data plane through the data role.
const (
	deployerRole = "silo-deployer"
	dataRole     = "silo-data"
)

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
	// Condition maps an operator to condition keys and their values, such
	// as {"StringEquals": {"aws:SourceAccount": ["123456789012"]}}.
	Condition map[string]map[string][]string `json:"Condition,omitempty"`
}

// Unscoped lists the actions of the deployer policy that IAM cannot scope
// to a resource, so they are granted on "*": listing and creating KMS
// keys, listing tables, buckets, parameters' metadata (never values) and
// the Secrets Manager secrets of an earlier silo.
var Unscoped = []string{"dynamodb:ListTables", "iam:ListRoles", "kms:CreateKey", "kms:ListKeys", "s3:ListAllMyBuckets", "secretsmanager:ListSecrets", "ssm:DescribeParameters"}

// DeployerPolicy returns the policy of the deployer role of AWS account
// awsID in region: exactly the control plane's calls, each on silo's
// resources of that account only (tables silo.*, buckets
// silo-<account>-*, parameters under /silo, secret parameters under
// /silo-secret/, the account's KMS keys and the alias alias/silo-data),
// plus Unscoped on "*". It reads no table value, blob or secret and cannot
// decrypt (I3): secrets are written (ssm:PutParameter, kms:Encrypt) but
// never read, and the Secrets Manager secrets of an earlier silo are
// updated and deleted, never read (secrets.go). It manages
// the functions' execution roles (path /silo/, names silo-fn-*), the
// export resource policies of silo's tables and buckets, and reads every
// role and key policy of the account for silo verify.
func DeployerPolicy(region, awsID string) Policy {
	arn := func(service, resource string) string {
		return "arn:aws:" + service + ":" + region + ":" + awsID + ":" + resource
	}
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "Tables", Effect: "Allow", Action: []string{
			"dynamodb:CreateTable", "dynamodb:DeleteTable", "dynamodb:DescribeTable", "dynamodb:TagResource",
		}, Resource: []string{arn("dynamodb", "table/"+tablePrefix+"*")}},
		{Sid: "Buckets", Effect: "Allow", Action: []string{
			"s3:CreateBucket", "s3:DeleteBucket", "s3:GetBucketPublicAccessBlock", "s3:GetEncryptionConfiguration",
			"s3:ListBucket", "s3:PutBucketPublicAccessBlock", "s3:PutBucketTagging", "s3:PutEncryptionConfiguration",
		}, Resource: []string{"arn:aws:s3:::" + bucketPrefix(awsID) + "*"}},
		{Sid: "Objects", Effect: "Allow", Action: []string{"s3:DeleteObject"}, Resource: []string{"arn:aws:s3:::" + bucketPrefix(awsID) + "*/*"}},
		{Sid: "Parameters", Effect: "Allow", Action: []string{
			"ssm:DeleteParameter", "ssm:DeleteParameters", "ssm:GetParameter", "ssm:GetParametersByPath", "ssm:PutParameter",
		}, Resource: []string{arn("ssm", "parameter"+siloPath), arn("ssm", "parameter"+siloPath+"/*")}},
		{Sid: "Secrets", Effect: "Allow", Action: []string{
			"ssm:AddTagsToResource", "ssm:DeleteParameter", "ssm:DeleteParameters", "ssm:PutParameter",
		}, Resource: []string{arn("ssm", "parameter"+secretPath+"*")}},
		{Sid: "LegacySecrets", Effect: "Allow", Action: []string{
			"secretsmanager:DeleteSecret", "secretsmanager:PutSecretValue",
		}, Resource: []string{arn("secretsmanager", "secret:"+legacySecretPrefix+"*")}},
		{Sid: "Keys", Effect: "Allow", Action: []string{
			"kms:CreateAlias", "kms:CreateGrant", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey",
			"kms:ScheduleKeyDeletion", "kms:TagResource",
		}, Resource: []string{arn("kms", "key/*")}},
		{Sid: "KeyAlias", Effect: "Allow", Action: []string{"kms:CreateAlias"}, Resource: []string{arn("kms", keyAlias)}},
		{Sid: "FunctionRoles", Effect: "Allow", Action: []string{
			"iam:CreateRole", "iam:DeleteRole", "iam:DeleteRolePolicy", "iam:PutRolePolicy", "iam:TagRole",
			"iam:UpdateAssumeRolePolicy",
		}, Resource: []string{"arn:aws:iam::" + awsID + ":role" + rolePath + functionRolePrefix + "*"}},
		{Sid: "ExportPolicies", Effect: "Allow", Action: []string{
			"dynamodb:DeleteResourcePolicy", "dynamodb:GetResourcePolicy", "dynamodb:PutResourcePolicy",
		}, Resource: []string{arn("dynamodb", "table/"+tablePrefix+"*")}},
		{Sid: "BucketPolicies", Effect: "Allow", Action: []string{
			"s3:DeleteBucketPolicy", "s3:GetBucketPolicy", "s3:PutBucketPolicy",
		}, Resource: []string{"arn:aws:s3:::" + bucketPrefix(awsID) + "*"}},
		{Sid: "KeyPolicy", Effect: "Allow", Action: []string{"kms:PutKeyPolicy"}, Resource: []string{arn("kms", "key/*")}},
		{Sid: "ReadPolicies", Effect: "Allow", Action: []string{
			"iam:GetPolicy", "iam:GetPolicyVersion", "iam:GetRole", "iam:GetRolePolicy",
			"iam:ListAttachedRolePolicies", "iam:ListRolePolicies", "kms:GetKeyPolicy",
		}, Resource: []string{
			"arn:aws:iam::" + awsID + ":role/*", "arn:aws:iam::" + awsID + ":policy/*", "arn:aws:iam::aws:policy/*",
			arn("kms", "key/*"),
		}},
		{Sid: "Unscoped", Effect: "Allow", Action: Unscoped, Resource: []string{"*"}},
	}}
}

// DataPolicy returns the policy of the data role of AWS account awsID in
// region: exactly the data plane's calls on silo's tables, objects, config
// parameters and secret parameters of that account, and the use of its
// keys; and reading the Secrets Manager secrets of an earlier silo, which
// the data plane falls back to and the next Apply moves (secrets.go).
func DataPolicy(region, awsID string) Policy {
	arn := func(service, resource string) string {
		return "arn:aws:" + service + ":" + region + ":" + awsID + ":" + resource
	}
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "Items", Effect: "Allow", Action: []string{
			"dynamodb:DeleteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query",
		}, Resource: []string{arn("dynamodb", "table/"+tablePrefix+"*")}},
		{Sid: "Buckets", Effect: "Allow", Action: []string{"s3:ListBucket"}, Resource: []string{"arn:aws:s3:::" + bucketPrefix(awsID) + "*"}},
		{Sid: "Objects", Effect: "Allow", Action: []string{
			"s3:DeleteObject", "s3:GetObject", "s3:PutObject",
		}, Resource: []string{"arn:aws:s3:::" + bucketPrefix(awsID) + "*/*"}},
		{Sid: "Config", Effect: "Allow", Action: []string{"ssm:GetParameter"}, Resource: []string{arn("ssm", "parameter"+configPath+"*")}},
		{Sid: "Secrets", Effect: "Allow", Action: []string{"ssm:GetParameter"}, Resource: []string{arn("ssm", "parameter"+secretPath+"*")}},
		{Sid: "LegacySecrets", Effect: "Allow", Action: []string{"secretsmanager:GetSecretValue"}, Resource: []string{arn("secretsmanager", "secret:"+legacySecretPrefix+"*")}},
		{Sid: "Keys", Effect: "Allow", Action: []string{"kms:Decrypt", "kms:GenerateDataKey"}, Resource: []string{arn("kms", "key/*")}},
	}}
}

// trustPolicy lets principal, and nothing else, assume the role.
func trustPolicy(principal string) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{{
		Effect: "Allow", Principal: map[string]string{"AWS": principal}, Action: []string{"sts:AssumeRole"},
	}}}
}

// ensureDeployer creates or updates the deployer and data roles of the
// account through the access role, if Config.Principal is set.
func (p *Provider) ensureDeployer(ctx context.Context, id silo.AccountID, awsID string) error {
	if p.cfg.Principal == "" {
		return nil
	}
	c := iam.NewFromConfig(p.roleConfig(awsID, p.cfg.AccessRole), func(o *iam.Options) { p.endpoint(&o.BaseEndpoint, awsID) })
	dataPrincipal := p.cfg.DataPrincipal
	if dataPrincipal == "" {
		dataPrincipal = p.cfg.Principal
	}
	roles := []struct {
		name, principal, about string
		policy                 Policy
	}{
		{deployerRole, p.cfg.Principal, "silo's control plane: creates and deletes silo's resources, reads no data", DeployerPolicy(p.cfg.AWS.Region, awsID)},
		{dataRole, dataPrincipal, "silo's data plane: reads and writes the account's data", DataPolicy(p.cfg.AWS.Region, awsID)},
	}
	for _, r := range roles {
		trust, _ := json.Marshal(trustPolicy(r.principal))
		_, err := c.CreateRole(ctx, &iam.CreateRoleInput{
			RoleName:                 aws.String(r.name),
			AssumeRolePolicyDocument: aws.String(string(trust)),
			Description:              aws.String(r.about),
			Tags:                     []iamtypes.Tag{{Key: aws.String(tagAccount), Value: aws.String(string(id))}},
		})
		if isCode(err, "EntityAlreadyExists") {
			_, err = c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(r.name), PolicyDocument: aws.String(string(trust))})
		}
		if err != nil {
			return fail(id, "create the role "+r.name, err)
		}
		doc, _ := json.Marshal(r.policy)
		_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(r.name), PolicyName: aws.String(r.name), PolicyDocument: aws.String(string(doc))})
		if err != nil {
			return fail(id, "grant the role "+r.name, err)
		}
	}
	// The tag says which version of both roles the account holds; it is
	// written last, so an account whose roles are half written is
	// written again by the next ensureRolesCurrent.
	_, err := c.TagRole(ctx, &iam.TagRoleInput{RoleName: aws.String(deployerRole),
		Tags: []iamtypes.Tag{{Key: aws.String(tagRoles), Value: aws.String(p.rolesDigest(awsID))}}})
	if err != nil {
		return fail(id, "tag the role "+deployerRole, err)
	}
	p.member(awsID).setRolesCurrent()
	return nil
}

// tagRoles, on the deployer role, is the digest of the deployer and data
// roles' trust and permission policies as this version of silo writes
// them (rolesDigest).
const tagRoles = "silo:roles"

// rolesDigest returns the digest of the deployer and data roles of
// account awsID as ensureDeployer writes them.
func (p *Provider) rolesDigest(awsID string) string {
	dataPrincipal := p.cfg.DataPrincipal
	if dataPrincipal == "" {
		dataPrincipal = p.cfg.Principal
	}
	b, _ := json.Marshal([]any{
		trustPolicy(p.cfg.Principal), DeployerPolicy(p.cfg.AWS.Region, awsID),
		trustPolicy(dataPrincipal), DataPolicy(p.cfg.AWS.Region, awsID),
	})
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:16])
}

// ensureRolesCurrent writes the account's deployer and data roles again
// if they are not the ones this version of silo writes: an account
// created by an earlier version keeps that version's policies until then
// (a new grant, such as the secrets' in SSM, would be refused by AWS). It
// reads the deployer role (its tags) once per account and process, through
// the access role; nothing to do without Config.Principal (the access
// role is used throughout).
func (p *Provider) ensureRolesCurrent(ctx context.Context, id silo.AccountID, awsID string) error {
	if p.cfg.Principal == "" || p.member(awsID).rolesAreCurrent() {
		return nil
	}
	c := iam.NewFromConfig(p.roleConfig(awsID, p.cfg.AccessRole), func(o *iam.Options) { p.endpoint(&o.BaseEndpoint, awsID) })
	out, err := c.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(deployerRole)})
	if err != nil && !isCode(err, "NoSuchEntity") {
		return fail(id, "read the role "+deployerRole, err)
	}
	if out != nil && out.Role != nil {
		for _, t := range out.Role.Tags {
			if aws.ToString(t.Key) == tagRoles && aws.ToString(t.Value) == p.rolesDigest(awsID) {
				p.member(awsID).setRolesCurrent()
				return nil
			}
		}
	}
	return p.ensureDeployer(ctx, id, awsID)
}
