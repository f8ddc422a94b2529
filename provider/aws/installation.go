package aws

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	silo "github.com/silo-run/silo"
)

// Installations. One AWS organization serves one silo installation, but
// the provider finds an account by its name, and nothing in AWS keeps a
// second installation (an old copy of a data dir, a data dir whose
// emulated organization was replaced, a second installation pointed at
// the same organization) from finding the same name. So every account
// the provider creates or claims is tagged silo:installation with the ID
// of the installation it works for (kept in the control plane's store and
// shared by its servers: BindInstallation), and the provider acts on an
// account found by name only if it bears that ID. The tag is read once
// per account and process, at the account's first lookup.
//
// An account without the tag was made by a silo that predates it: it is
// used, and tagged by the next CreateAccount of it (an apply, a resume).
// A warm pool account of another installation is never claimed.
const tagInstallation = "silo:installation"

// InstallationID returns the ID of the installation the provider works
// for. With create, it makes one if the installation has none yet;
// without, it returns "" for none.
type InstallationID = func(ctx context.Context, create bool) (string, error)

// BindInstallation tells the provider which installation it works for,
// before any other call. A provider never bound (a test of the provider
// alone) tags no account and checks none.
func (p *Provider) BindInstallation(id InstallationID) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.installation, p.installationID = id, ""
}

// ours returns the ID of the installation the provider works for: "" if
// it is not bound, or if the installation has none yet and !create.
func (p *Provider) ours(ctx context.Context, create bool) (string, error) {
	p.mu.Lock()
	f, known := p.installation, p.installationID
	p.mu.Unlock()
	if f == nil || known != "" {
		return known, nil
	}
	v, err := f(ctx, create)
	if err != nil {
		return "", fmt.Errorf("read this installation's ID: %w", err)
	}
	p.mu.Lock()
	p.installationID = v
	p.mu.Unlock()
	return v, nil
}

// installationTags returns the tags that mark a new account as this
// installation's: none if the provider is not bound.
func (p *Provider) installationTags(ctx context.Context) ([]orgtypes.Tag, error) {
	v, err := p.ours(ctx, true)
	if err != nil || v == "" {
		return nil, err
	}
	return []orgtypes.Tag{{Key: aws.String(tagInstallation), Value: aws.String(v)}}, nil
}

// checkOwner refuses AWS account awsID, found for account id, if it bears
// another installation's ID. It reads the account's tags once per process.
//
// # Errors
//
// CodeConflict for another installation's account, naming both IDs and
// what to do.
func (p *Provider) checkOwner(ctx context.Context, id silo.AccountID, awsID string) error {
	p.mu.Lock()
	_, read := p.owners[awsID]
	bound := p.installation != nil
	p.mu.Unlock()
	if !bound || read {
		return nil
	}
	tags, err := p.tags(ctx, id, awsID, "read the tags of the AWS account")
	if err != nil {
		return err
	}
	ours, err := p.ours(ctx, false)
	if err != nil {
		return err
	}
	theirs, tagged := tags[tagInstallation]
	if tagged && theirs != ours {
		return foreign(id, awsID, theirs, ours)
	}
	p.mu.Lock()
	p.owners[awsID] = tagged
	p.mu.Unlock()
	return nil
}

// foreign is the error for account id's AWS account awsID, which
// installation theirs owns; ours is this installation's ID ("" for none
// yet).
func foreign(id silo.AccountID, awsID, theirs, ours string) error {
	this := "this installation's is " + ours
	if ours == "" {
		this = "this installation has none yet"
	}
	return silo.Errorf(silo.CodeConflict, "the AWS account %s that holds account %s belongs to another silo installation (its tag %s is %s; %s), so silo leaves it alone: one AWS organization serves one installation. If this data dir is an old copy, stop using it; if that installation is gone for good and this one should take the account over, see docs/aws.md", awsID, id, tagInstallation, theirs, this)
}

// tagOwned tags AWS account awsID of account id as this installation's if
// checkOwner found it without the tag (made before the tag existed).
func (p *Provider) tagOwned(ctx context.Context, id silo.AccountID, awsID string) error {
	p.mu.Lock()
	tagged, read := p.owners[awsID]
	p.mu.Unlock()
	if !read || tagged {
		return nil
	}
	tags, err := p.installationTags(ctx)
	if err != nil || len(tags) == 0 {
		return err
	}
	if _, err := p.org.TagResource(ctx, &organizations.TagResourceInput{ResourceId: aws.String(awsID), Tags: tags}); err != nil {
		return fail(id, "tag the AWS account with this installation's ID", err)
	}
	p.mu.Lock()
	p.owners[awsID] = true
	p.mu.Unlock()
	return nil
}

// tags returns the tags of AWS account awsID; step names the call in a
// failure.
func (p *Provider) tags(ctx context.Context, id silo.AccountID, awsID, step string) (map[string]string, error) {
	out := map[string]string{}
	pages := organizations.NewListTagsForResourcePaginator(p.org, &organizations.ListTagsForResourceInput{ResourceId: aws.String(awsID)})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail(id, step, err)
		}
		for _, t := range page.Tags {
			out[aws.ToString(t.Key)] = aws.ToString(t.Value)
		}
	}
	return out, nil
}
