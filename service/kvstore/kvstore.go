// Package kvstore is the host's on-disk key/value store (pebble) for what
// the enclave hands out already encrypted or sealed: state snapshots and
// diffs, sealed keys' companions, parentchain sync progress. Nothing in it is
// readable without the enclave's keys.
package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble"
)

// ErrNotFound is returned for an absent key.
var ErrNotFound = errors.New("kvstore: not found")

// Store is a pebble database.
type Store struct {
	db   *pebble.DB
	once sync.Once
	err  error
}

// Open opens or creates the store in dir.
func Open(dir string) (*Store, error) {
	db, err := pebble.Open(dir, &pebble.Options{Logger: quiet{}})
	if err != nil {
		return nil, fmt.Errorf("kvstore: open %s: %w", dir, err)
	}
	return &Store{db: db}, nil
}

// Get returns a copy of the value at key, or ErrNotFound.
func (s *Store) Get(key []byte) ([]byte, error) {
	v, c, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("kvstore: get: %w", err)
	}
	defer c.Close()
	return bytes.Clone(v), nil
}

// Batch is a set of writes applied atomically.
type Batch struct{ b *pebble.Batch }

// NewBatch starts a batch.
func (s *Store) NewBatch() *Batch { return &Batch{b: s.db.NewBatch()} }

// Set adds a write.
func (b *Batch) Set(key, value []byte) { _ = b.b.Set(key, value, nil) }

// Delete adds a deletion.
func (b *Batch) Delete(key []byte) { _ = b.b.Delete(key, nil) }

// DeleteRange adds the deletion of [from, to).
func (b *Batch) DeleteRange(from, to []byte) { _ = b.b.DeleteRange(from, to, nil) }

// Commit applies the batch durably (fsync).
func (b *Batch) Commit() error {
	if err := b.b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("kvstore: commit: %w", err)
	}
	return nil
}

// Set writes one key durably.
func (s *Store) Set(key, value []byte) error {
	b := s.NewBatch()
	b.Set(key, value)
	return b.Commit()
}

// Iterate visits keys in [from, to) in order until fn returns false.
func (s *Store) Iterate(from, to []byte, fn func(key, value []byte) bool) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: to})
	if err != nil {
		return fmt.Errorf("kvstore: iterate: %w", err)
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if !fn(bytes.Clone(it.Key()), bytes.Clone(it.Value())) {
			break
		}
	}
	return it.Error()
}

// Last returns the greatest key in [from, to) and its value, or ErrNotFound.
func (s *Store) Last(from, to []byte) ([]byte, []byte, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from, UpperBound: to})
	if err != nil {
		return nil, nil, fmt.Errorf("kvstore: iterate: %w", err)
	}
	defer it.Close()
	if !it.Last() {
		return nil, nil, ErrNotFound
	}
	return bytes.Clone(it.Key()), bytes.Clone(it.Value()), nil
}

// Close closes the store; again does nothing.
func (s *Store) Close() error {
	s.once.Do(func() { s.err = s.db.Close() })
	return s.err
}

type quiet struct{}

func (quiet) Infof(string, ...any)  {}
func (quiet) Errorf(string, ...any) {}
func (quiet) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
