package aws

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	silo "github.com/silo-run/silo"
)

// apiKeyPath holds the records of the account's API keys: one SSM String
// parameter per key, named by the key's public ID, holding the SHA-256 of
// the full key, never the key. The silo Lambda host reads them inside the
// account; a key of another account has no record here (I4).
const apiKeyPath = "/silo/apikey/"

// APIKey is the record of one API key as kept in its account: its public
// ID (sk_<account>_<keyid>), the account it is bound to, the SHA-256 of the
// full key and when it was revoked, if it was.
type APIKey struct {
	ID      string
	Account silo.AccountID
	Hash    []byte
	Revoked *time.Time
}

type apiKeyRecord struct {
	Account silo.AccountID `json:"account"`
	Hash    string         `json:"hash"`
	Revoked *time.Time     `json:"revoked,omitempty"`
}

func apiKeyParam(id string) string { return apiKeyPath + encode(id) }

func validKeyID(id string) bool {
	return strings.HasPrefix(id, "sk_") && len(id) <= 100 && storageName(id)
}

// PutAPIKey stores the record of API key keyID of account id in that
// account, or replaces it: hash is the SHA-256 of the full key (never the
// key), revoked when the key stops working (nil: not revoked; to revoke
// the key, put it again with revoked set). It satisfies control.Ingress
// with URL.
//
// # Errors
//
// CodeInvalid for a malformed key ID, a key ID bound to another account
// or a hash that is not a SHA-256; CodeNotFound if the account does not
// exist.
func (p *Provider) PutAPIKey(ctx context.Context, id silo.AccountID, keyID string, hash []byte, revoked *time.Time) error {
	if err := parseID(id); err != nil {
		return err
	}
	if !validKeyID(keyID) || len(hash) != 32 {
		return silo.Errorf(silo.CodeInvalid, "API key %q: a key record needs an sk_ ID and a SHA-256 hash", clip(keyID))
	}
	if !strings.HasPrefix(keyID, "sk_"+string(id)+"_") {
		return silo.Errorf(silo.CodeInvalid, "API key %s is not a key of account %s; a key is stored only in its own account", keyID, id)
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return err
	}
	rec, _ := json.Marshal(apiKeyRecord{Account: id, Hash: hex.EncodeToString(hash), Revoked: revoked})
	if err := p.member(awsID).putParam(ctx, apiKeyParam(keyID), string(rec)); err != nil {
		return fail(id, "store API key "+keyID, err)
	}
	return nil
}

// DeleteAPIKey removes the record of an API key from account id; the key
// stops working once the hosts' caches expire (10 s). Deleting a missing
// key is a no-op.
func (p *Provider) DeleteAPIKey(ctx context.Context, id silo.AccountID, keyID string) error {
	if err := parseID(id); err != nil {
		return err
	}
	if !validKeyID(keyID) {
		return nil
	}
	awsID, err := p.awsID(ctx, id)
	if err != nil {
		return err
	}
	_, err = p.member(awsID).ssm.DeleteParameter(ctx, &ssm.DeleteParameterInput{Name: aws.String(apiKeyParam(keyID))})
	if err != nil && !isCode(err, "ParameterNotFound") {
		return fail(id, "delete API key "+keyID, err)
	}
	return nil
}

// APIKey reads the record of key id from the account the host runs in.
//
// # Errors
//
// CodeNotFound if the account holds no such key.
func (h *Host) APIKey(ctx context.Context, id string) (APIKey, error) {
	notFound := silo.Errorf(silo.CodeNotFound, "no API key %s in account %s", clip(id), h.cfg.Account)
	if !validKeyID(id) {
		return APIKey{}, notFound
	}
	out, err := h.data.own.ssm.GetParameter(ctx, &ssm.GetParameterInput{Name: aws.String(apiKeyParam(id))})
	if isCode(err, "ParameterNotFound") {
		return APIKey{}, notFound
	}
	if err != nil {
		return APIKey{}, fail(h.cfg.Account, "read API key "+id, err)
	}
	var rec apiKeyRecord
	if err := json.Unmarshal([]byte(aws.ToString(out.Parameter.Value)), &rec); err != nil {
		return APIKey{}, fail(h.cfg.Account, "decode API key "+id, err)
	}
	hash, err := hex.DecodeString(rec.Hash)
	if err != nil || len(hash) != 32 {
		return APIKey{}, silo.Errorf(silo.CodeInternal, "API key %s of account %s has a damaged record; issue a new key", id, h.cfg.Account)
	}
	return APIKey{ID: id, Account: rec.Account, Hash: hash, Revoked: rec.Revoked}, nil
}
