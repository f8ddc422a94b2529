package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials/stscreds"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	silo "github.com/silo-run/silo"
)

// Names of what silo creates inside a member account. Every name derives
// from the resource's type and name alone (buckets also from the AWS
// account ID, S3 names being global), so a call repeated after a crash
// finds what the first one created.
const (
	keyAlias      = "alias/silo-data"
	tablePrefix   = "silo."
	configPath    = "/silo/config/"
	recordPath    = "/silo/resource/"
	siloPath      = "/silo"
	tagAccount    = "silo:account"
	tagResource   = "silo:resource"
	tagHash       = "silo:hash"
	maxEncodedLen = 400
)

func tableName(name string) string { return tablePrefix + name }

func bucketPrefix(awsID string) string { return "silo-" + awsID + "-" }

// bucketName is global in S3, so it carries the AWS account ID and a hash
// of the silo name (silo names may hold upper case and '_', S3's may not).
func bucketName(awsID, name string) string {
	sum := sha256.Sum256([]byte(name))
	return bucketPrefix(awsID) + hex.EncodeToString(sum[:8])
}

func configParam(name string) string { return configPath + encode(name) }

func recordParam(t silo.ResourceType, name string) string {
	return recordPath + string(t) + "/" + encode(name)
}

// encode maps a resource name to the characters SSM parameter names allow: letters, digits, '_' and '-' are kept, every other
// byte becomes ".XX". A name whose encoding is too long becomes "h." and
// its SHA-256; the name itself is kept in the resource record.
func encode(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		if isAlnum(c) || c == '_' || c == '-' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, ".%02X", c)
		}
	}
	if b.Len() > maxEncodedLen {
		sum := sha256.Sum256([]byte(name))
		return "h." + hex.EncodeToString(sum[:])
	}
	return b.String()
}

// decode undoes encode: each ".XX" becomes the byte it stands for. A
// hashed name ("h." and a SHA-256) cannot be undone and is returned as
// it is, as is any malformed escape.
func decode(enc string) string {
	if strings.HasPrefix(enc, "h.") {
		return enc
	}
	var b strings.Builder
	for i := 0; i < len(enc); i++ {
		if enc[i] == '.' && i+2 < len(enc) {
			if v, err := strconv.ParseUint(enc[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(enc[i])
	}
	return b.String()
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// member holds the clients of one member account, reached through the
// deployer role.
type member struct {
	id  string // AWS account ID
	ddb *dynamodb.Client
	s3  *s3.Client
	ssm *ssm.Client
	// sm reaches the secrets an earlier silo kept in Secrets Manager
	// (secrets.go); nil in the Lambda host, which reads SSM only.
	sm  *secretsmanager.Client
	kms *kms.Client
	fn  *lambda.Client         // functions (lambda.go)
	api *apigatewayv2.Client   // ingress (ingress.go)
	cwl *cloudwatchlogs.Client // functions' logs (lambdalogs.go)

	mu         sync.Mutex
	keyARN     string // the data key, once known
	legacyGone bool   // no Secrets Manager secret of an earlier silo is left
	// rolesCurrent: the account's deployer and data roles are this
	// version's (ensureRolesCurrent).
	rolesCurrent bool
}

func (m *member) rolesAreCurrent() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.rolesCurrent
}

func (m *member) setRolesCurrent() {
	m.mu.Lock()
	m.rolesCurrent = true
	m.mu.Unlock()
}

// roleConfig returns the AWS config of role in account awsID, assumed
// from the management account.
func (p *Provider) roleConfig(awsID, role string) aws.Config {
	cfg := p.cfg.AWS.Copy()
	arn := fmt.Sprintf("arn:aws:iam::%s:role/%s", awsID, role)
	cfg.Credentials = aws.NewCredentialsCache(stscreds.NewAssumeRoleProvider(p.sts, arn, func(o *stscreds.AssumeRoleOptions) {
		o.RoleSessionName = "silo"
	}))
	return cfg
}

// member returns the control plane's clients of AWS account awsID: through
// the deployer role if Config.Principal is set, else the access role.
func (p *Provider) member(awsID string) *member {
	role := p.cfg.AccessRole
	if p.cfg.Principal != "" {
		role = deployerRole
	}
	return p.clients(awsID, role)
}

// dataMember returns the data plane's clients of AWS account awsID:
// through the data role if Config.Principal is set, else the access role.
func (p *Provider) dataMember(awsID string) *member {
	role := p.cfg.AccessRole
	if p.cfg.Principal != "" {
		role = dataRole
	}
	return p.clients(awsID, role)
}

// clients returns the clients of role in AWS account awsID.
func (p *Provider) clients(awsID, role string) *member {
	p.mu.Lock()
	defer p.mu.Unlock()
	key := role + "@" + awsID
	if m, ok := p.members[key]; ok {
		return m
	}
	cfg := p.roleConfig(awsID, role)
	m := &member{
		id:  awsID,
		ddb: dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { p.endpoint(&o.BaseEndpoint, awsID) }),
		s3: s3.NewFromConfig(cfg, func(o *s3.Options) {
			p.endpoint(&o.BaseEndpoint, awsID)
			o.UsePathStyle = p.cfg.Endpoint != nil
		}),
		ssm: ssm.NewFromConfig(cfg, func(o *ssm.Options) { p.endpoint(&o.BaseEndpoint, awsID) }),
		sm:  secretsmanager.NewFromConfig(cfg, func(o *secretsmanager.Options) { p.endpoint(&o.BaseEndpoint, awsID) }),
		kms: kms.NewFromConfig(cfg, func(o *kms.Options) { p.endpoint(&o.BaseEndpoint, awsID) }),
		fn:  lambda.NewFromConfig(cfg, func(o *lambda.Options) { p.endpoint(&o.BaseEndpoint, awsID) }),
		api: apigatewayv2.NewFromConfig(cfg, func(o *apigatewayv2.Options) { p.endpoint(&o.BaseEndpoint, awsID) }),
		cwl: cloudwatchlogs.NewFromConfig(cfg, func(o *cloudwatchlogs.Options) { p.endpoint(&o.BaseEndpoint, awsID) }),
	}
	p.members[key] = m
	return m
}

// ensureKey returns the ARN of the account's data key, creating the key
// and its alias if missing. A crash between the two leaves a key without
// alias; DeleteAccount schedules it for deletion with the rest.
func (m *member) ensureKey(ctx context.Context, id silo.AccountID) (string, error) {
	arn, err := m.key(ctx, id)
	if err == nil || silo.ErrorCode(err) != silo.CodeNotFound {
		return arn, err
	}
	out, err := m.kms.CreateKey(ctx, &kms.CreateKeyInput{
		Description: aws.String("silo data key of account " + string(id)),
		KeySpec:     kmstypes.KeySpecSymmetricDefault,
		KeyUsage:    kmstypes.KeyUsageTypeEncryptDecrypt,
		Tags:        []kmstypes.Tag{{TagKey: aws.String(tagAccount), TagValue: aws.String(string(id))}},
	})
	if err != nil {
		return "", fail(id, "create the data key", err)
	}
	_, err = m.kms.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(keyAlias), TargetKeyId: out.KeyMetadata.KeyId})
	if err != nil && !isCode(err, "AlreadyExistsException") {
		return "", fail(id, "name the data key", err)
	}
	return m.key(ctx, id)
}

// key returns the ARN of the account's data key.
//
// # Errors
//
// CodeNotFound if the account has no usable data key.
func (m *member) key(ctx context.Context, id silo.AccountID) (string, error) {
	m.mu.Lock()
	arn := m.keyARN
	m.mu.Unlock()
	if arn != "" {
		return arn, nil
	}
	out, err := m.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(keyAlias)})
	if isCode(err, "NotFoundException") || err == nil && out.KeyMetadata.KeyState == kmstypes.KeyStatePendingDeletion {
		return "", silo.Errorf(silo.CodeNotFound, "account %s has no data key", id)
	}
	if err != nil {
		return "", fail(id, "read the data key", err)
	}
	arn = aws.ToString(out.KeyMetadata.Arn)
	m.mu.Lock()
	m.keyARN = arn
	m.mu.Unlock()
	return arn, nil
}

// shredKeys schedules every customer-managed key of the account for
// deletion and returns how many it scheduled (keys already pending
// deletion are not counted).
func (m *member) shredKeys(ctx context.Context, id silo.AccountID) (scheduled int, err error) {
	m.mu.Lock()
	m.keyARN = ""
	m.mu.Unlock()
	pages := kms.NewListKeysPaginator(m.kms, &kms.ListKeysInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return scheduled, fail(id, "list the KMS keys", err)
		}
		for _, k := range page.Keys {
			d, err := m.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
			if err != nil {
				return scheduled, fail(id, "read a KMS key", err)
			}
			md := d.KeyMetadata
			if md.KeyManager == kmstypes.KeyManagerTypeAws || md.KeyState == kmstypes.KeyStatePendingDeletion {
				continue
			}
			_, err = m.kms.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: k.KeyId, PendingWindowInDays: aws.Int32(7)})
			switch {
			case err == nil:
				scheduled++
			case !isCode(err, "KMSInvalidStateException", "NotFoundException"):
				return scheduled, fail(id, "schedule the deletion of the data key", err)
			}
		}
	}
	return scheduled, nil
}

// deleteData deletes every table, bucket, parameter and secret silo made
// in the account, the Secrets Manager secrets of an earlier silo too.
func (m *member) deleteData(ctx context.Context, id silo.AccountID) error {
	tables := dynamodb.NewListTablesPaginator(m.ddb, &dynamodb.ListTablesInput{})
	for tables.HasMorePages() {
		page, err := tables.NextPage(ctx)
		if err != nil {
			return fail(id, "list the tables", err)
		}
		for _, t := range page.TableNames {
			if name, ok := strings.CutPrefix(t, tablePrefix); ok {
				if err := m.deleteTable(ctx, id, name); err != nil {
					return err
				}
			}
		}
	}
	buckets, err := m.buckets(ctx, id)
	if err != nil {
		return err
	}
	for b := range buckets {
		if err := m.deleteBucket(ctx, id, b); err != nil {
			return err
		}
	}
	params := ssm.NewGetParametersByPathPaginator(m.ssm, &ssm.GetParametersByPathInput{Path: aws.String(siloPath), Recursive: aws.Bool(true)})
	for params.HasMorePages() {
		page, err := params.NextPage(ctx)
		if err != nil {
			return fail(id, "list the parameters", err)
		}
		var names []string
		for _, p := range page.Parameters {
			names = append(names, aws.ToString(p.Name))
		}
		if len(names) > 0 {
			if _, err := m.ssm.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: names}); err != nil {
				return fail(id, "delete the parameters", err)
			}
		}
	}
	secrets, err := m.secretParams(ctx, id)
	if err != nil {
		return err
	}
	for len(secrets) > 0 {
		n := min(len(secrets), 10) // DeleteParameters takes up to 10 names
		if _, err := m.ssm.DeleteParameters(ctx, &ssm.DeleteParametersInput{Names: secrets[:n]}); err != nil {
			return fail(id, "delete the secrets", err)
		}
		secrets = secrets[n:]
	}
	legacy, err := m.legacySecrets(ctx, id)
	if err != nil {
		return err
	}
	for _, name := range legacy {
		if _, err := m.deleteLegacySecret(ctx, id, name); err != nil {
			return err
		}
	}
	return nil
}

// buckets returns the names of silo's buckets in the account.
func (m *member) buckets(ctx context.Context, id silo.AccountID) (map[string]bool, error) {
	out := map[string]bool{}
	pages := s3.NewListBucketsPaginator(m.s3, &s3.ListBucketsInput{Prefix: aws.String(bucketPrefix(m.id))})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail(id, "list the buckets", err)
		}
		for _, b := range page.Buckets {
			if name := aws.ToString(b.Name); strings.HasPrefix(name, bucketPrefix(m.id)) {
				out[name] = true
			}
		}
	}
	return out, nil
}

// deleteBucket empties and deletes bucket b; a missing bucket is no error.
func (m *member) deleteBucket(ctx context.Context, id silo.AccountID, b string) error {
	pages := s3.NewListObjectsV2Paginator(m.s3, &s3.ListObjectsV2Input{Bucket: aws.String(b)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if isCode(err, "NoSuchBucket") {
			return nil
		}
		if err != nil {
			return fail(id, "list a bucket to delete", err)
		}
		if len(page.Contents) == 0 {
			continue
		}
		objs := make([]s3types.ObjectIdentifier, len(page.Contents))
		for i, o := range page.Contents {
			objs[i] = s3types.ObjectIdentifier{Key: o.Key}
		}
		out, err := m.s3.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(b), Delete: &s3types.Delete{Objects: objs, Quiet: aws.Bool(true)}})
		if err != nil {
			return fail(id, "empty a bucket", err)
		}
		if len(out.Errors) > 0 {
			return fail(id, "empty a bucket", fmt.Errorf("%d objects not deleted, first %s: %s", len(out.Errors), aws.ToString(out.Errors[0].Code), aws.ToString(out.Errors[0].Message)))
		}
	}
	_, err := m.s3.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b)})
	if err != nil && !isCode(err, "NoSuchBucket") {
		return fail(id, "delete a bucket", err)
	}
	return nil
}

func (m *member) deleteTable(ctx context.Context, id silo.AccountID, name string) error {
	_, err := m.ddb.DeleteTable(ctx, &dynamodb.DeleteTableInput{TableName: aws.String(tableName(name))})
	if isCode(err, "ResourceNotFoundException") {
		return nil
	}
	if err != nil {
		return fail(id, "delete table "+name, err)
	}
	w := dynamodb.NewTableNotExistsWaiter(m.ddb)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName(name))}, waitTable); err != nil {
		return fail(id, "wait for the deletion of table "+name, err)
	}
	return nil
}
