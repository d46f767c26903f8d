package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/service/blockstore"
	"github.com/integritee-go/integritee/service/kvstore"
	"github.com/integritee-go/integritee/sidechain"
)

// host implements enclave.Host over the data dir and the node.
type host struct {
	*keys.DirStore
	log    *slog.Logger
	state  *kvstore.Store
	blocks *blockstore.Store
	node   *client.Client

	// self and mrenclave identify this validateer among the shard's.
	self      account.ID
	mrenclave attestation.MrEnclave
	shard     sidechain.ShardID
	peersMu   sync.Mutex
	peers     []string
	peersAt   time.Time
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

func (h *host) StoreBlock(b *sidechain.Block, raw []byte) error { return h.blocks.Put(b, raw) }

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

// BroadcastBlock sends the block to the shard's other validateers, found in
// the parentchain's ShardStatus and enclave registry, over their attested
// trusted RPC. It does not wait.
func (h *host) BroadcastBlock(raw []byte) {
	peers := h.peerURLs()
	for _, url := range peers {
		go func(url string) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			c, err := rpcclient.Dial(ctx, url, rpcclient.Options{
				Verifiers: ratls.Verifiers(sim.NewVerifier()),
				Check: func(r *attestation.Report) error {
					if r.MrEnclave != h.mrenclave {
						return fmt.Errorf("peer runs mrenclave %s, not ours", r.MrEnclave)
					}
					return nil
				},
			})
			if err != nil {
				h.log.Warn("block broadcast: peer unreachable", "peer", url, "err", err)
				return
			}
			defer c.Close()
			if err := c.ImportBlock(ctx, raw); err != nil {
				h.log.Warn("block broadcast: peer refused", "peer", url, "err", err)
			}
		}(url)
	}
}

// PeerCount returns the number of other validateers last seen.
func (h *host) PeerCount() int {
	h.peersMu.Lock()
	defer h.peersMu.Unlock()
	return len(h.peers)
}

// peerURLs returns the trusted URLs of the shard's other validateers,
// refreshed from the parentchain at most every 10 s.
func (h *host) peerURLs() []string {
	h.peersMu.Lock()
	defer h.peersMu.Unlock()
	if time.Since(h.peersAt) < 10*time.Second {
		return h.peers
	}
	h.peersAt = time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var status []enclavebridge.ShardSignerStatus
	if err := h.node.Query(ctx, "/enclavebridge/shard_status/"+h.shard.String(), &status); err != nil {
		return h.peers
	}
	var urls []string
	for _, s := range status {
		if s.Signer == h.self {
			continue
		}
		var enc teerex.Enclave
		if err := h.node.Query(ctx, "/teerex/enclave/"+s.Signer.Hex(), &enc); err == nil && enc.URL != "" {
			urls = append(urls, enc.URL)
		}
	}
	h.peers = urls
	return urls
}

func (h *host) ParentchainNonce(ctx context.Context, id account.ID) (uint64, error) {
	return h.node.NextNonce(ctx, id)
}

func (h *host) SubmitParentchainTx(ctx context.Context, tx []byte) error {
	return h.node.Broadcast(ctx, tx)
}

// ReadParentchainState fetches each key's value after block height with
// its proof; the enclave verifies them. A height the node cannot prove
// (pruned, or not committed yet) is enclave.ErrStateUnavailable.
func (h *host) ReadParentchainState(ctx context.Context, height int64, keys [][]byte) ([]enclave.StateRead, error) {
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
