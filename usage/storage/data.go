package storage

import (
	"context"
	"errors"
	"strconv"

	silo "github.com/silo-run/silo"
	"github.com/silo-run/silo/provider"
)

// maxList is the most keys a bucket's first listing asks for; providers
// clamp it to their own maximum.
const maxList = 1 << 20

// data is an account's provider.Data with its writes counted.
type data struct {
	provider.Data
	t    *Tracker
	acct silo.AccountID
	a    *account
}

// write runs put after reserving delta bytes of the table's or bucket's
// size, or refuses it when that would take the size over the limit. old is
// the current value's size (-1: none) and n the new one's; both count the
// key.
func (d *data) write(ctx context.Context, kind, name string, old, n int64, put func() error) error {
	s, err := d.t.size(ctx, d.a, d.Data, kind, name)
	if err != nil {
		return err
	}
	delta := n - max(old, 0)
	if delta > 0 {
		lim, err := d.t.limit(ctx, d.acct, d.a)
		if err != nil {
			return err
		}
		d.a.mu.Lock()
		if lim.Bytes > 0 && s.bytes+delta > int64(lim.Bytes) {
			cur := s.bytes
			d.a.mu.Unlock()
			return refusal(kind, name, lim, cur, delta)
		}
		s.bytes += delta
		d.a.mu.Unlock()
	} else {
		d.a.mu.Lock()
		s.bytes += delta
		d.a.mu.Unlock()
	}
	if err := put(); err != nil {
		d.a.mu.Lock()
		s.bytes -= delta
		d.a.mu.Unlock()
		return err
	}
	return nil
}

// sizeOf is the stored size of one value with its key, -1 when there is
// none.
func sizeOf(key string, v []byte, err error) (int64, error) {
	if errors.Is(err, silo.ErrNotFound) {
		return -1, nil
	}
	if err != nil {
		return 0, err
	}
	return int64(len(key) + len(v)), nil
}

// meteredWriter is a Data whose table writes let the caller count, and
// refuse, each inside the provider's transaction from the value it
// replaces (provider/local's AddMetered, PutMetered, DeleteMetered): no
// read of the old value before the write, and a count exact however many
// writes of a key run at once. admit gets the size of the value replaced
// and of the new one (-1: none); an error from it refuses the write.
type meteredWriter interface {
	AddMetered(ctx context.Context, table, key string, delta int64, admit func(old, n int64) error) (int64, error)
	PutMetered(ctx context.Context, table, key string, value []byte, admit func(old, n int64) error) error
	DeleteMetered(ctx context.Context, table, key string, admit func(old, n int64) error) error
}

// metered runs write, one write of a meteredWriter, with the admit
// function that counts it against the table's size and limit.
func (d *data) metered(ctx context.Context, table string, write func(admit func(old, n int64) error) error) error {
	s, err := d.t.size(ctx, d.a, d.Data, "table", table)
	if err != nil {
		return err
	}
	// Read before the transaction (it may ask the store); a write that
	// does not grow the table passes even when it cannot be read.
	lim, limErr := d.t.limit(ctx, d.acct, d.a)
	var counted int64 // what the last admit added to the size
	err = write(func(old, n int64) error {
		d.a.mu.Lock()
		defer d.a.mu.Unlock()
		s.bytes -= counted // a retried commit group admits the write again
		counted = 0
		delta := max(n, 0) - max(old, 0)
		if delta > 0 && limErr != nil {
			return limErr
		}
		if delta > 0 && lim.Bytes > 0 && s.bytes+delta > int64(lim.Bytes) {
			return refusal("table", table, lim, s.bytes, delta)
		}
		s.bytes += delta
		counted = delta
		return nil
	})
	if err != nil {
		d.a.mu.Lock()
		s.bytes -= counted
		d.a.mu.Unlock()
	}
	return err
}

// Put writes key, counted against the table's limit.
func (d *data) Put(ctx context.Context, table, key string, v []byte) error {
	if mw, ok := d.Data.(meteredWriter); ok {
		return d.metered(ctx, table, func(admit func(old, n int64) error) error {
			return mw.PutMetered(ctx, table, key, v, admit)
		})
	}
	v0, err := d.Data.Get(ctx, table, key)
	old, err := sizeOf(key, v0, err)
	if err != nil {
		return err
	}
	return d.write(ctx, "table", table, old, int64(len(key)+len(v)), func() error { return d.Data.Put(ctx, table, key, v) })
}

// Add adds to the integer at key, counted against the table's limit like
// a Put of the sum (provider.Sum) it stores.
func (d *data) Add(ctx context.Context, table, key string, delta int64) (int64, error) {
	mw, ok := d.Data.(meteredWriter)
	if !ok {
		return d.addRead(ctx, table, key, delta)
	}
	var sum int64
	err := d.metered(ctx, table, func(admit func(old, n int64) error) (err error) {
		sum, err = mw.AddMetered(ctx, table, key, delta, admit)
		return err
	})
	if err != nil {
		return 0, err
	}
	return sum, nil
}

// addRead is Add through a Data that is not a meteredWriter: the old
// value is read first and the write counted at the sum that read predicts.
// When other writes of the key come between, the sum stored may be a few
// digits longer or shorter (Put's count has the same race).
func (d *data) addRead(ctx context.Context, table, key string, delta int64) (int64, error) {
	v0, err := d.Data.Get(ctx, table, key)
	old, err := sizeOf(key, v0, err)
	if err != nil {
		return 0, err
	}
	sum, err := provider.Sum(table, key, v0, old >= 0, delta)
	if err != nil {
		return 0, err
	}
	n := int64(len(key) + len(strconv.FormatInt(sum, 10)))
	err = d.write(ctx, "table", table, old, n, func() (err error) {
		sum, err = d.Data.Add(ctx, table, key, delta)
		return err
	})
	if err != nil {
		return 0, err
	}
	return sum, nil
}

// Delete removes key; the table's size shrinks by it.
func (d *data) Delete(ctx context.Context, table, key string) error {
	if mw, ok := d.Data.(meteredWriter); ok {
		return d.metered(ctx, table, func(admit func(old, n int64) error) error {
			return mw.DeleteMetered(ctx, table, key, admit)
		})
	}
	v0, err := d.Data.Get(ctx, table, key)
	old, err := sizeOf(key, v0, err)
	if err != nil {
		return err
	}
	return d.write(ctx, "table", table, old, 0, func() error { return d.Data.Delete(ctx, table, key) })
}

// PutBlob writes a blob, counted against the bucket's limit.
func (d *data) PutBlob(ctx context.Context, bucket, key string, v []byte) error {
	v0, err := d.Data.GetBlob(ctx, bucket, key)
	old, err := sizeOf(key, v0, err)
	if err != nil {
		return err
	}
	return d.write(ctx, "bucket", bucket, old, int64(len(key)+len(v)), func() error { return d.Data.PutBlob(ctx, bucket, key, v) })
}

// DeleteBlob removes a blob; the bucket's size shrinks by it.
func (d *data) DeleteBlob(ctx context.Context, bucket, key string) error {
	v0, err := d.Data.GetBlob(ctx, bucket, key)
	old, err := sizeOf(key, v0, err)
	if err != nil {
		return err
	}
	return d.write(ctx, "bucket", bucket, old, 0, func() error { return d.Data.DeleteBlob(ctx, bucket, key) })
}
