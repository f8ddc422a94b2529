package aws

import (
	"context"
	"encoding/json"
	"errors"
	"sort"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	silo "github.com/silo-run/silo"
)

var errUnreadable = errors.New("the resource record is not valid JSON")

// readerKinds are the kinds of account whose principals may read
// production exports.
var readerKinds = []silo.Kind{silo.KindTenant, silo.KindDeveloper, silo.KindEnvironment}

// ExportPolicy returns the resource policy of an exported production table
// or bucket: actions (read actions only) on resources, allowed to any
// principal of organization orgID whose organization path is one of paths
// (the tenants, developers and environments OUs,
// "o-…/r-…/ou-…/*"), and to nobody else. aws:PrincipalOrgID is set too, so
// that S3 does not count the policy as public.
func ExportPolicy(orgID string, paths, actions []string, resources ...string) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{{
		Sid: "SiloExportRead", Effect: "Allow", Principal: map[string]string{"AWS": "*"},
		Action: actions, Resource: resources,
		Condition: map[string]map[string][]string{
			"StringEquals":           {"aws:PrincipalOrgID": {orgID}},
			"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": paths},
		},
	}}}
}

// readerPaths returns the organization ID and the org paths of the OUs
// whose accounts may read production exports.
func (p *Provider) readerPaths(ctx context.Context, id silo.AccountID) (string, []string, error) {
	org, err := p.org.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		return "", nil, fail(id, "read the organization", err)
	}
	orgID := aws.ToString(org.Organization.Id)
	root, err := p.root(ctx, id)
	if err != nil {
		return "", nil, err
	}
	var paths []string
	for _, k := range readerKinds {
		ou, err := p.ou(ctx, id, k)
		if err != nil {
			return "", nil, err
		}
		paths = append(paths, orgID+"/"+root+"/"+ou+"/*")
	}
	sort.Strings(paths)
	return orgID, paths, nil
}

// existingOUs maps the IDs of silo's OUs that exist under the root to
// their kinds, creating none (silo verify only reads).
func (p *Provider) existingOUs(ctx context.Context, root string) (map[string]silo.Kind, error) {
	byName := map[string]silo.Kind{}
	for k, name := range ouNames {
		byName[name] = k
	}
	out := map[string]silo.Kind{}
	pages := organizations.NewListOrganizationalUnitsForParentPaginator(p.org, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(root)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail("", "list the organizational units", err)
		}
		for _, u := range page.OrganizationalUnits {
			if k, ok := byName[aws.ToString(u.Name)]; ok {
				out[aws.ToString(u.Id)] = k
			}
		}
	}
	return out, nil
}

// parentOf returns the ID of the parent (OU or root) of AWS account awsID.
func (p *Provider) parentOf(ctx context.Context, id silo.AccountID, awsID string) (string, error) {
	out, err := p.org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(awsID)})
	if err != nil {
		return "", fail(id, "find the OU of the AWS account", err)
	}
	if len(out.Parents) == 0 {
		return "", nil
	}
	return aws.ToString(out.Parents[0].Id), nil
}

// productionAccount returns the AWS account ID of the production account
// (the live silo account in OU production), or "" if there is none. It
// costs one ListParents call per account listed before it.
func (p *Provider) productionAccount(ctx context.Context, id silo.AccountID) (string, error) {
	ou, err := p.ou(ctx, id, silo.KindProduction)
	if err != nil {
		return "", err
	}
	all, err := p.live(ctx, id)
	if err != nil {
		return "", err
	}
	ids := make([]string, 0, len(all))
	for _, awsID := range all {
		if awsID != ambiguous {
			ids = append(ids, awsID)
		}
	}
	sort.Strings(ids)
	for _, awsID := range ids {
		parent, err := p.parentOf(ctx, id, awsID)
		if err != nil {
			return "", err
		}
		if parent == ou {
			return awsID, nil
		}
	}
	return "", nil
}

// applyTrust applies what a change means for IAM, after its effect (before
// it for a delete): a function's execution role (iamfn.go), an export's
// resource policy, and, for a table or bucket replaced (recreated without
// its policy), the policies of the exports that name it.
func (p *Provider) applyTrust(ctx context.Context, id silo.AccountID, m *member, c silo.Change, desired silo.Resource) error {
	switch c.Type {
	case silo.TypeFunction:
		if c.Op == silo.OpDelete {
			return p.deleteFunctionRole(ctx, id, m, c.Name)
		}
		return p.applyFunctionRole(ctx, id, m, desired)
	case silo.TypeExport:
		return p.applyExport(ctx, id, m, c, desired)
	case silo.TypeTable, silo.TypeBucket:
		if c.Op == silo.OpReplace {
			return p.reexport(ctx, id, m, c.Type, c.Name)
		}
	}
	return nil
}

// reexport puts back the policy of every export of the account that names
// table or bucket name.
func (p *Provider) reexport(ctx context.Context, id silo.AccountID, m *member, typ silo.ResourceType, name string) error {
	recs, err := m.params(ctx, id, recordPath+string(silo.TypeExport)+"/")
	if err != nil {
		return err
	}
	for _, raw := range recs {
		var rec record
		var es silo.ExportSpec
		if json.Unmarshal([]byte(raw), &rec) != nil || json.Unmarshal([]byte(rec.Spec), &es) != nil {
			return fail(id, "read the exports", errUnreadable)
		}
		if typ == silo.TypeTable && es.Table == name || typ == silo.TypeBucket && es.Bucket == name {
			r := silo.Resource{Type: silo.TypeExport, Name: rec.Name, Spec: json.RawMessage(rec.Spec), Hash: rec.Hash}
			if err := p.applyExport(ctx, id, m, silo.Change{Op: silo.OpUpdate, Type: silo.TypeExport, Name: rec.Name, Desired: &r}, r); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyExport attaches the export resource policy (ExportPolicy) to the
// exported table or bucket of the production account, or removes it when
// the export is deleted or now names another resource; while any table or
// bucket is exported, production's data key policy holds
// ExportKeyStatement (exportkey.go). A config export
// gets no policy: SSM parameters have none (docs/aws.md). In an account
// outside OU production an export is only recorded: no other account may
// share anything.
func (p *Provider) applyExport(ctx context.Context, id silo.AccountID, m *member, c silo.Change, desired silo.Resource) error {
	prodOU, err := p.ou(ctx, id, silo.KindProduction)
	if err != nil {
		return err
	}
	parent, err := p.parentOf(ctx, id, m.id)
	if err != nil {
		return err
	}
	if parent != prodOU {
		return nil
	}
	old, err := m.exportRecord(ctx, id, c.Name)
	if err != nil {
		return err
	}
	var next silo.ExportSpec
	if c.Op != silo.OpDelete {
		if err := json.Unmarshal(desired.Spec, &next); err != nil {
			return silo.Errorf(silo.CodeInvalid, "export %s: its spec does not decode: %v", c.Name, err)
		}
	}
	if old != nil && *old != next {
		if err := m.dropExportPolicy(ctx, id, c.Name, *old); err != nil {
			return err
		}
	}
	if c.Op == silo.OpDelete || next.Table == "" && next.Bucket == "" {
		others, err := m.exportsRemain(ctx, id, c.Name)
		if err != nil {
			return err
		}
		return p.shareKey(ctx, id, m, others)
	}
	orgID, paths, err := p.readerPaths(ctx, id)
	if err != nil {
		return err
	}
	if next.Table != "" {
		arn := "arn:aws:dynamodb:" + p.cfg.AWS.Region + ":" + m.id + ":table/" + tableName(next.Table)
		doc, _ := json.Marshal(ExportPolicy(orgID, paths, tableRead, arn))
		_, err := m.ddb.PutResourcePolicy(ctx, &dynamodb.PutResourcePolicyInput{ResourceArn: aws.String(arn), Policy: aws.String(string(doc))})
		if isCode(err, "ResourceNotFoundException") {
			return silo.Errorf(silo.CodeNotFound, "export %s shares table %s, which account %s does not hold; declare the table in production", c.Name, next.Table, id)
		}
		if err != nil {
			return fail(id, "share table "+next.Table+" with the tenants (export "+c.Name+")", err)
		}
		return p.shareKey(ctx, id, m, true)
	}
	b := bucketName(m.id, next.Bucket)
	doc, _ := json.Marshal(Policy{Version: "2012-10-17", Statement: append(
		ExportPolicy(orgID, paths, bucketRead, "arn:aws:s3:::"+b).Statement,
		withSid(ExportPolicy(orgID, paths, objectRead, "arn:aws:s3:::"+b+"/*").Statement, "SiloExportReadObjects")...)})
	_, err = m.s3.PutBucketPolicy(ctx, &s3.PutBucketPolicyInput{Bucket: aws.String(b), Policy: aws.String(string(doc))})
	if isCode(err, "NoSuchBucket") {
		return silo.Errorf(silo.CodeNotFound, "export %s shares bucket %s, which account %s does not hold; declare the bucket in production", c.Name, next.Bucket, id)
	}
	if err != nil {
		return fail(id, "share bucket "+next.Bucket+" with the tenants (export "+c.Name+")", err)
	}
	return p.shareKey(ctx, id, m, true)
}

func withSid(sts []Statement, sid string) []Statement {
	for i := range sts {
		sts[i].Sid = sid
	}
	return sts
}

// exportRecord returns the spec export name was last applied with, nil if
// it has no record.
func (m *member) exportRecord(ctx context.Context, id silo.AccountID, name string) (*silo.ExportSpec, error) {
	got, err := m.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(recordParam(silo.TypeExport, name))})
	if isCode(err, "ParameterNotFound") {
		return nil, nil
	}
	if err != nil {
		return nil, fail(id, "read the record of export "+name, err)
	}
	var rec record
	var es silo.ExportSpec
	if json.Unmarshal([]byte(aws.ToString(got.Parameter.Value)), &rec) != nil || json.Unmarshal([]byte(rec.Spec), &es) != nil {
		return nil, fail(id, "read the record of export "+name, errUnreadable)
	}
	return &es, nil
}

// dropExportPolicy removes the resource policy export name put on its
// table or bucket; a missing policy or resource is no error.
func (m *member) dropExportPolicy(ctx context.Context, id silo.AccountID, name string, es silo.ExportSpec) error {
	switch {
	case es.Table != "":
		arn := "arn:aws:dynamodb:" + m.ddb.Options().Region + ":" + m.id + ":table/" + tableName(es.Table)
		_, err := m.ddb.DeleteResourcePolicy(ctx, &dynamodb.DeleteResourcePolicyInput{ResourceArn: aws.String(arn)})
		if err != nil && !isCode(err, "ResourceNotFoundException", "PolicyNotFoundException") {
			return fail(id, "stop sharing table "+es.Table+" (export "+name+")", err)
		}
	case es.Bucket != "":
		_, err := m.s3.DeleteBucketPolicy(ctx, &s3.DeleteBucketPolicyInput{Bucket: aws.String(bucketName(m.id, es.Bucket))})
		if err != nil && !isCode(err, "NoSuchBucket") {
			return fail(id, "stop sharing bucket "+es.Bucket+" (export "+name+")", err)
		}
	}
	return nil
}
