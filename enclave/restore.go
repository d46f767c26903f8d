package enclave

import (
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/sidechain"
)

// snapshotBlob is an encrypted state snapshot's plaintext.
type snapshotBlob struct {
	Number    uint64   `cbor:"1,keyasint"`
	StateHash [32]byte `cbor:"2,keyasint"`
	Snapshot  []byte   `cbor:"3,keyasint"`
}

// snapshotIndex lists the snapshots kept, oldest first.
type snapshotIndex struct {
	Numbers []uint64 `cbor:"1,keyasint"`
}

const keySnapshotIndex = "snapshot-index"

func (e *Enclave) getSealed(key, purpose string, v any) error {
	blob, err := e.host.GetState(key)
	if err != nil {
		return err
	}
	plain, err := e.keys.State().Decrypt(blob, e.recordAAD(key, purpose))
	if err != nil {
		return fmt.Errorf("enclave: sealed record %q does not decrypt under its key and purpose (swapped, restored from elsewhere, or corrupted): %w", key, err)
	}
	if err := e.codec.UnmarshalLoose(plain, v); err != nil {
		return fmt.Errorf("enclave: %s: %w", key, err)
	}
	return nil
}

func (e *Enclave) putSealed(key, purpose string, v any) error {
	return e.host.PutState(key, e.keys.State().Encrypt(e.codec.MustMarshal(v), e.recordAAD(key, purpose)))
}

// recordAAD binds a sealed record to its shard, its purpose and the key it
// is stored under, so that the host cannot pass one record off as another
// (say, the parentchain progress of block 1 as that of block 3, which would
// rewind the light client under a newer state and credit a deposit twice).
func (e *Enclave) recordAAD(key, purpose string) []byte {
	return append(append(e.stateAAD(purpose), 0), key...)
}

// restore rebuilds the state from the latest snapshot and the blocks after
// it, and the parentchain progress from the sync record of the head block.
func (e *Enclave) restore() error {
	e.setState(e.stf.Genesis())
	e.stateHash = e.state.SnapshotHash()
	raw, err := e.host.LastBlock(e.shard)
	if errors.Is(err, ErrNotFound) {
		lc, err := lightclient.New(e.cfg.ChainID, e.cfg.GenesisValidators, lightclient.DefaultConfig())
		if err != nil {
			return err
		}
		e.lc = lc
		e.log.Info("new shard state", "shard", e.shard, "root", e.state.Root(), "state_hash", fmt.Sprintf("%x", e.stateHash[:8]))
		if err := e.restoreIdle(0); err != nil {
			return err
		}
		e.restoreHeadsLocked()
		return e.checkChainID()
	}
	if err != nil {
		return fmt.Errorf("enclave: last block: %w", err)
	}
	head, err := e.sc.Decode(raw)
	if err != nil {
		return fmt.Errorf("enclave: stored head block: %w", err)
	}

	if err := e.rebuildStateLocked(head.Header.Number); err != nil {
		return err
	}
	if e.stateHash != head.Data.StateHashAfter {
		return fmt.Errorf("enclave: restored state hash %x, head block says %x", e.stateHash[:8], head.Data.StateHashAfter[:8])
	}
	e.head, e.headHash = head, e.sc.Hash(head)
	e.publishHeadLocked()
	e.lastSlot = uint64(head.Data.Timestamp / e.cfg.SlotDuration.Milliseconds())
	e.trackOutboxLocked(head.Header.Number)

	if err := e.getSealed(numberKey(keySyncPrefix, head.Header.Number), "sync", &e.sync); err != nil {
		return fmt.Errorf("enclave: parentchain progress of block %d: %w (the data dir's state does not match its blocks, e.g. one restored from another time; start with --clean-reset to drop state and blocks and join a peer of the shard)", head.Header.Number, err)
	}
	lc, err := lightclient.Restore(e.sync.LightClient, lightclient.DefaultConfig())
	if err != nil {
		return fmt.Errorf("enclave: light client: %w", err)
	}
	e.lc = lc
	if err := e.restoreIdle(head.Header.Number); err != nil {
		return err
	}
	e.restoreHeadsLocked()
	if e.sync.L1Number > 0 {
		e.recordHeadLocked(e.sync.L1Number, e.sync.L1Hash)
	}
	if err := e.checkChainID(); err != nil {
		return err
	}
	e.log.Info("state restored", "block", head.Header.Number, "parentchain", lc.Height(), "accounts_state_bytes", e.state.Size())
	return nil
}

// rebuildStateLocked makes the state that after the stored block n: the
// latest snapshot at or below n, then the stored blocks after it replayed.
func (e *Enclave) rebuildStateLocked(n uint64) error {
	e.setState(e.stf.Genesis())
	e.stateHash = e.state.SnapshotHash()
	from := uint64(0)
	var idx snapshotIndex
	if err := e.getSealed(keySnapshotIndex, "snapshot-index", &idx); err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	for i := len(idx.Numbers) - 1; i >= 0; i-- {
		k := idx.Numbers[i]
		if k > n {
			continue
		}
		var snap snapshotBlob
		if err := e.getSealed(numberKey(keySnapshotPrefix, k), "snapshot", &snap); err != nil {
			e.log.Warn("snapshot unusable; trying an older one", "number", k, "err", err)
			continue
		}
		if raw, err := e.host.BlockByNumber(e.shard, k); err == nil {
			// A snapshot of another branch (taken before a rollback, or an
			// old copy the host put back) would not replay the stored blocks.
			if b, err := e.sc.Decode(raw); err == nil && b.Data.StateHashAfter != sidechain.Hash(snap.StateHash) {
				e.log.Warn("snapshot is not of the stored block; trying an older one", "number", k)
				continue
			}
		}
		st, err := stf.StateFromSnapshot(snap.Snapshot)
		if err != nil {
			return fmt.Errorf("enclave: snapshot %d: %w", k, err)
		}
		e.setState(st)
		e.stateHash, from = snap.StateHash, k
		break
	}
	e.log.Info("restoring state", "snapshot", from, "block", n)
	for k := from + 1; k <= n; k++ {
		raw, err := e.host.BlockByNumber(e.shard, k)
		if err != nil {
			return fmt.Errorf("enclave: replay block %d: %w", k, err)
		}
		b, err := e.sc.Decode(raw)
		if err != nil {
			return fmt.Errorf("enclave: replay block %d: %w", k, err)
		}
		if _, err := e.applyBlockDiff(b); err != nil {
			return fmt.Errorf("enclave: replay block %d: %w", k, err)
		}
		if (k-from)%1000 == 0 {
			e.log.Info("replaying blocks", "at", k, "to", n)
		}
	}
	return nil
}

// applyBlockDiff decrypts a block's diff, checks it against the block's
// state hashes and applies it. It returns the diff.
func (e *Enclave) applyBlockDiff(b *sidechain.Block) (stf.Diff, error) {
	if sidechain.Hash(e.stateHash) != b.Data.StateHashBefore {
		return nil, fmt.Errorf("%w: state hash before %s, ours %x", ErrBadBlock, b.Data.StateHashBefore, e.stateHash)
	}
	plain, err := e.keys.State().Decrypt(b.Data.EncryptedStateDiff, e.diffAAD(b.Header.Number))
	if err != nil {
		return nil, fmt.Errorf("%w: state diff does not decrypt: %v", ErrBadBlock, err)
	}
	d, err := stf.DecodeDiff(plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBlock, err)
	}
	next := stf.NextStateHash(e.stateHash, d)
	if sidechain.Hash(next) != b.Data.StateHashAfter {
		return nil, fmt.Errorf("%w: state hash after %s, diff gives %x", ErrBadBlock, b.Data.StateHashAfter, next)
	}
	if err := e.state.Apply(d); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadBlock, err)
	}
	e.stateHash = next
	return d, nil
}

// setState replaces the state; e.mu is held (or the enclave is not
// serving yet). Readers without e.mu take stateMu (submissions' nonces,
// getters). Every replacement of the state goes through it: it also counts
// them for the snapshots (snapEpoch) and drops a due snapshot of the old one.
func (e *Enclave) setState(s *stf.State) {
	e.snapEpoch++
	e.snapDue = nil
	e.stateMu.Lock()
	e.state = s
	e.stateMu.Unlock()
}

// diffAAD binds an encrypted diff to its shard and block number.
func (e *Enclave) diffAAD(n uint64) []byte {
	return append(e.stateAAD("diff"), numberKey("", n)...)
}

// restoreIdle takes the parentchain progress saved between blocks if it
// was saved on top of the restored head and is further along.
func (e *Enclave) restoreIdle(head uint64) error {
	var idle idleSync
	if err := e.getSealed(keyIdleSync, "sync-idle", &idle); err != nil {
		if errors.Is(err, ErrNotFound) {
			return nil
		}
		return err
	}
	if idle.Head != head || idle.Sync.L1Number <= e.sync.L1Number {
		return nil
	}
	lc, err := lightclient.Restore(idle.Sync.LightClient, lightclient.DefaultConfig())
	if err != nil {
		return fmt.Errorf("enclave: light client: %w", err)
	}
	e.lc, e.sync = lc, idle.Sync
	return nil
}

// checkChainID refuses a host configuration that names another parentchain
// than the one the sealed light client follows: the sealed client is the
// trust root, and the host's word on which chain this is counts for nothing
// once it exists.
func (e *Enclave) checkChainID() error {
	if got := e.lc.ChainID(); got != e.cfg.ChainID {
		return fmt.Errorf("enclave: the host names parentchain %q, but this enclave's sealed light client follows %q", e.cfg.ChainID, got)
	}
	return nil
}
