// Package enclave is the validateer's trusted core: keys, the sidechain
// state and its transition function, parentchain light-client verification,
// sidechain block production and import, and the trusted RPC's backend.
//
// The trust boundary is this package tree. The host (package service) calls
// the enclave only through the methods of *Enclave (the ECALLs) and the
// enclave calls the host only through the Host interface (the OCALLs).
// Nothing secret leaves the enclave unencrypted: the host stores sealed
// keys, encrypted state snapshots and blocks whose state diffs are encrypted
// under the shard's state key. Nothing in this tree imports the host.
package enclave

import (
	"context"
	"errors"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/sidechain"
)

// ErrNotFound is what Host returns for absent state blobs and blocks.
var ErrNotFound = errors.New("enclave: not found")

// Host is everything the enclave asks of the untrusted host (the OCALLs).
type Host interface {
	// SealedStore keeps the sealed keys.
	keys.SealedStore

	// PutState, GetState and DeleteState keep encrypted state blobs
	// (snapshots, sealed sync progress). GetState returns ErrNotFound for
	// an absent key.
	PutState(key string, blob []byte) error
	GetState(key string) ([]byte, error)
	DeleteState(key string) error

	// StoreBlock keeps a verified block; BlockByNumber returns a stored
	// block's encoding (ErrNotFound if absent).
	StoreBlock(b *sidechain.Block, raw []byte) error
	BlockByNumber(shard sidechain.ShardID, n uint64) ([]byte, error)
	// LastBlock returns the shard's highest stored block (ErrNotFound if
	// none).
	LastBlock(shard sidechain.ShardID) ([]byte, error)
	// DeleteBlocksFrom removes the shard's stored blocks numbered n and
	// above (a fork's losing branch after a rollback).
	DeleteBlocksFrom(shard sidechain.ShardID, n uint64) error
	// BroadcastBlock sends a block to the shard's other validateers.
	BroadcastBlock(raw []byte)
	// ForwardOperations sends operations submitted here, sealed as one
	// batch with the shard's key, to the shard's other validateers
	// (sidechain_forwardOperations). Both return at once; delivery is best
	// effort.
	ForwardOperations(sealed []byte)

	// ParentchainNonce returns an account's next nonce on the parentchain,
	// counting its transactions waiting in the node's mempool.
	ParentchainNonce(ctx context.Context, id account.ID) (uint64, error)
	// SubmitParentchainTx sends a signed parentchain transaction and
	// returns once the node accepted or refused it.
	SubmitParentchainTx(ctx context.Context, tx []byte) error
	// ReadParentchainState returns the parentchain's state after block
	// height for each key, in order, with proofs (abci_query
	// "/store/<module>/key"). The enclave verifies every answer against
	// the app hash of that verified height; it builds the keys itself.
	// ErrStateUnavailable means the node cannot prove that height.
	ReadParentchainState(ctx context.Context, height int64, keys [][]byte) ([]StateRead, error)
}
