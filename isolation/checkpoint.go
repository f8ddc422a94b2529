package isolation

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/store"
)

// checkpointDomain prefixes the signed bytes of a checkpoint, so that a
// checkpoint signature can never be taken for a signature of anything else
// made with the same key (an isolation report, say).
const checkpointDomain = "silo audit checkpoint v1\n"

// Checkpoint is a signed statement of the audit log's head at a moment:
// entry Seq has hash Hash. Because every entry's hash covers all entries
// before it, a log that still has that hash at Seq has not been changed up
// to Seq. Export checkpoints to a place the host cannot rewrite (a file on
// another machine, an append-only or object-locked bucket in another
// account); VerifyAudit then proves the log extends each of them, which
// catches a log rewritten together with its witness, a cut tail, and an
// older copy of the whole data dir put back.
type Checkpoint struct {
	Seq  int64     `json:"seq"`
	Hash string    `json:"hash"`
	Time time.Time `json:"time"`
	// PublicKey is the signer's ed25519 public key, base64, and Signer its
	// fingerprint (SHA-256, hex).
	PublicKey string `json:"public_key"`
	Signer    string `json:"signer"`
	// Signature is the ed25519 signature, base64, of checkpointDomain
	// followed by the JSON of the other fields.
	Signature string `json:"signature"`
}

func (c Checkpoint) signed() []byte {
	c.Signature = ""
	b, _ := json.Marshal(struct {
		Seq       int64     `json:"seq"`
		Hash      string    `json:"hash"`
		Time      time.Time `json:"time"`
		PublicKey string    `json:"public_key"`
		Signer    string    `json:"signer"`
	}{c.Seq, c.Hash, c.Time, c.PublicKey, c.Signer})
	return append([]byte(checkpointDomain), b...)
}

// MakeCheckpoint checks the whole audit log (as VerifyAudit does, without a
// witness) and returns a checkpoint of its head signed with key. Use a key
// kept apart from the data dir: whoever holds the key can sign checkpoints.
//
// # Errors
//
// CodeFailedCheck if the log is not intact; a checkpoint of a broken log
// would vouch for it.
func MakeCheckpoint(ctx context.Context, s store.Store, key ed25519.PrivateKey, now time.Time) (Checkpoint, error) {
	res, err := walkAudit(ctx, s, nil)
	if err != nil {
		return Checkpoint{}, err
	}
	if res.Entries == 0 {
		if n, err := accountCount(ctx, s); err != nil {
			return Checkpoint{}, err
		} else if n > 0 {
			return Checkpoint{}, silo.Errorf(silo.CodeFailedCheck, "the audit log is empty but the control plane holds %d account(s): the log was deleted; no checkpoint made", n)
		}
	}
	pub := key.Public().(ed25519.PublicKey)
	c := Checkpoint{Seq: res.Head.Seq, Hash: res.Head.Hash, Time: now.UTC().Truncate(time.Second),
		PublicKey: base64.StdEncoding.EncodeToString(pub), Signer: keyFingerprint(pub)}
	c.Signature = base64.StdEncoding.EncodeToString(ed25519.Sign(key, c.signed()))
	return c, nil
}

func keyFingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:])
}

// Encode returns the checkpoint as a file: indented JSON, newline-ended.
func (c Checkpoint) Encode() []byte {
	b, _ := json.MarshalIndent(c, "", "  ")
	return append(b, '\n')
}

// ParseCheckpoint reads a checkpoint file and checks its signature against
// the key it carries. If trusted is not empty, the signer must be one of
// those fingerprints.
//
// # Errors
//
// CodeFailedCheck for a file that is not a checkpoint, a bad signature, or
// a signer not trusted.
func ParseCheckpoint(data []byte, trusted []string) (Checkpoint, error) {
	var c Checkpoint
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil || c.Seq < 0 {
		return Checkpoint{}, silo.Errorf(silo.CodeFailedCheck, "the file is not a silo audit checkpoint")
	}
	pub, err := base64.StdEncoding.DecodeString(c.PublicKey)
	if err != nil || len(pub) != ed25519.PublicKeySize || c.Signer != keyFingerprint(pub) {
		return Checkpoint{}, silo.Errorf(silo.CodeFailedCheck, "the checkpoint of entry %d carries no valid signing key; it was damaged or edited", c.Seq)
	}
	sig, err := base64.StdEncoding.DecodeString(c.Signature)
	if err != nil || !ed25519.Verify(pub, c.signed(), sig) {
		return Checkpoint{}, silo.Errorf(silo.CodeFailedCheck, "the checkpoint of entry %d does not match its signature; it was changed after it was signed", c.Seq)
	}
	if len(trusted) > 0 {
		for _, fp := range trusted {
			if fp == c.Signer {
				return c, nil
			}
		}
		return Checkpoint{}, silo.Errorf(silo.CodeFailedCheck, "the checkpoint of entry %d was signed by key %s, not by a key you trust", c.Seq, c.Signer)
	}
	return c, nil
}

// String describes the checkpoint for people.
func (c Checkpoint) String() string {
	return fmt.Sprintf("entry %d at %s (signed by %s)", c.Seq, c.Time.UTC().Format(time.RFC3339), c.Signer)
}
