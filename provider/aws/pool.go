package aws

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/account"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// The warm pool. AWS takes minutes to create an account, so with
// Config.PoolSize > 0 the provider keeps that many accounts created ahead,
// named NamePrefix+"pool."+8 hex digits (a name that is no silo ID, so no
// lookup mistakes one for an account) in OU "pool". FillPool tops it up
// (a running server calls it in the background); CreateAccount claims a
// pool account before it asks AWS for a new one:
//
//  1. tag it silo:account and silo:kind (informational);
//  2. move it from where it is into the OU of its kind;
//  3. rename it NamePrefix+id (Account Management PutAccountName).
//
// The rename is the commit point: before it the account is still a pool
// account, which the next claim takes (from whatever OU step 2 left it
// in); after it, the account is the tenant's by name, and the rest of
// CreateAccount (roles, data key) resumes on it as on any account a crash
// left half done. Claims and fills are serialized within a process; two
// processes claiming at once could take the same pool account (see
// docs/aws.md).
const (
	poolOU   = "pool"
	poolPart = "pool."
	poolID   = silo.AccountID("pool") // names the pool in errors
)

// PoolStatus is the warm pool as AWS shows it.
type PoolStatus struct {
	// Size is the configured size (Config.PoolSize).
	Size int `json:"size"`
	// Ready are the AWS account IDs of the pool accounts ready to claim.
	Ready []string `json:"ready"`
	// Creating is how many pool accounts AWS is still creating.
	Creating int `json:"creating"`
}

func (p *Provider) isPoolName(name string) bool {
	return strings.HasPrefix(name, p.cfg.NamePrefix+poolPart)
}

// Pool returns the warm pool's state.
func (p *Provider) Pool(ctx context.Context) (PoolStatus, error) {
	st := PoolStatus{Size: p.cfg.PoolSize, Ready: []string{}}
	pages := organizations.NewListAccountsPaginator(p.org, &organizations.ListAccountsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return st, fail("", "list the organization's accounts", err)
		}
		for _, a := range page.Accounts {
			if p.isPoolName(aws.ToString(a.Name)) && active(a) {
				st.Ready = append(st.Ready, aws.ToString(a.Id))
			}
		}
	}
	sort.Strings(st.Ready)
	inFlight, err := p.poolInFlight(ctx)
	st.Creating = len(inFlight)
	return st, err
}

// poolInFlight returns the pool account creations in progress.
func (p *Provider) poolInFlight(ctx context.Context) ([]orgtypes.CreateAccountStatus, error) {
	var out []orgtypes.CreateAccountStatus
	pages := organizations.NewListCreateAccountStatusPaginator(p.org, &organizations.ListCreateAccountStatusInput{
		States: []orgtypes.CreateAccountState{orgtypes.CreateAccountStateInProgress},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail("", "list the account creations in progress", err)
		}
		for _, st := range page.CreateAccountStatuses {
			if p.isPoolName(aws.ToString(st.AccountName)) {
				out = append(out, st)
			}
		}
	}
	return out, nil
}

// FillPool waits for the pool creations in progress and asks AWS for as
// many new pool accounts as the pool lacks, one at a time (AWS allows
// few creations in flight), each waited for as CreateAccount waits
// (PollTimeout) and moved into OU "pool". A creation that outlasts the
// wait is left to AWS and counted as creating; the next FillPool waits for
// it again.
//
// # Errors
//
// The errors of CreateAccount, naming the pool.
func (p *Provider) FillPool(ctx context.Context) error {
	if p.cfg.PoolSize <= 0 {
		return nil
	}
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	st, err := p.Pool(ctx)
	if err != nil {
		return err
	}
	inFlight, err := p.poolInFlight(ctx)
	if err != nil {
		return err
	}
	ready, creating := len(st.Ready), 0
	for _, req := range inFlight {
		err := p.finishPoolAccount(ctx, &req)
		switch {
		case provider.IsPending(err):
			creating++
		case err != nil:
			return err
		default:
			ready++
		}
	}
	for need := p.cfg.PoolSize - ready - creating; need > 0; need-- {
		out, err := p.org.CreateAccount(ctx, &organizations.CreateAccountInput{
			AccountName:            aws.String(p.cfg.NamePrefix + poolPart + nonce()),
			Email:                  aws.String(p.email(poolID)),
			RoleName:               aws.String(p.cfg.AccessRole),
			IamUserAccessToBilling: orgtypes.IAMUserAccessToBillingDeny,
			Tags:                   []orgtypes.Tag{{Key: aws.String("silo:pool"), Value: aws.String("ready")}},
		})
		if err != nil {
			return fail("", "create a warm pool account", err)
		}
		if err := p.finishPoolAccount(ctx, out.CreateAccountStatus); err != nil && !provider.IsPending(err) {
			return err
		}
	}
	return nil
}

// finishPoolAccount waits for a pool account's creation and moves it from
// the root into OU "pool".
func (p *Provider) finishPoolAccount(ctx context.Context, st *orgtypes.CreateAccountStatus) error {
	done, err := p.waitCreated(ctx, poolID, st)
	if err != nil {
		return err
	}
	awsID := aws.ToString(done.AccountId)
	ou, err := p.ouNamed(ctx, poolID, poolOU)
	if err != nil {
		return err
	}
	root, err := p.root(ctx, poolID)
	if err != nil {
		return err
	}
	return p.move(ctx, poolID, awsID, root, ou, poolOU)
}

// claim takes a ready pool account for account id of kind, or returns ""
// if the pool is empty or not configured.
func (p *Provider) claim(ctx context.Context, id silo.AccountID, kind silo.Kind) (string, error) {
	if p.cfg.PoolSize <= 0 {
		return "", nil
	}
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	st, err := p.Pool(ctx)
	if err != nil || len(st.Ready) == 0 {
		return "", err
	}
	awsID := st.Ready[0]
	_, err = p.org.TagResource(ctx, &organizations.TagResourceInput{ResourceId: aws.String(awsID), Tags: []orgtypes.Tag{
		{Key: aws.String("silo:account"), Value: aws.String(string(id))},
		{Key: aws.String("silo:kind"), Value: aws.String(string(kind))},
	}})
	if err != nil {
		return "", fail(id, "tag the warm pool account it takes", err)
	}
	parents, err := p.org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(awsID)})
	if err != nil {
		return "", fail(id, "find the OU of the warm pool account it takes", err)
	}
	ou, err := p.ou(ctx, id, kind)
	if err != nil {
		return "", err
	}
	if len(parents.Parents) > 0 && aws.ToString(parents.Parents[0].Id) != ou {
		if err := p.move(ctx, id, awsID, aws.ToString(parents.Parents[0].Id), ou, ouNames[kind]); err != nil {
			return "", err
		}
	}
	_, err = p.acct.PutAccountName(ctx, &account.PutAccountNameInput{AccountId: aws.String(awsID), AccountName: aws.String(p.cfg.NamePrefix + string(id))})
	if err != nil {
		return "", fail(id, "rename the warm pool account it takes", err)
	}
	return awsID, nil
}

// nonce returns 8 random hex digits.
func nonce() string {
	var b [4]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
