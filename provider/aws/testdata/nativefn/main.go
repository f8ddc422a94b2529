// Command nativefn is the baseline of the Lambda host's benchmark: a native
// Go Lambda handler doing what the example's list function does for
// GET /findings (read up to 100 findings of the tenant's table and answer
// them as JSON), without silo.
package main

import (
	"context"
	"encoding/json"
	"os"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

func main() {
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil {
		panic(err)
	}
	db := dynamodb.NewFromConfig(cfg, func(o *dynamodb.Options) { o.BaseEndpoint = aws.String(os.Getenv("SILO_AWS_ENDPOINT")) })
	lambda.Start(func(ctx context.Context, _ json.RawMessage) (events.APIGatewayV2HTTPResponse, error) {
		out, err := db.Query(ctx, &dynamodb.QueryInput{
			TableName:                 aws.String("silo.findings"),
			KeyConditionExpression:    aws.String("p = :p"),
			ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: "0"}},
			Limit:                     aws.Int32(100),
		})
		if err != nil {
			return events.APIGatewayV2HTTPResponse{StatusCode: 503}, nil
		}
		var findings []json.RawMessage
		for _, it := range out.Items {
			if v, ok := it["v"].(*types.AttributeValueMemberB); ok {
				findings = append(findings, v.Value)
			}
		}
		b, _ := json.Marshal(map[string]any{"count": len(findings), "findings": findings})
		return events.APIGatewayV2HTTPResponse{StatusCode: 200, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}, nil
	})
}
