package enclave

import (
	"context"
	"crypto/sha256"
	"slices"
	"time"

	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// NextParentchainHeight is the parentchain height the enclave verifies next.
func (e *Enclave) NextParentchainHeight() int64 {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.lc.NextHeight()
}

// ImportParentchainBlock verifies one parentchain block with the light
// client and acts on its successful transactions for this shard: shielding
// credits the decrypted beneficiary and invocations execute their trusted
// calls. It then reads, by proof against the block's app hash, the shard's
// authorities, its last confirmed sidechain block and which outbox
// unshieldings the chain paid (those leave the outbox). The resulting state
// changes go into the next sidechain block.
func (e *Enclave) ImportParentchainBlock(ctx context.Context, in lightclient.Input, now time.Time) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.failed != nil {
		return e.failed
	}
	v, err := e.lc.Verify(in, now)
	if err != nil {
		return err
	}
	me := e.Signer()
	announce := false
	// Calls for the shard wait in the inbox until a sidechain block takes
	// them (inbox.go); those at or below the head's layer-one head are in
	// the state already.
	blk := l1Block{Height: v.Height, Hash: v.Hash}
	for _, tx := range v.Txs {
		if !tx.OK {
			continue
		}
		c := tx.Call
		switch c.Module + "." + c.Method {
		case "enclavebridge.shield_funds":
			var a enclavebridge.ShieldFundsArgs
			if e.codec.Unmarshal(c.Args, &a) != nil || a.Shard != e.shard {
				continue
			}
			blk.Calls = append(blk.Calls, l1Call{Index: tx.Index, TxHash: tx.Hash, Shield: &a})
		case "enclavebridge.invoke":
			var a enclavebridge.InvokeArgs
			if e.codec.Unmarshal(c.Args, &a) != nil || a.Shard != e.shard {
				continue
			}
			blk.Calls = append(blk.Calls, l1Call{Index: tx.Index, TxHash: tx.Hash, Invoke: a.Ciphertext})
		case "teerex.register_enclave":
			if tx.Signer == me && !e.sync.Announced {
				announce = true
			}
		}
	}
	if len(blk.Calls) > 0 && v.Height > e.headL1Locked() {
		e.sync.Inbox = append(e.sync.Inbox, blk)
	}
	e.sync.L1Number, e.sync.L1Hash = v.Height, v.Hash
	// The chain's own answers (authorities, finality, payouts), by proof.
	e.refreshViewLocked(ctx, v)
	e.recordHeadLocked(v.Height, v.Hash)
	if e.halted != nil {
		e.drainQueueLocked(ctx)
		return e.halted
	}
	// A newly registered enclave announces itself to the shard (it enters
	// the shard's status); an authority that has been quiet for a third of
	// the chain's silence bound sends a heartbeat, so that the chain keeps
	// it in the authority set.
	if announce || e.heartbeatDueLocked() {
		// It confirms the parentchain block whose calls its state holds
		// (the head's layer-one head), not the one just verified: clients
		// take a confirmation of block N as "calls up to N are executed".
		var l1 sidechain.LayerOneHead
		if e.head != nil {
			l1 = e.head.Data.LayerOneHead
		}
		call, err := types.NewCall(e.codec, enclavebridge.ModuleName, "confirm_processed_parentchain_block", enclavebridge.ConfirmProcessedParentchainBlockArgs{
			Shard: e.shard, BlockHash: l1.Hash, BlockNumber: l1.Number,
		})
		if err != nil {
			return err
		}
		e.confirms = append(e.confirms, call)
		e.heartbeatAt = v.Height
		if announce {
			e.sync.Announced = true
		}
	}
	// What is due on the parentchain goes out in SendDue, once the host
	// synced its batch.
	if v.Height%idleSaveEvery == 0 && len(e.confirms) == 0 {
		e.saveIdleLocked()
	}
	e.drainQueueLocked(ctx)
	return nil
}

// idleSaveEvery is how often (in parentchain blocks) the enclave seals its
// parentchain progress while no sidechain block carries it.
const idleSaveEvery = 20

// idleSync is parentchain progress saved between sidechain blocks; it is
// valid only on top of the head it names.
type idleSync struct {
	Head uint64   `cbor:"1,keyasint"`
	Sync syncMeta `cbor:"2,keyasint"`
}

const keyIdleSync = "sync-idle"

func (e *Enclave) saveIdleLocked() {
	st, err := e.lc.State()
	if err != nil {
		return
	}
	s := e.sync
	s.LightClient = st
	if err := e.putSealed(keyIdleSync, "sync-idle", idleSync{Head: e.headNumberLocked(), Sync: s}); err != nil {
		e.log.Warn("saving parentchain progress", "err", err)
	}
}

// unshield decrypts a ciphertext made with the shard's shielding key.
func (e *Enclave) unshield(ct []byte) ([]byte, error) {
	plain, err := e.keys.ShieldingDecrypt(ct)
	if err != nil {
		return nil, ErrBadCiphertext.Wrap("%v", err)
	}
	return plain, nil
}

// decryptOperation decrypts and decodes a trusted operation.
func (e *Enclave) decryptOperation(ct []byte) (*stf.Operation, error) {
	plain, err := e.unshield(ct)
	if err != nil {
		return nil, err
	}
	return stf.DecodeOperation(plain)
}

// flushConfirmsLocked hands the pending parentchain confirmations to the
// sender (sender.go).
func (e *Enclave) flushConfirmsLocked() {
	if e.halted != nil || (e.head == nil && e.lc.Height() > 0 && !e.shardIsNewLocked()) {
		// Not the shard's state: its confirmations would report calls it
		// executed on a state the sidechain never had. Keep the latest few.
		if len(e.confirms) > maxQueuedConfirms {
			e.confirms = e.confirms[len(e.confirms)-maxQueuedConfirms:]
		}
		return
	}
	for _, c := range e.confirms {
		// Not sent: kept for the next try, as when sent under the lock.
		e.queueLocked(c, func() { e.confirms = append(e.confirms, c) }, nil)
	}
	e.confirms = nil
}

// maxQueuedConfirms bounds the confirmations an enclave that may not send
// them keeps.
const maxQueuedConfirms = 64

// merkleRoot is the binary SHA-256 merkle root of leaves (the last leaf of
// an odd level is carried up); zero for none.
func merkleRoot(leaves [][32]byte) [32]byte {
	if len(leaves) == 0 {
		return [32]byte{}
	}
	level := slices.Clone(leaves)
	for len(level) > 1 {
		var next [][32]byte
		for i := 0; i < len(level); i += 2 {
			if i+1 == len(level) {
				next = append(next, level[i])
				continue
			}
			next = append(next, sha256.Sum256(append(level[i][:], level[i+1][:]...)))
		}
		level = next
	}
	return level[0]
}
