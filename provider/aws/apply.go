package aws

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	ssmtypes "github.com/aws/aws-sdk-go-v2/service/ssm/types"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// waitTable bounds the wait for a DynamoDB table to become active or gone.
const waitTable = 5 * time.Minute

// record is a resource as kept in its SSM record parameter: the spec is a
// string so that its bytes come back exactly as applied.
type record struct {
	Type silo.ResourceType `json:"type"`
	Name string            `json:"name"`
	Hash string            `json:"hash"`
	Spec string            `json:"spec,omitempty"`
}

// Apply makes one change to one resource of the account. Effects by type:
// a table is a DynamoDB table and a bucket an S3 bucket (deleting either
// deletes its data; replacing either recreates it empty); a config is an
// SSM parameter; a secret's record declares its slot and deleting it
// deletes its value; a function gets its IAM execution role and an export
// of the production account its resource policy (applyTrust); with
// Config.Functions a function runs on Lambda under that role and a route is
// a route of the account's HTTP API (lambda.go, ingress.go), without it they
// are only recorded, as schedules are. Each Apply first moves the secrets
// an earlier silo kept in Secrets Manager to SSM, and again after a
// function's deployment (migrateSecrets). Every resource has a record, an SSM parameter under
// /silo/resource/ holding its type, name, spec and hash, written after the
// effect, so repeating an Apply interrupted by a crash converges.
//
// # Errors
//
// CodeNotFound if the account does not exist; CodeInvalid for an unknown
// op or type, a bad name, or a spec that does not decode.
func (p *Provider) Apply(ctx context.Context, id silo.AccountID, c silo.Change) error {
	if err := parseID(id); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if c.Op == silo.OpNoop {
		return nil
	}
	if err := validateName(c.Type, c.Name); err != nil {
		return err
	}
	key := c.Key()
	var res silo.Resource
	var value string // a config's value
	switch c.Op {
	case silo.OpDelete:
	case silo.OpCreate, silo.OpUpdate, silo.OpReplace:
		r := c.Desired
		if r == nil {
			return silo.Errorf(silo.CodeInvalid, "%s %s: the change has no desired resource", c.Op, key)
		}
		if r.Type != c.Type || r.Name != c.Name {
			return silo.Errorf(silo.CodeInvalid, "%s %s: the desired resource is %s", c.Op, key, r.Key())
		}
		res = *r
		if res.Hash == "" {
			res.Hash = res.ComputeHash()
		}
		var err error
		if value, err = checkSpec(res); err != nil {
			return err
		}
	default:
		return silo.Errorf(silo.CodeInvalid, "unknown change op %q for %s", c.Op, key)
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return err
	}
	if err := p.ensureRolesCurrent(ctx, id, awsID); err != nil {
		return err
	}
	m := p.member(awsID)
	if err := p.migrateSecrets(ctx, id, m); err != nil {
		return err
	}
	if c.Op == silo.OpDelete {
		if err := p.removeCompute(ctx, id, m, c.Type, c.Name); err != nil {
			return err
		}
		if err := p.applyTrust(ctx, id, m, c, res); err != nil {
			return err
		}
		if err := m.remove(ctx, id, c.Type, c.Name); err != nil {
			return err
		}
		_, err := m.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(recordParam(c.Type, c.Name))})
		if err != nil && !isCode(err, "ParameterNotFound") {
			return fail(id, "delete the record of "+key, err)
		}
		return nil
	}
	if c.Op == silo.OpReplace && (c.Type == silo.TypeTable || c.Type == silo.TypeBucket) {
		if err := m.remove(ctx, id, c.Type, c.Name); err != nil {
			return err
		}
	}
	if err := m.ensure(ctx, id, res, value); err != nil {
		return err
	}
	if err := p.applyTrust(ctx, id, m, c, res); err != nil {
		return err
	}
	if err := p.deployCompute(ctx, id, m, res, c.Release); err != nil {
		return err
	}
	rec, _ := json.Marshal(record{Type: res.Type, Name: res.Name, Hash: res.Hash, Spec: string(res.Spec)})
	if err := m.putParam(ctx, recordParam(res.Type, res.Name), string(rec)); err != nil {
		if isCode(err, "ParameterMaxVersionLimitExceeded", "ValidationException") {
			return silo.Errorf(silo.CodeInvalid, "%s: its spec is %d bytes; the AWS provider keeps specs of up to 8 KiB", key, len(res.Spec))
		}
		return fail(id, "record "+key, err)
	}
	if res.Type == silo.TypeFunction {
		// The function may have been the last to read a secret through
		// Secrets Manager.
		return p.migrateSecrets(ctx, id, m)
	}
	return nil
}

// putParam writes an SSM String parameter, overwriting it. Intelligent
// tiering keeps values up to 4 KiB in the free standard tier and moves
// larger ones, up to 8 KiB, to the advanced tier.
func (m *member) putParam(ctx context.Context, name, value string) error {
	_, err := m.ssm.PutParameter(ctx, &ssm.PutParameterInput{
		Name:      aws.String(name),
		Value:     aws.String(value),
		Type:      ssmtypes.ParameterTypeString,
		Overwrite: aws.Bool(true),
		Tier:      ssmtypes.ParameterTierIntelligentTiering,
	})
	return err
}

// checkSpec checks that r's spec can be applied and returns a config's
// value.
func checkSpec(r silo.Resource) (string, error) {
	switch r.Type {
	case silo.TypeTable, silo.TypeBucket, silo.TypeConfig, silo.TypeSecret,
		silo.TypeFunction, silo.TypeRoute, silo.TypeExport, silo.TypeSchedule:
	default:
		return "", silo.Errorf(silo.CodeInvalid, "unknown resource type %q for %s", r.Type, r.Name)
	}
	var spec map[string]json.RawMessage
	if len(r.Spec) > 0 {
		if err := json.Unmarshal(r.Spec, &spec); err != nil {
			return "", silo.Errorf(silo.CodeInvalid, "%s: spec is not a JSON object", r.Key())
		}
	}
	if r.Type != silo.TypeConfig {
		return "", nil
	}
	var value string
	raw, ok := spec["value"]
	if !ok || json.Unmarshal(raw, &value) != nil {
		return "", silo.Errorf(silo.CodeInvalid, "config %s: spec needs a string \"value\"", r.Name)
	}
	return value, nil
}

// ensure makes the effect of resource r exist in the account.
func (m *member) ensure(ctx context.Context, id silo.AccountID, r silo.Resource, value string) error {
	tags := map[string]string{tagResource: r.Key(), tagHash: r.Hash}
	switch r.Type {
	case silo.TypeTable:
		return m.ensureTable(ctx, id, r.Name, tags)
	case silo.TypeBucket:
		return m.ensureBucket(ctx, id, r.Name, tags)
	case silo.TypeConfig:
		// The value is stored as JSON: SSM refuses empty values.
		v, _ := json.Marshal(value)
		if err := m.putParam(ctx, configParam(r.Name), string(v)); err != nil {
			if isCode(err, "ValidationException") {
				return silo.Errorf(silo.CodeInvalid, "config %s: its value is %d bytes; the AWS provider keeps values of up to 8 KiB", r.Name, len(value))
			}
			return fail(id, "set config "+r.Name, err)
		}
	}
	return nil
}

// ensureTable creates table name (on-demand, encrypted under the account's
// data key, partition key p and sort key k, see data.go) or, if it exists,
// updates its tags.
func (m *member) ensureTable(ctx context.Context, id silo.AccountID, name string, tags map[string]string) error {
	keyARN, err := m.key(ctx, id)
	if err != nil {
		return err
	}
	var ddbTags []ddbtypes.Tag
	for k, v := range tags {
		ddbTags = append(ddbTags, ddbtypes.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	sort.Slice(ddbTags, func(i, j int) bool { return *ddbTags[i].Key < *ddbTags[j].Key })
	_, err = m.ddb.CreateTable(ctx, &dynamodb.CreateTableInput{
		TableName: aws.String(tableName(name)),
		AttributeDefinitions: []ddbtypes.AttributeDefinition{
			{AttributeName: aws.String(attrPartition), AttributeType: ddbtypes.ScalarAttributeTypeS},
			{AttributeName: aws.String(attrKey), AttributeType: ddbtypes.ScalarAttributeTypeS},
		},
		KeySchema: []ddbtypes.KeySchemaElement{
			{AttributeName: aws.String(attrPartition), KeyType: ddbtypes.KeyTypeHash},
			{AttributeName: aws.String(attrKey), KeyType: ddbtypes.KeyTypeRange},
		},
		BillingMode: ddbtypes.BillingModePayPerRequest,
		SSESpecification: &ddbtypes.SSESpecification{
			Enabled: aws.Bool(true), SSEType: ddbtypes.SSETypeKms, KMSMasterKeyId: aws.String(keyARN),
		},
		Tags: ddbTags,
	})
	if isCode(err, "ResourceInUseException") {
		d, err := m.ddb.DescribeTable(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName(name))})
		if err != nil {
			return fail(id, "read table "+name, err)
		}
		if _, err := m.ddb.TagResource(ctx, &dynamodb.TagResourceInput{ResourceArn: d.Table.TableArn, Tags: ddbTags}); err != nil {
			return fail(id, "tag table "+name, err)
		}
	} else if err != nil {
		return fail(id, "create table "+name, err)
	}
	w := dynamodb.NewTableExistsWaiter(m.ddb)
	if err := w.Wait(ctx, &dynamodb.DescribeTableInput{TableName: aws.String(tableName(name))}, waitTable); err != nil {
		return fail(id, "wait for table "+name, err)
	}
	return nil
}

// ensureBucket creates bucket name with every public access blocked and
// default encryption under the account's data key, then sets its tags.
func (m *member) ensureBucket(ctx context.Context, id silo.AccountID, name string, tags map[string]string) error {
	keyARN, err := m.key(ctx, id)
	if err != nil {
		return err
	}
	b := aws.String(bucketName(m.id, name))
	in := &s3.CreateBucketInput{Bucket: b}
	if r := m.s3.Options().Region; r != "us-east-1" {
		in.CreateBucketConfiguration = &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(r)}
	}
	_, err = m.s3.CreateBucket(ctx, in)
	switch {
	case isCode(err, "BucketAlreadyExists"):
		return silo.Errorf(silo.CodeConflict, "bucket %s of account %s: its S3 name %s is taken by another AWS account", name, id, *b)
	case err != nil && !isCode(err, "BucketAlreadyOwnedByYou"):
		return fail(id, "create bucket "+name, err)
	}
	_, err = m.s3.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: b, PublicAccessBlockConfiguration: &s3types.PublicAccessBlockConfiguration{
		BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true),
	}})
	if err != nil {
		return fail(id, "block public access to bucket "+name, err)
	}
	_, err = m.s3.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: b, ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
		Rules: []s3types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String(keyARN)},
			BucketKeyEnabled:                   aws.Bool(true),
		}},
	}})
	if err != nil {
		return fail(id, "encrypt bucket "+name, err)
	}
	var s3Tags []s3types.Tag
	for k, v := range tags {
		s3Tags = append(s3Tags, s3types.Tag{Key: aws.String(k), Value: aws.String(v)})
	}
	sort.Slice(s3Tags, func(i, j int) bool { return *s3Tags[i].Key < *s3Tags[j].Key })
	if _, err := m.s3.PutBucketTagging(ctx, &s3.PutBucketTaggingInput{Bucket: b, Tagging: &s3types.Tagging{TagSet: s3Tags}}); err != nil {
		return fail(id, "tag bucket "+name, err)
	}
	return nil
}

// remove undoes the effect of resource typ/name; a missing one is a no-op.
func (m *member) remove(ctx context.Context, id silo.AccountID, typ silo.ResourceType, name string) error {
	switch typ {
	case silo.TypeTable:
		return m.deleteTable(ctx, id, name)
	case silo.TypeBucket:
		return m.deleteBucket(ctx, id, bucketName(m.id, name))
	case silo.TypeConfig:
		_, err := m.ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(configParam(name))})
		if err != nil && !isCode(err, "ParameterNotFound") {
			return fail(id, "delete config "+name, err)
		}
	case silo.TypeSecret:
		_, err := m.deleteSecret(ctx, id, name)
		return err
	case silo.TypeFunction, silo.TypeRoute, silo.TypeExport, silo.TypeSchedule:
	default:
		return silo.Errorf(silo.CodeInvalid, "unknown resource type %q for %s", typ, name)
	}
	return nil
}

// Resources reads back the account's resource records, sorted by key. A
// table, bucket or config whose record exists but whose AWS resource does
// not (deleted outside silo) is left out, a config whose value was
// changed outside silo carries that value and its hash, and a bucket whose
// public access block or default encryption was weakened has an empty
// hash, so the engine sees the drift and applies the resource again. A
// no-change call costs one SSM call per ten resources, one call each to
// list tables, buckets and config parameters, and two per bucket.
func (p *Provider) Resources(ctx context.Context, id silo.AccountID) ([]silo.Resource, error) {
	if err := parseID(id); err != nil {
		return nil, err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return nil, err
	}
	m := p.member(awsID)
	recs, err := m.params(ctx, id, recordPath)
	if err != nil {
		return nil, err
	}
	out := make([]silo.Resource, 0, len(recs))
	var tables, buckets map[string]bool
	var configs map[string]string
	for _, raw := range recs {
		var rec record
		if err := json.Unmarshal([]byte(raw), &rec); err != nil {
			return nil, fail(id, "read a resource record", err)
		}
		r := silo.Resource{Type: rec.Type, Name: rec.Name, Hash: rec.Hash}
		if rec.Spec != "" {
			r.Spec = json.RawMessage(rec.Spec)
		}
		switch r.Type {
		case silo.TypeTable:
			if tables == nil {
				if tables, err = m.tables(ctx, id); err != nil {
					return nil, err
				}
			}
			if !tables[r.Name] {
				continue
			}
		case silo.TypeBucket:
			if buckets == nil {
				if buckets, err = m.buckets(ctx, id); err != nil {
					return nil, err
				}
			}
			if !buckets[bucketName(awsID, r.Name)] {
				continue
			}
			guarded, err := m.bucketGuarded(ctx, id, r.Name)
			if err != nil {
				return nil, err
			}
			if !guarded {
				r.Hash = "" // never an applied hash: the engine applies it again
			}
		case silo.TypeConfig:
			if configs == nil {
				if configs, err = m.params(ctx, id, configPath); err != nil {
					return nil, err
				}
			}
			held, ok := configs[configParam(r.Name)]
			if !ok {
				continue
			}
			r = heldConfig(r, held)
		case silo.TypeFunction:
			if p.cfg.Functions == nil {
				break
			}
			exists, ours, err := m.liveIsOurs(ctx, id, r.Name)
			if err != nil {
				return nil, err
			}
			if !exists {
				continue // deleted outside silo: the engine creates it again
			}
			if !ours {
				r.Hash = "" // the alias runs a version silo did not publish
			}
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key() < out[j].Key() })
	return out, nil
}

// bucketGuarded reports whether bucket name still blocks every public
// access and encrypts by default under the account's data key, as
// ensureBucket left it.
func (m *member) bucketGuarded(ctx context.Context, id silo.AccountID, name string) (bool, error) {
	b := aws.String(bucketName(m.id, name))
	pab, err := m.s3.GetPublicAccessBlock(ctx, &s3.GetPublicAccessBlockInput{Bucket: b})
	if isCode(err, "NoSuchPublicAccessBlockConfiguration") {
		return false, nil
	}
	if err != nil {
		return false, fail(id, "read the public access block of bucket "+name, err)
	}
	c := pab.PublicAccessBlockConfiguration
	if c == nil || !aws.ToBool(c.BlockPublicAcls) || !aws.ToBool(c.BlockPublicPolicy) || !aws.ToBool(c.IgnorePublicAcls) || !aws.ToBool(c.RestrictPublicBuckets) {
		return false, nil
	}
	enc, err := m.s3.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: b})
	if isCode(err, "ServerSideEncryptionConfigurationNotFoundError") {
		return false, nil
	}
	if err != nil {
		return false, fail(id, "read the encryption of bucket "+name, err)
	}
	keyARN, err := m.key(ctx, id)
	if err != nil {
		return false, err
	}
	if enc.ServerSideEncryptionConfiguration == nil {
		return false, nil
	}
	for _, rule := range enc.ServerSideEncryptionConfiguration.Rules {
		d := rule.ApplyServerSideEncryptionByDefault
		if d != nil && d.SSEAlgorithm == s3types.ServerSideEncryptionAwsKms && aws.ToString(d.KMSMasterKeyID) == keyARN {
			return true, nil
		}
	}
	return false, nil
}

// heldConfig returns config r as the account holds it: if its parameter's
// value (held, JSON) differs from the record's, a value set outside silo,
// the spec carries the held value and the hash is recomputed, so the
// engine sees the drift.
func heldConfig(r silo.Resource, held string) silo.Resource {
	var spec map[string]any
	var value string
	if json.Unmarshal(r.Spec, &spec) != nil || json.Unmarshal([]byte(held), &value) != nil {
		r.Hash = "" // unreadable: never equal to an applied hash
		return r
	}
	if v, ok := spec["value"].(string); ok && v == value {
		return r
	}
	spec["value"] = value
	r.Spec, _ = json.Marshal(spec)
	r.Hash = r.ComputeHash()
	return r
}

// params returns the SSM parameters under path: name → value.
func (m *member) params(ctx context.Context, id silo.AccountID, path string) (map[string]string, error) {
	out := map[string]string{}
	pages := ssm.NewGetParametersByPathPaginator(m.ssm, &ssm.GetParametersByPathInput{Path: aws.String(strings.TrimSuffix(path, "/")), Recursive: aws.Bool(true)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail(id, "read the parameters under "+path, err)
		}
		for _, p := range page.Parameters {
			out[aws.ToString(p.Name)] = aws.ToString(p.Value)
		}
	}
	return out, nil
}

// tables returns the names of silo's tables in the account.
func (m *member) tables(ctx context.Context, id silo.AccountID) (map[string]bool, error) {
	out := map[string]bool{}
	pages := dynamodb.NewListTablesPaginator(m.ddb, &dynamodb.ListTablesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail(id, "list the tables", err)
		}
		for _, t := range page.TableNames {
			if name, ok := strings.CutPrefix(t, tablePrefix); ok {
				out[name] = true
			}
		}
	}
	return out, nil
}

// PutSecret stores value as the secret name, an SSM SecureString parameter
// encrypted under the account's data key (secrets.go). The secret must be
// declared (its record exists). Neither the value nor any AWS message
// about it appears in an error.
//
// # Errors
//
// CodeNotFound if the account does not exist or the secret is not declared;
// CodeInvalid if value is larger than every provider holds
// (provider.CheckSecretSize), before any AWS call.
func (p *Provider) PutSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error {
	if err := parseID(id); err != nil {
		return err
	}
	if err := validateName(silo.TypeSecret, name); err != nil {
		return err
	}
	if err := provider.CheckSecretSize(name, value); err != nil {
		return err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return err
	}
	if err := p.ensureRolesCurrent(ctx, id, awsID); err != nil {
		return err
	}
	m := p.member(awsID)
	_, err = m.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(recordParam(silo.TypeSecret, name))})
	if isCode(err, "ParameterNotFound") {
		return silo.Errorf(silo.CodeNotFound, "secret %s is not declared in account %s; declare it in silo.yaml and deploy first", name, id)
	}
	if err != nil {
		return fail(id, "read the declaration of secret "+name, err)
	}
	keyARN, err := m.key(ctx, id)
	if err != nil {
		return err
	}
	return m.putSecret(ctx, id, name, keyARN, value)
}

// KeyInfo describes the account's data key: its KMS key ARN and the
// SHA-256 of that ARN as fingerprint. KMS never releases key material.
func (p *Provider) KeyInfo(ctx context.Context, id silo.AccountID) (provider.KeyInfo, error) {
	if err := parseID(id); err != nil {
		return provider.KeyInfo{}, err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return provider.KeyInfo{}, err
	}
	arn, err := p.member(awsID).key(ctx, id)
	if err != nil {
		return provider.KeyInfo{}, err
	}
	sum := sha256.Sum256([]byte(arn))
	return provider.KeyInfo{
		Algorithm:   "AWS KMS symmetric key (SYMMETRIC_DEFAULT, AES-256-GCM)",
		Fingerprint: hex.EncodeToString(sum[:]),
		WrappedBy:   arn,
	}, nil
}

// validateName checks a resource name with the local provider's rules, so
// that a name valid on one is valid on the other: tables and buckets take
// 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit;
// other names are 1-1024 bytes of printable UTF-8.
func validateName(t silo.ResourceType, name string) error {
	switch t {
	case silo.TypeTable, silo.TypeBucket:
		if !storageName(name) {
			return silo.Errorf(silo.CodeInvalid, "invalid %s name %q: use 1-128 letters, digits, '.', '_' and '-', starting with a letter or digit", t, clip(name))
		}
		return nil
	}
	if name == "" || len(name) > MaxKeySize || !utf8.ValidString(name) || strings.IndexFunc(name, isControl) >= 0 {
		return silo.Errorf(silo.CodeInvalid, "invalid %s name %q: use 1-%d bytes of printable UTF-8", t, clip(name), MaxKeySize)
	}
	return nil
}

func storageName(name string) bool {
	ok := name != "" && len(name) <= 128 && isAlnum(name[0])
	for i := 0; ok && i < len(name); i++ {
		c := name[i]
		ok = isAlnum(c) || c == '.' || c == '_' || c == '-'
	}
	return ok
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

func clip(s string) string {
	if len(s) > 64 {
		s = s[:61] + "..."
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}
