// Package aws is silo's AWS provider: an account is an AWS Organizations
// member account in an organizational unit per kind, reached through a
// deployer role; its tables are DynamoDB tables, its buckets S3 buckets,
// its config SSM parameters and its secrets SSM SecureString parameters,
// all encrypted under the account's own KMS key (docs/aws.md).
//
// It is the only package of the project that imports aws-sdk-go-v2, and it
// imports only the root silo package, provider, logs (the entry type of
// function logs) and isolation/iam (the SDK-free policy evaluator, whose
// Snapshot it fills) besides. Its test harness
// (awstest) emulates an organization with one kumo process per account.
package aws

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/account"
	"github.com/aws/aws-sdk-go-v2/service/organizations"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// Limits the provider holds every account to, the same as the local
// provider's, so that one silo.yaml behaves the same on both.
const (
	// MaxKeySize is the longest table or blob key, in bytes (the largest
	// DynamoDB sort key and S3 object key).
	MaxKeySize = provider.MaxKeySize
	// DefaultScanLimit is the limit Scan and ListBlobs use for limit <= 0;
	// MaxScanLimit caps larger limits.
	DefaultScanLimit = 100
	MaxScanLimit     = 1000
)

// DefaultClaimTimeout is Config.ClaimTimeout's default.
const DefaultClaimTimeout = 10 * time.Minute

// Config configures the provider. The zero value of every field but AWS
// and Email has a default.
type Config struct {
	// AWS holds the region and the credentials of the management account's
	// silo principal. cmd/ builds it (config.LoadDefaultConfig).
	AWS aws.Config
	// Email is the mailbox member accounts are registered under, plus
	// addressed: account "acme" gets "local+silo-acme-<nonce>@domain".
	// AWS requires a unique email per account, also after an account is
	// closed, hence the nonce.
	Email string
	// NamePrefix starts the name of every member account silo creates
	// (default "silo-"); the account named NamePrefix+"acme" is silo's
	// account "acme".
	NamePrefix string
	// AccessRole is the role Organizations creates in each new member
	// account, trusted by the whole management account, with administrator
	// rights (default "OrganizationAccountAccessRole"). Without Principal
	// the provider reaches accounts through it; with Principal only to
	// create the deployer role.
	AccessRole string
	// Principal, if set, is the ARN of the management account's silo
	// principal. CreateAccount then creates the role "silo-deployer" in
	// the account, trusted by Principal alone and granted exactly the
	// calls the provider makes on silo's resources (iam.go), and the
	// provider reaches the account through that role.
	Principal string
	// DataPrincipal, used with Principal, is the ARN of the data plane's
	// principal (the runtime host). CreateAccount creates the role
	// "silo-data", trusted by DataPrincipal alone (by Principal if it is
	// empty) and granted the data plane's calls; Data reaches the account
	// through it. The deployer role cannot read table values, blobs or
	// secrets (I3).
	DataPrincipal string
	// Endpoint, if not nil, gives the endpoint URL of an AWS account: ""
	// for the management account, else the 12-digit member account ID. It
	// exists for the emulator (awstest); in production it is nil and the
	// SDK's regional endpoints are used.
	Endpoint func(account string) string
	// Functions, if set, is where the provider finds what it deploys to
	// Lambda (lambda.go); without it functions and routes are only
	// recorded.
	Functions *FunctionCode
	// PollInterval is the first wait between DescribeCreateAccountStatus
	// calls (default 5 s); waits double, with jitter, up to 30 s.
	// PollTimeout bounds how long one CreateAccount waits for AWS to
	// finish a creation (default 1 min; it polls at least once): past it,
	// CreateAccount returns provider.Pending and the creation goes on in
	// AWS; the next call resumes it.
	PollInterval, PollTimeout time.Duration
	// StuckAfter is how long a creation may stay in progress in AWS before
	// silo reports it as stuck (default 1 h; AWS documents minutes).
	// The account stays pending: silo keeps waiting for it.
	StuckAfter time.Duration
	// MaxAttempts bounds the attempts of one AWS call (default 5);
	// MaxBackoff the wait between two (default 20 s). Waits are jittered
	// (faults.go). A data-plane call with a deadline (a function's table
	// or blob call) retries until its deadline instead of MaxAttempts
	// times.
	MaxAttempts int
	MaxBackoff  time.Duration
	// AnswerTimeout bounds how long one attempt of an AWS call waits for
	// AWS to start answering once the request is sent (default 30 s); past
	// it the endpoint counts as unreachable and the call is not retried
	// (faults.go). A Lambda invocation, which answers when the function
	// returns, waits for as long as its context allows. It applies when
	// cfg.AWS's HTTPClient is nil or the SDK's own (config.LoadDefaultConfig
	// sets that one).
	AnswerTimeout time.Duration
	// PoolSize is how many accounts the warm pool keeps created ahead
	// (pool.go); 0, the default, keeps none and never claims.
	PoolSize int
	// ClaimTimeout is how long a claim of a pool account may stay between
	// moving the account out of the pool and naming its owner before any
	// server returns the account to the pool, and how long a returned
	// account rests before a claim takes it again (default
	// DefaultClaimTimeout; see pool.go). Servers' clocks must agree to well within it.
	ClaimTimeout time.Duration
}

func (c *Config) setDefaults() error {
	if c.NamePrefix == "" {
		c.NamePrefix = "silo-"
	}
	if c.AccessRole == "" {
		c.AccessRole = "OrganizationAccountAccessRole"
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 5 * time.Second
	}
	if c.PollTimeout <= 0 {
		c.PollTimeout = time.Minute
	}
	if c.ClaimTimeout <= 0 {
		c.ClaimTimeout = DefaultClaimTimeout
	}
	if c.StuckAfter <= 0 {
		c.StuckAfter = time.Hour
	}
	if c.MaxAttempts <= 0 {
		c.MaxAttempts = defaultMaxAttempts
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = defaultMaxBackoff
	}
	if c.AnswerTimeout <= 0 {
		c.AnswerTimeout = defaultAnswerTimeout
	}
	at := strings.IndexByte(c.Email, '@')
	if at <= 0 || at != strings.LastIndexByte(c.Email, '@') || at == len(c.Email)-1 {
		return silo.Errorf(silo.CodeInvalid, "the AWS provider needs an email address for member accounts (got %q); set one such as aws-accounts@example.com", c.Email)
	}
	if c.AWS.Region == "" {
		return silo.Errorf(silo.CodeInvalid, "the AWS provider needs a region; set AWS_REGION or the region in the AWS config")
	}
	if !regionName.MatchString(c.AWS.Region) {
		return silo.Errorf(silo.CodeInvalid, "%q is not an AWS region: a region is named like us-east-1 or eu-west-2 (see the AWS console's region menu); check --aws-region or AWS_REGION", c.AWS.Region)
	}
	return nil
}

// regionName is the shape of every AWS region's name: a two-letter area, a
// direction or place, possibly a partition (us-gov-west-1, us-iso-east-1),
// and a number. A name of that shape that AWS does not know fails at the
// first call, at once: its endpoint's name does not resolve (faults.go).
var regionName = regexp.MustCompile(`^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$`)

// Provider is the AWS provider. It is safe for concurrent use.
//
// It keeps no state of its own beyond caches: which accounts exist is read
// from AWS Organizations (by account name, see Config.NamePrefix), which
// resources an account holds from the account itself.
type Provider struct {
	cfg  Config
	org  *organizations.Client
	sts  *sts.Client
	acct *account.Client // renames claimed pool accounts

	poolMu sync.Mutex       // serializes FillPool within the process (claims need no lock: pool.go)
	now    func() time.Time // the clock the warm pool's claims are timed by (time.Now; tests set their own)

	mu      sync.Mutex
	ous     map[string]string              // OU name → ID
	ids     map[silo.AccountID]string      // silo ID → AWS account ID, for live accounts
	members map[string]*member             // role@AWS account ID → clients
	locks   map[silo.AccountID]*sync.Mutex // serializes create/delete of one account

	installation   InstallationID  // the installation it works for (installation.go)
	installationID string          // its ID, once known
	owners         map[string]bool // AWS account ID → tagged as this installation's, once read

	// invokeHTTP is the HTTP client of Lambda invocations: cfg.AWS's
	// without Config.AnswerTimeout (nil: cfg.AWS's own, as given).
	invokeHTTP aws.HTTPClient

	gates gateMetrics // the functions' invocation counters (lambdametrics.go)
	pkgs  packages    // the functions' deployment packages (lambdapkg.go)
}

// New returns a provider for the organization whose management account
// cfg.AWS reaches.
//
// # Errors
//
// CodeInvalid if cfg lacks the email or the region.
func New(cfg Config) (*Provider, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	cfg.AWS.Retryer = cfg.retryer()
	var invokeHTTP aws.HTTPClient
	base, ok := cfg.AWS.HTTPClient.(*awshttp.BuildableClient) // what config.LoadDefaultConfig sets
	if cfg.AWS.HTTPClient == nil {
		base, ok = awshttp.NewBuildableClient(), true
	}
	if ok {
		invokeHTTP = base
		cfg.AWS.HTTPClient = base.WithTransportOptions(func(t *http.Transport) { t.ResponseHeaderTimeout = cfg.AnswerTimeout })
	}
	p := &Provider{
		invokeHTTP: invokeHTTP,
		cfg:        cfg,
		now:        time.Now,
		ous:        map[string]string{},
		ids:        map[silo.AccountID]string{},
		members:    map[string]*member{},
		locks:      map[silo.AccountID]*sync.Mutex{},
		owners:     map[string]bool{},
	}
	p.org = organizations.NewFromConfig(cfg.AWS, func(o *organizations.Options) { p.endpoint(&o.BaseEndpoint, "") })
	p.acct = account.NewFromConfig(cfg.AWS, func(o *account.Options) { p.endpoint(&o.BaseEndpoint, "") })
	p.sts = sts.NewFromConfig(cfg.AWS, func(o *sts.Options) { p.endpoint(&o.BaseEndpoint, "") })
	return p, nil
}

// endpoint sets *base to the configured endpoint of account, if any.
func (p *Provider) endpoint(base **string, account string) {
	if p.cfg.Endpoint != nil {
		*base = aws.String(p.cfg.Endpoint(account))
	}
}

// Name returns "aws".
func (p *Provider) Name() string { return "aws" }

var _ provider.Provider = (*Provider)(nil)

// lockOf returns the mutex that serializes CreateAccount and DeleteAccount
// of one account within this process.
func (p *Provider) lockOf(id silo.AccountID) *sync.Mutex {
	p.mu.Lock()
	defer p.mu.Unlock()
	l, ok := p.locks[id]
	if !ok {
		l = &sync.Mutex{}
		p.locks[id] = l
	}
	return l
}

func parseID(id silo.AccountID) error {
	_, err := silo.ParseID(string(id))
	return err
}

// apiCode returns the AWS error code of err, or "".
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// isCode reports whether err is an AWS error with one of codes.
func isCode(err error, codes ...string) bool {
	c := apiCode(err)
	for _, want := range codes {
		if c == want {
			return true
		}
	}
	return false
}

func errNoAccount(id silo.AccountID) error {
	return silo.Errorf(silo.CodeNotFound, "account %s does not exist; create it first", id)
}

// Load is New with cfg.AWS read from the standard AWS sources (the
// AWS_* environment variables, AWS_ENDPOINT_URL included, the shared config
// and credentials files, then the instance or container role), with region
// if not empty. It lets cmd/ build the provider without importing the AWS
// SDK. It reads the credentials once, so that a missing one is reported
// here rather than at the first call; Check then reaches the organization.
//
// # Errors
//
// CodeInvalid if the sources give no region or no credentials, or cfg
// lacks the email.
func Load(ctx context.Context, region string, cfg Config) (*Provider, error) {
	// The SDK's own log lines (a fallback to IMDSv1, a retry) would reach
	// the user's terminal raw; what fails comes back as an error instead.
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	c, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, &silo.Error{Code: silo.CodeInvalid, Message: "the AWS configuration cannot be read; check AWS_PROFILE and the files under ~/.aws", Err: fmt.Errorf("load AWS config: %w", err)}
	}
	cfg.AWS = c
	p, err := New(cfg)
	if err != nil {
		return nil, err
	}
	if c.Credentials == nil {
		return nil, errNoCredentials(errors.New("no credentials provider"))
	}
	if _, err := c.Credentials.Retrieve(ctx); err != nil {
		return nil, errNoCredentials(err)
	}
	return p, nil
}

func errNoCredentials(err error) error {
	return &silo.Error{Code: silo.CodeInvalid, Message: "no AWS credentials found for the management account; set AWS_PROFILE (or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), or run where an instance or container role is available", Err: fmt.Errorf("retrieve AWS credentials: %w", err)}
}

// Check reaches the organization once (Organizations ListRoots), so that a
// server refuses to start on an organization it cannot use rather than
// failing at the first tenant.
//
// # Errors
//
// CodeUnavailable if AWS cannot be reached (network, endpoint); the errors
// of fail otherwise (credentials refused, no organization).
func (p *Provider) Check(ctx context.Context) error {
	_, err := p.root(ctx, "")
	var netErr net.Error
	if errors.As(err, &netErr) {
		return &silo.Error{Code: silo.CodeUnavailable, Message: fmt.Sprintf("cannot reach AWS Organizations in region %s; check the network, the region and AWS_ENDPOINT_URL if set", p.cfg.AWS.Region), Err: err}
	}
	return err
}
