package enclave

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/enclave/pool"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/sidechain"
)

// MaxWatchAfterBlock bounds how long a watch waits for Finalized after
// its operation's InSidechainBlock; it then ends without it.
const MaxWatchAfterBlock = 10 * time.Minute

// RPC returns the trusted RPC's view of the enclave.
func (e *Enclave) RPC() rpc.Backend { return rpcBackend{e} }

type rpcBackend struct{ e *Enclave }

var _ rpc.Backend = rpcBackend{}

func (r rpcBackend) checkShard(shard sidechain.ShardID) error {
	if shard != r.e.shard {
		return ErrUnknownShard.Wrap("%s (this enclave serves %s)", shard, r.e.shard)
	}
	return nil
}

// SubmitForwarded implements rpc.Backend: operations a peer of the shard
// took from its clients, verified and sealed with the shard's key; pooled
// here without checking their signatures again (only an enclave of the
// shard can seal, and it seals only what it verified), and not forwarded
// again. A host that replays a batch gets duplicates and stale nonces
// refused by the pool.
func (r rpcBackend) SubmitForwarded(_ context.Context, shard sidechain.ShardID, sealed []byte) (int, error) {
	e := r.e
	if err := r.checkShard(shard); err != nil {
		return 0, err
	}
	plain, err := e.keys.State().Decrypt(sealed, e.stateAAD(forwardPurpose))
	if err != nil {
		return 0, ErrBadForward.Wrap("%v", err)
	}
	var raws [][]byte
	if err := e.cbor.Unmarshal(plain, &raws); err != nil || len(raws) > rpc.MaxBatchOperations {
		return 0, ErrBadForward.Wrap("%d operations, %v", len(raws), err)
	}
	calls := make([]*stf.SignedCall, 0, len(raws))
	for _, raw := range raws {
		op, err := stf.DecodeOperation(raw)
		if err != nil || op.Call == nil {
			return 0, ErrBadForward.Wrap("operation does not decode: %v", err)
		}
		calls = append(calls, op.Call)
	}
	_, pooled := e.poolCalls(calls, raws, make([]error, len(calls)), nil)
	return len(pooled), nil
}

// forwardPurpose names forwarded batches in their additional data.
const forwardPurpose = "forward"

// forward hands verified operations to the host for the shard's other
// validateers, sealed as one batch with the shard's key: the host sees
// neither the operations nor how many there are beyond the size.
func (e *Enclave) forward(raws [][]byte) {
	if len(raws) == 0 {
		return
	}
	e.host.ForwardOperations(e.keys.State().Encrypt(e.cbor.MustMarshal(raws), e.stateAAD(forwardPurpose)))
}

// currentState returns the state for readers that do not take the
// enclave's lock (stateMu): submissions and getters never wait on block
// production or on the parentchain. The state is safe for concurrent use.
func (e *Enclave) currentState() *stf.State {
	e.stateMu.RLock()
	defer e.stateMu.RUnlock()
	return e.state
}

// watchFunc adapts a Watcher to the pool's status functions.
func watchFunc(w rpc.Watcher) func(pool.StatusEvent) {
	return func(ev pool.StatusEvent) { w.Status(ev.Hash, fromPool(ev)) }
}

// poolCalls pools verified calls; raws are their encodings. Result i is
// calls[i]'s (an errs[i] already set is kept); pooled are the encodings of
// those the pool took, in order.
func (e *Enclave) poolCalls(calls []*stf.SignedCall, raws [][]byte, errs []error, w rpc.Watcher) (out []rpc.Submission, pooled [][]byte) {
	out = make([]rpc.Submission, len(calls))
	pending := make([]pool.Pending, 0, len(calls))
	index := make([]int, 0, len(calls)) // pending[j] is calls[index[j]]
	var watch func(pool.StatusEvent)
	if w != nil {
		watch = watchFunc(w)
	}
	for i, c := range calls {
		if out[i].Err = errs[i]; errs[i] != nil {
			continue
		}
		// The operation's hash is SHA-256 of its canonical encoding, and
		// DecodeOperation took raws[i] only because it is that encoding:
		// no need to encode it again.
		out[i].Hash = sha256.Sum256(raws[i])
		pending = append(pending, pool.Pending{Op: c, Hash: out[i].Hash, Watch: watch})
		index = append(index, i)
	}
	// The signers' state nonces are read under the pool's lock, not
	// before it (pool.SubmitMany says why), and without the enclave's.
	st := e.currentState()
	res := e.pool.SubmitMany(pending, func(id account.ID) uint64 { return st.Account(id).Nonce })
	pooled = make([][]byte, 0, len(pending))
	for j, r := range res {
		i := index[j]
		if r.Err != nil {
			out[i] = rpc.Submission{Err: r.Err}
			continue
		}
		out[i].Status = fromPool(pool.StatusEvent{Status: r.Status})
		pooled = append(pooled, raws[i])
	}
	return out, pooled
}

// Submit implements rpc.Backend: decrypt, decode, verify, pool, and hand
// the operation to the host to forward to the shard's other validateers,
// so that whichever authors next executes it (the watcher here learns of
// it when this enclave imports that block).
func (r rpcBackend) Submit(_ context.Context, shard sidechain.ShardID, ct []byte, w rpc.Watcher) (sidechain.Hash, error) {
	e := r.e
	if err := r.checkShard(shard); err != nil {
		return sidechain.Hash{}, err
	}
	plain, err := e.unshield(ct)
	if err != nil {
		return sidechain.Hash{}, err
	}
	res := r.submitPlain([][]byte{plain}, w)
	return res[0].Hash, res[0].Err
}

// SubmitOperations implements rpc.Backend: plain signed operations over the
// attested channel, their signatures verified as one batch.
func (r rpcBackend) SubmitOperations(_ context.Context, shard sidechain.ShardID, ops [][]byte, w rpc.Watcher) ([]rpc.Submission, error) {
	if err := r.checkShard(shard); err != nil {
		return nil, err
	}
	return r.submitPlain(ops, w), nil
}

func (r rpcBackend) submitPlain(raws [][]byte, w rpc.Watcher) []rpc.Submission {
	e := r.e
	calls := make([]*stf.SignedCall, len(raws))
	errs := make([]error, len(raws))
	for i, raw := range raws {
		op, err := stf.DecodeOperation(raw)
		switch {
		case err != nil:
			errs[i] = err
		case op.Call == nil:
			errs[i] = ErrNotACall
		default:
			calls[i] = op.Call
		}
	}
	verdicts := e.stf.VerifyCalls(calls)
	for i := range errs {
		if errs[i] == nil {
			errs[i] = verdicts[i]
		}
	}
	out, pooled := e.poolCalls(calls, raws, errs, w)
	e.forward(pooled)
	return out
}

func fromPool(ev pool.StatusEvent) rpc.Status {
	switch ev.Status {
	case pool.Ready:
		return rpc.Status{Kind: rpc.Ready}
	case pool.Future:
		return rpc.Status{Kind: rpc.Future}
	case pool.InSidechainBlock:
		return rpc.Status{Kind: rpc.InSidechainBlock, BlockHash: ev.BlockHash}
	case pool.Invalid:
		return rpc.Status{Kind: rpc.Invalid, Reason: ev.Reason}
	case pool.Dropped:
		return rpc.Status{Kind: rpc.Dropped}
	case pool.Retracted:
		return rpc.Status{Kind: rpc.Retracted}
	case pool.Finalized:
		return rpc.Status{Kind: rpc.Finalized, BlockHash: ev.BlockHash}
	}
	return rpc.Status{Kind: rpc.Submitted}
}

// Pending implements rpc.Backend.
func (r rpcBackend) Pending(shard sidechain.ShardID) ([]sidechain.Hash, error) {
	if err := r.checkShard(shard); err != nil {
		return nil, err
	}
	var out []sidechain.Hash
	for _, en := range r.e.pool.Pending() {
		out = append(out, en.Hash)
	}
	return out, nil
}

// ExecuteGetter implements rpc.Backend.
func (r rpcBackend) ExecuteGetter(_ context.Context, shard sidechain.ShardID, raw []byte) (string, error) {
	e := r.e
	if err := r.checkShard(shard); err != nil {
		return "", err
	}
	op, err := stf.DecodeOperation(raw)
	if err != nil {
		return "", err
	}
	if op.Getter == nil {
		return "", stf.ErrInvalidVariant.Wrap("state_executeGetter takes a signed getter")
	}
	st := e.currentState()
	v, err := e.stf.ExecuteGetter(st, op.Getter)
	if err != nil {
		return "", err
	}
	if id := op.Getter.Getter.Nonce; id != nil {
		// The next nonce counts the signer's operations Ready in the pool,
		// forwarded ones included (pool.NextNonce).
		return strconv.FormatUint(e.pool.NextNonce(*id, st.Account(*id).Nonce), 10), nil
	}
	return string(v), nil
}

// LatestHeader implements rpc.Backend.
func (r rpcBackend) LatestHeader(shard sidechain.ShardID) (rpc.Header, error) {
	if err := r.checkShard(shard); err != nil {
		return rpc.Header{}, err
	}
	h := r.e.headView.Load()
	if h == nil {
		return rpc.Header{}, ErrNoBlock
	}
	return *h, nil
}

// publishHeadLocked publishes the head's header for LatestHeader; every
// change of e.head calls it.
func (e *Enclave) publishHeadLocked() {
	if e.head == nil {
		e.headView.Store(nil)
		return
	}
	e.headView.Store(&rpc.Header{Header: e.head.Header, Hash: e.headHash, StateHash: e.head.Data.StateHashAfter})
}

// ImportBlock implements rpc.Backend: a peer's block. A block queued to
// wait for its parent or its parentchain block is accepted.
func (r rpcBackend) ImportBlock(_ context.Context, raw []byte) error {
	err := r.e.ImportBlock(raw)
	if errors.Is(err, ErrBlockAhead) || errors.Is(err, ErrLayerOneAhead) {
		return nil
	}
	return err
}

func (r rpcBackend) ShieldingKey() []byte               { return r.e.keys.ShieldingPublicKey() }
func (r rpcBackend) Fingerprint() attestation.MrEnclave { return r.e.MrEnclave() }
func (r rpcBackend) Shard() sidechain.ShardID           { return r.e.shard }
func (r rpcBackend) MuRaURL() string                    { return r.e.cfg.MuRaURL }
func (r rpcBackend) UntrustedURL() string               { return r.e.cfg.UntrustedURL }

// Health implements rpc.Backend.
func (r rpcBackend) Health() error {
	if !r.e.Ready() {
		return ErrNotReady
	}
	return nil
}

// ImportBlock verifies a peer's block and, if it extends the head, applies
// its state diff and makes it the head; then the queued blocks it makes
// ready follow. A block that must wait for its parent or its parentchain
// block is queued and ErrBlockAhead or ErrLayerOneAhead returned; one at a
// height already held is nothing to do if it is the block held, and
// ErrCompetingBlock otherwise.
func (e *Enclave) ImportBlock(raw []byte) error {
	b, err := e.sc.Decode(raw)
	if err != nil {
		return ErrBadBlock.Wrap("%v", err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.importPeerLocked(context.Background(), b, raw)
}

// failLocked records a failed commit (e.failed) and returns err.
func (e *Enclave) failLocked(err error) error {
	if e.failed == nil {
		e.log.Error("a block's commit failed after its state was applied: importing and authoring nothing more until a restart", "err", err)
		e.failed = err
	}
	return err
}

// importLocked is the one import path, for peers' blocks and the enclave's
// own: the import check, the state diff applied against the state hashes,
// then the commit.
func (e *Enclave) importLocked(ctx context.Context, b *sidechain.Block, raw []byte) error {
	if err := e.checkBlockLocked(b); err != nil {
		return err
	}
	d, err := e.applyBlockDiff(b)
	if err != nil {
		return err
	}
	hashes := make([][32]byte, len(b.Data.Operations))
	for i, h := range b.Data.Operations {
		hashes[i] = h
	}
	if err := e.commitLocked(ctx, b, raw, hashes); err != nil {
		return e.failLocked(fmt.Errorf("%w: block %d: %v", ErrCommitFailed, b.Header.Number, err))
	}
	if b.Data.Author != e.Signer() {
		// A peer's block may have used nonces of operations pooled here
		// that it did not hold (the same signer's other operations): bring
		// their signers' queues up to the new state.
		e.pool.PruneAccounts(d.Accounts(), func(id account.ID) uint64 { return e.state.Account(id).Nonce })
	}
	e.lastSlot = max(e.lastSlot, e.slotOf(b))
	return nil
}

func (e *Enclave) slotOf(b *sidechain.Block) uint64 {
	return uint64(b.Data.Timestamp / e.cfg.SlotDuration.Milliseconds())
}

// checkBlockLocked is the import check every block passes, a peer's and the
// enclave's own: shard, number and parent extend the head, the slot follows
// the parent's, the layer-one head is a recent block this enclave verified
// (number and hash) and not older than the parent's, the timestamp is not
// too far ahead of the verified parentchain, the author is the slot's
// among the authorities proven at that head, and the state hash before is
// the head's. (Decode has checked the signature and the data hash.)
func (e *Enclave) checkBlockLocked(b *sidechain.Block) error {
	if err := e.checkShardOf(b); err != nil {
		return err
	}
	want := uint64(1)
	var parent sidechain.Hash
	if e.head != nil {
		want, parent = e.head.Header.Number+1, e.headHash
	}
	switch {
	case b.Header.Number != want:
		return ErrBadBlock.Wrap("number %d, expected %d", b.Header.Number, want)
	case b.Header.ParentHash != parent:
		return ErrBadBlock.Wrap("parent %s is not the head %s", b.Header.ParentHash, parent)
	}
	slot := e.slotOf(b)
	if e.head != nil && slot <= e.slotOf(e.head) {
		return ErrBadBlock.Wrap("slot %d is not after its parent's", slot)
	}
	if err := e.checkLayerOneHeadLocked(b); err != nil {
		return err
	}
	if err := e.checkAuthorLocked(b); err != nil {
		return err
	}
	if b.Data.StateHashBefore != sidechain.Hash(e.stateHash) {
		return ErrBadBlock.Wrap("state hash before %s is not the head's", b.Data.StateHashBefore)
	}
	return nil
}

// checkAuthorLocked is the import check of a block's author: the author
// of its slot among the shard's authorities at its layer-one head or, where
// those are no longer provable (history), an enclave of the shard.
func (e *Enclave) checkAuthorLocked(b *sidechain.Block) error {
	slot := e.slotOf(b)
	author, ok := e.slotAuthorLocked(slot, b.Data.LayerOneHead.Number)
	switch {
	case ok && author != b.Data.Author:
		return ErrBadBlock.Wrap("author %s is not slot %d's author %s", b.Data.Author, slot, author)
	case ok:
	case e.historicLocked(b.Data.LayerOneHead.Number):
		if !slices.Contains(e.sync.View.Members, b.Data.Author) {
			return ErrBadBlock.Wrap("author %s is not an enclave of the shard", b.Data.Author)
		}
	default:
		return ErrBadBlock.Wrap("slot %d: the shard's authorities at layer-one head %d are not proven", slot, b.Data.LayerOneHead.Number)
	}
	return nil
}

func (e *Enclave) checkShardOf(b *sidechain.Block) error {
	if b.Header.Shard != e.shard {
		return ErrUnknownShard.Wrap("block of shard %s", b.Header.Shard)
	}
	return nil
}
