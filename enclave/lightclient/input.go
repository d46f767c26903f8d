package lightclient

import (
	"bytes"
	"errors"
	"fmt"

	abci "github.com/cometbft/cometbft/abci/types"
	cryptoenc "github.com/cometbft/cometbft/crypto/encoding"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"
)

// Input is what the host fetched for one parentchain height h.
type Input struct {
	// Block is the block at h.
	Block *cmttypes.Block
	// Commit is the commit for Block (from /commit?height=h).
	Commit *cmttypes.Commit
	// Validators is the validator set at h.
	Validators *cmttypes.ValidatorSet
	// Results are the transaction results of h (/block_results?height=h).
	Results []*abci.ExecTxResult
	// Next is the signed header of h+1; its LastResultsHash commits to
	// Results.
	Next *cmttypes.SignedHeader
	// NextValidators is the validator set at h+1.
	NextValidators *cmttypes.ValidatorSet
}

// InputFromRPC builds an Input for height h from the node's RPC answers:
// /block, /commit, /validators and /block_results at h, and /commit and
// /validators at h+1. It is for the untrusted host; it only checks that the
// answers fit together (one height, complete validator lists), Verify checks
// everything else.
//
// /validators is paginated (30 per page by default, 100 at most): the host
// must fetch every page and pass the validators of all pages in one
// ResultValidators; a partial list is refused here.
func InputFromRPC(
	block *ctypes.ResultBlock,
	commit *ctypes.ResultCommit,
	vals *ctypes.ResultValidators,
	results *ctypes.ResultBlockResults,
	next *ctypes.ResultCommit,
	nextVals *ctypes.ResultValidators,
) (Input, error) {
	switch {
	case block == nil || block.Block == nil:
		return Input{}, fmt.Errorf("%w: no block", ErrInvalidInput)
	case commit == nil || commit.Commit == nil:
		return Input{}, fmt.Errorf("%w: no commit", ErrInvalidInput)
	case results == nil:
		return Input{}, fmt.Errorf("%w: no block results", ErrInvalidInput)
	case next == nil || next.Header == nil || next.Commit == nil:
		return Input{}, fmt.Errorf("%w: no next signed header", ErrInvalidInput)
	}
	h := block.Block.Height
	if commit.Commit.Height != h || (commit.Header != nil && commit.Header.Height != h) {
		return Input{}, fmt.Errorf("%w: commit for height %d, block is %d", ErrInvalidInput, commit.Commit.Height, h)
	}
	if commit.Header != nil && !bytes.Equal(commit.Header.Hash(), block.Block.Header.Hash()) {
		return Input{}, fmt.Errorf("%w: commit's header is not the block's", ErrInvalidInput)
	}
	if results.Height != h {
		return Input{}, fmt.Errorf("%w: block results for height %d, block is %d", ErrInvalidInput, results.Height, h)
	}
	if next.Height != h+1 {
		return Input{}, fmt.Errorf("%w: next header height %d, want %d", ErrInvalidInput, next.Height, h+1)
	}
	vs, err := validatorSetFromRPC(vals, h)
	if err != nil {
		return Input{}, err
	}
	nvs, err := validatorSetFromRPC(nextVals, h+1)
	if err != nil {
		return Input{}, err
	}
	return Input{
		Block:          block.Block,
		Commit:         commit.Commit,
		Validators:     vs,
		Results:        results.TxResults,
		Next:           &cmttypes.SignedHeader{Header: next.Header, Commit: next.Commit},
		NextValidators: nvs,
	}, nil
}

func validatorSetFromRPC(r *ctypes.ResultValidators, height int64) (*cmttypes.ValidatorSet, error) {
	if r == nil {
		return nil, fmt.Errorf("%w: no validators for height %d", ErrInvalidInput, height)
	}
	if r.BlockHeight != height {
		return nil, fmt.Errorf("%w: validators for height %d, want %d", ErrInvalidInput, r.BlockHeight, height)
	}
	if len(r.Validators) == 0 || len(r.Validators) != r.Total {
		return nil, fmt.Errorf("%w: %d of %d validators at height %d (fetch all pages)", ErrInvalidInput, len(r.Validators), r.Total, height)
	}
	vs, err := copyValidators(r.Validators)
	if err != nil {
		return nil, fmt.Errorf("%w: validators at height %d: %w", ErrInvalidInput, height, err)
	}
	return vs, nil
}

// clone returns a deep copy of in that shares no memory with it and carries
// no cached hashes, with the validator sets rebuilt (so their total power is
// recomputed). blockErr is the copied block's ValidateBasic error, which the
// caller classifies; err reports missing or malformed parts.
func (in Input) clone() (out Input, blockErr, err error) {
	switch {
	case in.Block == nil:
		return Input{}, nil, fmt.Errorf("%w: no block", ErrInvalidInput)
	case in.Commit == nil:
		return Input{}, nil, fmt.Errorf("%w: no commit", ErrInvalidInput)
	case in.Validators.IsNilOrEmpty():
		return Input{}, nil, fmt.Errorf("%w: no validator set", ErrInvalidInput)
	case in.Next == nil || in.Next.Header == nil || in.Next.Commit == nil:
		return Input{}, nil, fmt.Errorf("%w: no next signed header", ErrInvalidInput)
	case in.NextValidators.IsNilOrEmpty():
		return Input{}, nil, fmt.Errorf("%w: no next validator set", ErrInvalidInput)
	}
	for i, r := range in.Results {
		if r == nil {
			return Input{}, nil, fmt.Errorf("%w: result %d is nil", ErrInvalidInput, i)
		}
	}
	if out.Validators, err = copyValidatorSet(in.Validators); err != nil {
		return Input{}, nil, fmt.Errorf("%w: validator set: %w", ErrInvalidInput, err)
	}
	if out.NextValidators, err = copyValidatorSet(in.NextValidators); err != nil {
		return Input{}, nil, fmt.Errorf("%w: next validator set: %w", ErrInvalidInput, err)
	}
	out.Block = cloneBlock(in.Block)
	out.Commit = cloneCommit(in.Commit)
	out.Next = &cmttypes.SignedHeader{Header: cloneHeader(in.Next.Header), Commit: cloneCommit(in.Next.Commit)}
	out.Results = make([]*abci.ExecTxResult, len(in.Results))
	for i, r := range in.Results {
		d := abci.DeterministicExecTxResult(r)
		d.Data = bytes.Clone(d.Data)
		out.Results[i] = d
	}
	return out, out.Block.ValidateBasic(), nil
}

func cloneHex(b []byte) []byte { return bytes.Clone(b) }

func cloneBlockID(id cmttypes.BlockID) cmttypes.BlockID {
	return cmttypes.BlockID{
		Hash:          cloneHex(id.Hash),
		PartSetHeader: cmttypes.PartSetHeader{Total: id.PartSetHeader.Total, Hash: cloneHex(id.PartSetHeader.Hash)},
	}
}

func cloneHeader(h *cmttypes.Header) *cmttypes.Header {
	c := *h
	c.LastBlockID = cloneBlockID(h.LastBlockID)
	c.LastCommitHash = cloneHex(h.LastCommitHash)
	c.DataHash = cloneHex(h.DataHash)
	c.ValidatorsHash = cloneHex(h.ValidatorsHash)
	c.NextValidatorsHash = cloneHex(h.NextValidatorsHash)
	c.ConsensusHash = cloneHex(h.ConsensusHash)
	c.AppHash = cloneHex(h.AppHash)
	c.LastResultsHash = cloneHex(h.LastResultsHash)
	c.EvidenceHash = cloneHex(h.EvidenceHash)
	c.ProposerAddress = cloneHex(h.ProposerAddress)
	return &c
}

func cloneCommit(c *cmttypes.Commit) *cmttypes.Commit {
	if c == nil {
		return nil
	}
	out := &cmttypes.Commit{Height: c.Height, Round: c.Round, BlockID: cloneBlockID(c.BlockID)}
	if c.Signatures != nil {
		out.Signatures = make([]cmttypes.CommitSig, len(c.Signatures))
		for i, s := range c.Signatures {
			out.Signatures[i] = cmttypes.CommitSig{
				BlockIDFlag:      s.BlockIDFlag,
				ValidatorAddress: cloneHex(s.ValidatorAddress),
				Timestamp:        s.Timestamp,
				Signature:        cloneHex(s.Signature),
			}
		}
	}
	return out
}

func cloneBlock(b *cmttypes.Block) *cmttypes.Block {
	txs := make(cmttypes.Txs, len(b.Data.Txs))
	for i, tx := range b.Data.Txs {
		txs[i] = bytes.Clone(tx)
	}
	return &cmttypes.Block{
		Header: *cloneHeader(&b.Header),
		Data:   cmttypes.Data{Txs: txs},
		// Evidence is only hashed against the header; the parentchain
		// client does not act on it.
		Evidence:   cmttypes.EvidenceData{Evidence: append([]cmttypes.Evidence(nil), b.Evidence.Evidence...)},
		LastCommit: cloneCommit(b.LastCommit),
	}
}

// copyValidatorSet rebuilds vs from copies of its validators.
func copyValidatorSet(vs *cmttypes.ValidatorSet) (*cmttypes.ValidatorSet, error) {
	if vs.IsNilOrEmpty() {
		return nil, errors.New("empty validator set")
	}
	return copyValidators(vs.Validators)
}

// copyValidators builds a validator set from copies of vals, checking each
// (address derived from the key, non-negative power) and sorting them into
// CometBFT's canonical order.
func copyValidators(vals []*cmttypes.Validator) (*cmttypes.ValidatorSet, error) {
	cp := make([]*cmttypes.Validator, len(vals))
	for i, v := range vals {
		if v == nil || v.PubKey == nil {
			return nil, fmt.Errorf("validator %d has no public key", i)
		}
		pk, err := cryptoenc.PubKeyFromTypeAndBytes(v.PubKey.Type(), v.PubKey.Bytes())
		if err != nil {
			return nil, fmt.Errorf("validator %d: %w", i, err)
		}
		cp[i] = &cmttypes.Validator{
			Address:          cloneHex(v.Address),
			PubKey:           pk,
			VotingPower:      v.VotingPower,
			ProposerPriority: v.ProposerPriority,
		}
	}
	vs, err := validatorSetFromExisting(cp)
	if err != nil {
		return nil, err
	}
	return vs, nil
}

// validatorSetFromExisting is cmttypes.ValidatorSetFromExistingValidators,
// which panics on a total voting power beyond the maximum; that becomes an
// error here.
func validatorSetFromExisting(vals []*cmttypes.Validator) (vs *cmttypes.ValidatorSet, err error) {
	defer func() {
		if r := recover(); r != nil {
			vs, err = nil, fmt.Errorf("%v", r)
		}
	}()
	return cmttypes.ValidatorSetFromExistingValidators(vals)
}
