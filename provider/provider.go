// Package provider defines the contract between silo's engine and the
// systems that materialize accounts: the embedded local provider
// (provider/local) and AWS Organizations (provider/aws). Every provider
// passes the conformance suite in provider/providertest.
//
// # What a provider receives
//
// A Change carries whole resources. Resource.Spec is the JSON encoding of
// the root package's spec type of the resource's type, and a provider
// decodes it as that type: silo.FunctionSpec for a function (its artifact
// digest and every grant it holds: tables, buckets, config, secrets,
// exports), silo.ConfigSpec, silo.RouteSpec, silo.ScheduleSpec and
// silo.ExportSpec; tables, buckets and secrets have no spec fields silo
// reads yet. Resources returns each resource exactly as it was applied
// (type, name, spec bytes and hash), so the engine can compare what it
// recorded with what the provider holds.
//
// # Asynchronous account creation
//
// Creating an account may take a provider minutes (AWS Organizations
// does). CreateAccount may then return an error wrapping ErrPending (made
// by Pending) instead of waiting: the creation goes on without the
// caller, and calling CreateAccount again later resumes it and, once the
// provider has finished, completes it. Until then the account is not
// usable (Apply, Resources, Data, KeyInfo, PutSecret, DeleteSecret,
// SecretNames and Ref return silo.ErrNotFound, Accounts does not list
// it). The engine keeps such an account in state provisioning and tries
// again on the next apply or recovery.
//
// It imports only the root silo package and the standard library.
package provider

import (
	"context"
	"errors"

	silo "github.com/silo-run/silo"
)

// ErrPending marks an account whose creation the provider has started and
// not finished: call CreateAccount again later. Test with errors.Is.
var ErrPending = errors.New("account creation still in progress")

// Pending returns the error CreateAccount returns for an account still
// being created: CodeUnavailable, wrapping ErrPending, with a message that
// says so and what happens next.
func Pending(id silo.AccountID, name string) error {
	return &silo.Error{
		Code:    silo.CodeUnavailable,
		Message: "account " + string(id) + " is still being created by the " + name + " provider; silo finishes it on the next apply or recovery (a running silo server does it by itself)",
		Err:     ErrPending,
	}
}

// IsPending reports whether err says an account is still being created.
func IsPending(err error) bool { return errors.Is(err, ErrPending) }

// AccountRef is the provider's own reference to an account: where an
// operator finds it outside silo.
type AccountRef struct {
	// Provider is the provider's name ("local", "aws").
	Provider string `json:"provider"`
	// ID is the provider's identifier of the account: the 12-digit AWS
	// account ID; the local provider's directory of the account.
	ID string `json:"id"`
	// Path is where the account sits in the provider, if it has such a
	// place: on AWS the path of organization IDs from the root to the
	// account's OU ("r-ab12/ou-ab12-cd34ef56/"). Empty for local.
	Path string `json:"path,omitempty"`
	// Unit names that place for people: on AWS the OU's name ("tenants").
	Unit string `json:"unit,omitempty"`
}

// Provider materializes accounts and their resources.
//
// Every method is safe for concurrent use, and every mutating method is
// idempotent: the engine may repeat a call after a crash (it journals an
// intent before each call and reconciles pending intents on restart), so
// calling it twice with the same arguments must leave the same state as
// calling it once.
//
// The control-plane side of a provider never reads tenant data: there is no
// method to read a secret value (invariant I3). Data, the data-plane handle,
// is given only to the runtime, bound to one account.
type Provider interface {
	// Name returns the provider's name, e.g. "local".
	Name() string

	// CreateAccount creates an empty account with a fresh data key. Creating an
	// account that exists is a no-op. A provider whose creations take long
	// may return Pending(id, name) while the creation goes on; calling
	// again resumes it (see the package documentation).
	CreateAccount(ctx context.Context, id silo.AccountID, kind silo.Kind) error

	// Ref returns the provider's own reference to an account.
	//
	// # Errors
	//
	// CodeInvalid for a malformed ID; silo.ErrNotFound if the account does
	// not exist (or is still being created).
	Ref(ctx context.Context, id silo.AccountID) (AccountRef, error)

	// DeleteAccount destroys an account: its resources, its data and its data
	// key (crypto-shredding, I5), and says what it did. Deleting an account
	// that does not exist is a no-op, reported as such (Deletion.Destroyed
	// false).
	DeleteAccount(ctx context.Context, id silo.AccountID) (Deletion, error)

	// Accounts lists the accounts the provider holds, sorted by ID.
	Accounts(ctx context.Context) ([]silo.AccountID, error)

	// Apply makes one planned change to one resource of an account: create,
	// update, replace or delete. Deleting a missing resource is a no-op.
	// Deleting a table or bucket deletes its data.
	//
	// # Errors
	//
	// silo.ErrNotFound if the account does not exist; CodeInvalid if the
	// change's spec cannot be applied.
	Apply(ctx context.Context, id silo.AccountID, c silo.Change) error

	// Resources returns the resources the provider actually holds for the
	// account, with the hash each was applied with, sorted by key. The engine
	// compares it with recorded state to find drift.
	Resources(ctx context.Context, id silo.AccountID) ([]silo.Resource, error)

	// PutSecret encrypts value under the account's data key and stores it as
	// the secret name, which must be declared (a TypeSecret resource). Values
	// are write-only through the control plane.
	PutSecret(ctx context.Context, id silo.AccountID, name string, value []byte) error

	// DeleteSecret removes the value of the secret name from the account:
	// the account's functions then read it as a secret never set
	// (silo.ErrNotFound from Data.Secret). The declaration stays, so the
	// secret can be set again. The name need not be declared any more: a
	// value left under a name no longer declared is deleted too. It
	// reports whether there was a value; deleting a secret without one
	// changes nothing and is no error (false).
	//
	// # Errors
	//
	// CodeInvalid for a malformed ID or name; silo.ErrNotFound if the
	// account does not exist (or is still being created).
	DeleteSecret(ctx context.Context, id silo.AccountID, name string) (deleted bool, err error)

	// SecretNames returns the names of the account's secrets that hold a
	// value, sorted, declared or not. It reads names only, never a value
	// (I3).
	//
	// # Errors
	//
	// CodeInvalid for a malformed ID; silo.ErrNotFound if the account does
	// not exist (or is still being created).
	SecretNames(ctx context.Context, id silo.AccountID) ([]string, error)

	// KeyInfo describes the account's data key without revealing it.
	KeyInfo(ctx context.Context, id silo.AccountID) (KeyInfo, error)

	// Data opens the data plane of one account. The handle reaches that
	// account's tables, buckets, config and secrets and nothing else; it is
	// given to the runtime's decision point, never to a guest directly.
	Data(ctx context.Context, id silo.AccountID) (Data, error)
}

// Deletion is what a DeleteAccount call did, in the provider's own words,
// so that a command reports exactly that and nothing more.
type Deletion struct {
	// Destroyed is true when the provider held the account, or what an
	// interrupted deletion left of it, and destroyed it; false when it held
	// nothing under the ID.
	Destroyed bool `json:"destroyed"`
	// Key says what this call did to the account's data key, for people:
	// "data key destroyed" (local), "data key scheduled for deletion ..."
	// (AWS KMS). Empty when the call found no data key to act on (none was
	// held, or an earlier call had already acted on it).
	Key string `json:"key,omitempty"`
}

// String says what the deletion did, for people: "account destroyed, "
// and Key; or that nothing was destroyed.
func (d Deletion) String() string {
	switch {
	case !d.Destroyed:
		return "the provider held no account under that ID, so nothing was destroyed"
	case d.Key == "":
		return "account destroyed (an earlier, interrupted deletion had already dealt with its data key)"
	}
	return "account destroyed, " + d.Key
}

// KeyInfo describes an account's data key.
type KeyInfo struct {
	Algorithm   string `json:"algorithm"`   // e.g. "AES-256-GCM, envelope"
	Fingerprint string `json:"fingerprint"` // SHA-256 of the wrapped key, hex, never the key
	WrappedBy   string `json:"wrapped_by"`  // e.g. "local master key <fingerprint>" or a KMS key ARN
}

// KV is one key-value pair.
type KV struct {
	Key   string `json:"key"`
	Value []byte `json:"value"`
}

// Data is the data plane of one account. Methods return silo.ErrNotFound for
// a missing table, bucket, key, config value or secret, and CodeInvalid for a
// key or path that is not allowed (empty, too long, NUL, traversal).
// Blob keys are confined to their bucket's root (os.Root locally).
type Data interface {
	Get(ctx context.Context, table, key string) ([]byte, error)
	Put(ctx context.Context, table, key string, value []byte) error
	Delete(ctx context.Context, table, key string) error
	// Add adds delta to the integer stored at key and returns the sum, as
	// one atomic step: concurrent Adds to a key lose no increment. The
	// value is a base-10 integer as text (what Get returns and Put may
	// write, e.g. "42"); a missing key counts as 0. CodeInvalid, with the
	// value unchanged, when the stored value is not such an integer or the
	// sum would overflow an int64.
	Add(ctx context.Context, table, key string, delta int64) (int64, error)
	// Scan returns up to limit pairs whose keys start with prefix and sort
	// after the key after, in key order.
	Scan(ctx context.Context, table, prefix, after string, limit int) ([]KV, error)

	GetBlob(ctx context.Context, bucket, key string) ([]byte, error)
	PutBlob(ctx context.Context, bucket, key string, value []byte) error
	DeleteBlob(ctx context.Context, bucket, key string) error
	// ListBlobs returns up to limit keys starting with prefix, sorted.
	ListBlobs(ctx context.Context, bucket, prefix string, limit int) ([]string, error)

	Config(ctx context.Context, key string) (string, error)
	// Secret decrypts a secret value. Only the runtime, inside the account,
	// calls it.
	Secret(ctx context.Context, name string) ([]byte, error)
}
