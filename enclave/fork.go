package enclave

import (
	"bytes"
	"context"
	"fmt"

	"github.com/integritee-go/integritee/account"
	scmodule "github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/sidechain"
)

// Forks. Two validateers may author blocks at the same height: clocks a
// slot apart, or a partition during which each side goes on alone. Every
// validateer resolves such a fork the same way, by comparing the first
// blocks of the two branches after their common ancestor:
//
//   - the branch that holds the block the parentchain confirmed for the
//     shard (anchored) wins;
//   - otherwise the branch whose first block has the lower slot wins, and
//     for equal slots the one whose first block has the lower hash.
//
// A validateer on the losing branch rolls its state back to the common
// ancestor (the latest snapshot at or below it and the stored blocks after
// it), gives back the parentchain calls the lost blocks had taken, pools
// again the lost blocks' operations the winning branch does not hold (their
// watchers get Retracted), and imports the winning branch. Payouts wait for
// their block's anchoring, and the anchored branch always wins, so a
// rollback never drops a paid unshielding.

// ForkPoint returns the height of a competing block a peer sent that this
// enclave could not place (ok false when there is none): the host fetches
// the peers' blocks from below it and hands them to ResolveFork.
func (e *Enclave) ForkPoint() (uint64, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.forkAt, e.forkAt != 0
}

// noteForkLocked records a competing block at height n.
func (e *Enclave) noteForkLocked(n uint64) {
	if e.forkAt == 0 {
		e.stats.Forks++
	}
	if e.forkAt == 0 || n < e.forkAt {
		e.forkAt = n
	}
}

// BlockHashAt returns the hash of this enclave's block at number n (ok
// false when it holds none there).
func (e *Enclave) BlockHashAt(n uint64) (sidechain.Hash, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.blockHashAtLocked(n)
}

// blockHashAtLocked returns the hash of this enclave's block at number n
// (zero hash for 0, the parent of block 1).
func (e *Enclave) blockHashAtLocked(n uint64) (sidechain.Hash, bool) {
	switch {
	case n == 0:
		return sidechain.Hash{}, true
	case e.head == nil || n > e.head.Header.Number:
		return sidechain.Hash{}, false
	case n == e.head.Header.Number:
		return e.headHash, true
	}
	b, err := e.blockAtLocked(n)
	if err != nil {
		return sidechain.Hash{}, false
	}
	return e.sc.Hash(b), true
}

func (e *Enclave) blockAtLocked(n uint64) (*sidechain.Block, error) {
	if e.head != nil && n == e.head.Header.Number {
		return e.head, nil
	}
	raw, err := e.host.BlockByNumber(e.shard, n)
	if err != nil {
		return nil, err
	}
	return e.sc.Decode(raw)
}

// ResolveFork takes a peer's consecutive blocks (ascending numbers, each
// the parent of the next) that reach back at least to the common ancestor
// of the peer's branch and this enclave's. If the peer's branch wins, this
// enclave rolls back to the ancestor and imports it; otherwise nothing
// changes. It reports whether this enclave switched. ErrForkAncestor asks
// for blocks from further back.
func (e *Enclave) ResolveFork(ctx context.Context, raws [][]byte) (bool, error) {
	blocks := make([]*sidechain.Block, len(raws))
	for i, raw := range raws {
		b, err := e.sc.Decode(raw)
		if err != nil {
			return false, ErrBadBlock.Wrap("fork block %d: %v", i, err)
		}
		if err := e.checkShardOf(b); err != nil {
			return false, err
		}
		if i > 0 && (b.Header.Number != blocks[i-1].Header.Number+1 || b.Header.ParentHash != e.sc.Hash(blocks[i-1])) {
			return false, ErrBadBlock.Wrap("fork blocks are not a chain at %d", b.Header.Number)
		}
		blocks[i] = b
	}
	if len(blocks) == 0 {
		return false, nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed != nil {
		return false, e.failed
	}
	div, first := -1, true
	for i, b := range blocks {
		if b.Header.Number < e.sync.JoinedAt {
			// History before this enclave's join: it holds none of it
			// and took the state at its join head as the shard's.
			continue
		}
		if h, ok := e.blockHashAtLocked(b.Header.Number); ok && h == e.sc.Hash(b) {
			first = false
			continue // common
		}
		if ph, ok := e.blockHashAtLocked(b.Header.Number - 1); !ok || ph != b.Header.ParentHash {
			if b.Header.Number == e.sync.JoinedAt {
				return false, ErrBadBlock.Wrap("fork block %d: the branch leaves this enclave's chain at or below its join head %d, which it cannot roll back", b.Header.Number, e.sync.JoinedAt)
			}
			if first {
				return false, ErrForkAncestor.Wrap("block %d's parent is not this enclave's block %d", b.Header.Number, b.Header.Number-1)
			}
			return false, ErrBadBlock.Wrap("fork block %d does not extend this enclave's chain", b.Header.Number)
		}
		div = i
		break
	}
	if div < 0 {
		e.forkAt = 0 // the peer's blocks are this enclave's
		return false, nil
	}
	theirs, raws := blocks[div:], raws[div:]
	ancestor := theirs[0].Header.Number - 1
	if ancestor == e.headNumberLocked() {
		e.forkAt = 0 // no competition: they extend the head
		return false, e.importBranchLocked(ctx, theirs, raws)
	}
	ours, err := e.blockAtLocked(ancestor + 1)
	if err != nil {
		return false, fmt.Errorf("enclave: fork: own block %d: %w", ancestor+1, err)
	}
	if err := e.checkChallengerLocked(ancestor, ours, theirs[0]); err != nil {
		e.forkAt = 0
		return false, err
	}
	if !e.theirsWinsLocked(ours, theirs) {
		e.forkAt = 0
		e.log.Info("fork: this enclave's branch wins; keeping it", "ancestor", ancestor, "ours", e.sc.Hash(ours), "theirs", e.sc.Hash(theirs[0]))
		return false, nil
	}
	if err := e.rollbackLocked(ancestor); err != nil {
		return false, err
	}
	e.forkAt = 0
	return true, e.importBranchLocked(ctx, theirs, raws)
}

// checkChallengerLocked checks, before the fork choice, what importing
// theirs (the first block of a competing branch, a child of the ancestor
// as ours is) after a rollback would check of it that does not depend on
// the head: that it continues the same state (its state hash before is
// ours's), that its slot is after the ancestor's, and that its author may
// author that slot. Anyone can sign a block with an earlier slot or a
// lower hash; without this check such a block would win the fork choice,
// roll this enclave back and then fail to import, leaving it without its
// blocks.
func (e *Enclave) checkChallengerLocked(ancestor uint64, ours, theirs *sidechain.Block) error {
	if theirs.Data.StateHashBefore != ours.Data.StateHashBefore {
		return ErrBadBlock.Wrap("fork block %d: state hash before %s is not the common ancestor's", theirs.Header.Number, theirs.Data.StateHashBefore)
	}
	if ancestor > 0 {
		a, err := e.blockAtLocked(ancestor)
		if err != nil {
			return fmt.Errorf("enclave: fork: own block %d: %w", ancestor, err)
		}
		if e.slotOf(theirs) <= e.slotOf(a) {
			return ErrBadBlock.Wrap("fork block %d: slot %d is not after its parent's", theirs.Header.Number, e.slotOf(theirs))
		}
	}
	return e.checkAuthorLocked(theirs)
}

// theirsWinsLocked is the fork choice between this enclave's block ours
// and the first block of a competing branch, both children of the same
// ancestor.
func (e *Enclave) theirsWinsLocked(ours *sidechain.Block, theirs []*sidechain.Block) bool {
	f := e.sync.View.Finalized
	if e.confirmSent >= ours.Header.Number && (f == nil || f.Number < e.confirmSent) && e.lc.Height()-e.confirmSentAt < resendAfter {
		// This enclave (the primary) sent a confirmation of a block of its
		// branch that may land any moment: dropping the branch now could
		// leave the chain anchoring a block nobody holds. It keeps it; once
		// the confirmation lands, its branch is the anchored one, which
		// every validateer takes.
		return false
	}
	if f != nil && f.Number >= ours.Header.Number {
		if h, ok := e.blockHashAtLocked(f.Number); ok && h == f.Hash {
			return false // this enclave's branch holds the anchored block
		}
		for _, t := range theirs {
			if t.Header.Number == f.Number && e.sc.Hash(t) == f.Hash {
				return true
			}
		}
	}
	if so, st := e.slotOf(ours), e.slotOf(theirs[0]); so != st {
		return st < so
	}
	ho, ht := e.sc.Hash(ours), e.sc.Hash(theirs[0])
	return bytes.Compare(ht[:], ho[:]) < 0
}

// rollbackLocked makes block n (0: none) the head again: the state as it
// was after n, its parentchain calls taken by later blocks given back, the
// later blocks deleted, their operations retracted (and pooled again).
// It seals the progress at n before deleting anything, so that a crash
// anywhere leaves either the old head or n, each with its records.
func (e *Enclave) rollbackLocked(n uint64) error {
	from := e.headNumberLocked()
	var lost [][32]byte
	for k := n + 1; k <= from; k++ {
		b, err := e.blockAtLocked(k)
		if err != nil {
			return fmt.Errorf("enclave: rollback: block %d: %w", k, err)
		}
		for _, h := range b.Data.Operations {
			lost = append(lost, h)
		}
	}
	var head *sidechain.Block
	if n > 0 {
		b, err := e.blockAtLocked(n)
		if err != nil {
			return fmt.Errorf("enclave: rollback: block %d: %w", n, err)
		}
		head = b
	}
	oldState, oldHash := e.state, e.stateHash
	if err := e.rebuildStateLocked(n); err != nil {
		e.setState(oldState)
		e.stateHash = oldHash
		return fmt.Errorf("enclave: rollback to %d: %w", n, err)
	}
	e.head = head
	e.headHash = sidechain.Hash{}
	if head != nil {
		e.headHash = e.sc.Hash(head)
	}
	e.publishHeadLocked()
	e.untakeLocked(e.headL1Locked())
	if n > 0 {
		if err := e.sealProgressLocked(n); err != nil {
			return e.failLocked(fmt.Errorf("%w: rollback to %d: %v", ErrCommitFailed, n, err))
		}
	} else {
		e.saveIdleLocked()
	}
	if err := e.host.DeleteBlocksFrom(e.shard, n+1); err != nil {
		return e.failLocked(fmt.Errorf("%w: rollback to %d: %v", ErrCommitFailed, n, err))
	}
	e.queue.dropThrough(n)
	e.unfinal = dropUnfinalAbove(e.unfinal, n)
	e.pool.Retract(lost)
	// The pool's nonces moved on with the lost blocks: set them back to the
	// rolled-back state's before pooling the lost calls again.
	pruned := map[account.ID]bool{}
	for _, h := range lost {
		if c, ok := e.recentCalls[h]; ok && !pruned[c.Signer] {
			pruned[c.Signer] = true
			e.pool.Prune(c.Signer, e.state.Account(c.Signer).Nonce)
		}
	}
	for _, h := range lost {
		c, ok := e.recentCalls[h]
		if !ok {
			continue // not pooled here; its watchers are elsewhere
		}
		if _, err := e.pool.Submit(c, h, e.state.Account(c.Signer).Nonce); err != nil {
			e.pool.MarkInvalid(h, "its block lost a fork and it cannot be pooled again: "+errName(err))
		}
	}
	e.trackOutboxLocked(n)
	if e.anchorChecked.Number > n {
		e.anchorChecked = scmodule.BlockConfirmation{} // no longer held
	}
	if e.confirmSent > n {
		e.confirmSent, e.confirmSentAt = 0, 0 // it confirmed a block it no longer holds; it never landed
	}
	e.stats.Rollbacks++
	e.log.Warn("fork lost: rolled back to the common ancestor", "ancestor", n, "dropped_blocks", from-n, "retracted_ops", len(lost))
	return nil
}

func dropUnfinalAbove(u []inBlock, n uint64) []inBlock {
	out := u[:0]
	for _, b := range u {
		if b.number <= n {
			out = append(out, b)
		}
	}
	return out
}

// importBranchLocked imports blocks extending the head, in order, as a
// peer's blocks are (importPeerLocked): one that must wait for its
// parentchain block is queued, and so are those after it.
func (e *Enclave) importBranchLocked(ctx context.Context, blocks []*sidechain.Block, raws [][]byte) error {
	for i, b := range blocks {
		if err := e.importPeerLocked(ctx, b, raws[i]); err != nil && !IsWaiting(err) {
			return err
		}
	}
	return nil
}
