// Package state keeps the parentchain application's state: committed key/value
// pairs in pebble, in-memory overlays for the block and each transaction, and
// the state commitment whose root is the app hash.
//
// The app hash is a Merkle root over the state (package parentchain/proof
// defines it; package smt keeps the trees). A block's commitment costs only
// the keys it writes. The store keeps the last Config.Versions committed
// heights provable: their trees, and a pebble snapshot for their values.
// At Open the trees are rebuilt from the stored key/value pairs and checked
// against the committed app hash.
package state

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble"
)

// metaPrefix holds the application's own bookkeeping, outside every module.
var (
	metaPrefix = []byte("\x00meta/")
	keyHeight  = []byte("\x00meta/height")
	keyAppHash = []byte("\x00meta/apphash")
)

// Store is the committed state on disk and its commitment.
type Store struct {
	db     *pebble.DB
	commit *commitment
	closed sync.Once
	err    error
}

// Open opens (or creates) the state store in dir, and rebuilds the state
// commitment of what it holds; a commitment that does not give the
// committed app hash is an error (ErrCommitmentMismatch).
func Open(dir string, cfg Config) (*Store, error) {
	if err := cfg.ValidateBasic(); err != nil {
		return nil, err
	}
	db, err := pebble.Open(dir, &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		return nil, fmt.Errorf("state: open %s: %w", dir, err)
	}
	s := &Store{db: db, commit: newCommitment(slices.Sorted(slices.Values(cfg.Modules)), cfg.versions())}
	if err := s.load(); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the store; closing it again does nothing.
func (s *Store) Close() error {
	s.closed.Do(func() {
		s.commit.close()
		s.err = s.db.Close()
	})
	return s.err
}

// Get reads a committed value.
func (s *Store) Get(key []byte) ([]byte, bool) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, false
	}
	if err != nil {
		panic(fmt.Sprintf("state: read %q: %v", key, err))
	}
	out := bytes.Clone(v)
	closer.Close()
	return out, true
}

// Iterate visits the committed keys with prefix in order.
func (s *Store) Iterate(prefix []byte, fn func(key, value []byte) bool) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		panic(fmt.Sprintf("state: iterate: %v", err))
	}
	defer it.Close()
	for it.First(); it.Valid(); it.Next() {
		if !fn(bytes.Clone(it.Key()), bytes.Clone(it.Value())) {
			return
		}
	}
}

func prefixEnd(p []byte) []byte {
	end := bytes.Clone(p)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// LastCommit returns the height and app hash of the last committed block.
func (s *Store) LastCommit() (int64, []byte) {
	h, ok := s.Get(keyHeight)
	if !ok {
		return 0, nil
	}
	hash, _ := s.Get(keyAppHash)
	return int64(binary.BigEndian.Uint64(h)), hash
}

// Commit atomically and durably writes a block's overlay, its height and the
// app hash of st, which Stage computed from o, and makes the height
// provable.
func (s *Store) Commit(o *Overlay, height int64, st *Staged) error {
	if err := s.commit.check(st, height); err != nil {
		return err
	}
	appHash := st.AppHash()
	b := s.db.NewBatch()
	for k, w := range o.writes {
		var err error
		if w.del {
			err = b.Delete([]byte(k), nil)
		} else {
			err = b.Set([]byte(k), w.val, nil)
		}
		if err != nil {
			return fmt.Errorf("state: batch: %w", err)
		}
	}
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], uint64(height))
	if err := b.Set(keyHeight, hb[:], nil); err != nil {
		return err
	}
	if err := b.Set(keyAppHash, appHash, nil); err != nil {
		return err
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("state: commit height %d: %w", height, err)
	}
	s.commit.install(height, st, s.db.NewSnapshot())
	return nil
}

type write struct {
	val []byte
	del bool
}

// getter is what an overlay reads through to.
type getter interface {
	Get(key []byte) ([]byte, bool)
}

// Overlay buffers writes over a parent: the committed store (a block's
// overlay) or another overlay (a transaction's). It is not safe for
// concurrent use.
type Overlay struct {
	parent getter
	writes map[string]write
}

// NewOverlay returns an empty overlay over parent.
func NewOverlay(parent getter) *Overlay {
	return &Overlay{parent: parent, writes: make(map[string]write)}
}

// Child returns an overlay over o whose writes reach o only on Apply.
func (o *Overlay) Child() *Overlay { return NewOverlay(o) }

// Get reads through the overlay.
func (o *Overlay) Get(key []byte) ([]byte, bool) {
	if w, ok := o.writes[string(key)]; ok {
		if w.del {
			return nil, false
		}
		return bytes.Clone(w.val), true
	}
	return o.parent.Get(key)
}

// Set buffers a write.
func (o *Overlay) Set(key, value []byte) {
	o.writes[string(key)] = write{val: bytes.Clone(value)}
}

// Delete buffers a deletion.
func (o *Overlay) Delete(key []byte) { o.writes[string(key)] = write{del: true} }

// Apply writes o's buffered writes into its parent overlay.
func (o *Overlay) Apply() {
	p, ok := o.parent.(*Overlay)
	if !ok {
		panic("state: Apply on an overlay over the store; use Store.Commit")
	}
	for k, w := range o.writes {
		p.writes[k] = w
	}
}

// Len returns the number of buffered writes.
func (o *Overlay) Len() int { return len(o.writes) }

// quietLogger keeps pebble's chatter out of the node's logs.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any)  {}
func (quietLogger) Errorf(string, ...any) {}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}
