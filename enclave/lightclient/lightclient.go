// Package lightclient is the enclave's CometBFT light client for the
// parentchain. The untrusted host fetches parentchain blocks, their commits,
// validator sets and block results; the enclave verifies each block with this
// client before it acts on any transaction in it (DESIGN.md §4, "Parentchain
// sync").
//
// Verification is strictly sequential: the first block verified is the
// chain's initial height (1), checked against the genesis validator set the
// enclave was configured with; every later block is the next height after the
// last verified one and is checked with light.VerifyAdjacent from the last
// verified header. The client never skips heights, so no trust-level
// (1/3) assumption about an old validator set is ever made.
//
// A block's transaction results are committed to by the NEXT header
// (LastResultsHash of height h+1 covers the results of height h), so
// verifying block h needs the signed header of h+1 as well (Input.Next),
// which is verified adjacent to block h. The client's trusted header then
// advances to block h only, not to h+1: h+1's transactions and results have
// not been verified yet, and the next call's Block is h+1 with its own Next
// h+2. A validateer therefore lags the parentchain tip by one block.
//
// Only the deterministic part of a transaction result is committed to by
// the chain (code, data, gas wanted/used: see abci.DeterministicExecTxResult).
// Events, log and codespace are NOT authenticated, so Verified exposes only
// whether a transaction succeeded (code 0).
package lightclient

import (
	"bytes"
	"errors"
	"fmt"
	"sync"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/types"
)

// InitialHeight is the parentchain's first block height (its genesis has
// initial_height 1). The first block a new client verifies must have it.
const InitialHeight int64 = 1

// Defaults of Config.
const (
	// DefaultTrustingPeriod is ten years. See Config.TrustingPeriod for why
	// so long a period is safe here.
	DefaultTrustingPeriod = 10 * 365 * 24 * time.Hour
	// DefaultMaxClockDrift is how far a header's time may be ahead of now.
	DefaultMaxClockDrift = 10 * time.Second
)

// Config tunes verification. Zero fields take their defaults.
type Config struct {
	// TrustingPeriod is how long the last verified header stays trusted:
	// a block is refused (ErrExpired) if the last verified header's time
	// plus TrustingPeriod is not after now.
	//
	// In CometBFT's light-client model the period must stay below the
	// unbonding period, so that validators who sign a conflicting history
	// can still be punished; it protects a client that skips heights or
	// resumes from an old trusted header against validators who have since
	// left the set. This client does neither: it verifies every height,
	// from genesis, adjacently, each header by the validator set the
	// previously verified header committed to (NextValidatorsHash), with
	// +2/3 of that set's power required. A validateer that checks every
	// height therefore never trusts a validator set other than the current
	// one, and the period does not need to be short; the default is ten
	// years (DefaultTrustingPeriod). Its remaining effect is that a
	// validateer that has been offline for longer than the period cannot
	// resume without a new trust root.
	TrustingPeriod time.Duration
	// MaxClockDrift is how far a header's time may be ahead of the now
	// passed to Verify (default DefaultMaxClockDrift).
	MaxClockDrift time.Duration
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	return Config{TrustingPeriod: DefaultTrustingPeriod, MaxClockDrift: DefaultMaxClockDrift}
}

// ValidateBasic reports a configuration that cannot be used: negative
// durations. Zero durations are valid and mean the defaults.
func (c Config) ValidateBasic() error {
	if c.TrustingPeriod < 0 {
		return fmt.Errorf("%w: negative trusting period %v", ErrConfig, c.TrustingPeriod)
	}
	if c.MaxClockDrift < 0 {
		return fmt.Errorf("%w: negative max clock drift %v", ErrConfig, c.MaxClockDrift)
	}
	return nil
}

func (c Config) withDefaults() Config {
	if c.TrustingPeriod == 0 {
		c.TrustingPeriod = DefaultTrustingPeriod
	}
	if c.MaxClockDrift == 0 {
		c.MaxClockDrift = DefaultMaxClockDrift
	}
	return c
}

// Errors. Every refusal of Verify wraps exactly one of the Err* values below
// (test with errors.Is) and, where CometBFT reported the failure, the
// CometBFT error as well (test with errors.As, e.g. light.ErrOldHeaderExpired
// or light.ErrInvalidHeader).
var (
	// ErrConfig: the configuration, chain id or genesis validator set given
	// to New or Restore is unusable.
	ErrConfig = errors.New("lightclient: bad configuration")
	// ErrBadState: the state given to Restore does not decode or is
	// inconsistent.
	ErrBadState = errors.New("lightclient: bad state")

	// ErrInvalidInput: a part of the input is missing or malformed.
	ErrInvalidInput = errors.New("lightclient: invalid input")
	// ErrWrongChain: a header belongs to another chain.
	ErrWrongChain = errors.New("lightclient: header of another chain")
	// ErrHeightGap: the block is not the next height after the last verified
	// one (or, for a new client, not the initial height), or Next is not the
	// height after the block.
	ErrHeightGap = errors.New("lightclient: unexpected height")
	// ErrExpired: the last verified header is older than the trusting period.
	ErrExpired = errors.New("lightclient: trusted header expired")
	// ErrHeaderFromFuture: a header's time is beyond now plus the maximum
	// clock drift.
	ErrHeaderFromFuture = errors.New("lightclient: header time in the future")
	// ErrInvalidHeader: a header is malformed or its time does not increase.
	ErrInvalidHeader = errors.New("lightclient: invalid header")
	// ErrInvalidBlock: the block's contents (last commit, evidence) do not
	// match its header.
	ErrInvalidBlock = errors.New("lightclient: invalid block")
	// ErrValidatorsMismatch: a supplied validator set does not hash to the
	// header's ValidatorsHash, or the header's ValidatorsHash is not the set
	// the previous header (or genesis) named.
	ErrValidatorsMismatch = errors.New("lightclient: validator set mismatch")
	// ErrNotLinked: a header's LastBlockID is not the block it should follow.
	ErrNotLinked = errors.New("lightclient: header does not follow the previous block")
	// ErrBadCommit: a commit is malformed, is for another block or height,
	// or is not signed by more than 2/3 of the validators' power.
	ErrBadCommit = errors.New("lightclient: commit does not verify")
	// ErrDataHashMismatch: the block's transactions do not hash to the
	// header's DataHash.
	ErrDataHashMismatch = errors.New("lightclient: transactions do not match the header")
	// ErrResultsMismatch: the results are not one per transaction or do not
	// hash to the next header's LastResultsHash.
	ErrResultsMismatch = errors.New("lightclient: results do not match the next header")
	// ErrUndecodableTx: a transaction that succeeded on chain (code 0) does
	// not decode with this enclave's codec: the enclave and the chain speak
	// different transaction formats and the enclave must be upgraded.
	ErrUndecodableTx = errors.New("lightclient: successful transaction does not decode")
)

// Tx is one transaction of a verified block.
type Tx struct {
	// Index is the transaction's position in the block.
	Index int
	// Hash is SHA-256 of the transaction bytes, CometBFT's transaction hash.
	Hash [32]byte
	// Signer is the transaction's signer; zero if it did not decode.
	Signer account.ID
	// Call is the transaction's call; zero if it did not decode.
	Call types.Call
	// OK is set when the transaction's verified result code is 0: the chain
	// executed its call successfully. A transaction whose call failed (or
	// whose envelope was refused) has OK false; its state effect is at most
	// the fee and nonce.
	OK bool
}

// Verified is a block the client verified.
type Verified struct {
	Height int64
	// Hash is the block hash (the BlockID hash its commit signs).
	Hash [32]byte
	// Time is the block's header time.
	Time time.Time
	// AppHash is the app hash of the state after this block, from the
	// verified next header: the root that proofs of the parentchain's state
	// at Height verify against (package parentchain/proof).
	AppHash []byte
	// Txs are the block's transactions in order.
	Txs []Tx
}

// Client verifies parentchain blocks one height after the other. It is safe
// for concurrent use; Verify calls are serialised.
type Client struct {
	cfg     Config
	codec   *types.Codec
	chainID string
	// genesisValsHash is the hash of the genesis validator set the client
	// started from: with the chain id, the chain's genesis hash.
	genesisValsHash [32]byte

	mu sync.Mutex
	// genesis is the genesis validator set; used until the first block is
	// verified, nil afterwards.
	genesis *cmttypes.ValidatorSet
	// trusted is the last verified block's header and commit; nil before
	// the first block.
	trusted *cmttypes.SignedHeader
	// trustedVals is the validator set at trusted's height.
	trustedVals *cmttypes.ValidatorSet
}

// New returns a client for chainID that has verified nothing yet and will
// verify the chain's initial height against genesisValidators.
func New(chainID string, genesisValidators *cmttypes.ValidatorSet, cfg Config) (*Client, error) {
	if err := cfg.ValidateBasic(); err != nil {
		return nil, err
	}
	if chainID == "" || len(chainID) > cmttypes.MaxChainIDLen {
		return nil, fmt.Errorf("%w: chain id %q", ErrConfig, chainID)
	}
	if genesisValidators.IsNilOrEmpty() {
		return nil, fmt.Errorf("%w: empty genesis validator set", ErrConfig)
	}
	vals, err := copyValidatorSet(genesisValidators)
	if err != nil {
		return nil, fmt.Errorf("%w: genesis validator set: %w", ErrConfig, err)
	}
	var gvh [32]byte
	copy(gvh[:], vals.Hash())
	return &Client{cfg: cfg.withDefaults(), codec: types.NewCodec(), chainID: chainID, genesisValsHash: gvh, genesis: vals}, nil
}

// ChainID returns the chain the client follows.
func (c *Client) ChainID() string { return c.chainID }

// Chain returns the chain the client follows as transactions name it: its
// id and its genesis hash, from the trust root the client was sealed with
// (never from the host).
func (c *Client) Chain() types.Chain {
	return types.Chain{ID: c.chainID, Genesis: types.GenesisHash(c.chainID, c.genesisValsHash[:])}
}

// Height returns the last verified height, 0 before the first block.
func (c *Client) Height() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trusted == nil {
		return 0
	}
	return c.trusted.Height
}

// NextHeight returns the height the next Verify call's Block must have.
func (c *Client) NextHeight() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nextHeight()
}

func (c *Client) nextHeight() int64 {
	if c.trusted == nil {
		return InitialHeight
	}
	return c.trusted.Height + 1
}

// LastBlockHash returns the hash of the last verified block, zero before the
// first.
func (c *Client) LastBlockHash() [32]byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	var h [32]byte
	if c.trusted != nil {
		copy(h[:], c.trusted.Commit.BlockID.Hash)
	}
	return h
}

// LastBlockTime returns the header time of the last verified block, zero
// before the first.
func (c *Client) LastBlockTime() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.trusted == nil {
		return time.Time{}
	}
	return c.trusted.Time
}

// Verify verifies in's block, which must be the next height after the last
// verified one, with its transactions and their results, and on success
// advances the client to it. now is the caller's current time; it bounds
// header times (MaxClockDrift) and the trusting period; those two checks
// are only as good as the enclave's time source, which the host may
// influence. On any error the client is unchanged and the error wraps one of
// the Err* values.
func (c *Client) Verify(in Input, now time.Time) (v *Verified, err error) {
	defer func() {
		// The input comes from the untrusted host; malformed structures
		// that slip past the checks must not crash the enclave.
		if r := recover(); r != nil {
			v, err = nil, fmt.Errorf("%w: %v", ErrInvalidInput, r)
		}
	}()

	c.mu.Lock()
	defer c.mu.Unlock()

	// Work on a private deep copy: nothing the caller holds aliases what the
	// client verifies or keeps, and no cached hash survives.
	cp, blockErr, err := in.clone()
	if err != nil {
		return nil, err
	}
	block, next := cp.Block, cp.Next
	h := block.Height

	if block.ChainID != c.chainID {
		return nil, fmt.Errorf("%w: block %d is of chain %q, not %q", ErrWrongChain, h, block.ChainID, c.chainID)
	}
	if next.ChainID != c.chainID {
		return nil, fmt.Errorf("%w: next header is of chain %q, not %q", ErrWrongChain, next.ChainID, c.chainID)
	}
	if want := c.nextHeight(); h != want {
		return nil, fmt.Errorf("%w: block height %d, want %d", ErrHeightGap, h, want)
	}
	if next.Height != h+1 {
		return nil, fmt.Errorf("%w: next header height %d, want %d", ErrHeightGap, next.Height, h+1)
	}

	if err := block.Header.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("%w: block %d: %w", ErrInvalidHeader, h, err)
	}
	// The transactions against the header. Computed afresh from the bytes.
	if dh := cmttypes.Txs(block.Data.Txs).Hash(); !bytes.Equal(dh, block.DataHash) {
		return nil, fmt.Errorf("%w: header data hash %X, transactions hash to %X", ErrDataHashMismatch, []byte(block.DataHash), dh)
	}
	if blockErr != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidBlock, blockErr)
	}

	// The block's header against the trusted header (or genesis).
	header := block.Header // kept without the block's transactions
	sh := &cmttypes.SignedHeader{Header: &header, Commit: cp.Commit}
	if err := c.checkHeader(c.trusted, sh, cp.Validators, now); err != nil {
		return nil, fmt.Errorf("block %d: %w", h, err)
	}
	// The next header against the block's.
	if err := c.checkHeader(sh, next, cp.NextValidators, now); err != nil {
		return nil, fmt.Errorf("next header %d: %w", h+1, err)
	}

	// The results against the next header.
	if len(cp.Results) != len(block.Data.Txs) {
		return nil, fmt.Errorf("%w: %d results for %d transactions", ErrResultsMismatch, len(cp.Results), len(block.Data.Txs))
	}
	results := cmttypes.NewResults(cp.Results)
	if rh := results.Hash(); !bytes.Equal(rh, next.LastResultsHash) {
		return nil, fmt.Errorf("%w: next header's last results hash %X, results hash to %X", ErrResultsMismatch, []byte(next.LastResultsHash), rh)
	}

	out := &Verified{Height: h, Time: block.Time, AppHash: bytes.Clone(next.AppHash), Txs: make([]Tx, len(block.Data.Txs))}
	copy(out.Hash[:], cp.Commit.BlockID.Hash)
	for i, raw := range block.Data.Txs {
		t := Tx{Index: i, Hash: types.TxHash(raw), OK: results[i].Code == 0}
		tx, derr := c.codec.DecodeTx(raw)
		switch {
		case derr == nil:
			t.Signer, t.Call = tx.Body.Signer, tx.Body.Call
		case t.OK:
			return nil, fmt.Errorf("%w: transaction %d (%X): %w", ErrUndecodableTx, i, t.Hash, derr)
		}
		out.Txs[i] = t
	}

	c.trusted, c.trustedVals, c.genesis = sh, cp.Validators, nil
	return out, nil
}

// checkHeader verifies sh with validator set vals (the set at sh's height)
// as the successor of prev, or, if prev is nil, as the chain's first header
// against the genesis validator set. The pre-checks classify the failure;
// light.VerifyAdjacent (or, for the first header, VerifyCommitLight) is the
// authoritative check.
func (c *Client) checkHeader(prev, sh *cmttypes.SignedHeader, vals *cmttypes.ValidatorSet, now time.Time) error {
	cfg := c.cfg
	if prev != nil && !prev.Time.Add(cfg.TrustingPeriod).After(now) {
		// light.HeaderExpired, reported the way VerifyAdjacent reports it.
		return fmt.Errorf("%w: %w", ErrExpired, lightErrOldHeaderExpired(prev, cfg.TrustingPeriod, now))
	}
	if err := sh.Header.ValidateBasic(); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidHeader, err)
	}
	if err := sh.Commit.ValidateBasic(); err != nil {
		return fmt.Errorf("%w: %w", ErrBadCommit, err)
	}
	if sh.Commit.Height != sh.Height {
		return fmt.Errorf("%w: commit is for height %d, header is %d", ErrBadCommit, sh.Commit.Height, sh.Height)
	}
	if hh := sh.Header.Hash(); !bytes.Equal(hh, sh.Commit.BlockID.Hash) {
		return fmt.Errorf("%w: commit signs block %X, header hashes to %X", ErrBadCommit, []byte(sh.Commit.BlockID.Hash), []byte(hh))
	}
	if vh := vals.Hash(); !bytes.Equal(vh, sh.ValidatorsHash) {
		return fmt.Errorf("%w: supplied validator set hashes to %X, header names %X", ErrValidatorsMismatch, vh, []byte(sh.ValidatorsHash))
	}
	if prev == nil {
		if gh := c.genesis.Hash(); !bytes.Equal(gh, sh.ValidatorsHash) {
			return fmt.Errorf("%w: header names validators %X, genesis set is %X", ErrValidatorsMismatch, []byte(sh.ValidatorsHash), gh)
		}
	} else {
		if !bytes.Equal(prev.NextValidatorsHash, sh.ValidatorsHash) {
			return fmt.Errorf("%w: header names validators %X, previous header named %X", ErrValidatorsMismatch, []byte(sh.ValidatorsHash), []byte(prev.NextValidatorsHash))
		}
		if !sh.LastBlockID.Equals(prev.Commit.BlockID) {
			return fmt.Errorf("%w: last block id %v, previous block is %v", ErrNotLinked, sh.LastBlockID, prev.Commit.BlockID)
		}
		if !sh.Time.After(prev.Time) {
			return fmt.Errorf("%w: time %v not after previous header's %v", ErrInvalidHeader, sh.Time, prev.Time)
		}
	}
	if !sh.Time.Before(now.Add(cfg.MaxClockDrift)) {
		return fmt.Errorf("%w: header time %v, now %v, max drift %v", ErrHeaderFromFuture, sh.Time, now, cfg.MaxClockDrift)
	}

	if prev == nil {
		if err := sh.ValidateBasic(c.chainID); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidHeader, err)
		}
		if err := c.genesis.VerifyCommitLight(c.chainID, sh.Commit.BlockID, sh.Height, sh.Commit); err != nil {
			return fmt.Errorf("%w: %w", ErrBadCommit, err)
		}
		return nil
	}
	if err := lightVerifyAdjacent(prev, sh, vals, cfg.TrustingPeriod, now, cfg.MaxClockDrift); err != nil {
		if isExpired(err) {
			return fmt.Errorf("%w: %w", ErrExpired, err)
		}
		// Everything else VerifyAdjacent checks was checked above; what is
		// left is the commit's signatures.
		return fmt.Errorf("%w: %w", ErrBadCommit, err)
	}
	return nil
}
