package enclave

import (
	"slices"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/sidechain"
)

// recentHeads is how many verified parentchain blocks the enclave keeps to
// check the layer-one heads of sidechain blocks against.
const recentHeads = 4096

// sealedHeads is how many of them the sealed progress keeps for a restart.
const sealedHeads = 128

// sealedHead is a verified parentchain block in the sealed progress.
type sealedHead struct {
	Height int64    `cbor:"1,keyasint"`
	Hash   [32]byte `cbor:"2,keyasint"`
}

// DefaultMaxBlockAhead is how far a sidechain block's timestamp may be ahead
// of the latest verified parentchain block's time (Config.MaxBlockAhead).
// It also bounds how long one validateer with a clock set ahead (a hostile
// host sets its enclave's time) can hold the shard up: the slots it takes
// lie at most this far in the future, and honest validateers author again
// once their clocks pass them. It leaves room for the parentchain's block
// time and the light client's lag of one block.
const DefaultMaxBlockAhead = 15 * time.Second

// verifiedHead is a parentchain block the enclave verified, with the
// shard's authorities there if it read them by proof.
type verifiedHead struct {
	hash        [32]byte
	proven      bool
	authorities []account.ID
	// alone: the proven status was empty and the chain authorised this
	// enclave's own registration for the shard.
	alone bool
}

// recordHeadLocked remembers the verified block at height, with the view
// if it was read there, and forgets the oldest beyond recentHeads.
func (e *Enclave) recordHeadLocked(height int64, hash [32]byte) {
	h := verifiedHead{hash: hash}
	if v := e.sync.View; v.Height == height && height != 0 {
		h.proven, h.authorities = true, slices.Clone(v.Authorities)
		h.alone = len(v.Authorities) == 0 && v.SelfAuthorised && v.Fingerprint == e.MrEnclave()
	}
	if e.heads == nil {
		e.heads = map[int64]verifiedHead{}
	}
	e.heads[height] = h
	delete(e.heads, height-recentHeads)
	if n := len(e.sync.Heads); n == 0 || e.sync.Heads[n-1].Height < height {
		e.sync.Heads = append(e.sync.Heads, sealedHead{Height: height, Hash: hash})
		if len(e.sync.Heads) > sealedHeads {
			e.sync.Heads = append([]sealedHead(nil), e.sync.Heads[len(e.sync.Heads)-sealedHeads:]...)
		}
	}
}

// restoreHeadsLocked records the verified heads of the sealed progress.
func (e *Enclave) restoreHeadsLocked() {
	for _, h := range e.sync.Heads {
		if _, ok := e.heads[h.Height]; !ok {
			if e.heads == nil {
				e.heads = map[int64]verifiedHead{}
			}
			e.heads[h.Height] = verifiedHead{hash: h.Hash}
		}
	}
}

// historicLocked reports whether the verified parentchain block height is
// one whose authorities this enclave can no longer prove (it verified the
// block but not, or no longer, the state there: a restart, or a node that
// pruned it) and which lies below its fresh view. On-boarding checks a
// block anchored there against the shard's members in the view instead of
// the slot's author.
func (e *Enclave) historicLocked(height int64) bool {
	h, ok := e.heads[height]
	return ok && !h.proven && e.viewFreshLocked() && height < e.sync.View.Height
}

// authoritiesAtLocked returns the shard's authorities at the verified
// parentchain block height, as the chain's state there was proven to hold
// them: none if the block is not one of the recent verified ones or its
// state was not proven. Before any parentchain block is verified, or while
// the proven status is empty and the chain authorises this enclave's own
// registration for the shard (a new shard), this enclave authors alone.
func (e *Enclave) authoritiesAtLocked(height int64) []account.ID {
	if e.lc.Height() == 0 {
		return []account.ID{e.Signer()}
	}
	h, ok := e.heads[height]
	switch {
	case !ok || !h.proven:
		return nil
	case len(h.authorities) == 0:
		if !h.alone {
			return nil // another build's shard, or this enclave is not (or no longer) authorised
		}
		return []account.ID{e.Signer()}
	}
	return h.authorities
}

// checkLayerOneHeadLocked is the import check of a block's layer-one head
// and timestamp: the head is a parentchain block this enclave verified
// (number and hash), not older than the parent's, and the timestamp is not
// further ahead of the latest verified parentchain time than the bound.
func (e *Enclave) checkLayerOneHeadLocked(b *sidechain.Block) error {
	l1 := b.Data.LayerOneHead
	if e.lc.Height() == 0 {
		if l1.Number != 0 {
			return ErrBadBlock.Wrap("layer-one head %d, this enclave has verified no parentchain block", l1.Number)
		}
		return nil
	}
	if l1.Number > e.lc.Height() {
		return ErrLayerOneAhead.Wrap("layer-one head %d, this enclave has verified up to %d", l1.Number, e.lc.Height())
	}
	if e.head != nil && l1.Number < e.head.Data.LayerOneHead.Number {
		return ErrBadBlock.Wrap("layer-one head %d is older than its parent's %d", l1.Number, e.head.Data.LayerOneHead.Number)
	}
	h, ok := e.heads[l1.Number]
	if !ok {
		return ErrBadBlock.Wrap("layer-one head %d is not a parentchain block this enclave verified recently", l1.Number)
	}
	if h.hash != [32]byte(l1.Hash) {
		return ErrBadBlock.Wrap("layer-one head %d has hash %s, the verified block %x", l1.Number, l1.Hash, h.hash[:8])
	}
	latest := e.lc.LastBlockTime()
	if ahead := time.UnixMilli(b.Data.Timestamp).Sub(latest); ahead > e.maxBlockAhead() {
		return ErrBadBlock.Wrap("timestamp is %s ahead of the latest verified parentchain block, more than %s", ahead.Round(time.Millisecond), e.maxBlockAhead())
	}
	return nil
}

func (e *Enclave) maxBlockAhead() time.Duration {
	if e.cfg.MaxBlockAhead > 0 {
		return e.cfg.MaxBlockAhead
	}
	return DefaultMaxBlockAhead
}
