package lightclient

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/light"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
)

func newClient(t *testing.T, c *chain, cfg Config) *Client {
	t.Helper()
	lc, err := New(c.chainID, c.vals[1], cfg)
	if err != nil {
		t.Fatal(err)
	}
	return lc
}

// verifyUpTo verifies heights from the client's next height up to h.
func verifyUpTo(t *testing.T, lc *Client, c *chain, h int64) {
	t.Helper()
	for i := lc.NextHeight(); i <= h; i++ {
		if _, err := lc.Verify(c.input(i), testNow); err != nil {
			t.Fatalf("verify %d: %v", i, err)
		}
	}
}

func mustState(t *testing.T, lc *Client) []byte {
	t.Helper()
	s, err := lc.State()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// refuse checks that Verify refuses in with want and leaves the client as it
// was.
func refuse(t *testing.T, lc *Client, in Input, now time.Time, want error) error {
	t.Helper()
	before, height := mustState(t, lc), lc.Height()
	v, err := lc.Verify(in, now)
	if err == nil {
		t.Fatalf("Verify accepted height %d, want %v", v.Height, want)
	}
	if v != nil {
		t.Errorf("Verify returned a result with error %v", err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("Verify error %v, want %v", err, want)
	}
	if after := mustState(t, lc); !bytes.Equal(before, after) || lc.Height() != height {
		t.Fatalf("refused input (%v) changed the client's state", err)
	}
	return err
}

func TestVerifyGoodSequence(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	lc := newClient(t, c, Config{})
	if lc.Height() != 0 || lc.NextHeight() != 1 || lc.LastBlockHash() != [32]byte{} {
		t.Fatalf("new client at height %d, next %d", lc.Height(), lc.NextHeight())
	}
	for h := int64(1); h <= 5; h++ {
		v, err := lc.Verify(c.input(h), testNow)
		if err != nil {
			t.Fatalf("verify %d: %v", h, err)
		}
		if v.Height != h || !bytes.Equal(v.Hash[:], c.blocks[h].Hash()) || !v.Time.Equal(blockTime(h)) {
			t.Fatalf("verified %d: height %d hash %X time %v", h, v.Height, v.Hash, v.Time)
		}
		if lc.Height() != h || lc.NextHeight() != h+1 || lc.LastBlockHash() != v.Hash {
			t.Fatalf("after %d: client at %d", h, lc.Height())
		}
		// The state after block h is committed to by header h+1.
		if !bytes.Equal(v.AppHash, c.blocks[h+1].AppHash) || bytes.Equal(v.AppHash, c.blocks[h].AppHash) {
			t.Fatalf("verified %d: app hash %X, header %d carries %X", h, v.AppHash, h+1, []byte(c.blocks[h+1].AppHash))
		}
		if h%4 == 0 {
			if len(v.Txs) != 0 {
				t.Fatalf("empty block %d yields %d txs", h, len(v.Txs))
			}
			continue
		}
		checkDefaultTxs(t, c, h, v.Txs)
	}
}

func checkDefaultTxs(t *testing.T, c *chain, h int64, txs []Tx) {
	t.Helper()
	if len(txs) != 4 {
		t.Fatalf("block %d: %d txs", h, len(txs))
	}
	want := []struct {
		signer [32]byte
		call   types.Call
		ok     bool
	}{
		{alice.ID(), transferCall(), true},
		{bob.ID(), shieldCall(types.TEER(5)), true},
		{bob.ID(), shieldCall(types.Balance{}), false},
		{[32]byte{}, types.Call{}, false},
	}
	for i, tx := range txs {
		w := want[i]
		if tx.Index != i || tx.Hash != types.TxHash(c.blocks[h].Txs[i]) {
			t.Errorf("block %d tx %d: index %d hash %X", h, i, tx.Index, tx.Hash)
		}
		if [32]byte(tx.Signer) != w.signer || tx.OK != w.ok ||
			tx.Call.Module != w.call.Module || tx.Call.Method != w.call.Method || !bytes.Equal(tx.Call.Args, w.call.Args) {
			t.Errorf("block %d tx %d: signer %s call %s ok %v; want %x %s %v", h, i, tx.Signer, tx.Call, tx.OK, w.signer, w.call, w.ok)
		}
	}
	// The shield's arguments decode into the module's argument struct.
	var args enclavebridge.ShieldFundsArgs
	if err := codec.Unmarshal(txs[1].Call.Args, &args); err != nil || args.Shard != shard || args.Amount != types.TEER(5) {
		t.Errorf("shield args %+v: %v", args, err)
	}
	var tr balances.TransferArgs
	if err := codec.Unmarshal(txs[0].Call.Args, &tr); err != nil || tr.Dest != bob.ID() {
		t.Errorf("transfer args %+v: %v", tr, err)
	}
}

func TestVerifyValidatorSetChange(t *testing.T) {
	// Height 3 onwards is signed by a new set (two old validators, two new);
	// block 2 announces it in NextValidatorsHash.
	newSet := append(append([]cmttypes.PrivValidator{}, defaultKeys[:2]...), newKeys("newcomer", 2)...)
	c := newChain(t, 6, chainOpts{keys: func(h int64) []cmttypes.PrivValidator {
		if h >= 3 {
			return newSet
		}
		return defaultKeys
	}})
	lc := newClient(t, c, Config{})
	verifyUpTo(t, lc, c, 5)

	// The old set cannot sign for height 4.
	in := c.input(4)
	in.Validators = c.vals[1].Copy()
	refuse(t, lc, c.input(6-1), testNow, ErrHeightGap) // 5 is done
	lc2 := newClient(t, c, Config{})
	verifyUpTo(t, lc2, c, 3)
	refuse(t, lc2, in, testNow, ErrValidatorsMismatch)
	in = c.input(4)
	in.Commit = signCommit(t, c.chainID, 4, c.ids[4], aligned(t, c.vals[1], defaultKeys), blockTime(4))
	refuse(t, lc2, in, testNow, ErrBadCommit)
}

func TestHeightGap(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	lc := newClient(t, c, Config{})
	refuse(t, lc, c.input(2), testNow, ErrHeightGap) // first must be 1
	verifyUpTo(t, lc, c, 2)
	refuse(t, lc, c.input(4), testNow, ErrHeightGap) // gap
	refuse(t, lc, c.input(2), testNow, ErrHeightGap) // again
	refuse(t, lc, c.input(1), testNow, ErrHeightGap) // back

	// Next must be the height after Block.
	in := c.input(3)
	far := c.input(4)
	in.Next, in.NextValidators = far.Next, far.NextValidators
	refuse(t, lc, in, testNow, ErrHeightGap)
	verifyUpTo(t, lc, c, 3)
}

func TestTooFewSigners(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	half := func(h int64) []cmttypes.PrivValidator {
		s := c.signers(h)
		s[0], s[1] = nil, nil // 20 of 40: not more than 2/3
		return s
	}
	lc := newClient(t, c, Config{})

	// Genesis path.
	in := c.input(1)
	in.Commit = c.resign(1, half(1))
	err := refuse(t, lc, in, testNow, ErrBadCommit)
	var notEnough cmttypes.ErrNotEnoughVotingPowerSigned
	if !errors.As(err, &notEnough) {
		t.Errorf("error %v does not wrap ErrNotEnoughVotingPowerSigned", err)
	}
	verifyUpTo(t, lc, c, 2)

	// Adjacent path.
	in = c.input(3)
	in.Commit = c.resign(3, half(3))
	err = refuse(t, lc, in, testNow, ErrBadCommit)
	var invalid light.ErrInvalidHeader
	if !errors.As(err, &invalid) {
		t.Errorf("error %v does not wrap light.ErrInvalidHeader", err)
	}

	// Next's commit.
	in = c.input(3)
	in.Next.Commit = c.resign(4, half(4))
	refuse(t, lc, in, testNow, ErrBadCommit)

	// No signature at all.
	in = c.input(3)
	in.Commit = c.resign(3, make([]cmttypes.PrivValidator, 4))
	refuse(t, lc, in, testNow, ErrBadCommit)

	// Three of four (30 of 40) is enough.
	in = c.input(3)
	s := c.signers(3)
	s[2] = nil
	in.Commit = c.resign(3, s)
	if _, err := lc.Verify(in, testNow); err != nil {
		t.Fatalf("3 of 4 signers: %v", err)
	}
}

func TestNonValidatorSigners(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	strangers := newKeys("stranger", 4)
	lc := newClient(t, c, Config{})

	in := c.input(1)
	in.Commit = c.resign(1, strangers)
	refuse(t, lc, in, testNow, ErrBadCommit)
	verifyUpTo(t, lc, c, 2)

	in = c.input(3)
	in.Commit = c.resign(3, strangers)
	refuse(t, lc, in, testNow, ErrBadCommit)

	// Two validators and two strangers posing as the other two.
	s := c.signers(3)
	s[0], s[1] = strangers[0], strangers[1]
	in = c.input(3)
	in.Commit = c.resign(3, s)
	refuse(t, lc, in, testNow, ErrBadCommit)

	// A forged signature.
	in = c.input(3)
	for i := range in.Commit.Signatures {
		sig := bytes.Clone(in.Commit.Signatures[i].Signature)
		sig[0] ^= 1
		in.Commit.Signatures[i].Signature = sig
	}
	refuse(t, lc, in, testNow, ErrBadCommit)

	// The commit of another block.
	in = c.input(3)
	in.Commit = c.copyCommit(2)
	refuse(t, lc, in, testNow, ErrBadCommit)

	// A commit of this height signing another block id.
	in = c.input(3)
	in.Commit = signCommit(t, c.chainID, 3, c.ids[2], c.signers(3), blockTime(3))
	refuse(t, lc, in, testNow, ErrBadCommit)

	// The validators signed for another chain id.
	in = c.input(3)
	in.Commit = signCommit(t, "other-chain", 3, c.ids[3], c.signers(3), blockTime(3))
	refuse(t, lc, in, testNow, ErrBadCommit)

	verifyUpTo(t, lc, c, 5)
}

func TestTamperedTxs(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	lc := newClient(t, c, Config{})
	verifyUpTo(t, lc, c, 1)

	// A transaction replaced.
	in := c.input(2)
	in.Block.Data.Txs[2] = codec.Sign(bob, types.Chain{ID: c.chainID}, 21, shieldCall(types.TEER(1000)))
	refuse(t, lc, in, testNow, ErrDataHashMismatch)

	// A transaction dropped (and its result).
	in = c.input(2)
	in.Block.Data.Txs = in.Block.Data.Txs[:3]
	in.Results = in.Results[:3]
	refuse(t, lc, in, testNow, ErrDataHashMismatch)

	// A transaction added.
	in = c.input(2)
	in.Block.Data.Txs = append(in.Block.Data.Txs, garbage)
	in.Results = append(in.Results, failResult(types.ErrTxMalformed))
	refuse(t, lc, in, testNow, ErrDataHashMismatch)

	// Transactions and DataHash both replaced: the header no longer hashes
	// to the block its commit signs.
	in = c.input(2)
	in.Block.Data.Txs[2] = codec.Sign(bob, types.Chain{ID: c.chainID}, 21, shieldCall(types.TEER(1000)))
	in.Block.DataHash = cmttypes.Txs(in.Block.Data.Txs).Hash()
	refuse(t, lc, in, testNow, ErrBadCommit)

	verifyUpTo(t, lc, c, 2)
}

func TestTamperedResults(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	lc := newClient(t, c, Config{})
	verifyUpTo(t, lc, c, 1)

	// The failed shield made to look successful.
	in := c.input(2)
	in.Results[2] = okResult()
	refuse(t, lc, in, testNow, ErrResultsMismatch)

	// A successful shield made to look failed.
	in = c.input(2)
	in.Results[1] = failResult(enclavebridge.ErrInsufficientBonding)
	refuse(t, lc, in, testNow, ErrResultsMismatch)

	// One result too few, one too many.
	in = c.input(2)
	in.Results = in.Results[:3]
	refuse(t, lc, in, testNow, ErrResultsMismatch)
	in = c.input(2)
	in.Results = append(in.Results, okResult())
	refuse(t, lc, in, testNow, ErrResultsMismatch)

	// Results of another height.
	in = c.input(2)
	in.Results = c.input(3).Results
	in.Results[0] = failResult(types.ErrTxStaleNonce)
	refuse(t, lc, in, testNow, ErrResultsMismatch)

	// The next header's LastResultsHash rewritten to fit: its commit no
	// longer signs it.
	in = c.input(2)
	in.Results[2] = okResult()
	in.Next.LastResultsHash = cmttypes.NewResults(in.Results).Hash()
	refuse(t, lc, in, testNow, ErrBadCommit)

	// Non-deterministic fields (log, events, codespace) are not committed
	// to; changing them does not matter, and Verified does not expose them.
	in = c.input(2)
	in.Results[2].Log, in.Results[2].Codespace, in.Results[2].Events = "all good", "", nil
	v, err := lc.Verify(in, testNow)
	if err != nil {
		t.Fatal(err)
	}
	if v.Txs[2].OK {
		t.Fatal("failed shield reported OK")
	}
}

func TestWrongChain(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	other := newChain(t, 6, chainOpts{chainID: "other-chain"}) // same validators
	lc := newClient(t, c, Config{})
	refuse(t, lc, other.input(1), testNow, ErrWrongChain)
	verifyUpTo(t, lc, c, 2)
	refuse(t, lc, other.input(3), testNow, ErrWrongChain)

	// A next header from the other chain.
	in := c.input(3)
	o := other.input(3)
	in.Next, in.NextValidators = o.Next, o.NextValidators
	refuse(t, lc, in, testNow, ErrWrongChain)

	// The other chain's header with our chain id written in: not signed.
	in = other.input(3)
	in.Block.ChainID = c.chainID
	in.Next = c.input(3).Next
	refuse(t, lc, in, testNow, ErrBadCommit)
	verifyUpTo(t, lc, c, 3)
}

func TestValidatorsMismatch(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	strangers := newKeys("stranger", 4)
	strangerSet := valSet(t, strangers)
	lc := newClient(t, c, Config{})

	// Supplied set does not hash to the header's ValidatorsHash.
	in := c.input(1)
	in.Validators = strangerSet.Copy()
	refuse(t, lc, in, testNow, ErrValidatorsMismatch)
	in = c.input(1)
	in.NextValidators = strangerSet.Copy()
	refuse(t, lc, in, testNow, ErrValidatorsMismatch)
	// A set with one validator's power changed.
	in = c.input(1)
	in.Validators.Validators[0].VotingPower = 1000
	refuse(t, lc, in, testNow, ErrValidatorsMismatch)
	// A subset.
	in = c.input(1)
	in.Validators = cmttypes.NewValidatorSet(in.Validators.Validators[:3])
	refuse(t, lc, in, testNow, ErrValidatorsMismatch)

	// A whole chain of other validators: header, set and commit consistent,
	// but not the genesis set.
	fake := newChain(t, 6, chainOpts{keys: func(int64) []cmttypes.PrivValidator { return strangers }})
	refuse(t, lc, fake.input(1), testNow, ErrValidatorsMismatch)

	verifyUpTo(t, lc, c, 2)
	in = c.input(3)
	in.Validators = strangerSet.Copy()
	refuse(t, lc, in, testNow, ErrValidatorsMismatch)

	// A fork taking over at height 3: block 2 names the honest set next,
	// block 3 claims (and is signed by) strangers.
	honest := c.vals[1].Hash()
	fork := newChain(t, 6, chainOpts{
		keys: func(h int64) []cmttypes.PrivValidator {
			if h >= 3 {
				return strangers
			}
			return defaultKeys
		},
		mutate: func(h int64, b *cmttypes.Block) {
			if h == 2 {
				b.NextValidatorsHash = honest
			}
		},
	})
	if !bytes.Equal(fork.blocks[2].Hash(), c.blocks[2].Hash()) {
		t.Fatal("fork's block 2 differs from the honest one")
	}
	refuse(t, lc, fork.input(3), testNow, ErrValidatorsMismatch)
	// Block 2 again, with the fork's 3 as next.
	lc2 := newClient(t, c, Config{})
	verifyUpTo(t, lc2, c, 1)
	refuse(t, lc2, fork.input(2), testNow, ErrValidatorsMismatch)

	verifyUpTo(t, lc, c, 3)
}

func TestNotLinked(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	bad := newChain(t, 6, chainOpts{mutate: func(h int64, b *cmttypes.Block) {
		if h == 3 {
			b.LastBlockID = cmttypes.BlockID{Hash: bytes.Repeat([]byte{7}, 32), PartSetHeader: cmttypes.PartSetHeader{Total: 1, Hash: bytes.Repeat([]byte{8}, 32)}}
		}
	}})
	lc := newClient(t, c, Config{})
	verifyUpTo(t, lc, c, 1)
	// Block 2 with a next header that does not follow it.
	refuse(t, lc, bad.input(2), testNow, ErrNotLinked)
	verifyUpTo(t, lc, c, 2)
	refuse(t, lc, bad.input(3), testNow, ErrNotLinked)
	verifyUpTo(t, lc, c, 3)
}

func TestTime(t *testing.T) {
	c := newChain(t, 6, chainOpts{})

	// Headers from the future.
	lc := newClient(t, c, Config{})
	refuse(t, lc, c.input(1), genesisTime.Add(-time.Minute), ErrHeaderFromFuture)
	// Within the drift is fine.
	if _, err := lc.Verify(c.input(1), blockTime(1).Add(-5*time.Second)); err != nil {
		t.Fatalf("header 5 s ahead with 10 s drift: %v", err)
	}
	refuse(t, lc, c.input(2), blockTime(2).Add(-time.Minute), ErrHeaderFromFuture)
	// Next header from the future.
	refuse(t, lc, c.input(2), blockTime(2).Add(-9*time.Second), ErrHeaderFromFuture)

	// Expiry of the trusted header.
	lc = newClient(t, c, Config{TrustingPeriod: time.Hour})
	verifyUpTo(t, lc, c, 1)
	err := refuse(t, lc, c.input(2), blockTime(1).Add(2*time.Hour), ErrExpired)
	var expired light.ErrOldHeaderExpired
	if !errors.As(err, &expired) {
		t.Errorf("error %v does not wrap light.ErrOldHeaderExpired", err)
	}
	// A new client cannot start from a first block older than the period:
	// it would become the trusted header for its next header already expired.
	lc = newClient(t, c, Config{TrustingPeriod: time.Hour})
	refuse(t, lc, c.input(1), blockTime(1).Add(2*time.Hour), ErrExpired)

	// Time not increasing.
	stuck := newChain(t, 6, chainOpts{mutate: func(h int64, b *cmttypes.Block) {
		if h == 3 {
			b.Time = blockTime(2)
		}
	}})
	lc = newClient(t, stuck, Config{})
	verifyUpTo(t, lc, stuck, 1)
	refuse(t, lc, stuck.input(2), testNow, ErrInvalidHeader)
	verifyUpTo(t, lc, c, 2)
	refuse(t, lc, stuck.input(3), testNow, ErrInvalidHeader)
}

func TestInvalidInput(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	lc := newClient(t, c, Config{})
	verifyUpTo(t, lc, c, 1)

	cases := map[string]func(*Input){
		"empty":             func(in *Input) { *in = Input{} },
		"no block":          func(in *Input) { in.Block = nil },
		"no commit":         func(in *Input) { in.Commit = nil },
		"no validators":     func(in *Input) { in.Validators = nil },
		"empty validators":  func(in *Input) { in.Validators = &cmttypes.ValidatorSet{} },
		"no next":           func(in *Input) { in.Next = nil },
		"no next header":    func(in *Input) { in.Next.Header = nil },
		"no next commit":    func(in *Input) { in.Next.Commit = nil },
		"no next vals":      func(in *Input) { in.NextValidators = nil },
		"nil result":        func(in *Input) { in.Results[1] = nil },
		"nil validator":     func(in *Input) { in.Validators.Validators[2] = nil },
		"validator address": func(in *Input) { in.Validators.Validators[2].Address = in.Validators.Validators[1].Address },
		"validator no key":  func(in *Input) { in.NextValidators.Validators[0].PubKey = nil },
		"power overflow": func(in *Input) {
			for _, v := range in.Validators.Validators {
				v.VotingPower = cmttypes.MaxTotalVotingPower
			}
		},
		// Block.ValidateBasic panics on this; Verify turns it into an error.
		"nil evidence": func(in *Input) { in.Block.Evidence.Evidence = []cmttypes.Evidence{nil} },
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			in := c.input(2)
			tamper(&in)
			refuse(t, lc, in, testNow, ErrInvalidInput)
		})
	}

	// A malformed header (proposer address) and a block whose last commit
	// does not match its header.
	in := c.input(2)
	in.Block.ProposerAddress = []byte{1, 2, 3}
	refuse(t, lc, in, testNow, ErrInvalidHeader)
	in = c.input(2)
	in.Block.LastCommit = nil
	refuse(t, lc, in, testNow, ErrInvalidBlock)
	in = c.input(2)
	in.Block.LastCommit = c.copyCommit(2)
	refuse(t, lc, in, testNow, ErrInvalidBlock)
	in = c.input(2)
	in.Next.ProposerAddress = nil
	refuse(t, lc, in, testNow, ErrInvalidHeader)

	verifyUpTo(t, lc, c, 2)
}

func TestUndecodableSuccessfulTx(t *testing.T) {
	c := newChain(t, 3, chainOpts{content: func(h int64) ([]cmttypes.Tx, []*abci.ExecTxResult) {
		return []cmttypes.Tx{garbage}, []*abci.ExecTxResult{okResult()}
	}})
	lc := newClient(t, c, Config{})
	refuse(t, lc, c.input(1), testNow, ErrUndecodableTx)
}

func TestInputIsCopied(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	lc := newClient(t, c, Config{})
	in := c.input(1)
	v, err := lc.Verify(in, testNow)
	if err != nil {
		t.Fatal(err)
	}
	st := mustState(t, lc)
	// Scribbling over the input afterwards changes nothing in the client.
	in.Block.Header.NextValidatorsHash[0] ^= 0xff
	in.Commit.BlockID.Hash[0] ^= 0xff
	in.Validators.Validators[0].VotingPower = 99
	if !bytes.Equal(st, mustState(t, lc)) {
		t.Fatal("client state aliases the input")
	}
	v.Txs[0].Call.Args[0] ^= 0xff
	verifyUpTo(t, lc, c, 3)

	// Cached hashes in the input do not fool the client: the block hash of
	// a tampered block is recomputed.
	in = c.input(4)
	_ = in.Block.Hash()
	in.Block.AppHash = []byte("cached hash is stale now")
	refuse(t, lc, in, testNow, ErrBadCommit)
	in = c.input(4)
	in.Block.Hash()
	in.Block.Data.Hash()
	in.Block.Data.Txs = append(in.Block.Data.Txs, garbage)
	in.Results = append(in.Results, failResult(types.ErrTxMalformed))
	refuse(t, lc, in, testNow, ErrDataHashMismatch)
}

func TestStateRestore(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	cfg := Config{TrustingPeriod: 24 * time.Hour}

	// Before the first block.
	lc := newClient(t, c, cfg)
	st := mustState(t, lc)
	r, err := Restore(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r.ChainID() != c.chainID || r.Height() != 0 || !bytes.Equal(mustState(t, r), st) {
		t.Fatal("restored fresh client differs")
	}
	verifyUpTo(t, r, c, 2)

	// After height 2.
	st = mustState(t, r)
	r2, err := Restore(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if r2.Height() != 2 || r2.LastBlockHash() != r.LastBlockHash() || !bytes.Equal(mustState(t, r2), st) {
		t.Fatal("restored client differs")
	}
	refuse(t, r2, c.input(2), testNow, ErrHeightGap)
	refuse(t, r2, c.input(4), testNow, ErrHeightGap)
	for h := int64(3); h <= 5; h++ {
		v, err := r2.Verify(c.input(h), testNow)
		if err != nil {
			t.Fatalf("restored client, height %d: %v", h, err)
		}
		if h%4 != 0 {
			checkDefaultTxs(t, c, h, v.Txs)
		}
	}
	// The restored configuration applies.
	r3, err := Restore(st, Config{TrustingPeriod: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	refuse(t, r3, c.input(3), testNow, ErrExpired)
	if _, err := Restore(st, Config{MaxClockDrift: -1}); !errors.Is(err, ErrConfig) {
		t.Fatalf("negative drift: %v", err)
	}
}

func TestRestoreBadState(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	lc := newClient(t, c, Config{})
	verifyUpTo(t, lc, c, 2)
	st := mustState(t, lc)

	bad := map[string][]byte{
		"nil":       nil,
		"magic":     append([]byte("XYZ\x01"), st[4:]...),
		"version":   append([]byte("ILC\x01"), st[4:]...),
		"truncated": st[:len(st)/2],
		"no body":   st[:4+1+len(c.chainID)],
		"chain id":  []byte("ILC\x02\x00"),
		"long id":   append([]byte("ILC\x01\x7f"), st[4:]...),
	}
	// Another chain id over the same header.
	other := append([]byte("ILC\x01"), byte(len("other-chain-id!")))
	other = append(other, "other-chain-id!"...)
	bad["other chain"] = append(other, st[4+1+len(c.chainID):]...)
	// A flipped byte in the header.
	flipped := bytes.Clone(st)
	flipped[len(flipped)/3] ^= 0x01
	bad["flipped"] = flipped

	// A state whose commit signatures are broken.
	broken, err := Restore(st, Config{})
	if err != nil {
		t.Fatal(err)
	}
	for i := range broken.trusted.Commit.Signatures {
		broken.trusted.Commit.Signatures[i].Signature[0] ^= 1
	}
	bad["commit"] = mustState(t, broken)
	// A state whose validator set is not the header's.
	broken, _ = Restore(st, Config{})
	broken.trustedVals = valSet(t, newKeys("stranger", 4))
	bad["validators"] = mustState(t, broken)

	for name, s := range bad {
		if _, err := Restore(s, Config{}); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: Restore error %v, want ErrBadState", name, err)
		}
	}
}

func TestNewAndConfig(t *testing.T) {
	c := newChain(t, 2, chainOpts{})
	if _, err := New("", c.vals[1], Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("empty chain id: %v", err)
	}
	if _, err := New(strings.Repeat("x", cmttypes.MaxChainIDLen+1), c.vals[1], Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("long chain id: %v", err)
	}
	if _, err := New(testChainID, nil, Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("nil validators: %v", err)
	}
	if _, err := New(testChainID, &cmttypes.ValidatorSet{}, Config{}); !errors.Is(err, ErrConfig) {
		t.Errorf("empty validators: %v", err)
	}
	if _, err := New(testChainID, c.vals[1], Config{TrustingPeriod: -time.Second}); !errors.Is(err, ErrConfig) {
		t.Errorf("negative trusting period: %v", err)
	}
	if err := (Config{}).ValidateBasic(); err != nil {
		t.Error(err)
	}
	if err := DefaultConfig().ValidateBasic(); err != nil {
		t.Error(err)
	}
	if (Config{}).withDefaults() != DefaultConfig() {
		t.Error("zero config does not default")
	}
	if d := DefaultConfig(); d.TrustingPeriod < 10*365*24*time.Hour || d.MaxClockDrift != 10*time.Second {
		t.Errorf("defaults %+v", d)
	}
	lc, err := New(testChainID, c.vals[1], Config{MaxClockDrift: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if lc.cfg.TrustingPeriod != DefaultTrustingPeriod || lc.cfg.MaxClockDrift != time.Minute {
		t.Errorf("config %+v", lc.cfg)
	}
	// The genesis set is copied.
	vals := c.vals[1].Copy()
	lc, err = New(testChainID, vals, Config{})
	if err != nil {
		t.Fatal(err)
	}
	vals.Validators[0].VotingPower = 1
	if _, err := lc.Verify(c.input(1), testNow); err != nil {
		t.Fatalf("genesis set aliased: %v", err)
	}
}

// TestChainNamesTheSealedGenesis: the chain the client names for the
// enclave's transactions is its trust root's (chain id and genesis
// validators), before and after blocks and across sealing; a chain with the
// same id and other validators has another genesis hash.
func TestChainNamesTheSealedGenesis(t *testing.T) {
	c := newChain(t, 4, chainOpts{})
	lc, err := New(testChainID, c.vals[1], Config{})
	if err != nil {
		t.Fatal(err)
	}
	want := types.Chain{ID: testChainID, Genesis: types.GenesisHash(testChainID, c.vals[1].Hash())}
	if got := lc.Chain(); got != want {
		t.Fatalf("new client names %+v, want %+v", got, want)
	}
	for h := int64(1); h <= 3; h++ {
		if _, err := lc.Verify(c.input(h), testNow); err != nil {
			t.Fatal(err)
		}
	}
	restored, err := Restore(mustState(t, lc), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if got := restored.Chain(); got != want {
		t.Fatalf("after blocks and a restore the client names %+v, want %+v", got, want)
	}
	other, err := New(testChainID, valSet(t, newKeys("stranger", 4)), Config{})
	if err != nil {
		t.Fatal(err)
	}
	if other.Chain().Genesis == want.Genesis {
		t.Fatal("a chain with the same id and other validators has the same genesis hash")
	}
}
