package app

import (
	"sync"

	"github.com/integritee-go/integritee/parentchain/types"
)

// The checked-transaction cache's bounds: more entries than the node's
// default mempool holds (50,000), so that every transaction waiting there
// keeps its entry until a block takes it, and at most 32 MiB of encoded
// transactions (a few large transactions must not pin gigabytes).
const (
	checkedCacheEntries = 1 << 16
	checkedCacheBytes   = 32 << 20
)

// checkedCache remembers the transactions CheckTx accepted: decoded, with a
// signature that verified, by hash (SHA-256 of the encoded bytes). A
// recheck and the block that executes them take them from here instead of
// decoding and verifying again. That is sound because a transaction's bytes
// fix everything both steps look at: the canonical decoding is a function
// of the bytes, and they fix the signer, the body and the signature, while
// the signing domain (the genesis hash) is fixed for the chain (reset
// forgets everything should it change). Only decoded transactions whose
// signature verified are added, and a miss decodes and verifies again;
// the chain id, nonce, fee and call are checked on every execution. The
// transactions are shared and must not be modified.
//
// It holds at most maxEntries transactions and maxBytes encoded bytes,
// forgetting the oldest first. It is safe for concurrent use.
type checkedCache struct {
	mu       sync.Mutex
	entries  map[[32]byte]checkedEntry
	ring     []ringSlot // insertion order: ring[head] is the oldest of n
	head, n  int
	bytes    int
	maxBytes int
	seq      uint64
}

type checkedEntry struct {
	tx   *types.Tx
	size int
	seq  uint64 // which insertion this is, so a stale ring slot cannot evict it
}

type ringSlot struct {
	hash [32]byte
	seq  uint64
}

func newCheckedCache(maxEntries, maxBytes int) *checkedCache {
	return &checkedCache{entries: make(map[[32]byte]checkedEntry), ring: make([]ringSlot, maxEntries), maxBytes: maxBytes}
}

// add records tx, decoded from size bytes with hash h, as decoded and
// verified. A transaction larger than the byte bound is not kept.
func (c *checkedCache) add(h [32]byte, tx *types.Tx, size int) {
	if size > c.maxBytes {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[h]; ok {
		return
	}
	for c.n == len(c.ring) || (c.n > 0 && c.bytes+size > c.maxBytes) {
		c.evictOldest()
	}
	c.seq++
	c.ring[(c.head+c.n)%len(c.ring)] = ringSlot{hash: h, seq: c.seq}
	c.n++
	c.entries[h] = checkedEntry{tx: tx, size: size, seq: c.seq}
	c.bytes += size
}

// evictOldest frees the oldest ring slot and forgets its transaction, unless
// that was taken already or added again since.
func (c *checkedCache) evictOldest() {
	s := c.ring[c.head]
	if e, ok := c.entries[s.hash]; ok && e.seq == s.seq {
		delete(c.entries, s.hash)
		c.bytes -= e.size
	}
	c.head = (c.head + 1) % len(c.ring)
	c.n--
}

// get returns the transaction with hash h if it is remembered.
func (c *checkedCache) get(h [32]byte) (*types.Tx, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[h]
	return e.tx, ok
}

// take returns the transaction with hash h if it is remembered and forgets
// it: a transaction a block executed is spent (its nonce is used).
func (c *checkedCache) take(h [32]byte) (*types.Tx, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[h]
	if ok {
		delete(c.entries, h)
		c.bytes -= e.size
	}
	return e.tx, ok
}

// reset forgets everything (a new genesis hash: a new signing domain).
func (c *checkedCache) reset() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.entries)
	c.head, c.n, c.bytes = 0, 0, 0
}

// len returns how many transactions it remembers and their encoded bytes.
func (c *checkedCache) len() (int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries), c.bytes
}
