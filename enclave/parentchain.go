package enclave

import (
	"context"
	"crypto/sha256"
	"fmt"
	"slices"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
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
	if e.halted != nil {
		return e.halted
	}
	v, err := e.lc.Verify(in, now)
	if err != nil {
		return err
	}
	me := e.Signer()
	var executed [][32]byte
	announce, carried := false, false
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
			carried = true
			if e.shield(v.Height, tx.Index, a) {
				executed = append(executed, tx.Hash)
			}
		case "enclavebridge.invoke":
			var a enclavebridge.InvokeArgs
			if e.codec.Unmarshal(c.Args, &a) != nil || a.Shard != e.shard {
				continue
			}
			carried = true
			if h, ok := e.invoke(v.Height, tx.Index, a.Ciphertext); ok {
				executed = append(executed, h)
			}
		case "enclavebridge.unshield_funds":
			// A verified, successful payout: the chain executed it.
			var a enclavebridge.UnshieldFundsArgs
			if e.codec.Unmarshal(c.Args, &a) != nil || a.Shard != e.shard {
				continue
			}
			if d, err := e.state.RemoveFromOutbox(a.CallHash); err == nil {
				e.pending = append(e.pending, d)
				e.log.Info("unshielding paid on the parentchain", "call", fmt.Sprintf("%x", a.CallHash[:8]))
			}
		case "teerex.register_enclave":
			if tx.Signer == me && !e.sync.Announced {
				announce = true
			}
		}
	}
	e.sync.L1Number, e.sync.L1Hash = v.Height, v.Hash
	// The chain's own answers (authorities, finality, payouts), by proof.
	e.refreshViewLocked(ctx, v)
	e.recordHeadLocked(v.Height, v.Hash)
	if e.halted != nil {
		return e.halted
	}
	// Every block that carried calls for the shard is confirmed, with the
	// root of those that executed, so clients learn of failures too.
	if carried || announce {
		call, err := types.NewCall(e.codec, enclavebridge.ModuleName, "confirm_processed_parentchain_block", enclavebridge.ConfirmProcessedParentchainBlockArgs{
			Shard: e.shard, BlockHash: v.Hash, BlockNumber: v.Height, CallsRoot: merkleRoot(executed),
		})
		if err != nil {
			return err
		}
		e.confirms = append(e.confirms, call)
		if announce {
			e.sync.Announced = true
		}
	}
	if len(e.pending) == 0 {
		// Nothing waits for a block: confirm now, and every so often save
		// the progress so that a restart need not verify these blocks again.
		e.flushConfirmsLocked(ctx)
		if len(e.unshields) > 0 {
			e.sendUnshieldsLocked(ctx) // resends overdue ones
		}
		if v.Height%idleSaveEvery == 0 && len(e.confirms) == 0 {
			e.saveIdleLocked()
		}
	}
	return nil
}

// idleSaveEvery is how often (in parentchain blocks) the enclave seals its
// parentchain progress while no sidechain block carries it.
const idleSaveEvery = 20

// idleSync is parentchain progress saved between sidechain blocks; it is
// valid only on top of the head it names, with no state change pending.
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
	var head uint64
	if e.head != nil {
		head = e.head.Header.Number
	}
	if err := e.putSealed(keyIdleSync, "sync-idle", idleSync{Head: head, Sync: s}); err != nil {
		e.log.Warn("saving parentchain progress", "err", err)
	}
}

// shield credits a verified shield_funds to its decrypted beneficiary.
func (e *Enclave) shield(height int64, index int, a enclavebridge.ShieldFundsArgs) bool {
	plain, err := e.keys.ShieldingDecrypt(a.EncryptedBeneficiary)
	if err != nil || len(plain) != account.IDLen {
		e.log.Warn("shield_funds with an undecryptable beneficiary; funds stay bonded", "block", height, "tx", index)
		return false
	}
	var who account.ID
	copy(who[:], plain)
	d, err := e.stf.ShieldFunds(e.state, who, a.Amount)
	if err != nil {
		e.log.Warn("shield_funds refused by the state transition function", "block", height, "tx", index, "err", errName(err))
		return false
	}
	e.pending = append(e.pending, d)
	e.log.Info("shielded funds", "block", height, "tx", index)
	return true
}

// invoke executes an indirect invocation's trusted call.
func (e *Enclave) invoke(height int64, index int, ciphertext []byte) ([32]byte, bool) {
	op, err := e.decryptOperation(ciphertext)
	if err != nil || op.Call == nil {
		e.log.Warn("indirect invocation refused", "block", height, "tx", index, "err", errName(err))
		return [32]byte{}, false
	}
	res, err := e.stf.ExecuteCall(e.state, op.Call)
	if err != nil {
		e.stats.CallsFailed++
		e.log.Warn("indirect invocation failed", "block", height, "tx", index, "err", errName(err))
		return [32]byte{}, false
	}
	e.stats.CallsOK++
	e.pending = append(e.pending, res.Diff)
	e.pool.Prune(op.Call.Signer, e.state.Account(op.Call.Signer).Nonce)
	return res.Hash, true
}

// decryptOperation decrypts and decodes a trusted operation.
func (e *Enclave) decryptOperation(ct []byte) (*stf.Operation, error) {
	plain, err := e.keys.ShieldingDecrypt(ct)
	if err != nil {
		return nil, ErrBadCiphertext.Wrap("%v", err)
	}
	return stf.DecodeOperation(plain)
}

// flushConfirmsLocked sends the queued parentchain confirmations.
func (e *Enclave) flushConfirmsLocked(ctx context.Context) {
	if e.halted != nil || (e.head == nil && e.lc.Height() > 0 && !e.shardIsNewLocked()) {
		// Not the shard's state: its confirmations would report calls it
		// executed on a state the sidechain never had. Keep the latest few.
		if len(e.confirms) > maxQueuedConfirms {
			e.confirms = e.confirms[len(e.confirms)-maxQueuedConfirms:]
		}
		return
	}
	for len(e.confirms) > 0 {
		if err := e.sendLocked(ctx, e.confirms[0]); err != nil {
			e.log.Warn("confirming a parentchain block failed; will retry", "err", err)
			return
		}
		e.confirms = e.confirms[1:]
	}
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
