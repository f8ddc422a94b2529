package aws

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// Add's retries: a write that lost a race is retried, after a jittered
// wait (full jitter over addBackoff doubling per attempt, capped at
// addMaxBackoff), at most addAttempts times in all: 1.5 s of waiting at
// worst, then CodeUnavailable.
const (
	addAttempts   = 12
	addBackoff    = 4 * time.Millisecond
	addMaxBackoff = 250 * time.Millisecond
)

// errLostRace is addOnce's answer when another write changed the item
// between its read and its write.
var errLostRace = errors.New("the item changed since it was read")

// Add adds delta to the integer stored at key in table and returns the
// sum. It is a compare-and-swap: a consistent GetItem, then a PutItem of
// the sum on condition that the item is unchanged (its write stamp is the
// one read, or, for a missing key, that it is still missing), retried
// while other writes win the race. Two round trips, more under
// contention.
//
// # Errors
//
// CodeInvalid for a bad key, a stored value that is not a base-10 integer
// or a sum that overflows an int64, the value unchanged; CodeNotFound for
// a missing table; CodeUnavailable when other writes of the key won every
// attempt.
func (d *data) Add(ctx context.Context, table, key string, delta int64) (int64, error) {
	if err := validateKey(key); err != nil {
		return 0, err
	}
	if !storageName(table) {
		return 0, errNoTable(d.id, table)
	}
	for attempt := range addAttempts {
		if attempt > 0 {
			wait := time.NewTimer(rand.N(min(addBackoff<<(attempt-1), addMaxBackoff)) + time.Millisecond)
			select {
			case <-ctx.Done():
				wait.Stop()
				return 0, ctx.Err()
			case <-wait.C:
			}
		}
		sum, err := d.addOnce(ctx, table, key, delta)
		if !errors.Is(err, errLostRace) {
			return sum, err
		}
	}
	return 0, silo.Errorf(silo.CodeUnavailable, "too many concurrent updates of key %q in table %q; retry", clip(key), table)
}

// addOnce makes one attempt of Add; errLostRace if another write came
// between its read and its write.
func (d *data) addOnce(ctx context.Context, table, key string, delta int64) (int64, error) {
	name := aws.String(d.table(table))
	out, err := d.m().ddb.GetItem(ctx, &dynamodb.GetItemInput{TableName: name, Key: itemKey(key), ConsistentRead: aws.Bool(true)}, ddbRetry(ctx))
	if err != nil {
		return 0, d.tableErr("add", table, err)
	}
	in := &dynamodb.PutItemInput{TableName: name, ExpressionAttributeNames: map[string]string{}}
	var v []byte
	if out.Item == nil {
		in.ConditionExpression = aws.String("attribute_not_exists(#k)")
		in.ExpressionAttributeNames["#k"] = attrKey
	} else {
		v = value(out.Item)
		if stamp, ok := out.Item[attrStamp].(*ddbtypes.AttributeValueMemberS); ok {
			in.ConditionExpression = aws.String("#w = :w")
			in.ExpressionAttributeNames["#w"] = attrStamp
			in.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":w": stamp}
		} else {
			// An item written before Put stamped items: the value
			// itself must be unchanged.
			in.ConditionExpression = aws.String("attribute_not_exists(#w) AND #v = :v")
			in.ExpressionAttributeNames["#w"], in.ExpressionAttributeNames["#v"] = attrStamp, attrValue
			in.ExpressionAttributeValues = map[string]ddbtypes.AttributeValue{":v": &ddbtypes.AttributeValueMemberB{Value: v}}
		}
	}
	sum, err := provider.Sum(table, key, v, out.Item != nil, delta)
	if err != nil {
		return 0, err
	}
	in.Item = newItem(key, []byte(strconv.FormatInt(sum, 10)))
	_, err = d.m().ddb.PutItem(ctx, in, ddbRetry(ctx))
	if isCode(err, "ConditionalCheckFailedException") {
		return 0, errLostRace
	}
	if err != nil {
		return 0, d.tableErr("add", table, err)
	}
	return sum, nil
}
