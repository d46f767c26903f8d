package lightclient

import (
	"bytes"
	"encoding/binary"
	"fmt"

	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/parentchain/types"
)

// stateMagic starts an encoded state; its last byte is the format version.
var stateMagic = []byte("ILC\x02")

// maxStateSize bounds what Restore decodes.
const maxStateSize = 16 << 20

// State encodes the client's trusted state for sealing:
//
//	"ILC\x02" || uvarint(len(chain id)) || chain id || genesis validators
//	hash (32 bytes) || cmtproto.LightBlock
//
// The light block holds, before the first verified block, no signed header
// and the genesis validator set; afterwards the last verified block's header
// and commit and the validator set at its height. The configuration is not
// part of the state; Restore takes it anew.
func (c *Client) State() ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var lb cmtproto.LightBlock
	vals := c.genesis
	if c.trusted != nil {
		lb.SignedHeader = c.trusted.ToProto()
		vals = c.trustedVals
	}
	vp, err := vals.ToProto()
	if err != nil {
		return nil, fmt.Errorf("lightclient: encode validator set: %w", err)
	}
	lb.ValidatorSet = vp
	body, err := lb.Marshal()
	if err != nil {
		return nil, fmt.Errorf("lightclient: encode state: %w", err)
	}
	out := append([]byte(nil), stateMagic...)
	out = binary.AppendUvarint(out, uint64(len(c.chainID)))
	out = append(out, c.chainID...)
	out = append(out, c.genesisValsHash[:]...)
	return append(out, body...), nil
}

// Restore returns a client in the state State encoded, with configuration
// cfg. It checks the state's consistency (header well formed, of the state's
// chain, validator set matching the header, commit signed by +2/3 of it); it
// cannot check that the state is genuine (a validly signed header of the
// right chain could be an old one), which is what sealing is for.
func Restore(state []byte, cfg Config) (*Client, error) {
	if err := cfg.ValidateBasic(); err != nil {
		return nil, err
	}
	if len(state) > maxStateSize {
		return nil, fmt.Errorf("%w: %d bytes", ErrBadState, len(state))
	}
	if !bytes.HasPrefix(state, stateMagic) {
		return nil, fmt.Errorf("%w: unknown format", ErrBadState)
	}
	rest := state[len(stateMagic):]
	n, k := binary.Uvarint(rest)
	if k <= 0 || n == 0 || n > cmttypes.MaxChainIDLen || uint64(len(rest)-k) < n {
		return nil, fmt.Errorf("%w: bad chain id", ErrBadState)
	}
	chainID := string(rest[k : k+int(n)])
	rest = rest[k+int(n):]
	if len(rest) < 32 {
		return nil, fmt.Errorf("%w: no genesis validators hash", ErrBadState)
	}
	var gvh [32]byte
	copy(gvh[:], rest)
	var lb cmtproto.LightBlock
	if err := lb.Unmarshal(rest[32:]); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if lb.ValidatorSet == nil || len(lb.ValidatorSet.Validators) == 0 {
		return nil, fmt.Errorf("%w: no validator set", ErrBadState)
	}
	pvals, err := validatorSetFromProto(lb.ValidatorSet)
	if err != nil {
		return nil, fmt.Errorf("%w: validator set: %w", ErrBadState, err)
	}
	vals, err := copyValidatorSet(pvals)
	if err != nil {
		return nil, fmt.Errorf("%w: validator set: %w", ErrBadState, err)
	}
	if lb.SignedHeader == nil {
		c, err := New(chainID, vals, cfg)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrBadState, err)
		}
		if c.genesisValsHash != gvh {
			return nil, fmt.Errorf("%w: genesis validators hash does not match the set", ErrBadState)
		}
		return c, nil
	}
	sh, err := cmttypes.SignedHeaderFromProto(lb.SignedHeader)
	if err != nil {
		return nil, fmt.Errorf("%w: signed header: %w", ErrBadState, err)
	}
	lblock := cmttypes.LightBlock{SignedHeader: sh, ValidatorSet: vals}
	if err := lblock.ValidateBasic(chainID); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	// Sealing protects the state; checking the commit again costs little
	// and catches a corrupted or mismatched one.
	if err := vals.VerifyCommitLight(chainID, sh.Commit.BlockID, sh.Height, sh.Commit); err != nil {
		return nil, fmt.Errorf("%w: commit: %w", ErrBadState, err)
	}
	return &Client{
		cfg:             cfg.withDefaults(),
		codec:           types.NewCodec(),
		chainID:         chainID,
		genesisValsHash: gvh,
		trusted:         sh,
		trustedVals:     vals,
	}, nil
}

// validatorSetFromProto is cmttypes.ValidatorSetFromProto, which
// dereferences a validator's nil public key when its key type and bytes do
// not name a key; that becomes an error here.
func validatorSetFromProto(vp *cmtproto.ValidatorSet) (vs *cmttypes.ValidatorSet, err error) {
	defer func() {
		if r := recover(); r != nil {
			vs, err = nil, fmt.Errorf("malformed validator: %v", r)
		}
	}()
	return cmttypes.ValidatorSetFromProto(vp)
}
