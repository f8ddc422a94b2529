package aws

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// The key schema of every table. All items share one partition (p = "0")
// and the silo key is the sort key k, a string attribute: DynamoDB orders
// string sort keys by the bytes of their UTF-8 encoding, which is the byte
// order Scan promises, and a prefix is a key range, so Scan is one Query.
// So table keys must be valid UTF-8 (a binary sort key would take any
// bytes, but the emulator neither orders nor compares binary keys, so it
// could not be tested; docs/aws.md). The cost of one partition is that one
// table's throughput is that of one partition key: DynamoDB splits a hot
// partition by sort-key range, but one table of one tenant should not
// count on more than about 3,000 reads and 1,000 writes per second. The
// value is the binary attribute v, absent for an empty value. Every Put
// and Add also writes w, a fresh random string, the write stamp: Add's
// conditional write compares it to know that the item is unchanged since
// Add read it (the emulator compares no binary attribute in a condition,
// so comparing v could not be tested; docs/aws.md).
const (
	attrPartition = "p"
	attrKey       = "k"
	attrValue     = "v"
	attrStamp     = "w"
	partition     = "0"
)

// data is the data plane of one account, bound to its AWS account ID: it
// keeps reaching that AWS account even if silo's account of the same name
// is deleted and created again (a new AWS account).
type data struct {
	p     *Provider
	id    silo.AccountID
	awsID string
	own   *member // set when the caller runs inside the account (hostdata.go)
	// tablePrefix, if set, goes before each DynamoDB table name: a table
	// ARN's "arn:aws:dynamodb:<region>:<account>:table/", so that a host
	// in another account reaches production's exported tables by ARN
	// (hostexports.go).
	tablePrefix string
}

// table is the name DynamoDB calls table by.
func (d *data) table(table string) string { return d.tablePrefix + tableName(table) }

// Data returns the data plane of account id.
//
// # Errors
//
// CodeInvalid for a malformed ID; CodeNotFound if the account does not exist.
func (p *Provider) Data(ctx context.Context, id silo.AccountID) (provider.Data, error) {
	if err := parseID(id); err != nil {
		return nil, err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return nil, err
	}
	return &data{p: p, id: id, awsID: awsID}, nil
}

func (d *data) m() *member {
	if d.own != nil {
		return d.own
	}
	return d.p.dataMember(d.awsID)
}

func errNoTable(id silo.AccountID, table string) error {
	return silo.Errorf(silo.CodeNotFound, "table %q does not exist in account %s; declare it in silo.yaml", clip(table), id)
}

func validateKey(key string) error {
	if key == "" || len(key) > MaxKeySize {
		return silo.Errorf(silo.CodeInvalid, "invalid key %q: keys are 1-%d bytes", clip(key), MaxKeySize)
	}
	if !utf8.ValidString(key) {
		return silo.Errorf(silo.CodeInvalid, "invalid key %q: keys on AWS are UTF-8 text", clip(key))
	}
	return nil
}

// tableErr maps a DynamoDB error of table to a silo error.
func (d *data) tableErr(step, table string, err error) error {
	switch {
	case err == nil:
		return nil
	case isCode(err, "ResourceNotFoundException"):
		return errNoTable(d.id, table)
	case isCode(err, "ValidationException"):
		return silo.Errorf(silo.CodeInvalid, "%s in table %s of account %s: the key or value is too large for DynamoDB (values up to about 400 KB)", step, table, d.id)
	}
	return fail(d.id, step+" in table "+table, err)
}

func itemKey(key string) map[string]ddbtypes.AttributeValue {
	return map[string]ddbtypes.AttributeValue{
		attrPartition: &ddbtypes.AttributeValueMemberS{Value: partition},
		attrKey:       &ddbtypes.AttributeValueMemberS{Value: key},
	}
}

// newItem returns the item that stores v at key, with a fresh write stamp.
func newItem(key string, v []byte) map[string]ddbtypes.AttributeValue {
	item := itemKey(key)
	if len(v) > 0 {
		item[attrValue] = &ddbtypes.AttributeValueMemberB{Value: v}
	}
	item[attrStamp] = &ddbtypes.AttributeValueMemberS{Value: rand.Text()}
	return item
}

// value returns the value of an item; an empty value is stored without v.
func value(item map[string]ddbtypes.AttributeValue) []byte {
	if b, ok := item[attrValue].(*ddbtypes.AttributeValueMemberB); ok {
		return b.Value
	}
	return []byte{}
}

// Get returns the value of key in table, read consistently.
//
// # Errors
//
// CodeNotFound for a missing table or key; CodeInvalid for an empty or
// overlong key.
func (d *data) Get(ctx context.Context, table, key string) ([]byte, error) {
	if err := validateKey(key); err != nil {
		return nil, err
	}
	if !storageName(table) {
		return nil, errNoTable(d.id, table)
	}
	out, err := d.m().ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: aws.String(d.table(table)), Key: itemKey(key), ConsistentRead: aws.Bool(true)}, ddbRetry(ctx))
	if err != nil {
		return nil, d.tableErr("get", table, err)
	}
	if out.Item == nil {
		return nil, silo.Errorf(silo.CodeNotFound, "key %q not found in table %q", clip(key), table)
	}
	return value(out.Item), nil
}

// Put sets key in table to value.
func (d *data) Put(ctx context.Context, table, key string, v []byte) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if !storageName(table) {
		return errNoTable(d.id, table)
	}
	_, err := d.m().ddb.PutItem(ctx, &dynamodb.PutItemInput{TableName: aws.String(d.table(table)), Item: newItem(key, v)}, ddbRetry(ctx))
	return d.tableErr("put", table, err)
}

// Delete removes key from table; a missing key is not an error, a missing
// table is CodeNotFound.
func (d *data) Delete(ctx context.Context, table, key string) error {
	if err := validateKey(key); err != nil {
		return err
	}
	if !storageName(table) {
		return errNoTable(d.id, table)
	}
	_, err := d.m().ddb.DeleteItem(ctx, &dynamodb.DeleteItemInput{TableName: aws.String(d.table(table)), Key: itemKey(key)}, ddbRetry(ctx))
	return d.tableErr("delete", table, err)
}

// Scan returns up to limit pairs (DefaultScanLimit if limit <= 0, at most
// MaxScanLimit) whose keys start with prefix and sort after after, in
// byte order: one consistent Query over the key range, more pages only if
// DynamoDB cuts a page at 1 MB.
func (d *data) Scan(ctx context.Context, table, prefix, after string, limit int) ([]provider.KV, error) {
	limit = clampLimit(limit)
	if !storageName(table) {
		return nil, errNoTable(d.id, table)
	}
	in := &dynamodb.QueryInput{
		TableName:                aws.String(d.table(table)),
		ConsistentRead:           aws.Bool(true),
		ExpressionAttributeNames: map[string]string{"#p": attrPartition, "#k": attrKey},
		ExpressionAttributeValues: map[string]ddbtypes.AttributeValue{
			":p": &ddbtypes.AttributeValueMemberS{Value: partition},
		},
		KeyConditionExpression: aws.String("#p = :p"),
	}
	switch {
	case after != "" && after >= prefix:
		// Past the start of the prefix range: keys above after; the
		// prefix is checked below, and the range ends at the first key
		// without it.
		in.KeyConditionExpression = aws.String("#p = :p AND #k > :a")
		in.ExpressionAttributeValues[":a"] = &ddbtypes.AttributeValueMemberS{Value: after}
	case prefix != "":
		in.KeyConditionExpression = aws.String("#p = :p AND begins_with(#k, :b)")
		in.ExpressionAttributeValues[":b"] = &ddbtypes.AttributeValueMemberS{Value: prefix}
	}
	out := []provider.KV{}
	for len(out) < limit {
		in.Limit = aws.Int32(int32(limit - len(out)))
		page, err := d.m().ddb.Query(ctx, in, ddbRetry(ctx))
		if err != nil {
			return nil, d.tableErr("scan", table, err)
		}
		for _, item := range page.Items {
			k, _ := item[attrKey].(*ddbtypes.AttributeValueMemberS)
			if k == nil {
				return nil, fail(d.id, "scan table "+table, errors.New("an item has no string sort key"))
			}
			if !strings.HasPrefix(k.Value, prefix) {
				return out, nil
			}
			out = append(out, provider.KV{Key: k.Value, Value: value(item)})
		}
		if len(page.LastEvaluatedKey) == 0 {
			break
		}
		in.ExclusiveStartKey = page.LastEvaluatedKey
	}
	return out, nil
}

func clampLimit(limit int) int {
	if limit <= 0 {
		return DefaultScanLimit
	}
	return min(limit, MaxScanLimit)
}

func errNoBucket(id silo.AccountID, bucket string) error {
	return silo.Errorf(silo.CodeNotFound, "bucket %q does not exist in account %s; declare it in silo.yaml", clip(bucket), id)
}

// blobErr maps an S3 error to a silo error.
func (d *data) blobErr(step, bucket, key string, err error) error {
	switch {
	case err == nil:
		return nil
	case isCode(err, "NoSuchBucket"):
		return errNoBucket(d.id, bucket)
	case isCode(err, "NoSuchKey", "NotFound"):
		return silo.Errorf(silo.CodeNotFound, "blob %q not found in bucket %q", clip(key), bucket)
	}
	return fail(d.id, step+" in bucket "+bucket, err)
}

// GetBlob returns the blob key of bucket.
func (d *data) GetBlob(ctx context.Context, bucket, key string) ([]byte, error) {
	if !storageName(bucket) {
		return nil, errNoBucket(d.id, bucket)
	}
	if err := provider.ValidateBlobKey(key); err != nil {
		return nil, err
	}
	out, err := d.m().s3.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(bucketName(d.awsID, bucket)), Key: aws.String(key)}, s3Retry(ctx))
	if err != nil {
		return nil, d.blobErr("get a blob", bucket, key, err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fail(d.id, "read a blob in bucket "+bucket, err)
	}
	return b, nil
}

// PutBlob stores value as blob key of bucket, encrypted under the account's
// data key by the bucket's default encryption.
func (d *data) PutBlob(ctx context.Context, bucket, key string, v []byte) error {
	if !storageName(bucket) {
		return errNoBucket(d.id, bucket)
	}
	if err := provider.ValidateBlobKey(key); err != nil {
		return err
	}
	_, err := d.m().s3.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucketName(d.awsID, bucket)), Key: aws.String(key), Body: bytes.NewReader(v)}, s3Retry(ctx))
	return d.blobErr("put a blob", bucket, key, err)
}

// DeleteBlob removes blob key of bucket; a missing blob is not an error.
func (d *data) DeleteBlob(ctx context.Context, bucket, key string) error {
	if !storageName(bucket) {
		return errNoBucket(d.id, bucket)
	}
	if err := provider.ValidateBlobKey(key); err != nil {
		return err
	}
	_, err := d.m().s3.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(bucketName(d.awsID, bucket)), Key: aws.String(key)}, s3Retry(ctx))
	return d.blobErr("delete a blob", bucket, key, err)
}

// ListBlobs returns up to limit keys of bucket starting with prefix, in
// byte order.
func (d *data) ListBlobs(ctx context.Context, bucket, prefix string, limit int) ([]string, error) {
	if !storageName(bucket) {
		return nil, errNoBucket(d.id, bucket)
	}
	limit = clampLimit(limit)
	out, err := d.m().s3.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucketName(d.awsID, bucket)), Prefix: aws.String(prefix), MaxKeys: aws.Int32(int32(limit))}, s3Retry(ctx))
	if err != nil {
		return nil, d.blobErr("list blobs", bucket, prefix, err)
	}
	keys := make([]string, 0, len(out.Contents))
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys[:min(len(keys), limit)], nil
}

// Config returns the value of config key.
func (d *data) Config(ctx context.Context, key string) (string, error) {
	if validateName(silo.TypeConfig, key) != nil {
		return "", silo.Errorf(silo.CodeNotFound, "config %q is not set in account %s", clip(key), d.id)
	}
	out, err := d.m().ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(configParam(key))}, ssmRetry(ctx))
	if isCode(err, "ParameterNotFound") {
		return "", silo.Errorf(silo.CodeNotFound, "config %q is not set in account %s", clip(key), d.id)
	}
	if err != nil {
		return "", fail(d.id, "read config "+key, err)
	}
	var v string
	if err := json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &v); err != nil {
		return "", fail(d.id, "decode config "+key, err)
	}
	return v, nil
}
