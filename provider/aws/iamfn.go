package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	iamtypes "github.com/aws/aws-sdk-go-v2/service/iam/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	silo "github.com/silo-run/silo"
)

// Names of the execution roles: one per function, under the IAM path
// /silo/, so the deployer's IAM rights reach these roles and no other.
const (
	rolePath           = "/silo/"
	functionRolePrefix = "silo-fn-"
	grantsPolicy       = "silo-grants"
	lambdaService      = "lambda.amazonaws.com"
	maxRoleName        = 64
)

// FunctionRole returns the name of the execution role of function fn:
// "silo-fn-" and the name itself if it is lower-case letters, digits, '-'
// and '_' and fits IAM's 64 characters (IAM role names are
// case-insensitive, so upper case would let two functions collide), else
// "silo-fn-." and 32 hex digits of its SHA-256 (a plain name has no '.').
// The rule never changes for a name: the Lambda function of fn runs under
// this role.
func FunctionRole(fn string) string {
	plain := fn != "" && len(functionRolePrefix)+len(fn) <= maxRoleName
	for i := 0; plain && i < len(fn); i++ {
		c := fn[i]
		plain = c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_'
	}
	if plain {
		return functionRolePrefix + fn
	}
	sum := sha256.Sum256([]byte(fn))
	return functionRolePrefix + "." + hex.EncodeToString(sum[:16])
}

// FunctionRoleARN returns the ARN of the execution role of function fn in
// AWS account awsID.
func FunctionRoleARN(awsID, fn string) string {
	return "arn:aws:iam::" + awsID + ":role" + rolePath + FunctionRole(fn)
}

// lambdaTrust lets the Lambda service, acting for account awsID only,
// assume the role.
func lambdaTrust(awsID string) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{{
		Effect: "Allow", Principal: map[string]string{"Service": lambdaService}, Action: []string{"sts:AssumeRole"},
		Condition: map[string]map[string][]string{"StringEquals": {"aws:SourceAccount": {awsID}}},
	}}}
}

// Actions a function grant maps to. Scans are Query calls (data.go).
var (
	tableRead   = []string{"dynamodb:GetItem", "dynamodb:Query"}
	tableWrite  = []string{"dynamodb:DeleteItem", "dynamodb:PutItem"}
	objectRead  = []string{"s3:GetObject"}
	objectWrite = []string{"s3:DeleteObject", "s3:PutObject"}
	bucketRead  = []string{"s3:ListBucket"}
	configRead  = []string{"ssm:GetParameter", "ssm:GetParameters"}
	secretRead  = []string{"ssm:GetParameter"}
)

// ExportRef is a production export as a function grant needs it: the AWS
// account of production and what the export names.
type ExportRef struct {
	Account string
	Spec    silo.ExportSpec
}

// FunctionPolicy returns the inline policy of the execution role of a
// function of AWS account awsID with grants fs: the named DynamoDB actions
// on each granted table (read: GetItem, Query; read-write: also PutItem,
// DeleteItem), S3 object actions on each granted bucket, ssm:GetParameter(s)
// on each granted config parameter, ssm:GetParameter on each granted
// secret's SecureString parameter, kms:Decrypt on the account's data key
// only through SSM and S3 (kms:ViaService; kms:GenerateDataKey through S3
// for a writable bucket), and the read actions on each granted production
// export (exports) with kms:Decrypt on production's keys through DynamoDB
// and S3. Nothing else: a function with no grants gets no
// statement, and the caller then deletes the policy.
func FunctionPolicy(region, awsID, keyARN string, fs silo.FunctionSpec, exports map[string]ExportRef) Policy {
	arn := func(account, service, resource string) string {
		return "arn:aws:" + service + ":" + region + ":" + account + ":" + resource
	}
	var sts []Statement
	add := func(sid string, actions []string, resources ...string) {
		sts = append(sts, Statement{Sid: sid, Effect: "Allow", Action: actions, Resource: resources})
	}
	var viaServices []string
	var keyActions = []string{"kms:Decrypt"}
	for _, t := range slices.Sorted(maps.Keys(fs.Tables)) {
		actions := tableRead
		if fs.Tables[t] == "read-write" {
			actions = append(append([]string(nil), tableRead...), tableWrite...)
		}
		add(sid("Table", t), actions, arn(awsID, "dynamodb", "table/"+tableName(t)))
	}
	for _, b := range slices.Sorted(maps.Keys(fs.Buckets)) {
		bucket := "arn:aws:s3:::" + bucketName(awsID, b)
		add(sid("Bucket", b), bucketRead, bucket)
		actions := objectRead
		if fs.Buckets[b] == "read-write" {
			actions = append(append([]string(nil), objectRead...), objectWrite...)
			keyActions = []string{"kms:Decrypt", "kms:GenerateDataKey"}
		}
		add(sid("Objects", b), actions, bucket+"/*")
		viaServices = appendOnce(viaServices, "s3."+region+".amazonaws.com")
	}
	if len(fs.Config) > 0 {
		var res []string
		for _, c := range sorted(fs.Config) {
			res = append(res, arn(awsID, "ssm", "parameter"+configParam(c)))
		}
		add("Config", configRead, res...)
	}
	if len(fs.Secrets) > 0 {
		var res []string
		for _, s := range sorted(fs.Secrets) {
			res = append(res, arn(awsID, "ssm", "parameter"+secretParam(s)))
		}
		add("Secrets", secretRead, res...)
		// SSM decrypts a SecureString parameter with the caller's own
		// kms:Decrypt, through SSM only.
		viaServices = appendOnce(viaServices, "ssm."+region+".amazonaws.com")
	}
	if len(viaServices) > 0 && keyARN != "" {
		sort.Strings(viaServices)
		sts = append(sts, Statement{Sid: "DataKey", Effect: "Allow", Action: keyActions, Resource: []string{keyARN},
			Condition: map[string]map[string][]string{"StringEquals": {"kms:ViaService": viaServices}}})
	}
	exportKeys := map[string]bool{} // production accounts whose key the exports need
	for _, name := range sorted(fs.Exports) {
		ref, ok := exports[name]
		if !ok {
			continue
		}
		if ref.Spec.Table != "" || ref.Spec.Bucket != "" {
			exportKeys[ref.Account] = true
		}
		switch e := ref.Spec; {
		case e.Table != "":
			add(sid("Export", name), tableRead, arn(ref.Account, "dynamodb", "table/"+tableName(e.Table)))
		case e.Bucket != "":
			bucket := "arn:aws:s3:::" + bucketName(ref.Account, e.Bucket)
			add(sid("ExportBucket", name), bucketRead, bucket)
			add(sid("ExportObjects", name), objectRead, bucket+"/*")
		}
		// A config export has no cross-account grant (docs/aws.md).
	}
	for _, acct := range slices.Sorted(maps.Keys(exportKeys)) {
		// Across accounts KMS wants the caller's own policy to allow the
		// key too; production's key policy does its part (exportkey.go).
		sts = append(sts, Statement{Sid: sid("ExportKey", acct), Effect: "Allow", Action: []string{"kms:Decrypt"},
			Resource: []string{arn(acct, "kms", "key/*")},
			Condition: map[string]map[string][]string{"StringEquals": {"kms:ViaService": {
				"dynamodb." + region + ".amazonaws.com", "s3." + region + ".amazonaws.com",
			}}}})
	}
	return Policy{Version: "2012-10-17", Statement: sts}
}

// tagValue fits a resource key into an IAM tag value (at most 256
// characters): encoded, or its SHA-256 if longer.
func tagValue(key string) string {
	if v := encode(key); len(v) <= 256 {
		return v
	}
	sum := sha256.Sum256([]byte(key))
	return "h." + hex.EncodeToString(sum[:])
}

// sid makes a statement ID from a prefix and a name: IAM takes only
// letters and digits, so the name is hashed.
func sid(prefix, name string) string {
	sum := sha256.Sum256([]byte(name))
	return prefix + hex.EncodeToString(sum[:6])
}

func sorted(s []string) []string {
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

func appendOnce(s []string, v string) []string {
	for _, x := range s {
		if x == v {
			return s
		}
	}
	return append(s, v)
}

// keyARN returns the ARN of the KMS key whose ARN KMS gave as arn, built
// from the region, AWS account awsID and the key ID, as silo verify builds
// it (the emulator answers ARNs of another account).
func (p *Provider) keyARN(awsID, arn string) string {
	keyID := arn[strings.LastIndex(arn, "/")+1:]
	return "arn:aws:kms:" + p.cfg.AWS.Region + ":" + awsID + ":key/" + keyID
}

// iamOf returns an IAM client of the account of m, with m's credentials.
func (p *Provider) iamOf(m *member) *iam.Client {
	cfg := p.cfg.AWS.Copy()
	cfg.Credentials = m.ddb.Options().Credentials
	return iam.NewFromConfig(cfg, func(o *iam.Options) { p.endpoint(&o.BaseEndpoint, m.id) })
}

// applyFunctionRole creates or updates the execution role of function r in
// the account of m, with exactly the grants of its spec.
func (p *Provider) applyFunctionRole(ctx context.Context, id silo.AccountID, m *member, r silo.Resource) error {
	// Only the grants: the rest of the spec is the Lambda host's.
	var g struct {
		Tables  map[string]string `json:"tables"`
		Buckets map[string]string `json:"buckets"`
		Config  []string          `json:"config"`
		Secrets []string          `json:"secrets"`
		Exports []string          `json:"exports"`
	}
	if len(r.Spec) > 0 {
		if err := json.Unmarshal(r.Spec, &g); err != nil {
			return silo.Errorf(silo.CodeInvalid, "function %s: its grants do not decode: %v", r.Name, err)
		}
	}
	fs := silo.FunctionSpec{Tables: g.Tables, Buckets: g.Buckets, Config: g.Config, Secrets: g.Secrets, Exports: g.Exports}
	var keyARN string
	if len(fs.Buckets) > 0 || len(fs.Secrets) > 0 {
		var err error
		if keyARN, err = m.key(ctx, id); err != nil {
			return err
		}
		keyARN = p.keyARN(m.id, keyARN)
	}
	exports, err := p.exportRefs(ctx, id, fs.Exports)
	if err != nil {
		return err
	}
	c := p.iamOf(m)
	name := FunctionRole(r.Name)
	trust, _ := json.Marshal(lambdaTrust(m.id))
	_, err = c.CreateRole(ctx, &iam.CreateRoleInput{
		RoleName:                 aws.String(name),
		Path:                     aws.String(rolePath),
		AssumeRolePolicyDocument: aws.String(string(trust)),
		Description:              aws.String("silo execution role of function " + clip(r.Name)),
		Tags:                     []iamtypes.Tag{{Key: aws.String(tagResource), Value: aws.String(tagValue(r.Key()))}},
	})
	if isCode(err, "EntityAlreadyExists") {
		_, err = c.UpdateAssumeRolePolicy(ctx, &iam.UpdateAssumeRolePolicyInput{RoleName: aws.String(name), PolicyDocument: aws.String(string(trust))})
	}
	if err != nil {
		return fail(id, "create the execution role of function "+r.Name, err)
	}
	pol := FunctionPolicy(p.cfg.AWS.Region, m.id, keyARN, fs, exports)
	if len(pol.Statement) == 0 {
		_, err = c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(grantsPolicy)})
		if err != nil && !isCode(err, "NoSuchEntity") {
			return fail(id, "revoke the grants of function "+r.Name, err)
		}
		return nil
	}
	doc, _ := json.Marshal(pol)
	_, err = c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(name), PolicyName: aws.String(grantsPolicy), PolicyDocument: aws.String(string(doc))})
	if err != nil {
		return fail(id, "grant function "+r.Name+" its tables, buckets, config and secrets", err)
	}
	return nil
}

// deleteFunctionRole deletes the execution role of function fn; a missing
// role is no error.
func (p *Provider) deleteFunctionRole(ctx context.Context, id silo.AccountID, m *member, fn string) error {
	c := p.iamOf(m)
	name := aws.String(FunctionRole(fn))
	_, err := c.DeleteRolePolicy(ctx, &iam.DeleteRolePolicyInput{RoleName: name, PolicyName: aws.String(grantsPolicy)})
	if err != nil && !isCode(err, "NoSuchEntity") {
		return fail(id, "revoke the grants of function "+fn, err)
	}
	_, err = c.DeleteRole(ctx, &iam.DeleteRoleInput{RoleName: name})
	if err != nil && !isCode(err, "NoSuchEntity") {
		return fail(id, "delete the execution role of function "+fn, err)
	}
	return nil
}

// exportRefs resolves production exports by name: the production account
// and each export's spec, read from production's records.
//
// # Errors
//
// CodeNotFound if there is no production account or an export is not
// deployed there.
func (p *Provider) exportRefs(ctx context.Context, id silo.AccountID, names []string) (map[string]ExportRef, error) {
	if len(names) == 0 {
		return nil, nil
	}
	prod, err := p.productionAccount(ctx, id)
	if err != nil {
		return nil, err
	}
	return p.exportRefsIn(ctx, id, prod, names)
}

// exportRefsIn is exportRefs with the production account's AWS ID known
// ("" if there is none).
func (p *Provider) exportRefsIn(ctx context.Context, id silo.AccountID, prod string, names []string) (map[string]ExportRef, error) {
	if len(names) == 0 {
		return nil, nil
	}
	if prod == "" {
		return nil, silo.Errorf(silo.CodeNotFound, "account %s reads production exports, but there is no production account; create and deploy production first", id)
	}
	pm := p.member(prod)
	out := map[string]ExportRef{}
	for _, name := range names {
		got, err := pm.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(recordParam(silo.TypeExport, name))})
		if isCode(err, "ParameterNotFound") {
			return nil, silo.Errorf(silo.CodeNotFound, "account %s reads the production export %s, which production has not deployed; deploy production first", id, name)
		}
		if err != nil {
			return nil, fail(id, "read the production export "+name, err)
		}
		var rec record
		var es silo.ExportSpec
		if json.Unmarshal([]byte(aws.ToString(got.Parameter.Value)), &rec) != nil || json.Unmarshal([]byte(rec.Spec), &es) != nil {
			return nil, fail(id, "read the production export "+name, errUnreadable)
		}
		out[name] = ExportRef{Account: prod, Spec: es}
	}
	return out, nil
}
