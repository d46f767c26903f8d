package enclave

import (
	"fmt"
	"slices"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// The parentchain inbox: what verified parentchain blocks ask of the shard
// (shield_funds, invoke) and no sidechain block has taken yet.
//
// Every validateer of a shard verifies the same parentchain, but only the
// author of a sidechain block acts on it: the block whose layer-one head is
// H executes the inbox's calls of the parentchain blocks after its parent's
// layer-one head, up to H, and carries the result in its state diff. Every
// other validateer applies that diff and drops the same inbox entries. So a
// deposit is credited exactly once per (parentchain block, transaction),
// in the one block whose layer-one range holds it, whatever the host replays
// or whichever validateer authors: layer-one heads never go back along the
// sidechain (the import check), and an entry at or below the head's layer-one
// head is never queued again.

// l1Block is one verified parentchain block's calls for this shard.
type l1Block struct {
	Height int64    `cbor:"1,keyasint"`
	Hash   [32]byte `cbor:"2,keyasint"`
	Calls  []l1Call `cbor:"3,keyasint"`
}

// l1Call is one successful parentchain transaction for the shard.
type l1Call struct {
	Index  int                            `cbor:"1,keyasint"`
	TxHash [32]byte                       `cbor:"2,keyasint"`
	Shield *enclavebridge.ShieldFundsArgs `cbor:"3,keyasint,omitempty"`
	Invoke []byte                         `cbor:"4,keyasint,omitempty"`
}

// headL1Locked is the layer-one head of the sidechain head: the parentchain
// height up to which the shard's state holds the parentchain's calls.
func (e *Enclave) headL1Locked() int64 {
	if e.head == nil {
		return 0
	}
	return e.head.Data.LayerOneHead.Number
}

// dropInboxThroughLocked forgets the inbox entries a block with layer-one
// head h has taken.
// They are kept aside (Taken) until a block at or above them is anchored
// on the parentchain: a fork that rolls the block back gives them back.
func (e *Enclave) dropInboxThroughLocked(h int64) {
	taken, rest := splitThrough(e.sync.Inbox, h)
	if len(taken) == 0 {
		return
	}
	e.sync.Taken = append(e.sync.Taken, taken...)
	if len(e.sync.Taken) > maxTaken {
		e.sync.Taken = slices.Clone(e.sync.Taken[len(e.sync.Taken)-maxTaken:])
	}
	e.sync.Inbox = slices.Clone(rest)
}

// splitThrough splits bs, in chain order, into the blocks at or below
// height h and those above it.
func splitThrough(bs []l1Block, h int64) (through, above []l1Block) {
	i := 0
	for i < len(bs) && bs[i].Height <= h {
		i++
	}
	return bs[:i:i], bs[i:]
}

// maxTaken bounds the taken inbox entries kept for a rollback.
const maxTaken = 4096

// pruneTakenLocked forgets taken entries at or below the anchored block's
// layer-one head: no fork rolls those back.
func (e *Enclave) pruneTakenLocked(anchoredL1 int64) {
	if gone, rest := splitThrough(e.sync.Taken, anchoredL1); len(gone) > 0 {
		e.sync.Taken = slices.Clone(rest)
	}
}

// untakeLocked gives back the taken entries above h (a rollback to a block
// with layer-one head h), in chain order before the inbox's own.
func (e *Enclave) untakeLocked(h int64) {
	keep, back := splitThrough(e.sync.Taken, h)
	if len(back) == 0 {
		return
	}
	_, rest := splitThrough(e.sync.Inbox, back[len(back)-1].Height)
	e.sync.Taken = slices.Clone(keep)
	e.sync.Inbox = append(slices.Clone(back), rest...)
}

// inboxDueLocked reports whether the inbox holds calls up to the verified
// head, which the next block this enclave authors takes.
func (e *Enclave) inboxDueLocked() bool {
	return len(e.sync.Inbox) > 0 && e.sync.Inbox[0].Height <= e.sync.L1Number
}

// paidOutboxLocked returns the outbox entries the chain's state, read by
// proof, shows paid: the next block removes them.
func (e *Enclave) paidOutboxLocked() [][32]byte {
	var out [][32]byte
	for _, u := range e.state.Outbox() {
		if e.sync.View.Paid[u.CallHash] {
			out = append(out, u.CallHash)
		}
	}
	return out
}

// inboxRangeLocked returns the layer-one head of the block this enclave
// authors in slot, and how many inbox calls that block takes: the verified
// head, unless the due inbox holds more than MaxInboxCallsPerBlock calls;
// then the verified block just below the first parentchain block that does
// not fit (the first is always taken). A lower head is used only if it is
// a verified block this enclave remembers and the slot is this enclave's
// there too, as every importer checks.
func (e *Enclave) inboxRangeLocked(slot uint64) (sidechain.LayerOneHead, int) {
	l1 := sidechain.LayerOneHead{Number: e.sync.L1Number, Hash: e.sync.L1Hash}
	calls := 0
	for i, b := range e.sync.Inbox {
		if b.Height > e.sync.L1Number {
			break
		}
		if i > 0 && calls+len(b.Calls) > MaxInboxCallsPerBlock {
			below := b.Height - 1
			h, known := e.heads[below]
			if author, ok := e.slotAuthorLocked(slot, below); known && ok && author == e.Signer() {
				return sidechain.LayerOneHead{Number: below, Hash: h.hash}, calls
			}
			e.log.Warn("the inbox holds more calls than a block takes, and no lower layer-one head serves: taking them all", "calls", e.inboxCallsLocked())
			return l1, e.inboxCallsLocked()
		}
		calls += len(b.Calls)
	}
	return l1, calls
}

// inboxCallsLocked counts the due inbox's calls.
func (e *Enclave) inboxCallsLocked() int {
	n := 0
	for _, b := range e.sync.Inbox {
		if b.Height > e.sync.L1Number {
			break
		}
		n += len(b.Calls)
	}
	return n
}

// takeInboxLocked executes, inside the block transaction tx, the inbox's
// calls of parentchain blocks up to height through (the block's layer-one
// head, inboxRangeLocked), in chain order, and
// removes the paid outbox entries (paidOutboxLocked). It returns the executed trusted calls'
// hashes and the confirm_processed_parentchain_block calls due once the
// block commits (one per parentchain block that carried calls).
func (e *Enclave) takeInboxLocked(tx *stf.Tx, through int64, paid [][32]byte) (ops [][32]byte, confirms []types.Call, err error) {
	for _, b := range e.sync.Inbox {
		if b.Height > through {
			break
		}
		var executed [][32]byte
		for _, c := range b.Calls {
			switch {
			case c.Shield != nil:
				if e.shieldInTx(tx, b.Height, c.Index, *c.Shield) {
					executed = append(executed, c.TxHash)
				}
			case c.Invoke != nil:
				if h, ok := e.invokeInTx(tx, b.Height, c.Index, c.Invoke); ok {
					executed = append(executed, h)
					ops = append(ops, h)
				}
			}
		}
		call, err := types.NewCall(e.codec, enclavebridge.ModuleName, "confirm_processed_parentchain_block", enclavebridge.ConfirmProcessedParentchainBlockArgs{
			Shard: e.shard, BlockHash: b.Hash, BlockNumber: b.Height, CallsRoot: merkleRoot(executed),
		})
		if err != nil {
			return nil, nil, err
		}
		confirms = append(confirms, call)
	}
	for _, h := range paid {
		if tx.RemoveFromOutbox(h) {
			e.log.Info("unshielding paid on the parentchain", "call", fmt.Sprintf("%x", h[:8]))
		}
	}
	return ops, confirms, nil
}

// shieldInTx credits a verified shield_funds to its decrypted beneficiary.
func (e *Enclave) shieldInTx(tx *stf.Tx, height int64, index int, a enclavebridge.ShieldFundsArgs) bool {
	plain, err := e.keys.ShieldingDecrypt(a.EncryptedBeneficiary)
	if err != nil || len(plain) != account.IDLen {
		e.log.Warn("shield_funds with an undecryptable beneficiary; funds stay bonded", "block", height, "tx", index)
		return false
	}
	var who account.ID
	copy(who[:], plain)
	if err := e.stf.ShieldFundsInTx(tx, who, a.Amount); err != nil {
		e.log.Warn("shield_funds refused by the state transition function", "block", height, "tx", index, "err", errName(err))
		return false
	}
	e.log.Info("shielded funds", "block", height, "tx", index)
	return true
}

// invokeInTx executes an indirect invocation's trusted call.
func (e *Enclave) invokeInTx(tx *stf.Tx, height int64, index int, ciphertext []byte) ([32]byte, bool) {
	op, err := e.decryptOperation(ciphertext)
	if err == nil && op.Call == nil {
		err = ErrNotACall
	}
	if err == nil {
		err = e.stf.VerifyCall(op.Call)
	}
	if err != nil {
		e.log.Warn("indirect invocation refused", "block", height, "tx", index, "err", errName(err))
		return [32]byte{}, false
	}
	res, err := e.stf.ExecuteInTx(tx, op.Call, op.Call.Hash())
	if err != nil {
		e.stats.CallsFailed++
		e.log.Warn("indirect invocation failed", "block", height, "tx", index, "err", errName(err))
		return [32]byte{}, false
	}
	e.stats.CallsOK++
	return res.Hash, true
}
