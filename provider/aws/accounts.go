package aws

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	orgtypes "github.com/aws/aws-sdk-go-v2/service/organizations/types"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// ouNames are the organizational units, one per kind of account.
var ouNames = map[silo.Kind]string{
	silo.KindTenant:      "tenants",
	silo.KindDeveloper:   "developers",
	silo.KindEnvironment: "environments",
	silo.KindProduction:  "production",
}

// CreateAccount creates a member account named NamePrefix+id (or waits
// for a creation of it already in progress), waits for AWS to finish
// creating it, moves it into the OU of kind (created if missing), creates
// the deployer and data roles if Config.Principal is set, and creates its
// data key (a KMS key aliased alias/silo-data). An existing account is
// kept and completed: moved out of the root, its roles' policies written
// again, its data key created if a crashed call left it without one.
//
// # Errors
//
// CodeInvalid for a malformed ID or an unknown kind; CodeUnavailable if AWS
// throttles; provider.Pending if AWS has not finished creating the account
// within PollTimeout (call again later: it resumes).
func (p *Provider) CreateAccount(ctx context.Context, id silo.AccountID, kind silo.Kind) error {
	if err := parseID(id); err != nil {
		return err
	}
	if !kind.Valid() {
		return silo.Errorf(silo.CodeInvalid, "unknown account kind %q for %s; use one of %v", kind, id, silo.Kinds)
	}
	l := p.lockOf(id)
	l.Lock()
	defer l.Unlock()
	awsID, err := p.awsID(ctx, id)
	if err != nil && silo.ErrorCode(err) != silo.CodeNotFound {
		return err
	}
	if awsID == "" {
		awsID, err = p.claim(ctx, id, kind)
		if err != nil {
			return err
		}
	}
	if awsID == "" {
		if awsID, err = p.createMember(ctx, id, kind); err != nil {
			return err
		}
	} else if err := p.ensureInOU(ctx, id, kind, awsID); err != nil {
		return err
	}
	if err := p.tagOwned(ctx, id, awsID); err != nil {
		return err
	}
	if err := p.ensureDeployer(ctx, id, awsID); err != nil {
		return err
	}
	if _, err := p.member(awsID).ensureKey(ctx, id); err != nil {
		return err
	}
	p.mu.Lock()
	p.ids[id] = awsID
	p.owners[awsID] = true // created, claimed or checked and tagged above
	p.mu.Unlock()
	return nil
}

// createMember asks Organizations for a new account and waits for it.
func (p *Provider) createMember(ctx context.Context, id silo.AccountID, kind silo.Kind) (string, error) {
	// A request still in flight, left by a call that crashed or by a
	// concurrent one, is waited for, not repeated.
	st, err := p.inFlight(ctx, id)
	if err != nil {
		return "", err
	}
	found := st != nil
	if !found {
		if st, err = p.requestAccount(ctx, id, kind); err != nil {
			return "", err
		}
	}
	st, err = p.waitCreated(ctx, id, st)
	if err != nil {
		return "", err
	}
	awsID := aws.ToString(st.AccountId)
	if found {
		// Another installation's creation may bear the same name.
		if err := p.checkOwner(ctx, id, awsID); err != nil {
			return "", err
		}
	}
	return awsID, p.ensureInOU(ctx, id, kind, awsID)
}

// requestAccount asks Organizations for a new account named for id.
func (p *Provider) requestAccount(ctx context.Context, id silo.AccountID, kind silo.Kind) (*orgtypes.CreateAccountStatus, error) {
	tags, err := p.installationTags(ctx)
	if err != nil {
		return nil, err
	}
	out, err := p.org.CreateAccount(ctx, &organizations.CreateAccountInput{
		AccountName:            aws.String(p.cfg.NamePrefix + string(id)),
		Email:                  aws.String(p.email(id)),
		RoleName:               aws.String(p.cfg.AccessRole),
		IamUserAccessToBilling: orgtypes.IAMUserAccessToBillingDeny,
		Tags: append(tags,
			orgtypes.Tag{Key: aws.String("silo:account"), Value: aws.String(string(id))},
			orgtypes.Tag{Key: aws.String("silo:kind"), Value: aws.String(string(kind))},
		),
	})
	if err != nil {
		return nil, fail(id, "create the AWS account", err)
	}
	return out.CreateAccountStatus, nil
}

// inFlight returns the creation request of account id still in progress,
// or nil.
func (p *Provider) inFlight(ctx context.Context, id silo.AccountID) (*orgtypes.CreateAccountStatus, error) {
	pages := organizations.NewListCreateAccountStatusPaginator(p.org, &organizations.ListCreateAccountStatusInput{
		States: []orgtypes.CreateAccountState{orgtypes.CreateAccountStateInProgress},
	})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail(id, "list the account creations in progress", err)
		}
		for _, st := range page.CreateAccountStatuses {
			if aws.ToString(st.AccountName) == p.cfg.NamePrefix+string(id) {
				return &st, nil
			}
		}
	}
	return nil, nil
}

// CreationInProgress reports whether Organizations is still creating an
// account under the name silo gives account id (a CreateAccount request in
// state IN_PROGRESS), and since when. Until it finishes, Ref and Accounts
// answer as if there were no such account; a new account under id must
// not be registered meanwhile (engine.CreateAccount refuses it), or a
// later CreateAccount would wait for that creation and take its account
// over. It lists the creations in progress: one call while there are few.
//
// # Errors
//
// CodeInvalid for a malformed ID; the list failing, as AWS errors do.
func (p *Provider) CreationInProgress(ctx context.Context, id silo.AccountID) (time.Time, bool, error) {
	if err := parseID(id); err != nil {
		return time.Time{}, false, err
	}
	st, err := p.inFlight(ctx, id)
	if err != nil || st == nil {
		return time.Time{}, false, err
	}
	return aws.ToTime(st.RequestedTimestamp), true, nil
}

// ensureInOU moves the account into the OU of kind from the root (a call
// that crashed after the creation left it there) or from OU "pool" (a
// claim finished late, after another server had returned the account to
// the pool: the account is the tenant's by name, but the pool OU grants
// none of the tenant OU's access). An account in any other OU stays where
// it is: an operator may have moved it on purpose.
func (p *Provider) ensureInOU(ctx context.Context, id silo.AccountID, kind silo.Kind, awsID string) error {
	parents, err := p.org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(awsID)})
	if err != nil {
		return fail(id, "find the OU of the AWS account", err)
	}
	if len(parents.Parents) == 0 {
		return nil
	}
	if parents.Parents[0].Type != orgtypes.ParentTypeRoot {
		if p.cfg.PoolSize <= 0 {
			return nil
		}
		pool, err := p.ouNamed(ctx, id, poolOU)
		if err != nil || aws.ToString(parents.Parents[0].Id) != pool {
			return err
		}
	}
	ou, err := p.ou(ctx, id, kind)
	if err != nil {
		return err
	}
	return p.move(ctx, id, awsID, aws.ToString(parents.Parents[0].Id), ou, ouNames[kind])
}

// move moves an account from parent from to OU to (named name).
func (p *Provider) move(ctx context.Context, id silo.AccountID, awsID, from, to, name string) error {
	_, err := p.org.MoveAccount(ctx, &organizations.MoveAccountInput{
		AccountId:           aws.String(awsID),
		SourceParentId:      aws.String(from),
		DestinationParentId: aws.String(to),
	})
	if err != nil && !isCode(err, "DuplicateAccountException") {
		return fail(id, "move the AWS account into OU "+name, err)
	}
	return nil
}

// email returns a fresh plus address for account id.
func (p *Provider) email(id silo.AccountID) string {
	var nonce [4]byte
	crand.Read(nonce[:])
	at := strings.IndexByte(p.cfg.Email, '@')
	return fmt.Sprintf("%s+%s%s-%s%s", p.cfg.Email[:at], p.cfg.NamePrefix, id, hex.EncodeToString(nonce[:]), p.cfg.Email[at:])
}

// waitCreated polls DescribeCreateAccountStatus until the request
// succeeds or fails, with doubling, jittered waits. It polls at least once,
// then gives up after PollTimeout with provider.Pending: the request goes
// on in AWS, and the next CreateAccount finds it (inFlight) and waits again.
func (p *Provider) waitCreated(ctx context.Context, id silo.AccountID, st *orgtypes.CreateAccountStatus) (*orgtypes.CreateAccountStatus, error) {
	deadline := time.Now().Add(p.cfg.PollTimeout)
	wait := p.cfg.PollInterval
	for polled := false; ; polled = true {
		if st == nil {
			return nil, silo.Errorf(silo.CodeInternal, "AWS returned no status for the creation of account %s; try again", id)
		}
		switch st.State {
		case orgtypes.CreateAccountStateSucceeded:
			if aws.ToString(st.AccountId) == "" {
				return nil, silo.Errorf(silo.CodeInternal, "AWS created account %s without an account ID; try again", id)
			}
			return st, nil
		case orgtypes.CreateAccountStateFailed:
			return nil, createFailed(id, st.FailureReason)
		}
		if polled && time.Now().After(deadline) {
			if since := aws.ToTime(st.RequestedTimestamp); !since.IsZero() && time.Since(since) > p.cfg.StuckAfter {
				return nil, &silo.Error{Code: silo.CodeUnavailable, Err: provider.ErrPending, Message: fmt.Sprintf(
					"AWS has been creating the AWS account of account %s since %s, longer than %s; silo keeps waiting for it (the next apply resumes), but if it does not finish look at the request in the AWS Organizations console or ask AWS Support",
					id, since.UTC().Format(time.RFC3339), p.cfg.StuckAfter)}
			}
			return nil, provider.Pending(id, p.Name())
		}
		// Full jitter over the upper half: [wait/2, wait).
		d := wait/2 + rand.N(wait/2+1)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(d):
		}
		wait = min(2*wait, 30*time.Second)
		out, err := p.org.DescribeCreateAccountStatus(ctx, &organizations.DescribeCreateAccountStatusInput{
			CreateAccountRequestId: st.Id,
		})
		if err != nil {
			return nil, fail(id, "read the creation status", err)
		}
		st = out.CreateAccountStatus
	}
}

func createFailed(id silo.AccountID, reason orgtypes.CreateAccountFailureReason) error {
	switch reason {
	case orgtypes.CreateAccountFailureReasonAccountLimitExceeded:
		return silo.Errorf(silo.CodeUnavailable, "AWS refused to create account %s: the organization has reached its account quota; ask AWS for a higher quota", id)
	case orgtypes.CreateAccountFailureReasonEmailAlreadyExists:
		return silo.Errorf(silo.CodeConflict, "AWS refused to create account %s: its email address is taken; try again", id)
	case orgtypes.CreateAccountFailureReasonConcurrentAccountModification:
		return silo.Errorf(silo.CodeUnavailable, "AWS refused to create account %s while another account change runs; try again in a minute", id)
	}
	return silo.Errorf(silo.CodeInternal, "AWS failed to create account %s (reason %s); see docs/aws.md", id, reason)
}

// root returns the organization's root ID.
func (p *Provider) root(ctx context.Context, id silo.AccountID) (string, error) {
	out, err := p.org.ListRoots(ctx, &organizations.ListRootsInput{})
	if err != nil {
		return "", fail(id, "list the organization roots", err)
	}
	if len(out.Roots) == 0 {
		return "", silo.Errorf(silo.CodeInternal, "the AWS organization has no root; create the organization first (docs/aws.md)")
	}
	return aws.ToString(out.Roots[0].Id), nil
}

// ou returns the ID of the OU for kind, creating it under the root if
// missing.
func (p *Provider) ou(ctx context.Context, id silo.AccountID, kind silo.Kind) (string, error) {
	return p.ouNamed(ctx, id, ouNames[kind])
}

// ouNamed returns the ID of the OU name under the root, creating it if
// missing.
func (p *Provider) ouNamed(ctx context.Context, id silo.AccountID, name string) (string, error) {
	p.mu.Lock()
	ouID := p.ous[name]
	p.mu.Unlock()
	if ouID != "" {
		return ouID, nil
	}
	root, err := p.root(ctx, id)
	if err != nil {
		return "", err
	}
	pages := organizations.NewListOrganizationalUnitsForParentPaginator(p.org, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(root)})
	for pages.HasMorePages() && ouID == "" {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return "", fail(id, "list the organizational units", err)
		}
		for _, u := range out.OrganizationalUnits {
			if aws.ToString(u.Name) == name {
				ouID = aws.ToString(u.Id)
			}
		}
	}
	if ouID == "" {
		out, err := p.org.CreateOrganizationalUnit(ctx, &organizations.CreateOrganizationalUnitInput{
			Name: aws.String(name), ParentId: aws.String(root),
		})
		switch {
		case isCode(err, "DuplicateOrganizationalUnitException"):
			return p.ouNamed(ctx, id, name) // created concurrently: list again
		case err != nil:
			return "", fail(id, "create the organizational unit "+name, err)
		}
		ouID = aws.ToString(out.OrganizationalUnit.Id)
	}
	p.mu.Lock()
	p.ous[name] = ouID
	p.mu.Unlock()
	return ouID, nil
}

// live lists silo's active member accounts: silo ID → AWS account ID, or
// ambiguous if several active accounts have the name.
func (p *Provider) live(ctx context.Context, id silo.AccountID) (map[silo.AccountID]string, error) {
	out := map[silo.AccountID]string{}
	// No MaxResults: AWS pages by NextToken either way.
	pages := organizations.NewListAccountsPaginator(p.org, &organizations.ListAccountsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return nil, fail(id, listStep(id), err)
		}
		for _, a := range page.Accounts {
			name, ok := strings.CutPrefix(aws.ToString(a.Name), p.cfg.NamePrefix)
			if !ok {
				continue
			}
			if _, err := silo.ParseID(name); err != nil {
				continue
			}
			prev, dup := out[silo.AccountID(name)]
			if !active(a) {
				if !dup && (a.State == orgtypes.AccountStateClosed || a.State == orgtypes.AccountStatePendingClosure) {
					out[silo.AccountID(name)] = closedMark + aws.ToString(a.Id)
				}
				continue
			}
			if dup && !strings.HasPrefix(prev, closedMark) && prev != aws.ToString(a.Id) {
				out[silo.AccountID(name)] = ambiguous
				continue
			}
			out[silo.AccountID(name)] = aws.ToString(a.Id)
		}
	}
	return out, nil
}

// ambiguous marks, in live's answer, a name that two active accounts share;
// closedMark starts the answer for a name only a closed account has.
const (
	ambiguous  = "ambiguous"
	closedMark = "closed:"
)

// listStep names the step of listing the organization's accounts in a
// failure (fail), for account id ("" when it is for none).
func listStep(id silo.AccountID) string {
	if id == "" {
		return "list the organization's accounts"
	}
	return "find the AWS account" // fail adds " of account <id>"
}

// reachable reports whether live's answer for a name is one AWS account
// silo can reach: neither shared by two active accounts nor closed.
func reachable(awsID string) bool {
	return awsID != ambiguous && !strings.HasPrefix(awsID, closedMark)
}

// active reports whether an account is open: State ACTIVE, or, from an API
// that predates State, Status ACTIVE.
func active(a orgtypes.Account) bool {
	if a.State != "" {
		return a.State == orgtypes.AccountStateActive
	}
	return a.Status == orgtypes.AccountStatusActive
}

// awsID returns the AWS account ID of account id.
//
// # Errors
//
// CodeNotFound if silo has no such active account.
func (p *Provider) awsID(ctx context.Context, id silo.AccountID) (string, error) {
	p.mu.Lock()
	awsID := p.ids[id]
	p.mu.Unlock()
	if awsID != "" {
		return awsID, p.checkOwner(ctx, id, awsID)
	}
	all, err := p.live(ctx, id)
	if err != nil {
		return "", err
	}
	// One listing maps every account: remember them all, so that a server
	// that starts with N accounts lists the organization once, not N times.
	p.mu.Lock()
	for k, v := range all {
		if reachable(v) {
			p.ids[k] = v
		}
	}
	p.mu.Unlock()
	awsID, ok := all[id]
	if !ok {
		return "", errNoAccount(id)
	}
	if closed, ok := strings.CutPrefix(awsID, closedMark); ok {
		// Closed outside silo, or by a deletion silo did not finish
		// recording: CodeNotFound, so that a deletion is done and a
		// creation starts afresh, with a message that says what happened.
		return "", silo.Errorf(silo.CodeNotFound, "the AWS account %s of account %s is closed, so silo cannot reach it; if it was closed outside silo, delete the account in silo (silo tenant delete %s) or create it again", closed, id, id)
	}
	if awsID == ambiguous {
		// Never guess: the wrong guess would put a tenant's data into
		// another account.
		return "", silo.Errorf(silo.CodeInternal, "several active AWS accounts are named %s%s, so silo cannot tell which is account %s; close the ones silo did not create (docs/aws.md)", p.cfg.NamePrefix, id, id)
	}
	if err := p.checkOwner(ctx, id, awsID); err != nil {
		return "", err
	}
	return awsID, nil
}

// Accounts lists silo's active member accounts, sorted by ID.
func (p *Provider) Accounts(ctx context.Context) ([]silo.AccountID, error) {
	all, err := p.live(ctx, "")
	if err != nil {
		return nil, err
	}
	ids := make([]silo.AccountID, 0, len(all))
	for id, awsID := range all {
		if !strings.HasPrefix(awsID, closedMark) {
			ids = append(ids, id)
		}
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// Holds reports, with one fresh question to Organizations
// (DescribeAccount), whether the AWS account of account id is still an
// active member of the organization: false for one closed or gone from
// it (an emptied organization, or credentials that now reach another).
// The AWS account ID is the one silo knew (a listing of the organization
// learns it, once, for an account not met yet); one found closed or gone
// is forgotten, so the next lookup lists again. The serving platform asks
// it about a few accounts at a time (platform.Platform.Recover).
//
// # Errors
//
// CodeInvalid for a malformed ID; AWS errors as fail translates them.
func (p *Provider) Holds(ctx context.Context, id silo.AccountID) (bool, error) {
	awsID, err := p.AWSAccountID(ctx, id)
	if silo.ErrorCode(err) == silo.CodeNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	out, err := p.org.DescribeAccount(ctx, &organizations.DescribeAccountInput{AccountId: aws.String(awsID)})
	if err != nil && !isCode(err, "AccountNotFoundException") {
		return false, fail(id, "describe the AWS account", err)
	}
	if err == nil && out.Account != nil && active(*out.Account) {
		return true, nil
	}
	p.mu.Lock()
	if p.ids[id] == awsID {
		delete(p.ids, id)
	}
	p.mu.Unlock()
	return false, nil
}

// AWSAccountID returns the 12-digit ID of the AWS account behind account
// id, for operators and tests.
//
// # Errors
//
// CodeInvalid for a malformed ID; CodeNotFound if the account does not exist.
func (p *Provider) AWSAccountID(ctx context.Context, id silo.AccountID) (string, error) {
	if err := parseID(id); err != nil {
		return "", err
	}
	return p.awsID(ctx, id)
}

// Ref returns the 12-digit ID of the AWS account behind account id, the
// path of organization IDs from the root to its parent, and the name of
// that OU (none while the account is still in the root).
//
// # Errors
//
// CodeInvalid for a malformed ID; CodeNotFound if the account does not
// exist (or is still being created).
func (p *Provider) Ref(ctx context.Context, id silo.AccountID) (provider.AccountRef, error) {
	awsID, err := p.AWSAccountID(ctx, id)
	if err != nil {
		return provider.AccountRef{}, err
	}
	ref := provider.AccountRef{Provider: p.Name(), ID: awsID}
	parents, err := p.org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(awsID)})
	if err != nil {
		return ref, fail(id, "find the OU of the AWS account", err)
	}
	if len(parents.Parents) == 0 {
		return ref, nil
	}
	parent := parents.Parents[0]
	if parent.Type == orgtypes.ParentTypeRoot {
		ref.Path = aws.ToString(parent.Id) + "/" // in no OU yet (a creation a crash cut short)
		return ref, nil
	}
	root, err := p.root(ctx, id)
	if err != nil {
		return ref, err
	}
	ref.Path = root + "/" + aws.ToString(parent.Id) + "/"
	pages := organizations.NewListOrganizationalUnitsForParentPaginator(p.org, &organizations.ListOrganizationalUnitsForParentInput{ParentId: aws.String(root)})
	for pages.HasMorePages() {
		out, err := pages.NextPage(ctx)
		if err != nil {
			return ref, fail(id, "list the organizational units", err)
		}
		for _, u := range out.OrganizationalUnits {
			if aws.ToString(u.Id) == aws.ToString(parent.Id) {
				ref.Unit = aws.ToString(u.Name)
			}
		}
	}
	return ref, nil
}
