package aws

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"math/rand/v2"
	"sort"
	"strings"
	"time"

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
// pool account before it asks AWS for a new one.
//
// Several servers may claim from one pool at once, so a claim takes an
// account with a compare-and-swap that AWS performs: MoveAccount from OU
// "pool" (SourceParentId) into the OU of the account's kind. AWS moves an
// account out of a parent once; a second claimer of the same account is
// answered that the account is no longer under the source parent, or is
// already in the destination, and tries the next pool account. A claim:
//
//  1. tags the pool account silo:claiming:<id> with the time (written
//     before the move, by every claimer that tries the account, each
//     under its own key);
//  2. moves it from OU "pool" into the OU of its kind: the one claimer
//     whose move succeeds owns the account;
//  3. tags it silo:claimed-by with the silo account (the owner alone
//     writes this tag);
//  4. renames it NamePrefix+id (Account Management PutAccountName): the
//     commit point, after which the account is the tenant's by name;
//     then removes its own silo:claiming key.
//
// A claimer whose move AWS refuses removes its silo:claiming key again,
// so that a claim leaves no key of its own behind unless it stopped in
// the middle.
//
// A claim that stopped after step 3 is finished by the next CreateAccount
// of the same account, which finds the pool account claimed for it. One
// that stopped between steps 2 and 3 left an account out of the pool
// that names no owner. If its only silo:claiming key is the account's
// own, that claim won the move (the winner's key was written before its
// move, so it is there), and the next CreateAccount of the account
// finishes the claim, if it comes within half of Config.ClaimTimeout.
// Otherwise, once its latest claiming time is older than ClaimTimeout,
// the next claim or FillPool on any server clears its claiming keys,
// moves it back into OU "pool" (again a compare-and-swap, from the OU it
// is in) and tags it silo:returned; a returned account rests
// ClaimTimeout before a claim takes it again, so that a second server
// still returning it from an older reading cannot pull it from under a
// newer claim. These rules assume that no server pauses longer than half
// of ClaimTimeout between reading the organization and acting on what it
// read (a claim that notices it did gives the account up), and that the
// servers' clocks agree to well within it.
const (
	poolOU   = "pool"
	poolPart = "pool."
	poolID   = silo.AccountID("pool") // names the pool in errors

	tagClaiming  = "silo:claiming:" // + the silo account
	tagClaimedBy = "silo:claimed-by"
	tagReturned  = "silo:returned"
)

// PoolStatus is the warm pool as AWS shows it.
type PoolStatus struct {
	// Size is the configured size (Config.PoolSize).
	Size int `json:"size"`
	// Ready are the AWS account IDs of the pool accounts ready to claim.
	Ready []string `json:"ready"`
	// Creating is how many pool accounts AWS is still creating, or has
	// created but FillPool has not yet moved into OU "pool".
	Creating int `json:"creating"`
	// Taken are the pool accounts a claim moved out of OU "pool" and has
	// not renamed yet, sorted by AWS account ID.
	Taken []PoolTaken `json:"taken"`
}

// PoolTaken is a pool account a claim moved out of the pool.
type PoolTaken struct {
	AWSAccountID string `json:"aws_account_id"`
	// Account is the silo account it was claimed for; its next
	// CreateAccount finishes the claim. "" if the claim stopped before
	// saying: the account goes back to the pool once Since is older than
	// Config.ClaimTimeout, unless the one account that tried it finishes
	// the claim before half of that.
	Account silo.AccountID `json:"account,omitempty"`
	// Since is when the latest claim of it began (zero if unknown).
	Since time.Time `json:"since,omitzero"`
}

// poolAccount is one active pool account as a scan read it.
type poolAccount struct {
	awsID     string
	parent    string // the ID of its root or OU
	inRoot    bool
	claimedBy silo.AccountID               // tag silo:claimed-by; read outside OU pool only
	owner     *string                      // tag silo:installation if read and set (installation.go)
	claimants map[silo.AccountID]time.Time // tags silo:claiming:<id>; read outside OU pool only
}

// latest returns the time of a's latest claim attempt; zero if none.
func (a poolAccount) latest() time.Time {
	var t time.Time
	for _, at := range a.claimants {
		if at.After(t) {
			t = at
		}
	}
	return t
}

// wonBy reports whether a claim for id won a and stopped before naming
// its owner: a is out of the pool with no owner, and id's is the only
// claiming key on it.
func (a poolAccount) wonBy(id silo.AccountID) bool {
	_, ok := a.claimants[id]
	return a.claimedBy == "" && ok && len(a.claimants) == 1
}

func (p *Provider) isPoolName(name string) bool {
	return strings.HasPrefix(name, p.cfg.NamePrefix+poolPart)
}

// scanPool returns the ID of OU "pool" and the active pool accounts with
// their parents; for those outside OU "pool" and the root, their claim
// tags. It costs one ListParents per pool account.
func (p *Provider) scanPool(ctx context.Context, id silo.AccountID) (string, []poolAccount, error) {
	var accts []poolAccount
	pages := organizations.NewListAccountsPaginator(p.org, &organizations.ListAccountsInput{})
	for pages.HasMorePages() {
		page, err := pages.NextPage(ctx)
		if err != nil {
			return "", nil, fail(id, listStep(id), err)
		}
		for _, a := range page.Accounts {
			if p.isPoolName(aws.ToString(a.Name)) && active(a) {
				accts = append(accts, poolAccount{awsID: aws.ToString(a.Id)})
			}
		}
	}
	if len(accts) == 0 {
		return "", nil, nil
	}
	pool, err := p.ouNamed(ctx, id, poolOU)
	if err != nil {
		return "", nil, err
	}
	for i := range accts {
		a := &accts[i]
		parents, err := p.org.ListParents(ctx, &organizations.ListParentsInput{ChildId: aws.String(a.awsID)})
		if err != nil {
			return "", nil, fail(id, "find the OU of a warm pool account", err)
		}
		if len(parents.Parents) == 0 {
			continue
		}
		a.parent = aws.ToString(parents.Parents[0].Id)
		a.inRoot = parents.Parents[0].Type == orgtypes.ParentTypeRoot
		if a.parent == pool || a.inRoot {
			continue
		}
		tags, err := p.tags(ctx, id, a.awsID, "read the tags of a warm pool account")
		if err != nil {
			return "", nil, err
		}
		a.claimedBy = silo.AccountID(tags[tagClaimedBy])
		if v, ok := tags[tagInstallation]; ok {
			a.owner = &v
		}
		a.claimants = map[silo.AccountID]time.Time{}
		for k, v := range tags {
			if claimant, ok := strings.CutPrefix(k, tagClaiming); ok {
				a.claimants[silo.AccountID(claimant)], _ = time.Parse(time.RFC3339Nano, v)
			}
		}
	}
	return pool, accts, nil
}

// foreign reports whether a bears another installation's ID than ours.
func (a poolAccount) foreign(ours string) bool {
	return a.owner != nil && *a.owner != ours
}

// abandoned reports whether a is out of the pool with no owner named and
// its claim began more than ClaimTimeout ago (or at an unknown time).
func (p *Provider) abandoned(a poolAccount, pool string) bool {
	return a.parent != pool && !a.inRoot && a.parent != "" && a.claimedBy == "" &&
		p.now().Sub(a.latest()) > p.cfg.ClaimTimeout
}

// Pool returns the warm pool's state.
func (p *Provider) Pool(ctx context.Context) (PoolStatus, error) {
	st := PoolStatus{Size: p.cfg.PoolSize, Ready: []string{}, Taken: []PoolTaken{}}
	pool, accts, err := p.scanPool(ctx, "")
	if err != nil {
		return st, err
	}
	for _, a := range accts {
		switch {
		case a.parent == pool:
			st.Ready = append(st.Ready, a.awsID)
		case a.inRoot:
			st.Creating++
		default:
			st.Taken = append(st.Taken, PoolTaken{AWSAccountID: a.awsID, Account: a.claimedBy, Since: a.latest()})
		}
	}
	sort.Strings(st.Ready)
	sort.Slice(st.Taken, func(i, j int) bool { return st.Taken[i].AWSAccountID < st.Taken[j].AWSAccountID })
	inFlight, err := p.poolInFlight(ctx)
	st.Creating += len(inFlight)
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

// FillPool returns to the pool the accounts abandoned claims left out of
// it, moves into OU "pool" the ones a crash left in the root, waits for
// the pool creations in progress and asks AWS for as many new pool
// accounts as the pool lacks, one at a time (AWS allows few creations in
// flight), each waited for as CreateAccount waits (PollTimeout) and moved
// into OU "pool". A creation that outlasts the wait is left to AWS and
// counted as creating; the next FillPool waits for it again. Accounts out
// of the pool that name no owner yet count as the pool's (they come
// back). Fills are serialized within a process; servers filling at once
// count the pool again before each creation, so that together they create
// at most one account each more than the size.
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
	pool, accts, err := p.scanPool(ctx, poolID)
	if err != nil {
		return err
	}
	ours, err := p.ours(ctx, true)
	if err != nil {
		return err
	}
	ready := 0
	for _, a := range accts {
		switch {
		case a.foreign(ours):
			// Another installation's (installation.go): left alone.
		case a.parent == pool:
			ready++
		case a.inRoot:
			if err := p.move(ctx, poolID, a.awsID, a.parent, pool, poolOU); err != nil {
				return err
			}
			ready++
		case p.abandoned(a, pool):
			if _, err := p.giveBack(ctx, poolID, a, pool); err != nil {
				return err
			}
			ready++
		case a.claimedBy == "":
			ready++ // a claim in its last steps, or abandoned recently
		}
	}
	return p.growPool(ctx, ready)
}

// growPool creates pool accounts until the pool holds PoolSize: ready
// counts the accounts it holds besides the creations in progress. After
// each creation it counts the pool again (poolCount), for another server
// may be filling it too; it never creates more than the pool lacked.
func (p *Provider) growPool(ctx context.Context, ready int) error {
	inFlight, err := p.poolInFlight(ctx)
	if err != nil {
		return err
	}
	tags, err := p.installationTags(ctx)
	if err != nil {
		return err
	}
	creating := 0
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
			Tags:                   append(tags, orgtypes.Tag{Key: aws.String("silo:pool"), Value: aws.String("ready")}),
		})
		if err != nil {
			return fail("", "create a warm pool account", err)
		}
		if err := p.finishPoolAccount(ctx, out.CreateAccountStatus); err != nil && !provider.IsPending(err) {
			return err
		}
		if have, err := p.poolCount(ctx); err != nil || have >= p.cfg.PoolSize {
			return err
		}
	}
	return nil
}

// poolCount returns how many accounts the pool holds or AWS is creating
// for it, as FillPool counts them, without changing anything.
func (p *Provider) poolCount(ctx context.Context) (int, error) {
	pool, accts, err := p.scanPool(ctx, poolID)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, a := range accts {
		if a.parent == pool || a.inRoot || a.claimedBy == "" {
			n++
		}
	}
	inFlight, err := p.poolInFlight(ctx)
	return n + len(inFlight), err
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

// giveBack moves an abandoned pool account from the OU it is in back into
// OU "pool", after clearing its claiming tags and tagging it silo:returned
// with the time. It reports false, with no error, if another server moved
// the account first.
func (p *Provider) giveBack(ctx context.Context, id silo.AccountID, a poolAccount, pool string) (bool, error) {
	if len(a.claimants) > 0 {
		keys := make([]string, 0, len(a.claimants))
		for claimant := range a.claimants {
			keys = append(keys, tagClaiming+string(claimant))
		}
		_, err := p.org.UntagResource(ctx, &organizations.UntagResourceInput{ResourceId: aws.String(a.awsID), TagKeys: keys})
		if err != nil {
			return false, fail(id, "return an abandoned warm pool account", err)
		}
	}
	if err := p.tagPool(ctx, id, a.awsID, "return an abandoned warm pool account", tagReturned, stamp(p.now())); err != nil {
		return false, err
	}
	return p.casMove(ctx, id, a.awsID, a.parent, pool, "return an abandoned warm pool account to OU "+poolOU)
}

// casMove moves account awsID from parent from to parent to, and reports
// whether it did: false, with no error, if the account is no longer under
// from (another server moved it first).
func (p *Provider) casMove(ctx context.Context, id silo.AccountID, awsID, from, to, step string) (bool, error) {
	_, err := p.org.MoveAccount(ctx, &organizations.MoveAccountInput{
		AccountId:           aws.String(awsID),
		SourceParentId:      aws.String(from),
		DestinationParentId: aws.String(to),
	})
	switch {
	case err == nil:
		return true, nil
	case isCode(err, movedAway...):
		return false, nil
	default:
		return false, fail(id, step, err)
	}
}

// movedAway are the answers of a MoveAccount whose account is no longer
// under its source parent: AWS documents SourceParentNotFoundException and
// AccountNotFoundException for a source or account it cannot find,
// DuplicateAccountException for an account already in the destination,
// and ConcurrentModificationException for a move racing another change.
var movedAway = []string{"SourceParentNotFoundException", "AccountNotFoundException", "DuplicateAccountException", "ConcurrentModificationException"}

// tagPool sets tag key to value on pool account awsID.
func (p *Provider) tagPool(ctx context.Context, id silo.AccountID, awsID, step string, kv ...string) error {
	var tags []orgtypes.Tag
	for i := 0; i+1 < len(kv); i += 2 {
		tags = append(tags, orgtypes.Tag{Key: aws.String(kv[i]), Value: aws.String(kv[i+1])})
	}
	_, err := p.org.TagResource(ctx, &organizations.TagResourceInput{ResourceId: aws.String(awsID), Tags: tags})
	return fail(id, step, err)
}

// claim takes a pool account for account id of kind, or returns "" if the
// pool has none to give or is not configured. A pool account an earlier
// claim moved out for id is finished first.
func (p *Provider) claim(ctx context.Context, id silo.AccountID, kind silo.Kind) (string, error) {
	if p.cfg.PoolSize <= 0 {
		return "", nil
	}
	pool, accts, err := p.scanPool(ctx, id)
	if err != nil || len(accts) == 0 {
		return "", err
	}
	ours, err := p.ours(ctx, true)
	if err != nil {
		return "", err
	}
	var ready []poolAccount
	for _, a := range accts {
		switch {
		case a.foreign(ours):
			// Another installation's (installation.go): never claimed.
		case a.parent == pool || a.inRoot:
			if a.parent == pool {
				ready = append(ready, a)
			}
		case a.claimedBy == id:
			return a.awsID, p.commit(ctx, id, a.awsID)
		case a.wonBy(id) && p.now().Sub(a.claimants[id]) < p.cfg.ClaimTimeout/2:
			// This account's own claim moved it and stopped: finish it
			// while no server may yet count it abandoned.
			err := p.tagPool(ctx, id, a.awsID, "tag the warm pool account it takes", claimedTags(id, kind, ours)...)
			if err != nil {
				return "", err
			}
			return a.awsID, p.commit(ctx, id, a.awsID)
		case p.abandoned(a, pool):
			if _, err := p.giveBack(ctx, id, a, pool); err != nil {
				return "", err
			}
		}
	}
	ou, err := p.ou(ctx, id, kind)
	if err != nil {
		return "", err
	}
	// Claimers on other servers start at other accounts.
	rand.Shuffle(len(ready), func(i, j int) { ready[i], ready[j] = ready[j], ready[i] })
	for _, a := range ready {
		won, err := p.take(ctx, id, kind, a.awsID, pool, ou, ours)
		if err != nil || won {
			return a.awsID, err
		}
	}
	return "", nil
}

// take tries to claim pool account awsID, in OU pool, for id by moving it
// into OU ou, and reports whether it did.
func (p *Provider) take(ctx context.Context, id silo.AccountID, kind silo.Kind, awsID, pool, ou, ours string) (bool, error) {
	tags, err := p.tags(ctx, id, awsID, "read the tags of a warm pool account")
	if err != nil {
		return false, err
	}
	if owner, ok := tags[tagInstallation]; ok && owner != ours {
		return false, nil // another installation's pool account (installation.go)
	}
	if returned, err := time.Parse(time.RFC3339Nano, tags[tagReturned]); err == nil && p.now().Sub(returned) < p.cfg.ClaimTimeout {
		return false, nil // returned lately: it rests (see the top of this file)
	}
	began := p.now()
	if err := p.tagPool(ctx, id, awsID, "tag the warm pool account it takes", tagClaiming+string(id), stamp(began)); err != nil {
		return false, err
	}
	won, err := p.casMove(ctx, id, awsID, pool, ou, "move the warm pool account it takes into OU "+ouNames[kind])
	if err != nil {
		return false, err
	}
	if !won {
		// Another claim took it: this claim's key would only stand in the
		// way of the winner's (poolAccount.wonBy).
		return false, p.untagClaim(ctx, id, awsID)
	}
	if p.now().Sub(began) > p.cfg.ClaimTimeout/2 {
		// Too slow: another server may soon return the account to the
		// pool, so it is left to be returned.
		return false, nil
	}
	err = p.tagPool(ctx, id, awsID, "tag the warm pool account it takes", claimedTags(id, kind, ours)...)
	if err != nil {
		return false, err
	}
	return true, p.commit(ctx, id, awsID)
}

// claimedTags are the tags, as keys and values, that make a pool account
// account id's of kind, for installation ours ("" for none).
func claimedTags(id silo.AccountID, kind silo.Kind, ours string) []string {
	kv := []string{tagClaimedBy, string(id), "silo:account", string(id), "silo:kind", string(kind)}
	if ours != "" {
		kv = append(kv, tagInstallation, ours)
	}
	return kv
}

// commit names pool account awsID NamePrefix+id, the claim's commit point,
// then removes the claim's silo:claiming key: the account is id's.
func (p *Provider) commit(ctx context.Context, id silo.AccountID, awsID string) error {
	_, err := p.acct.PutAccountName(ctx, &account.PutAccountNameInput{AccountId: aws.String(awsID), AccountName: aws.String(p.cfg.NamePrefix + string(id))})
	if err != nil {
		return fail(id, "rename the warm pool account it takes", err)
	}
	return p.untagClaim(ctx, id, awsID)
}

// untagClaim removes the silo:claiming key of id's claim from awsID.
func (p *Provider) untagClaim(ctx context.Context, id silo.AccountID, awsID string) error {
	_, err := p.org.UntagResource(ctx, &organizations.UntagResourceInput{ResourceId: aws.String(awsID), TagKeys: []string{tagClaiming + string(id)}})
	return fail(id, "remove its claiming tag from a warm pool account", err)
}

// stamp formats t for a tag.
func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// nonce returns 8 random hex digits.
func nonce() string {
	var b [4]byte
	crand.Read(b[:])
	return hex.EncodeToString(b[:])
}
