package aws

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	silo "github.com/silo-run/silo"
	iameval "github.com/silo-run/silo/isolation/iam"
)

// IAMSnapshot reads the policies AWS enforces in every account silo
// manages, through each account's deployer role: every role's trust policy,
// inline policies and attached managed policies, the resource policies of
// silo's tables and buckets, the key policies of the account's KMS keys,
// and which production resources are exported. A function's execution role
// carries the policy its recorded grants make (Declared). What AWS does not
// return is listed in the account's Problems, which makes the proof
// unverifiable rather than passing. Secrets are listed by name from their
// parameters' metadata: no value, not even encrypted, enters the snapshot.
// SSM parameters' RAM shares and the resource policies of Secrets Manager
// secrets an earlier silo left are not read: silo sets neither, and the
// verifier treats those resources as reachable through identity policies
// only (docs/aws.md).
func (p *Provider) IAMSnapshot(ctx context.Context) (iameval.Snapshot, error) {
	var snap iameval.Snapshot
	org, err := p.org.DescribeOrganization(ctx, &organizations.DescribeOrganizationInput{})
	if err != nil {
		return snap, fail("", "read the organization", err)
	}
	snap.OrgID = aws.ToString(org.Organization.Id)
	snap.Management = aws.ToString(org.Organization.MasterAccountId)
	if p.cfg.Principal != "" {
		snap.ControlPlane = []string{p.cfg.Principal}
		if p.cfg.DataPrincipal != "" {
			snap.DataPlane = []string{p.cfg.DataPrincipal}
		}
	}
	root, err := p.root(ctx, "")
	if err != nil {
		return snap, err
	}
	snap.Root = root
	kinds, err := p.existingOUs(ctx, root)
	if err != nil {
		return snap, err
	}
	all, err := p.live(ctx, "")
	if err != nil {
		return snap, err
	}
	ids := make([]silo.AccountID, 0, len(all))
	for id, awsID := range all {
		// A closed account (a deleted tenant's, listed by AWS for about
		// 90 days) has no roles or data left to check for I1-I3: it is
		// proved for I5 by the platform.
		if reachable(awsID) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	var prod string
	for _, id := range ids {
		awsID := all[id]
		parent, err := p.parentOf(ctx, id, awsID)
		if err != nil {
			return snap, err
		}
		a := iameval.Account{ID: awsID, Silo: string(id), Kind: string(kinds[parent]), OrgPath: snap.OrgID + "/" + root + "/" + parent + "/"}
		if a.Kind == "" {
			a.Kind = "unknown"
			a.Problems = append(a.Problems, "the AWS account is in no OU of silo's, so its kind is unknown")
		}
		if a.Kind == string(silo.KindProduction) {
			prod = awsID
		}
		snap.Accounts = append(snap.Accounts, a)
	}
	for i := range snap.Accounts {
		a := &snap.Accounts[i]
		if err := p.readAccount(ctx, silo.AccountID(a.Silo), a, prod); err != nil {
			return snap, err
		}
	}
	return snap, nil
}

// doc parses a policy document into a named Doc; a document that does not
// parse is a problem of the account.
func doc(a *iameval.Account, name, raw string) *iameval.Doc {
	pol, err := iameval.Parse(raw)
	if err != nil {
		a.Problems = append(a.Problems, name+" does not parse: "+err.Error())
		return nil
	}
	return &iameval.Doc{Name: name, Policy: pol}
}

// readAccount fills a with the roles and resources of account id.
func (p *Provider) readAccount(ctx context.Context, id silo.AccountID, a *iameval.Account, prod string) error {
	m := p.member(a.ID)
	region := p.cfg.AWS.Region
	if err := p.readRoles(ctx, id, m, a, prod); err != nil {
		return err
	}
	// Tables.
	tables, err := m.tables(ctx, id)
	if err != nil {
		return err
	}
	exported := map[string]bool{}
	if a.Kind == string(silo.KindProduction) {
		recs, err := m.params(ctx, id, recordPath+string(silo.TypeExport)+"/")
		if err != nil {
			return err
		}
		for _, raw := range recs {
			var rec record
			var es silo.ExportSpec
			if json.Unmarshal([]byte(raw), &rec) != nil || json.Unmarshal([]byte(rec.Spec), &es) != nil {
				a.Problems = append(a.Problems, "an export record does not parse")
				continue
			}
			if es.Table != "" {
				exported["table/"+es.Table] = true
			}
			if es.Bucket != "" {
				exported["bucket/"+es.Bucket] = true
			}
		}
	}
	for _, t := range slices.Sorted(maps.Keys(tables)) {
		arn := "arn:aws:dynamodb:" + region + ":" + a.ID + ":table/" + tableName(t)
		r := iameval.Resource{Kind: iameval.Table, Name: t, ARN: arn, Exported: exported["table/"+t]}
		got, err := m.ddb.GetResourcePolicy(ctx, &dynamodb.GetResourcePolicyInput{ResourceArn: aws.String(arn)})
		switch {
		case isCode(err, "PolicyNotFoundException"):
		case err != nil:
			return fail(id, "read the resource policy of table "+t, err)
		default:
			r.Policy = doc(a, "the resource policy of table "+tableName(t)+" of "+a.ID, aws.ToString(got.Policy))
		}
		a.Resources = append(a.Resources, r)
	}
	// Buckets, by S3 name; silo's name is in the tag, the hash suffices.
	buckets, err := m.buckets(ctx, id)
	if err != nil {
		return err
	}
	names := map[string]string{}
	for _, rec := range exportedBuckets(exported) {
		names[bucketName(a.ID, rec)] = rec
	}
	for _, b := range slices.Sorted(maps.Keys(buckets)) {
		r := iameval.Resource{Kind: iameval.Bucket, Name: b, ARN: "arn:aws:s3:::" + b}
		if n, ok := names[b]; ok {
			r.Name, r.Exported = n, true
		}
		got, err := m.s3.GetBucketPolicy(ctx, &s3.GetBucketPolicyInput{Bucket: aws.String(b)})
		switch {
		case isCode(err, "NoSuchBucketPolicy"):
		case err != nil:
			return fail(id, "read the policy of bucket "+b, err)
		default:
			r.Policy = doc(a, "the bucket policy of "+b, aws.ToString(got.Policy))
		}
		a.Resources = append(a.Resources, r)
	}
	// Config parameters and secrets: no resource policies silo reads.
	configs, err := m.params(ctx, id, configPath)
	if err != nil {
		return err
	}
	for _, name := range slices.Sorted(maps.Keys(configs)) {
		a.Resources = append(a.Resources, iameval.Resource{Kind: iameval.Config, Name: name, ARN: "arn:aws:ssm:" + region + ":" + a.ID + ":parameter" + name})
	}
	secrets, err := m.secretParams(ctx, id)
	if err != nil {
		return err
	}
	for _, name := range secrets {
		a.Resources = append(a.Resources, iameval.Resource{Kind: iameval.Secret, Name: name, ARN: "arn:aws:ssm:" + region + ":" + a.ID + ":parameter" + name})
	}
	// Secrets an earlier silo kept in Secrets Manager, until moved.
	legacy, err := m.legacySecrets(ctx, id)
	if err != nil {
		return err
	}
	for _, name := range legacy {
		// Secrets Manager appends "-" and six characters to the name.
		a.Resources = append(a.Resources, iameval.Resource{Kind: iameval.LegacySecret, Name: name, ARN: "arn:aws:secretsmanager:" + region + ":" + a.ID + ":secret:" + name + "-??????"})
	}
	// Keys.
	keys := kms.NewListKeysPaginator(m.kms, &kms.ListKeysInput{})
	for keys.HasMorePages() {
		page, err := keys.NextPage(ctx)
		if err != nil {
			return fail(id, "list the KMS keys", err)
		}
		for _, k := range page.Keys {
			d, err := m.kms.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
			if err != nil {
				return fail(id, "read a KMS key", err)
			}
			if d.KeyMetadata.KeyManager == kmstypes.KeyManagerTypeAws || d.KeyMetadata.KeyState == kmstypes.KeyStatePendingDeletion {
				continue
			}
			keyID := aws.ToString(k.KeyId)
			r := iameval.Resource{Kind: iameval.Key, Name: keyID, ARN: "arn:aws:kms:" + region + ":" + a.ID + ":key/" + keyID}
			got, err := m.kms.GetKeyPolicy(ctx, &kms.GetKeyPolicyInput{KeyId: k.KeyId, PolicyName: aws.String("default")})
			if err != nil {
				return fail(id, "read the policy of KMS key "+keyID, err)
			}
			r.Policy = doc(a, "the key policy of "+r.ARN, aws.ToString(got.Policy))
			a.Resources = append(a.Resources, r)
		}
	}
	return nil
}

// readRoles reads every role of the account with its policies, and the
// declared grants of silo's function roles.
func (p *Provider) readRoles(ctx context.Context, id silo.AccountID, m *member, a *iameval.Account, prod string) error {
	c := p.iamOf(m)
	declared, err := p.declaredGrants(ctx, id, m, a, prod)
	if err != nil {
		return err
	}
	roles := iam.NewListRolesPaginator(c, &iam.ListRolesInput{})
	for roles.HasMorePages() {
		page, err := roles.NextPage(ctx)
		if err != nil {
			return fail(id, "list the IAM roles", err)
		}
		for _, r := range page.Roles {
			name := aws.ToString(r.RoleName)
			// The ARN is built, not read: the emulator answers another
			// account's.
			arn := "arn:aws:iam::" + a.ID + ":role" + aws.ToString(r.Path) + name
			role := iameval.Role{ARN: arn}
			if t := doc(a, "the trust policy of "+arn, aws.ToString(r.AssumeRolePolicyDocument)); t != nil {
				role.Trust = *t
			}
			if d, ok := declared[arn]; ok {
				role.Declared = d
			}
			inline := iam.NewListRolePoliciesPaginator(c, &iam.ListRolePoliciesInput{RoleName: r.RoleName})
			for inline.HasMorePages() {
				pp, err := inline.NextPage(ctx)
				if err != nil {
					return fail(id, "list the inline policies of role "+name, err)
				}
				for _, pn := range pp.PolicyNames {
					got, err := c.GetRolePolicy(ctx, &iam.GetRolePolicyInput{RoleName: r.RoleName, PolicyName: aws.String(pn)})
					if err != nil {
						return fail(id, "read the inline policy "+pn+" of role "+name, err)
					}
					if d := doc(a, "the inline policy "+pn+" of "+arn, aws.ToString(got.PolicyDocument)); d != nil {
						role.Policies = append(role.Policies, *d)
					}
				}
			}
			attached := iam.NewListAttachedRolePoliciesPaginator(c, &iam.ListAttachedRolePoliciesInput{RoleName: r.RoleName})
			for attached.HasMorePages() {
				pp, err := attached.NextPage(ctx)
				if err != nil {
					return fail(id, "list the attached policies of role "+name, err)
				}
				for _, ap := range pp.AttachedPolicies {
					d, problem := managedPolicy(ctx, c, aws.ToString(ap.PolicyArn), arn)
					if problem != "" {
						a.Problems = append(a.Problems, problem)
						continue
					}
					if d := doc(a, d.Name, d.raw); d != nil {
						role.Policies = append(role.Policies, *d)
					}
				}
			}
			a.Roles = append(a.Roles, role)
		}
	}
	return nil
}

type rawDoc struct{ Name, raw string }

// managedPolicy reads the default version of a managed policy; a policy it
// cannot read is a problem, never an empty policy.
func managedPolicy(ctx context.Context, c *iam.Client, policyARN, role string) (rawDoc, string) {
	name := "the managed policy " + policyARN + " attached to " + role
	pol, err := c.GetPolicy(ctx, &iam.GetPolicyInput{PolicyArn: aws.String(policyARN)})
	if err != nil {
		return rawDoc{}, name + " could not be read (" + apiCodeOr(err) + ")"
	}
	v, err := c.GetPolicyVersion(ctx, &iam.GetPolicyVersionInput{PolicyArn: aws.String(policyARN), VersionId: pol.Policy.DefaultVersionId})
	if err != nil {
		return rawDoc{}, name + " could not be read (" + apiCodeOr(err) + ")"
	}
	return rawDoc{Name: name, raw: aws.ToString(v.PolicyVersion.Document)}, ""
}

func apiCodeOr(err error) string {
	if c := apiCode(err); c != "" {
		return c
	}
	return "no answer"
}

// declaredGrants returns, for each function of the account, the policy its
// recorded grants make (FunctionPolicy), by role ARN.
func (p *Provider) declaredGrants(ctx context.Context, id silo.AccountID, m *member, a *iameval.Account, prod string) (map[string]*iameval.Doc, error) {
	recs, err := m.params(ctx, id, recordPath+string(silo.TypeFunction)+"/")
	if err != nil {
		return nil, err
	}
	out := map[string]*iameval.Doc{}
	var keyARN string
	for _, raw := range recs {
		var rec record
		var fs silo.FunctionSpec
		if json.Unmarshal([]byte(raw), &rec) != nil {
			a.Problems = append(a.Problems, "a function record does not parse")
			continue
		}
		var g struct {
			Tables  map[string]string `json:"tables"`
			Buckets map[string]string `json:"buckets"`
			Config  []string          `json:"config"`
			Secrets []string          `json:"secrets"`
			Exports []string          `json:"exports"`
		}
		if rec.Spec != "" && json.Unmarshal([]byte(rec.Spec), &g) != nil {
			a.Problems = append(a.Problems, "the grants of function "+rec.Name+" do not parse")
			continue
		}
		fs = silo.FunctionSpec{Tables: g.Tables, Buckets: g.Buckets, Config: g.Config, Secrets: g.Secrets, Exports: g.Exports}
		if keyARN == "" && (len(fs.Buckets) > 0 || len(fs.Secrets) > 0) {
			if keyARN, err = m.key(ctx, id); err != nil {
				return nil, err
			}
			keyARN = p.keyARN(a.ID, keyARN)
		}
		exports, err := p.exportRefsIn(ctx, id, prod, fs.Exports)
		if silo.ErrorCode(err) == silo.CodeNotFound {
			a.Problems = append(a.Problems, "the declared grants of function "+rec.Name+" cannot be computed: "+silo.UserMessage(err))
			continue
		}
		if err != nil {
			return nil, err
		}
		b, _ := json.Marshal(FunctionPolicy(p.cfg.AWS.Region, a.ID, keyARN, fs, exports))
		pol, err := iameval.Parse(string(b))
		if err != nil {
			return nil, fmt.Errorf("the declared grants of function %s do not parse: %w", rec.Name, err)
		}
		out[FunctionRoleARN(a.ID, rec.Name)] = &iameval.Doc{Name: "the declared grants of function " + rec.Name, Policy: pol}
	}
	return out, nil
}

func exportedBuckets(exported map[string]bool) []string {
	var out []string
	for k := range exported {
		if b, ok := strings.CutPrefix(k, "bucket/"); ok {
			out = append(out, b)
		}
	}
	return out
}
