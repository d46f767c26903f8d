// Package sidechain anchors the sidechains' finality on the parentchain, the
// Substrate sidechain pallet's counterpart: a shard's primary enclave
// confirms, every so many sidechain blocks, the block it imported, naming the
// previously confirmed block as its ancestor. Forks resolve to the chain
// anchored here.
package sidechain

import (
	"encoding/hex"

	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	sc "github.com/integritee-go/integritee/sidechain"
)

// ModuleName is the module's name in calls, events, errors and queries.
const ModuleName = "sidechain"

// Errors.
var (
	ErrNotPrimary         = types.NewError(ModuleName, 1, "NotPrimary", "only the shard's primary enclave may confirm sidechain blocks")
	ErrAncestorMismatch   = types.NewError(ModuleName, 2, "AncestorMismatch", "ancestor is not the shard's last confirmed block")
	ErrNotDescendant      = types.NewError(ModuleName, 3, "NotDescendant", "candidate's number is not above its ancestor's")
	ErrUnexpectedAncestor = types.NewError(ModuleName, 4, "UnexpectedAncestor", "no block of the shard is confirmed yet, so the ancestor must be empty")
)

var prefixLatest = []byte("sidechain/latest/")

// LatestKey is the state key of a shard's last confirmed sidechain block.
func LatestKey(shard sc.ShardID) []byte {
	return append(append([]byte{}, prefixLatest...), shard[:]...)
}

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

// BlockConfirmation names a sidechain block.
type BlockConfirmation struct {
	Number uint64   `cbor:"1,keyasint"`
	Hash   [32]byte `cbor:"2,keyasint"`
}

// ConfirmImportedSidechainBlockArgs are the arguments of
// sidechain.confirm_imported_sidechain_block.
type ConfirmImportedSidechainBlockArgs struct {
	Shard sc.ShardID `cbor:"1,keyasint"`
	// Ancestor is the shard's last confirmed block; absent for the first
	// confirmation.
	Ancestor *BlockConfirmation `cbor:"2,keyasint,omitempty"`
	// Candidate is the block to confirm.
	Candidate BlockConfirmation `cbor:"3,keyasint"`
}

// Module is the sidechain module.
type Module struct {
	codec  *types.Codec
	bridge *enclavebridge.Module
}

// New returns the sidechain module; bridge tells each shard's primary.
func New(codec *types.Codec, bridge *enclavebridge.Module) *Module {
	return &Module{codec: codec, bridge: bridge}
}

// Name implements types.Module.
func (*Module) Name() string { return ModuleName }

// Latest returns the shard's last confirmed block.
func (m *Module) Latest(ctx *types.Context, shard sc.ShardID) (BlockConfirmation, bool) {
	var c BlockConfirmation
	ok := ctx.Get(LatestKey(shard), &c)
	return c, ok
}

// Exec implements types.Module.
func (m *Module) Exec(ctx *types.Context, method string, args []byte) error {
	switch method {
	case "confirm_imported_sidechain_block":
		return types.Run(ctx, "sidechain.confirm_imported_sidechain_block", args, m.confirm)
	}
	return types.ErrUnknownCall.Wrap("sidechain.%s", method)
}

func (m *Module) confirm(ctx *types.Context, a ConfirmImportedSidechainBlockArgs) error {
	sender := ctx.Origin.Signer
	primary, ok := m.bridge.Primary(ctx, a.Shard)
	if !ok {
		return ErrNotPrimary.Wrap("shard %s has no authorised enclave", a.Shard)
	}
	if sender != primary {
		return ErrNotPrimary.Wrap("shard %s: primary is %s, sender %s", a.Shard, primary, sender)
	}
	latest, confirmed := m.Latest(ctx, a.Shard)
	switch {
	case !confirmed && a.Ancestor != nil:
		return ErrUnexpectedAncestor.Wrap("shard %s, ancestor #%d", a.Shard, a.Ancestor.Number)
	case confirmed && (a.Ancestor == nil || *a.Ancestor != latest):
		return ErrAncestorMismatch.Wrap("shard %s: last confirmed #%d %s", a.Shard, latest.Number, hex0x(latest.Hash[:]))
	case confirmed && a.Candidate.Number <= latest.Number:
		return ErrNotDescendant.Wrap("candidate #%d, ancestor #%d", a.Candidate.Number, latest.Number)
	}
	ctx.Set(LatestKey(a.Shard), a.Candidate)
	ctx.Event(ModuleName, "FinalizedSidechainBlock",
		"shard", a.Shard, "block_number", a.Candidate.Number, "block_hash", hex0x(a.Candidate.Hash[:]), "by", sender)
	return nil
}

// LatestInfo is the answer to the latest query.
type LatestInfo struct {
	Shard  sc.ShardID `json:"shard"`
	Number uint64     `json:"block_number"`
	Hash   string     `json:"block_hash"`
}

// Query implements types.Module. Paths: latest/<shard> (base58 or 0x-hex).
func (m *Module) Query(r types.Reader, path []string) (any, error) {
	if len(path) == 2 && path[0] == "latest" {
		shard, err := sc.ParseShardID(path[1])
		if err != nil {
			return nil, types.ErrBadQuery.Wrap("%v", err)
		}
		c, ok := m.Latest(types.QueryContext(r, m.codec), shard)
		if !ok {
			return nil, types.ErrNotFound.Wrap("no block of shard %s is confirmed", shard)
		}
		return LatestInfo{Shard: shard, Number: c.Number, Hash: hex0x(c.Hash[:])}, nil
	}
	return nil, types.ErrUnknownPath.Wrap("/sidechain/%v", path)
}
