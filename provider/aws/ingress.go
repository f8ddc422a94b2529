package aws

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/apigatewayv2"
	apitypes "github.com/aws/aws-sdk-go-v2/service/apigatewayv2/types"
	"github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	silo "github.com/silo-run/silo"
)

// apiName is the name of the account's API Gateway HTTP API: one per
// account, in the account, with the routes of silo.yaml.
const apiName = "silo"

// routeKey maps a silo route (net/http.ServeMux patterns) onto an HTTP
// API route key: "" and "*" become ANY, "{name...}" the greedy
// "{name+}", and a pattern ending in "/" (a subtree) gets a greedy last
// segment.
func routeKey(rs silo.RouteSpec) string {
	method := strings.ToUpper(rs.Method)
	if method == "" || method == "*" {
		method = "ANY"
	}
	path := strings.ReplaceAll(rs.Path, "...}", "+}")
	path = strings.TrimSuffix(path, "{$}")
	if strings.HasSuffix(path, "/") && path != "/" {
		path += "{proxy+}"
	}
	return method + " " + path
}

// api returns the ID and endpoint of the account's HTTP API, creating it
// (with an auto-deployed $default stage) if create is set.
//
// # Errors
//
// CodeNotFound if the account has no API and create is false.
func (m *member) httpAPI(ctx context.Context, id silo.AccountID, create bool) (string, string, error) {
	in := &apigatewayv2.GetApisInput{}
	for {
		out, err := m.api.GetApis(ctx, in)
		if err != nil {
			return "", "", fail(id, "list the HTTP APIs", err)
		}
		for _, a := range out.Items {
			if aws.ToString(a.Name) == apiName {
				return aws.ToString(a.ApiId), aws.ToString(a.ApiEndpoint), nil
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	if !create {
		return "", "", silo.Errorf(silo.CodeNotFound, "account %s has no routes yet; deploy a release with routes", id)
	}
	out, err := m.api.CreateApi(ctx, &apigatewayv2.CreateApiInput{
		Name: aws.String(apiName), ProtocolType: apitypes.ProtocolTypeHttp,
		Tags: map[string]string{tagAccount: string(id)},
	})
	if err != nil {
		return "", "", fail(id, "create the HTTP API", err)
	}
	_, err = m.api.CreateStage(ctx, &apigatewayv2.CreateStageInput{ApiId: out.ApiId, StageName: aws.String("$default"), AutoDeploy: aws.Bool(true)})
	if err != nil && !isCode(err, "ConflictException") {
		return "", "", fail(id, "create the HTTP API's stage", err)
	}
	return aws.ToString(out.ApiId), aws.ToString(out.ApiEndpoint), nil
}

// integration returns the ID of the API's integration with function fn's
// live alias, creating it if needed, and allows the API to invoke the
// alias (again: deleting and creating the function drops its permissions).
func (p *Provider) integration(ctx context.Context, id silo.AccountID, m *member, apiID, fn string) (string, error) {
	_, err := m.fn.AddPermission(ctx, &lambda.AddPermissionInput{
		FunctionName: aws.String(lambdaName(fn)), Qualifier: aws.String(liveAlias),
		StatementId: aws.String("silo-ingress"), Action: aws.String("lambda:InvokeFunction"),
		Principal: aws.String("apigateway.amazonaws.com"),
		SourceArn: aws.String("arn:aws:execute-api:" + p.cfg.AWS.Region + ":" + m.id + ":" + apiID + "/*"),
	})
	if isCode(err, "ResourceNotFoundException") {
		return "", errNoFunction(id, fn)
	}
	if err != nil && !isCode(err, "ResourceConflictException") {
		return "", fail(id, "let the HTTP API invoke function "+fn, err)
	}
	uri := p.aliasARN(m.id, fn)
	in := &apigatewayv2.GetIntegrationsInput{ApiId: aws.String(apiID)}
	for {
		out, err := m.api.GetIntegrations(ctx, in)
		if err != nil {
			return "", fail(id, "list the HTTP API's integrations", err)
		}
		for _, it := range out.Items {
			if aws.ToString(it.IntegrationUri) == uri {
				return aws.ToString(it.IntegrationId), nil
			}
		}
		if out.NextToken == nil {
			break
		}
		in.NextToken = out.NextToken
	}
	out, err := m.api.CreateIntegration(ctx, &apigatewayv2.CreateIntegrationInput{
		ApiId: aws.String(apiID), IntegrationType: apitypes.IntegrationTypeAwsProxy,
		IntegrationUri: aws.String(uri), PayloadFormatVersion: aws.String("2.0"),
	})
	if err != nil {
		return "", fail(id, "connect the HTTP API to function "+fn, err)
	}
	return aws.ToString(out.IntegrationId), nil
}

func errNoFunction(id silo.AccountID, fn string) error {
	return silo.Errorf(silo.CodeInvalid, "a route of account %s points at function %s, which is not deployed there; apply the function first", id, clip(fn))
}

// routes returns the API's routes by key.
func (m *member) routes(ctx context.Context, id silo.AccountID, apiID string) (map[string]string, error) {
	byKey := map[string]string{}
	in := &apigatewayv2.GetRoutesInput{ApiId: aws.String(apiID)}
	for {
		out, err := m.api.GetRoutes(ctx, in)
		if err != nil {
			return nil, fail(id, "list the HTTP API's routes", err)
		}
		for _, r := range out.Items {
			byKey[aws.ToString(r.RouteKey)] = aws.ToString(r.RouteId)
		}
		if out.NextToken == nil {
			return byKey, nil
		}
		in.NextToken = out.NextToken
	}
}

// deployRoute makes route r of the account's HTTP API send its requests to
// the live alias of r's function.
func (p *Provider) deployRoute(ctx context.Context, id silo.AccountID, m *member, r silo.Resource) error {
	var rs silo.RouteSpec
	if err := json.Unmarshal(r.Spec, &rs); err != nil || rs.Path == "" || rs.Function == "" {
		return silo.Errorf(silo.CodeInvalid, "route %s: its spec needs a path and a function", r.Name)
	}
	// The function first, so that a route to a missing one creates nothing.
	_, err := m.fn.GetAlias(ctx, &lambda.GetAliasInput{FunctionName: aws.String(lambdaName(rs.Function)), Name: aws.String(liveAlias)})
	if isCode(err, "ResourceNotFoundException") {
		return errNoFunction(id, rs.Function)
	}
	if err != nil {
		return fail(id, "read the alias of function "+rs.Function, err)
	}
	apiID, _, err := m.httpAPI(ctx, id, true)
	if err != nil {
		return err
	}
	intID, err := p.integration(ctx, id, m, apiID, rs.Function)
	if err != nil {
		return err
	}
	key := routeKey(rs)
	target := aws.String("integrations/" + intID)
	routes, err := m.routes(ctx, id, apiID)
	if err != nil {
		return err
	}
	if routeID, ok := routes[key]; ok {
		_, err = m.api.UpdateRoute(ctx, &apigatewayv2.UpdateRouteInput{ApiId: aws.String(apiID), RouteId: aws.String(routeID), Target: target})
	} else {
		_, err = m.api.CreateRoute(ctx, &apigatewayv2.CreateRouteInput{ApiId: aws.String(apiID), RouteKey: aws.String(key), Target: target})
	}
	if err != nil {
		return fail(id, "route "+key, err)
	}
	return nil
}

// removeRoute deletes route name from the HTTP API, found by its record
// (a delete carries no spec); a missing one is a no-op.
func (m *member) removeRoute(ctx context.Context, id silo.AccountID, name string) error {
	out, err := m.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(recordParam(silo.TypeRoute, name))})
	if isCode(err, "ParameterNotFound") {
		return nil
	}
	if err != nil {
		return fail(id, "read the record of route "+name, err)
	}
	var rec record
	var rs silo.RouteSpec
	if json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &rec) != nil || json.Unmarshal([]byte(rec.Spec), &rs) != nil {
		return nil // nothing silo can name was routed
	}
	apiID, _, err := m.httpAPI(ctx, id, false)
	if silo.ErrorCode(err) == silo.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	routes, err := m.routes(ctx, id, apiID)
	if err != nil {
		return err
	}
	routeID, ok := routes[routeKey(rs)]
	if !ok {
		return nil
	}
	_, err = m.api.DeleteRoute(ctx, &apigatewayv2.DeleteRouteInput{ApiId: aws.String(apiID), RouteId: aws.String(routeID)})
	if err != nil && !isCode(err, "NotFoundException") {
		return fail(id, "delete route "+routeKey(rs), err)
	}
	return nil
}

// URL returns the base URL of account id's API, where its routes are
// served (`silo tenant show` prints it; a custom domain maps onto it).
//
// # Errors
//
// CodeNotFound if the account does not exist or has no routes yet.
func (p *Provider) URL(ctx context.Context, id silo.AccountID) (string, error) {
	if err := parseID(id); err != nil {
		return "", err
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return "", err
	}
	_, endpoint, err := p.member(awsID).httpAPI(ctx, id, false)
	return endpoint, err
}

// deployCompute is the Lambda and API Gateway part of applying r: a
// function runs on Lambda, a route is a route of the account's HTTP API.
// Without Config.Functions both are records only. release is the release
// the change applies (silo.Change.Release).
func (p *Provider) deployCompute(ctx context.Context, id silo.AccountID, m *member, r silo.Resource, release string) error {
	if p.cfg.Functions == nil {
		return nil
	}
	switch r.Type {
	case silo.TypeFunction:
		return p.deployFunction(ctx, id, m, r, release)
	case silo.TypeRoute:
		return p.deployRoute(ctx, id, m, r)
	}
	return nil
}

// removeCompute undoes deployCompute.
func (p *Provider) removeCompute(ctx context.Context, id silo.AccountID, m *member, t silo.ResourceType, name string) error {
	if p.cfg.Functions == nil {
		return nil
	}
	switch t {
	case silo.TypeFunction:
		return m.removeFunction(ctx, id, name)
	case silo.TypeRoute:
		return m.removeRoute(ctx, id, name)
	}
	return nil
}
