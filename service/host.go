package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/service/blockstore"
	"github.com/integritee-go/integritee/service/kvstore"
	"github.com/integritee-go/integritee/service/sealedstore"
	"github.com/integritee-go/integritee/sidechain"
)

// host implements enclave.Host over the data dir and the node.
type host struct {
	*sealedstore.DirStore
	log    *slog.Logger
	state  *kvstore.Store
	blocks *blockstore.Store
	// writes, if set, takes the block writes in place of blocks: a test's
	// wrapper that fails as a full disk would.
	writes blockWriter
	node   *client.Client

	// peers are the shard's other validateers.
	peers *peerSet
}

var _ enclave.Host = (*host)(nil)

func stateKey(k string) []byte { return []byte("s/" + k) }

func (h *host) PutState(key string, blob []byte) error { return h.state.Set(stateKey(key), blob) }

func (h *host) GetState(key string) ([]byte, error) {
	v, err := h.state.Get(stateKey(key))
	if errors.Is(err, kvstore.ErrNotFound) {
		return nil, enclave.ErrNotFound
	}
	return v, err
}

func (h *host) DeleteState(key string) error {
	b := h.state.NewBatch()
	b.Delete(stateKey(key))
	return b.Commit()
}

// blockWriter is what StoreBlock and DeleteBlocksFrom write through: the
// block store, or a wrapper around it.
type blockWriter interface {
	Put(b *sidechain.Block, raw []byte) error
	DeleteFrom(shard sidechain.ShardID, from uint64) error
}

func (h *host) blockWrites() blockWriter {
	if h.writes != nil {
		return h.writes
	}
	return h.blocks
}

func (h *host) StoreBlock(b *sidechain.Block, raw []byte) error { return h.blockWrites().Put(b, raw) }

func (h *host) DeleteBlocksFrom(shard sidechain.ShardID, n uint64) error {
	return h.blockWrites().DeleteFrom(shard, n)
}

func (h *host) BlockByNumber(shard sidechain.ShardID, n uint64) ([]byte, error) {
	raw, err := h.blocks.ByNumber(shard, n)
	if errors.Is(err, blockstore.ErrNotFound) {
		return nil, enclave.ErrNotFound
	}
	return raw, err
}

func (h *host) LastBlock(shard sidechain.ShardID) ([]byte, error) {
	raw, err := h.blocks.Last(shard)
	if errors.Is(err, blockstore.ErrNotFound) {
		return nil, enclave.ErrNotFound
	}
	return raw, err
}

// BroadcastBlock sends the block to the shard's other validateers over
// their attested trusted RPC. It does not wait.
func (h *host) BroadcastBlock(raw []byte) { h.peers.broadcast(raw) }

// ForwardOperations sends operations submitted here to the other
// validateers. It does not wait.
func (h *host) ForwardOperations(sealed []byte) { h.peers.forward(sealed) }

// PeerCount returns the number of other validateers known.
func (h *host) PeerCount() int { return h.peers.count() }

// NodeCallTimeout bounds each call the enclave makes to the parentchain
// node through the host. The enclave makes some of them holding its lock,
// so a node that stops answering (halted, partitioned) must not hold the
// validateer for longer than this per call.
const NodeCallTimeout = 5 * time.Second

func (h *host) ParentchainNonce(ctx context.Context, id account.ID) (uint64, error) {
	ctx, cancel := context.WithTimeout(ctx, NodeCallTimeout)
	defer cancel()
	return h.node.NextNonce(ctx, id)
}

func (h *host) SubmitParentchainTx(ctx context.Context, tx []byte) error {
	ctx, cancel := context.WithTimeout(ctx, NodeCallTimeout)
	defer cancel()
	return h.node.Broadcast(ctx, tx)
}

// ReadParentchainState fetches each key's value after block height with
// its proof; the enclave verifies them. A height the node cannot prove
// (pruned, or not committed yet) is enclave.ErrStateUnavailable.
func (h *host) ReadParentchainState(ctx context.Context, height int64, keys [][]byte) ([]enclave.StateRead, error) {
	ctx, cancel := context.WithTimeout(ctx, NodeCallTimeout)
	defer cancel()
	out := make([]enclave.StateRead, 0, len(keys))
	for _, k := range keys {
		pv, err := h.node.ProveKey(ctx, k, height)
		var qe *client.QueryError
		if errors.As(err, &qe) && qe.Codespace == "query" && qe.Code == types.ErrHeightUnavailable.Code {
			return nil, fmt.Errorf("%w: %v", enclave.ErrStateUnavailable, err)
		}
		if err != nil {
			return nil, err
		}
		r := enclave.StateRead{Key: pv.Key, Value: pv.Value, Ops: pv.ProofOps}
		if len(r.Value) == 0 {
			r.Value = nil // JSON-RPC does not tell an absent value from an empty one; no state value is empty
		}
		out = append(out, r)
	}
	return out, nil
}
