package aws

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// Offboarding marks. The account's tag tagOffboarding, set in
// Organizations (which no role of the account can change), records that
// the account's data is gone and its roles are being denied: from then on
// the deployer role may be refused everything, so a resumed deletion
// skips straight to denying the roles and closing the account.
const (
	tagOffboarding = "silo:offboarding"
	denyingRoles   = "denying-roles"
	// denyPolicy is the inline policy that denies a role everything.
	denyPolicy = "silo-deny-all"
)

// DenyAllPolicy is the policy every role of an account holds once silo has
// offboarded it: an explicit Deny, which no Allow overrides.
func DenyAllPolicy() Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{{Sid: "SiloOffboarded", Effect: "Deny", Action: []string{"*"}, Resource: []string{"*"}}}}
}

// DeleteAccount offboards the account, in this order:
//
//  1. every customer-managed KMS key of the account is scheduled for
//     deletion (the shortest window AWS allows, 7 days; from now on
//     nothing encrypted under it can be decrypted);
//  2. its tables, buckets, parameters and secrets are deleted;
//  3. the account is tagged silo:offboarding in Organizations;
//  4. every role of the account but the service-linked ones gets the
//     inline policy silo-deny-all (an explicit Deny of everything), the
//     access role last, through the access role;
//  5. the account is closed.
//
// Each step is idempotent, so a call interrupted part way is completed by
// calling again; once the tag is set, steps 1 and 2 are done and are
// skipped (the deployer role may already be denied). It reports the
// account destroyed when silo held an active AWS account for it, and the
// data key scheduled for deletion when this call scheduled one (KMS
// deletes a key only after its waiting period: the words say so).
func (p *Provider) DeleteAccount(ctx context.Context, id silo.AccountID) (provider.Deletion, error) {
	var d provider.Deletion
	if err := parseID(id); err != nil {
		return d, err
	}
	l := p.lockOf(id)
	l.Lock()
	defer l.Unlock()
	awsID, err := p.awsID(ctx, id)
	if silo.ErrorCode(err) == silo.CodeNotFound {
		return d, nil
	}
	if err != nil {
		return d, err
	}
	denying, err := p.offboarding(ctx, id, awsID)
	if err != nil {
		return d, err
	}
	if !denying {
		m := p.member(awsID)
		scheduled, err := m.shredKeys(ctx, id)
		if err != nil {
			return d, err
		}
		if scheduled > 0 {
			d.Key = keyScheduled
		}
		if err := m.deleteData(ctx, id); err != nil {
			return d, err
		}
		_, err = p.org.TagResource(ctx, &organizations.TagResourceInput{
			ResourceId: aws.String(awsID),
			Tags:       []orgtypes.Tag{{Key: aws.String(tagOffboarding), Value: aws.String(denyingRoles)}},
		})
		if err != nil {
			return d, fail(id, "mark the AWS account as offboarding", err)
		}
	}
	if err := p.denyRoles(ctx, id, awsID, denying); err != nil {
		return d, err
	}
	_, err = p.org.CloseAccount(ctx, &organizations.CloseAccountInput{AccountId: aws.String(awsID)})
	if err != nil && !isCode(err, "AccountAlreadyClosedException") {
		return d, fail(id, "close the AWS account", err)
	}
	p.mu.Lock()
	delete(p.ids, id)
	p.mu.Unlock()
	d.Destroyed = true
	return d, nil
}

// keyScheduled is what DeleteAccount reports it did to the data key: KMS
// never deletes a key at once, but a key pending deletion can no longer
// be used.
const keyScheduled = "data key scheduled for deletion (unusable from now on; AWS KMS deletes it after its 7-day waiting period)"

// offboarding reports whether a deletion of the account already got to
// denying its roles.
func (p *Provider) offboarding(ctx context.Context, id silo.AccountID, awsID string) (bool, error) {
	tags, err := p.tags(ctx, id, awsID, "read the tags of the AWS account")
	return tags[tagOffboarding] == denyingRoles, err
}

// denyRoles puts silo-deny-all on every role of the account, through the
// access role, which is denied last. resumed says a previous call may
// have denied the access role already: AWS refusing it is then taken as
// done, since the access role is the last one denied.
func (p *Provider) denyRoles(ctx context.Context, id silo.AccountID, awsID string, resumed bool) error {
	c := iam.NewFromConfig(p.roleConfig(awsID, p.cfg.AccessRole), func(o *iam.Options) { p.endpoint(&o.BaseEndpoint, awsID) })
	doc, _ := json.Marshal(DenyAllPolicy())
	var roles []string
	access := false
	pages := iam.NewListRolesPaginator(c, &iam.ListRolesInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if resumed && isDenied(err) {
			return nil
		}
		if err != nil {
			return fail(id, "list the roles to deny", err)
		}
		for _, r := range page.Roles {
			name := aws.ToString(r.RoleName)
			switch {
			case strings.HasPrefix(aws.ToString(r.Path), "/aws-service-role/"):
				// Service-linked roles cannot be changed; AWS deletes them
				// with the account.
			case name == p.cfg.AccessRole:
				access = true
			default:
				roles = append(roles, name)
			}
		}
	}
	if access {
		roles = append(roles, p.cfg.AccessRole)
	}
	for _, r := range roles {
		_, err := c.PutRolePolicy(ctx, &iam.PutRolePolicyInput{RoleName: aws.String(r), PolicyName: aws.String(denyPolicy), PolicyDocument: aws.String(string(doc))})
		switch {
		case isCode(err, "NoSuchEntity", "UnmodifiableEntity"):
		case resumed && isDenied(err):
			return nil
		case err != nil:
			return fail(id, "deny the role "+r, err)
		}
	}
	return nil
}

func isDenied(err error) bool {
	return isCode(err, "AccessDenied", "AccessDeniedException")
}
