package local

// Lost account files. A table store or bucket directory the account's
// manifest records but that is not there was deleted (or lost with a
// restore that left it out): its data is gone. Left alone, the account
// would answer "table does not exist" or "bucket does not exist" and the
// next write or apply would make a new, empty one in its place, hiding the
// loss. Instead the file is reported damaged, as an emptied store is, and
// the account is out of service until the file is restored.

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	silo "github.com/silo-run/silo"
)

// lostStore returns the damage to report when account a has no store file
// though its manifest records tables, or nil when it records none. The
// caller has found data.db missing. A store file is created before the
// manifest that first records one of its tables and is never removed while
// the manifest records one, so a missing file is never an apply under way.
//
// # Errors
//
// A *silo.Error (CodeUnavailable) caused by a *DamageError for data.db, or
// the error reading the manifest.
func (p *Provider) lostStore(a *account) error {
	m, err := a.manifest()
	if err != nil {
		return err
	}
	var tables []string
	for _, r := range m {
		if r.Type == silo.TypeTable {
			tables = append(tables, r.Name)
		}
	}
	if len(tables) == 0 {
		return nil
	}
	slices.Sort(tables)
	return p.markDamaged(a.id, fileDB, "it is missing, and with it the data of tables "+strings.Join(tables, ", "))
}

// lostBuckets returns the damage to report for each bucket the manifest
// of account a records whose directory is missing (only the bucket named
// only, if not empty), joined, or nil. Deleting or replacing a bucket
// removes its directory before its manifest entry, so a missing directory is
// looked at again under the account's lock, where no apply is under way;
// the lock is taken only when a recorded bucket's directory is missing.
func (p *Provider) lostBuckets(ctx context.Context, a *account, only string) error {
	m, err := a.manifest()
	if err != nil || len(missingBuckets(a, m, only)) == 0 {
		return nil // a manifest that does not read is reported as such
	}
	unlock, err := p.lockAccount(ctx, a)
	if err != nil {
		return err
	}
	defer unlock()
	if err := p.checkExists(a); err != nil {
		return nil // deleted meanwhile
	}
	if m, err = a.manifest(); err != nil {
		return err
	}
	return p.lostBucketsLocked(a, m, only)
}

// lostBucketsLocked is lostBuckets for a caller holding the account's lock,
// with m the account's manifest. Each missing bucket is recorded as the
// damaged file blobs/<bucket>, so it is forgotten once the directory is
// back.
func (p *Provider) lostBucketsLocked(a *account, m manifest, only string) error {
	var errs []error
	for _, b := range missingBuckets(a, m, only) {
		errs = append(errs, p.markDamaged(a.id, dirBlobs+"/"+b, "it is missing, and with it the blobs of bucket "+b))
	}
	return errors.Join(errs...)
}

// missingBuckets returns the buckets m records (only the one named only,
// if not empty) whose directory is not there, sorted.
func missingBuckets(a *account, m manifest, only string) []string {
	var out []string
	for _, r := range m {
		if r.Type != silo.TypeBucket || only != "" && r.Name != only {
			continue
		}
		if _, err := os.Lstat(filepath.Join(a.dir, dirBlobs, r.Name)); errors.Is(err, fs.ErrNotExist) {
			out = append(out, r.Name)
		}
	}
	slices.Sort(out)
	return out
}
