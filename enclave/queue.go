package enclave

import (
	"context"
	"errors"
	"slices"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/sidechain"
)

// The import queue: a peer's block that arrives before its parent, or
// before this enclave verified its parentchain block, waits here; the host
// fetches the missing parents (MissingBlocks) and the parentchain sync
// brings the parentchain blocks, and each import drains what became ready.
// Only blocks signed by an enclave of the shard are queued, and the queue
// is bounded, so that nobody can fill it or make this enclave believe it is
// behind with blocks of an invented author.

// Bounds of the import queue.
const (
	maxQueuedBlocks = 4096
	maxQueuedBytes  = 128 << 20
)

type queuedBlock struct {
	b   *sidechain.Block
	raw []byte
}

// blockQueue holds waiting blocks by number (the first one seen per number).
type blockQueue struct {
	blocks map[uint64]queuedBlock
	bytes  int
}

func (q *blockQueue) add(b *sidechain.Block, raw []byte) bool {
	if q.blocks == nil {
		q.blocks = map[uint64]queuedBlock{}
	}
	if _, ok := q.blocks[b.Header.Number]; ok {
		return true
	}
	if len(q.blocks) >= maxQueuedBlocks || q.bytes+len(raw) > maxQueuedBytes {
		return false
	}
	q.blocks[b.Header.Number] = queuedBlock{b, raw}
	q.bytes += len(raw)
	return true
}

func (q *blockQueue) take(n uint64) (queuedBlock, bool) {
	x, ok := q.blocks[n]
	if ok {
		delete(q.blocks, n)
		q.bytes -= len(x.raw)
	}
	return x, ok
}

// dropThrough forgets the blocks at or below n.
func (q *blockQueue) dropThrough(n uint64) {
	for k, x := range q.blocks {
		if k <= n {
			delete(q.blocks, k)
			q.bytes -= len(x.raw)
		}
	}
}

// bottom and top return the lowest and highest numbers queued (0: none).
func (q *blockQueue) bottom() uint64 {
	if len(q.blocks) == 0 {
		return 0
	}
	return slices.Min(queuedNumbers(q.blocks))
}

func (q *blockQueue) top() uint64 {
	if len(q.blocks) == 0 {
		return 0
	}
	return slices.Max(queuedNumbers(q.blocks))
}

func queuedNumbers(m map[uint64]queuedBlock) []uint64 {
	out := make([]uint64, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// MissingBlocks returns the range of block numbers the import queue waits
// for (ok false when it waits for none): the host fetches them from a peer
// and hands them to ImportBlock.
func (e *Enclave) MissingBlocks() (from, to uint64, ok bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	low := e.queue.bottom()
	next := e.headNumberLocked() + 1
	if low <= next {
		return 0, 0, false
	}
	return next, low - 1, true
}

func (e *Enclave) headNumberLocked() uint64 {
	if e.head == nil {
		return 0
	}
	return e.head.Header.Number
}

// behindLocked reports whether peers' blocks above the head wait in the
// queue: this enclave is behind its shard and must not author.
func (e *Enclave) behindLocked() bool {
	return e.queue.top() > e.headNumberLocked()
}

// importPeerLocked imports a peer's block, or queues it if it must wait.
func (e *Enclave) importPeerLocked(ctx context.Context, b *sidechain.Block, raw []byte) error {
	if e.failed != nil {
		return e.failed
	}
	if err := e.checkShardOf(b); err != nil {
		return err
	}
	head := e.headNumberLocked()
	if b.Header.Number <= head {
		return e.knownOrCompetingLocked(b)
	}
	if e.head != nil && !e.shardMemberLocked(b.Data.Author) {
		return ErrBadBlock.Wrap("author %s is not an enclave of the shard", b.Data.Author)
	}
	if b.Header.Number == head+1 && e.head != nil && b.Header.ParentHash != e.headHash {
		e.noteForkLocked(b.Header.Number)
		return ErrCompetingBlock.Wrap("block %d's parent %s is not the head %s", b.Header.Number, b.Header.ParentHash, e.headHash)
	}
	if b.Header.Number > head+1 {
		return e.waitLocked(b, raw, ErrBlockAhead.Wrap("block %d, head %d", b.Header.Number, head))
	}
	err := e.importLocked(ctx, b, raw)
	if errors.Is(err, ErrLayerOneAhead) {
		return e.waitLocked(b, raw, err)
	}
	if err != nil {
		return err
	}
	e.stats.BlocksImported++
	e.drainQueueLocked(ctx)
	return nil
}

// shardMemberLocked reports whether author is an enclave of the shard: a
// member in the proven view, or an authority at the verified head.
func (e *Enclave) shardMemberLocked(author account.ID) bool {
	return slices.Contains(e.sync.View.Members, author) || slices.Contains(e.authoritiesAtLocked(e.sync.L1Number), author)
}

// waitLocked queues a block that must wait (why), or refuses it if the
// queue is full.
func (e *Enclave) waitLocked(b *sidechain.Block, raw []byte, why error) error {
	if !e.queue.add(b, raw) {
		return ErrBadBlock.Wrap("import queue full; block %d dropped", b.Header.Number)
	}
	return why
}

// knownOrCompetingLocked answers a block at or below the head: nothing to
// do if it is the block held at its height, ErrCompetingBlock otherwise.
func (e *Enclave) knownOrCompetingLocked(b *sidechain.Block) error {
	if held, ok := e.blockHashAtLocked(b.Header.Number); ok && held == e.sc.Hash(b) {
		return nil
	}
	if !e.shardMemberLocked(b.Data.Author) {
		// Anyone can sign a block; only the shard's enclaves' blocks start
		// fork resolution (fetching from every peer each slot).
		return ErrBadBlock.Wrap("block %d: author %s is not an enclave of the shard", b.Header.Number, b.Data.Author)
	}
	e.noteForkLocked(b.Header.Number)
	e.log.Warn("competing sidechain block: this enclave holds another block at its height; resolving the fork", "number", b.Header.Number, "author", b.Data.Author)
	return ErrCompetingBlock.Wrap("block %d", b.Header.Number)
}

// drainQueueLocked imports the queued blocks that became ready.
func (e *Enclave) drainQueueLocked(ctx context.Context) {
	for {
		e.queue.dropThrough(e.headNumberLocked())
		q, ok := e.queue.take(e.headNumberLocked() + 1)
		if !ok {
			return
		}
		if e.head != nil && q.b.Header.ParentHash != e.headHash {
			e.noteForkLocked(q.b.Header.Number)
			continue
		}
		err := e.importLocked(ctx, q.b, q.raw)
		if errors.Is(err, ErrLayerOneAhead) {
			e.queue.add(q.b, q.raw)
			return
		}
		if err != nil {
			e.log.Warn("queued sidechain block refused", "number", q.b.Header.Number, "err", err)
			continue
		}
		e.stats.BlocksImported++
	}
}
