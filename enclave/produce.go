package enclave

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/pool"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	scmodule "github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// MaxOperationsPerBlock bounds a block's operations (the block codec's list
// limit).
const MaxOperationsPerBlock = 4000

// MaxInboxCallsPerBlock bounds the parentchain calls (shield_funds, invoke)
// one sidechain block executes, unless a single parentchain block holds
// more, which the parentchain refuses (enclavebridge.MaxShardCallsPerBlock):
// a block takes the inbox's parentchain blocks whole, in order, while they
// fit. Each call is decrypted (about 0.1 ms), so the bound also keeps a
// block within its time budget, and the pool's operations within the
// operations limit.
const MaxInboxCallsPerBlock = enclavebridge.MaxShardCallsPerBlock

// Slot returns the slot of time t.
func (e *Enclave) Slot(t time.Time) uint64 {
	return uint64(t.UnixMilli() / e.cfg.SlotDuration.Milliseconds())
}

// slotAuthorLocked returns the author of slot at the verified parentchain
// block l1: authorities[slot mod n] of the shard's authorities there; ok is
// false while the enclave knows none.
func (e *Enclave) slotAuthorLocked(slot uint64, l1 int64) (account.ID, bool) {
	a := e.authoritiesAtLocked(l1)
	if len(a) == 0 {
		return account.ID{}, false
	}
	return a[slot%uint64(len(a))], true
}

// OnSlot runs the slot of time now: if this enclave authors it and there is
// something to put in a block (ready operations, or state changes from the
// parentchain), it builds the block, commits it, stores and broadcasts it.
// It returns the block, or nil.
func (e *Enclave) OnSlot(ctx context.Context, now time.Time) (*sidechain.Block, error) {
	slot := e.Slot(now)
	e.mu.Lock()
	defer e.afterUnlock(ctx) // what the block made due, once unlocked
	defer e.mu.Unlock()
	if now.Sub(e.watchesExpired) >= time.Second {
		// Watches whose block the parentchain has not anchored within
		// MaxWatchAfterBlock end without Finalized (the primary is gone, or
		// this enclave halted).
		e.watchesExpired = now
		e.pool.ExpireWatches(now.Add(-MaxWatchAfterBlock))
		// Operations that waited too long for a lower nonce leave.
		e.pool.ExpireFuture(now)
	}
	if e.failed != nil {
		return nil, e.failed
	}
	if e.halted != nil {
		return nil, e.halted
	}
	if author, ok := e.slotAuthorLocked(slot, e.sync.L1Number); slot <= e.lastSlot || !ok || author != e.Signer() {
		return nil, nil
	}
	if e.lc.Height() > 0 && now.Sub(e.lc.LastBlockTime()) > e.maxBlockAhead() {
		// The parentchain has not moved for longer than the bound: a block
		// now would be refused by every importer, this enclave included.
		return nil, nil
	}
	if e.behindLocked() {
		return nil, nil // peers' blocks above the head wait: on-boarding first
	}
	if e.sync.L1Number < e.headL1Locked() {
		return nil, nil // the head (a peer's, or a join's) is ahead of this enclave's parentchain sync
	}
	// The block runs in a transaction the state never takes directly: its
	// diff reaches the state through the import path below, as a peer's
	// block does.
	tx := e.state.Begin()
	defer tx.Discard()
	if e.head == nil {
		if e.lc.Height() > 0 && !e.shardIsNewLocked() {
			if !e.warnedJoin {
				e.warnedJoin = true
				e.log.Warn("the shard has history on the parentchain and this enclave has no state: it must join a peer of the shard; it will not start the shard afresh")
			}
			return nil, nil
		}
		// A new shard takes its root from the parentchain, in block 1.
		if root := e.sync.View.Root; !root.IsZero() && tx.Root().IsZero() {
			tx.SetRoot(root)
		}
	}
	// The parentchain's calls first, at most MaxInboxCallsPerBlock of them
	// (whole parentchain blocks): the block's layer-one head may stay below
	// the verified head, and the next block takes the rest. The pool fills
	// what is left of the block.
	l1, inboxCalls := e.inboxRangeLocked(slot)
	var ready []pool.Entry
	if n := MaxOperationsPerBlock - inboxCalls; n > 0 { // Ready(0) means all
		ready = e.pool.Ready(n)
	}
	paid := e.paidOutboxLocked()
	takesInbox := e.inboxDueLocked() || len(paid) > 0
	if len(ready) == 0 && !takesInbox && e.head != nil {
		return nil, nil // an empty slot; the shard's first block is made regardless
	}
	e.lastSlot = slot
	start := time.Now()
	// First what the parentchain asks (deposits, indirect invocations, paid
	// unshieldings), in chain order; then the pool's calls, which passed
	// VerifyCall when submitted.
	hashes, confirms, err := e.takeInboxLocked(tx, l1.Number, paid)
	if err != nil {
		return nil, err
	}
	// Half the slot at most, so that the block reaches the next slot's
	// author before that slot starts; what is left waits for the next block.
	budget := e.cfg.SlotDuration / 2
	for _, en := range ready {
		if time.Since(start) > budget {
			break
		}
		res, err := e.stf.ExecuteInTx(tx, en.Op, en.Hash)
		if err != nil {
			e.stats.CallsFailed++
			e.pool.MarkInvalid(en.Hash, err.Error())
			continue
		}
		e.stats.CallsOK++
		hashes = append(hashes, res.Hash)
	}
	d := tx.Diff()
	e.stats.LastExecution = time.Since(start)
	if len(d) == 0 && !takesInbox && e.head != nil {
		return nil, nil // every ready call failed: nothing changed
	}
	before := e.stateHash
	after := stf.NextStateHash(before, d)
	number := uint64(1)
	var parent sidechain.Hash
	if e.head != nil {
		number, parent = e.head.Header.Number+1, e.headHash
	}
	ops := make([]sidechain.Hash, len(hashes))
	for i, h := range hashes {
		ops[i] = h
	}
	data := sidechain.BlockData{
		Timestamp:          now.UnixMilli(),
		LayerOneHead:       l1,
		Operations:         ops,
		EncryptedStateDiff: e.keys.State().Encrypt(d.Encode(), e.diffAAD(number)),
		StateHashBefore:    before,
		StateHashAfter:     after,
	}
	header := sidechain.Header{Number: number, ParentHash: parent, Shard: e.shard, NextFinalizationNumber: e.nextFinalizationLocked(number)}
	b := e.sc.Seal(e.keys.Signer(), header, data)
	raw := e.sc.Encode(b)
	own, err := e.sc.Decode(raw)
	if err == nil {
		err = e.importLocked(ctx, own, raw)
	}
	if err != nil {
		// The own block must import; if it does not, or the state was
		// applied but not stored, stop and let a restart rebuild the state
		// from storage.
		if errors.Is(err, ErrCommitFailed) {
			return nil, err // importLocked recorded it
		}
		return nil, e.failLocked(fmt.Errorf("%w: own block %d: %v", ErrCommitFailed, number, err))
	}
	if e.stateHash != after {
		return nil, e.failLocked(fmt.Errorf("%w: imported own block gives state hash %x, built %x", ErrCommitFailed, e.stateHash[:8], after[:8]))
	}
	e.confirms = append(e.confirms, confirms...)
	e.stats.BlocksProposed++
	e.host.BroadcastBlock(raw)
	e.afterCommitLocked(ctx)
	return b, nil
}

func (e *Enclave) nextFinalizationLocked(number uint64) uint64 {
	f := e.sync.View.Finalized
	if f == nil {
		return number
	}
	return f.Number + e.cfg.FinalizationInterval
}

// commitLocked makes a block the head: parentchain progress sealed, block
// stored, snapshot taken when due, its operations out of the pool. The
// state is already the block's post-state.
func (e *Enclave) commitLocked(ctx context.Context, b *sidechain.Block, raw []byte, ops [][32]byte) error {
	n := b.Header.Number
	e.dropInboxThroughLocked(b.Data.LayerOneHead.Number)
	// Sync progress first: a crash before the block is stored leaves a
	// record for a block that does not exist, which restore never reads.
	if err := e.sealSyncLocked(n); err != nil {
		return err
	}
	if n > 3 {
		_ = e.host.DeleteState(numberKey(keySyncPrefix, n-3))
	}
	if err := e.host.StoreBlock(b, raw); err != nil {
		return fmt.Errorf("enclave: store block %d: %w", n, err)
	}
	e.head, e.headHash = b, e.sc.Hash(b)
	e.publishHeadLocked()
	if n == 1 || n%e.cfg.SnapshotInterval == 0 {
		e.snapshotDueLocked(n) // taken after the unlock (snapshot.go)
	}
	if e.recentCalls == nil {
		e.recentCalls = map[[32]byte]*stf.SignedCall{}
	}
	for _, h := range ops {
		if en, ok := e.pool.Get(h); ok {
			e.recentCalls[h] = en.Op
		}
	}
	e.pool.MarkInBlock(ops, e.headHash)
	if len(ops) > 0 {
		e.unfinal = append(e.unfinal, inBlock{number: n, hash: e.headHash, ops: ops})
	}
	e.trackOutboxLocked(n)
	e.log.Debug("sidechain block", "number", n, "ops", len(ops), "hash", e.headHash)
	return nil
}

// sealSyncLocked seals the parentchain progress (light client, view, inbox)
// as block n's, which restore reads with that block as the head.
func (e *Enclave) sealSyncLocked(n uint64) error {
	lcState, err := e.lc.State()
	if err != nil {
		return err
	}
	e.sync.LightClient = lcState
	if err := e.putSealed(numberKey(keySyncPrefix, n), "sync", e.sync); err != nil {
		return fmt.Errorf("enclave: seal sync progress of block %d: %w", n, err)
	}
	return nil
}

// afterCommitLocked does what follows a committed block on the parentchain:
// queued confirmations, finality, and unshieldings of the outbox.
func (e *Enclave) afterCommitLocked(ctx context.Context) {
	e.flushConfirmsLocked()
	e.finalizeLocked()
	e.sendUnshieldsLocked(ctx)
	e.notifyFinalizedLocked()
}

// inBlock is a block whose operations' watchers wait for Finalized.
type inBlock struct {
	number uint64
	hash   sidechain.Hash
	ops    [][32]byte
}

// idleFinalityAfter is how many parentchain blocks the head may wait
// unconfirmed before the primary confirms it although the finalization
// interval is not reached, so that a quiet shard's last blocks are anchored
// too (and their watchers learn it).
const idleFinalityAfter = 5

// notifyFinalizedLocked takes the blocks the parentchain anchored on this
// enclave's chain off the unfinalized list; their operations' watchers
// learn it after the lock is released (deliverFinalized).
func (e *Enclave) notifyFinalizedLocked() {
	if len(e.unfinal) == 0 {
		return
	}
	anchored := e.anchoredLocked()
	i := 0
	for ; i < len(e.unfinal) && e.unfinal[i].number <= anchored; i++ {
		e.finalDue = append(e.finalDue, e.unfinal[i])
		for _, h := range e.unfinal[i].ops {
			delete(e.recentCalls, h)
		}
	}
	if i > 0 {
		e.unfinal = append([]inBlock(nil), e.unfinal[i:]...)
	}
}

// finalizedChunk is how many operations' Finalized one hold of the pool's
// lock delivers.
const finalizedChunk = 1024

// deliverFinalized tells the watchers of anchored blocks' operations; it
// must be called without e.mu. One confirmation anchors up to a
// finalization interval of blocks, tens of thousands of operations under
// load: delivered under the enclave's lock, and the pool's in one hold,
// they held block production for more than a slot.
func (e *Enclave) deliverFinalized() {
	e.mu.Lock()
	due := e.finalDue
	e.finalDue = nil
	e.mu.Unlock()
	for _, b := range due {
		for ops := b.ops; len(ops) > 0; {
			n := min(len(ops), finalizedChunk)
			e.pool.MarkFinalized(ops[:n], b.hash)
			ops = ops[n:]
		}
	}
}

// afterUnlock does, once the enclave's lock is released, what the locked
// part made due: Finalized for the watchers, and the parentchain calls.
func (e *Enclave) afterUnlock(ctx context.Context) {
	e.deliverFinalized()
	e.startSnapshot()
	e.sendQueued(ctx)
}

// isPrimaryLocked reports whether this enclave is the shard's primary (the
// first of its authorities) in the fresh, proven view. A primary that falls
// silent leaves the authority set after the chain's silence bound, and the
// next authority becomes the primary: finality and payouts fall back to it.
func (e *Enclave) isPrimaryLocked() bool {
	a := e.sync.View.Authorities
	return e.viewFreshLocked() && len(a) > 0 && a[0] == e.Signer()
}

// finalizeLocked is the primary's duty: confirm the head on the parentchain
// (confirm_imported_sidechain_block, on top of the chain's proven last
// confirmed block) every FinalizationInterval blocks, and at once when the
// outbox holds unshieldings of blocks not yet confirmed, since payouts wait
// for their block's confirmation.
func (e *Enclave) finalizeLocked() {
	if e.head == nil || !e.isPrimaryLocked() || e.halted != nil {
		return
	}
	n := e.head.Header.Number
	f := e.sync.View.Finalized
	if f != nil && f.Number >= n {
		return
	}
	if v := e.sync.View; v.Height-v.SelfActivity+2 > int64(v.Params.ShardSilenceBlocks) {
		return // it may be out of the authority set when the call lands; its heartbeat goes first
	}
	urgent := false
	for _, at := range e.outboxAt {
		if f == nil || at > f.Number {
			urgent = true
			break
		}
	}
	if !urgent && n < e.nextFinalizationLocked(n) && e.lc.Height()-e.headL1Locked() < idleFinalityAfter {
		return
	}
	if e.confirmSent != 0 && (f == nil || f.Number < e.confirmSent) && e.lc.Height()-e.confirmSentAt < resendAfter {
		return // a confirmation is on its way
	}
	args := scmodule.ConfirmImportedSidechainBlockArgs{Shard: e.shard, Candidate: scmodule.BlockConfirmation{Number: n, Hash: e.headHash}, Ancestor: f}
	call, err := types.NewCall(e.codec, scmodule.ModuleName, "confirm_imported_sidechain_block", args)
	if err != nil {
		return
	}
	e.queueLocked(call, func() {
		if e.confirmSent == n {
			e.confirmSent, e.confirmSentAt = 0, 0 // not sent: confirm again when next due
		}
	}, nil)
	e.confirmSent, e.confirmSentAt = n, e.lc.Height()
}

// trackOutboxLocked records the block in which each outbox entry first
// appeared (after a restart: the head, a conservative bound).
func (e *Enclave) trackOutboxLocked(n uint64) {
	if e.outboxAt == nil {
		e.outboxAt = map[[32]byte]uint64{}
	}
	seen := map[[32]byte]bool{}
	for _, u := range e.state.Outbox() {
		seen[u.CallHash] = true
		if _, ok := e.outboxAt[u.CallHash]; !ok {
			e.outboxAt[u.CallHash] = n
		}
	}
	for h := range e.outboxAt {
		if !seen[h] {
			delete(e.outboxAt, h)
		}
	}
}

// anchoredLocked returns the number of the parentchain's last confirmed
// sidechain block if this enclave's chain holds that very block (0 if
// none is, or the confirmed block is not this chain's).
func (e *Enclave) anchoredLocked() uint64 {
	f := e.sync.View.Finalized
	if f == nil || e.head == nil || f.Number > e.head.Header.Number {
		return 0
	}
	if e.anchorChecked == *f {
		return f.Number
	}
	b, err := e.blockAtLocked(f.Number)
	if err != nil || e.sc.Hash(b) != f.Hash {
		return 0
	}
	e.anchorChecked = *f
	e.pruneTakenLocked(b.Data.LayerOneHead.Number)
	return f.Number
}

// resendAfter is how many parentchain blocks an unshielding may take before
// the enclave sends it again (its transaction may have left the mempool).
const resendAfter = 30

// sendUnshieldsLocked sends unshield_funds for each outbox entry that the
// parentchain's state, read by proof at the verified head, shows unpaid and
// that was not sent in this run, or was sent resendAfter blocks ago; the
// parentchain pays each call hash once, so a resend (also after a restart)
// cannot pay twice.
func (e *Enclave) sendUnshieldsLocked(ctx context.Context) {
	if !e.viewFreshLocked() || e.halted != nil {
		return // whether each was paid is known only from a fresh, proven read
	}
	if e.head == nil {
		// No block yet: this state is not the shard's (a wiped enclave
		// replaying the parentchain into a fresh state computes balances
		// the sidechain never had); only a state with blocks pays out.
		return
	}
	if !e.isPrimaryLocked() {
		return // the primary pays out; another authority once it is gone
	}
	anchored := e.anchoredLocked()
	now := e.lc.Height()
	var unread []stf.Unshielding
	for _, u := range e.state.Outbox() {
		if !e.sync.View.Unpaid[u.CallHash] {
			unread = append(unread, u)
		}
	}
	if len(unread) > 0 {
		if err := e.readUnpaidLocked(ctx, unread); err != nil {
			e.log.Warn("unshieldings wait: whether they were paid is not proven", "height", e.sync.View.Height, "err", err)
		}
		if e.halted != nil {
			return
		}
	}
	for _, u := range e.state.Outbox() {
		if at, sent := e.unshields[u.CallHash]; sent && now-at < resendAfter {
			continue
		}
		if at, ok := e.outboxAt[u.CallHash]; !ok || at > anchored {
			continue // its block is not confirmed on the parentchain yet: a fork could still drop it
		}
		if !e.sync.View.Unpaid[u.CallHash] {
			continue // paid, or not proven unpaid
		}
		call, err := types.NewCall(e.codec, enclavebridge.ModuleName, "unshield_funds", enclavebridge.UnshieldFundsArgs{
			Shard: u.Shard, Beneficiary: u.Beneficiary, Amount: u.Amount, CallHash: u.CallHash,
			// The chain refuses it if the shard paid out above this height:
			// a payout this enclave's state may not know.
			VerifiedHeight: e.sync.View.Height,
			Seq:            u.Seq,
		})
		if err != nil {
			continue
		}
		hash := u.CallHash
		e.queueLocked(call, func() {
			if e.unshields[hash] == now {
				delete(e.unshields, hash) // not sent or refused: built again from the next view
			}
		}, nil)
		e.unshields[u.CallHash] = now
		e.log.Info("unshield_funds queued", "call", fmt.Sprintf("%x", u.CallHash[:8]))
	}
}

// SendDue sends what is due on the parentchain: queued confirmations
// (announcements, heartbeats, processed blocks), the primary's finality
// confirmation and payouts, and tells watchers of anchored blocks. The
// host calls it after each batch of parentchain blocks it synced (and once
// after a restart): facts proven at intermediate heights of a batch are
// already stale, and calls made on them would only fail on the chain.
func (e *Enclave) SendDue(ctx context.Context) {
	e.mu.Lock()
	defer e.afterUnlock(ctx) // what is due, once unlocked
	defer e.mu.Unlock()
	if e.halted != nil {
		return
	}
	e.afterCommitLocked(ctx)
}
