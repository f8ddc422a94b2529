// Package silo holds the domain vocabulary of the silo platform: accounts and
// their kinds, tenants, lifecycle states, resources and the errors every layer
// shares.
//
// It imports nothing beyond the standard library; every other package of the
// project may import it, and it must import none of them.
package silo

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"
)

// AccountID names an account. It is a DNS label (see ParseID): for a tenant
// account it equals the tenant ID, the production account is "production",
// developer accounts are "dev-<user>".
type AccountID string

// TenantID names a customer. It is a DNS label.
type TenantID string

// ProductionID is the ID of the one production account.
const ProductionID AccountID = "production"

// Kind is the kind of an account.
type Kind string

// The account kinds.
const (
	KindProduction  Kind = "production"
	KindTenant      Kind = "tenant"
	KindDeveloper   Kind = "developer"
	KindEnvironment Kind = "environment"
)

// Kinds lists every account kind.
var Kinds = []Kind{KindProduction, KindTenant, KindDeveloper, KindEnvironment}

// DeleteCommand returns the command that deletes account id of kind k
// ("silo tenant delete acme", "silo env delete dev-ann"), or "" for the
// production account, which is never deleted.
func DeleteCommand(k Kind, id AccountID) string {
	switch k {
	case KindProduction:
		return ""
	case KindDeveloper, KindEnvironment:
		return "silo env delete " + string(id)
	}
	return "silo tenant delete " + string(id)
}

// Valid reports whether k is one of Kinds.
func (k Kind) Valid() bool {
	for _, v := range Kinds {
		if k == v {
			return true
		}
	}
	return false
}

// State is where an account is in its lifecycle.
type State string

// The lifecycle states, in order: provisioning → active ⇄ suspended →
// deleting → deleted.
const (
	StateProvisioning State = "provisioning"
	StateActive       State = "active"
	StateSuspended    State = "suspended"
	StateDeleting     State = "deleting"
	StateDeleted      State = "deleted"
)

// States lists every lifecycle state, in order.
var States = []State{StateProvisioning, StateActive, StateSuspended, StateDeleting, StateDeleted}

// CanTransition reports whether an account may move from state s to next.
func (s State) CanTransition(next State) bool {
	switch s {
	case StateProvisioning:
		return next == StateActive || next == StateDeleting
	case StateActive:
		return next == StateSuspended || next == StateDeleting
	case StateSuspended:
		return next == StateActive || next == StateDeleting
	case StateDeleting:
		return next == StateDeleted
	}
	return false
}

// reserved are labels that cannot name a tenant, developer or environment
// account, because they name the production account or gateway hosts.
var reserved = map[string]bool{
	"production": true, "www": true, "api": true, "admin": true, "silo": true,
	"t": true, "localhost": true, "control": true,
}

// ParseID checks that s is a valid account or tenant ID: a DNS label of 1–63
// characters from a–z, 0–9 and '-', not starting or ending with '-'.
//
// # Errors
//
// An *Error with CodeInvalid that says what is wrong and how to fix it.
func ParseID(s string) (AccountID, error) {
	bad := func(why string) (AccountID, error) {
		return "", Errorf(CodeInvalid, "invalid ID %q: %s; use 1-63 lower-case letters, digits and '-', starting and ending with a letter or digit (e.g. acme-corp)", clip(s), why)
	}
	switch {
	case s == "":
		return bad("it is empty")
	case len(s) > 63:
		return bad("it is longer than 63 characters")
	case s[0] == '-' || s[len(s)-1] == '-':
		return bad("it starts or ends with '-'")
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-') {
			if c >= 'A' && c <= 'Z' {
				return bad("it has upper-case letters")
			}
			return bad(fmt.Sprintf("it contains %q", rune(c)))
		}
	}
	return AccountID(s), nil
}

// ParseTenantID is ParseID for a new tenant, developer or environment account:
// it also refuses reserved names such as "production".
func ParseTenantID(s string) (TenantID, error) {
	id, err := ParseID(s)
	if err != nil {
		return "", err
	}
	if reserved[s] {
		return "", Errorf(CodeInvalid, "invalid ID %q: the name is reserved; choose another name", s)
	}
	return TenantID(id), nil
}

func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

// Account is one isolated account: the unit of isolation. A tenant account
// belongs to the customer of the same ID.
type Account struct {
	ID     AccountID         `json:"id"`
	Kind   Kind              `json:"kind"`
	Name   string            `json:"name,omitempty"`   // display name
	Params map[string]string `json:"params,omitempty"` // tenant parameters as given (defaults are applied by the spec)
	State  State             `json:"state"`
	// Release is the release the account runs ("" before its first apply).
	Release string `json:"release,omitempty"`
	// StackHash is the hash of the desired resources last applied in full;
	// a plan whose desired hash equals it has nothing to do.
	StackHash string     `json:"stack_hash,omitempty"`
	Created   time.Time  `json:"created"`
	Updated   time.Time  `json:"updated"`
	Expires   *time.Time `json:"expires,omitempty"` // environments only
	Version   int64      `json:"version"`           // optimistic concurrency
}

// ResourceType is the type of a resource in an account's stack.
type ResourceType string

// The resource types.
const (
	TypeFunction ResourceType = "function"
	TypeTable    ResourceType = "table"
	TypeBucket   ResourceType = "bucket"
	TypeConfig   ResourceType = "config"
	TypeSecret   ResourceType = "secret"
	TypeRoute    ResourceType = "route"
	TypeExport   ResourceType = "export"
	TypeSchedule ResourceType = "schedule"
)

// ResourceTypes lists every resource type; a provider handles each.
var ResourceTypes = []ResourceType{TypeFunction, TypeTable, TypeBucket, TypeConfig, TypeSecret, TypeRoute, TypeExport, TypeSchedule}

// Order returns the apply order of resource types: storage before code,
// code before routes. Deletes run in reverse.
func (t ResourceType) Order() int {
	switch t {
	case TypeTable, TypeBucket:
		return 0
	case TypeConfig, TypeSecret:
		return 1
	case TypeFunction:
		return 2
	case TypeRoute, TypeExport, TypeSchedule:
		return 3
	}
	return 4
}

// Resource is one desired or recorded resource of an account.
type Resource struct {
	Type ResourceType `json:"type"`
	Name string       `json:"name"`
	// Spec is the canonical JSON of the resource's attributes.
	Spec json.RawMessage `json:"spec,omitempty"`
	// Hash is the content hash of Type, Name and Spec (see Resource.ComputeHash).
	Hash string `json:"hash"`
}

// Key returns "type/name", unique within an account.
func (r Resource) Key() string { return string(r.Type) + "/" + r.Name }

// ComputeHash returns the content hash of the resource.
func (r Resource) ComputeHash() string {
	h := sha256.New()
	h.Write([]byte(r.Type))
	h.Write([]byte{0})
	h.Write([]byte(r.Name))
	h.Write([]byte{0})
	h.Write(r.Spec)
	return hex.EncodeToString(h.Sum(nil))
}

// NewResource returns a resource whose Spec is the JSON of spec and whose Hash
// is computed.
func NewResource(t ResourceType, name string, spec any) (Resource, error) {
	b, err := json.Marshal(spec)
	if err != nil {
		return Resource{}, fmt.Errorf("encode %s %s: %w", t, name, err)
	}
	r := Resource{Type: t, Name: name, Spec: b}
	r.Hash = r.ComputeHash()
	return r, nil
}

// SetHash returns the combined hash of a set of resources, independent of
// their order.
func SetHash(rs []Resource) string {
	keys := make([]string, len(rs))
	for i, r := range rs {
		keys[i] = r.Key() + "=" + r.Hash
	}
	sort.Strings(keys)
	sum := sha256.Sum256([]byte(strings.Join(keys, "\n")))
	return hex.EncodeToString(sum[:])
}

// Op is what a plan does to one resource.
type Op string

// The plan operations.
const (
	OpCreate  Op = "create"
	OpUpdate  Op = "update"
	OpReplace Op = "replace"
	OpDelete  Op = "delete"
	OpNoop    Op = "no-op"
)

// Change is one planned change to a resource of an account.
type Change struct {
	Op      Op           `json:"op"`
	Type    ResourceType `json:"type"`
	Name    string       `json:"name"`
	Desired *Resource    `json:"desired,omitempty"` // nil for delete
	Current *Resource    `json:"current,omitempty"` // nil for create
	// Release is the release the change applies, set by the engine as it
	// applies the plan (a provider that runs functions tells them the
	// release they serve under); not stored with the plan.
	Release string `json:"-"`
}

// Key returns "type/name".
func (c Change) Key() string { return string(c.Type) + "/" + c.Name }

// DestroysData reports whether c deletes or replaces a resource that holds
// tenant data: a table, a bucket or a secret.
func (c Change) DestroysData() bool {
	return (c.Op == OpDelete || c.Op == OpReplace) && (c.Type == TypeTable || c.Type == TypeBucket || c.Type == TypeSecret)
}
