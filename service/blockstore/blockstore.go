// Package blockstore is the validateer's untrusted sidechain block store:
// signed blocks by number and hash, as peers fetch them for on-boarding.
// Blocks carry only encrypted state diffs; the store needs no key.
package blockstore

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/service/kvstore"
	"github.com/integritee-go/integritee/sidechain"
)

// ErrNotFound is returned for a block the store does not hold.
var ErrNotFound = errors.New("blockstore: no such block")

var (
	prefixNumber = []byte("n/") // n/<shard><number> -> raw block
	prefixHash   = []byte("h/") // h/<hash> -> <shard><number>
)

// Store keeps blocks of any shard.
type Store struct {
	kv    *kvstore.Store
	codec *sidechain.Codec
}

// Open opens the block store in dir.
func Open(dir string) (*Store, error) {
	kv, err := kvstore.Open(dir)
	if err != nil {
		return nil, err
	}
	return &Store{kv: kv, codec: sidechain.NewCodec()}, nil
}

// Close closes the store.
func (s *Store) Close() error { return s.kv.Close() }

func numberKey(shard sidechain.ShardID, n uint64) []byte {
	k := append(append([]byte{}, prefixNumber...), shard[:]...)
	return binary.BigEndian.AppendUint64(k, n)
}

func hashKey(h sidechain.Hash) []byte { return append(append([]byte{}, prefixHash...), h[:]...) }

// Put stores a block (already verified by the enclave) and its encoding.
// A block at the same number replaces the old one (fork resolution).
func (s *Store) Put(b *sidechain.Block, raw []byte) error {
	batch := s.kv.NewBatch()
	nk := numberKey(b.Header.Shard, b.Header.Number)
	batch.Set(nk, raw)
	batch.Set(hashKey(s.codec.Hash(b)), nk[len(prefixNumber):])
	return batch.Commit()
}

// ByNumber returns the raw block of shard at number n.
func (s *Store) ByNumber(shard sidechain.ShardID, n uint64) ([]byte, error) {
	raw, err := s.kv.Get(numberKey(shard, n))
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: shard %s number %d", ErrNotFound, shard, n)
	}
	return raw, err
}

// ByHash returns the raw block with hash h.
func (s *Store) ByHash(h sidechain.Hash) ([]byte, error) {
	ref, err := s.kv.Get(hashKey(h))
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: hash %s", ErrNotFound, h)
	}
	if err != nil {
		return nil, err
	}
	raw, err := s.kv.Get(append(append([]byte{}, prefixNumber...), ref...))
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: hash %s (replaced by a fork)", ErrNotFound, h)
	}
	if err != nil {
		return nil, err
	}
	// A fork may have put another block at that number.
	if b, err := s.codec.Decode(raw); err != nil || s.codec.Hash(b) != h {
		return nil, fmt.Errorf("%w: hash %s (replaced by a fork)", ErrNotFound, h)
	}
	return raw, nil
}

// Last returns the highest-numbered raw block of shard.
func (s *Store) Last(shard sidechain.ShardID) ([]byte, error) {
	from := numberKey(shard, 0)
	to := numberKey(shard, ^uint64(0))
	_, v, err := s.kv.Last(from, to)
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil, fmt.Errorf("%w: shard %s has no blocks", ErrNotFound, shard)
	}
	return v, err
}

// DeleteFrom removes the shard's blocks numbered from and above (the
// losing branch of a fork, once the enclave rolled back below it). Their
// hash index entries stay; ByHash checks the block it finds.
func (s *Store) DeleteFrom(shard sidechain.ShardID, from uint64) error {
	b := s.kv.NewBatch()
	end := numberKey(shard, ^uint64(0))
	b.DeleteRange(numberKey(shard, from), append(end, 0))
	return b.Commit()
}

// Range returns the raw blocks of shard numbered from..to inclusive, at most
// max of them and, after the first, no more than maxBytes in all (0: no
// byte bound); a fetcher asks again from the next number.
func (s *Store) Range(shard sidechain.ShardID, from, to uint64, max, maxBytes int) ([][]byte, error) {
	if max <= 0 {
		return nil, nil
	}
	var out [][]byte
	size := 0
	end := numberKey(shard, to)
	end = append(end, 0) // inclusive
	err := s.kv.Iterate(numberKey(shard, from), end, func(_, v []byte) bool {
		if maxBytes > 0 && len(out) > 0 && size+len(v) > maxBytes {
			return false
		}
		out = append(out, v)
		size += len(v)
		return len(out) < max
	})
	return out, err
}
