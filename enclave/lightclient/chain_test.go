package lightclient

import (
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"
	cmtversion "github.com/cometbft/cometbft/api/cometbft/version/v1"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// A tiny in-memory CometBFT chain: real blocks, headers and commits signed by
// ed25519 validator keys, built the way CometBFT's state.MakeBlock and
// consensus would build them, without a node or a network.

const testChainID = "integritee-test"

var genesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// blockTime is the header time of height h.
func blockTime(h int64) time.Time { return genesisTime.Add(time.Duration(h) * time.Second) }

// testNow is a "now" after every test block.
var testNow = genesisTime.Add(time.Hour)

// newKeys returns n deterministic validator keys.
func newKeys(seed string, n int) []cmttypes.PrivValidator {
	pvs := make([]cmttypes.PrivValidator, n)
	for i := range pvs {
		k := ed25519.GenPrivKeyFromSecret([]byte(fmt.Sprintf("%s-%d", seed, i)))
		pvs[i] = cmttypes.NewMockPVWithParams(k, false, false)
	}
	return pvs
}

func valSet(t testing.TB, pvs []cmttypes.PrivValidator) *cmttypes.ValidatorSet {
	t.Helper()
	vals := make([]*cmttypes.Validator, len(pvs))
	for i, pv := range pvs {
		pk, err := pv.GetPubKey()
		if err != nil {
			t.Fatal(err)
		}
		vals[i] = cmttypes.NewValidator(pk, 10)
	}
	return cmttypes.NewValidatorSet(vals)
}

// aligned returns pvs in the order of vals' validators, nil for validators
// without a key in pvs.
func aligned(t testing.TB, vals *cmttypes.ValidatorSet, pvs []cmttypes.PrivValidator) []cmttypes.PrivValidator {
	t.Helper()
	out := make([]cmttypes.PrivValidator, vals.Size())
	for i, v := range vals.Validators {
		for _, pv := range pvs {
			pk, _ := pv.GetPubKey()
			if pk.Address().String() == v.Address.String() {
				out[i] = pv
			}
		}
	}
	return out
}

// signCommit signs blockID at height h: signers[i] signs as the validator at
// index i of the set (nil: absent). A signer need not be that validator.
func signCommit(t testing.TB, chainID string, h int64, id cmttypes.BlockID, signers []cmttypes.PrivValidator, ts time.Time) *cmttypes.Commit {
	t.Helper()
	sigs := make([]cmttypes.CommitSig, len(signers))
	for i, pv := range signers {
		if pv == nil {
			sigs[i] = cmttypes.NewCommitSigAbsent()
			continue
		}
		vote, err := cmttypes.MakeVote(pv, chainID, int32(i), h, 0, cmttypes.PrecommitType, id, ts)
		if err != nil {
			t.Fatal(err)
		}
		sigs[i] = vote.CommitSig()
	}
	return &cmttypes.Commit{Height: h, Round: 0, BlockID: id, Signatures: sigs}
}

// content is what a block carries: its transactions and their results.
type content func(h int64) ([]cmttypes.Tx, []*abci.ExecTxResult)

type chainOpts struct {
	chainID string
	// keys returns the validator keys at height h (default: the same four).
	keys func(h int64) []cmttypes.PrivValidator
	// content defaults to defaultContent.
	content content
	// mutate changes a block after its header is populated and before it
	// is hashed and signed.
	mutate func(h int64, b *cmttypes.Block)
}

type chain struct {
	t       testing.TB
	chainID string
	keys    map[int64][]cmttypes.PrivValidator
	vals    map[int64]*cmttypes.ValidatorSet
	blocks  map[int64]*cmttypes.Block
	ids     map[int64]cmttypes.BlockID
	commits map[int64]*cmttypes.Commit
	results map[int64][]*abci.ExecTxResult
}

var defaultKeys = newKeys("validator", 4)

// newChain builds heights 1..n.
func newChain(t testing.TB, n int64, o chainOpts) *chain {
	t.Helper()
	if o.chainID == "" {
		o.chainID = testChainID
	}
	if o.keys == nil {
		o.keys = func(int64) []cmttypes.PrivValidator { return defaultKeys }
	}
	if o.content == nil {
		o.content = defaultContent(o.chainID)
	}
	c := &chain{
		t: t, chainID: o.chainID,
		keys: map[int64][]cmttypes.PrivValidator{}, vals: map[int64]*cmttypes.ValidatorSet{},
		blocks: map[int64]*cmttypes.Block{}, ids: map[int64]cmttypes.BlockID{},
		commits: map[int64]*cmttypes.Commit{}, results: map[int64][]*abci.ExecTxResult{},
	}
	for h := int64(1); h <= n+1; h++ {
		c.keys[h] = o.keys(h)
		c.vals[h] = valSet(t, c.keys[h])
	}
	consensusHash := cmttypes.DefaultConsensusParams().Hash()
	for h := int64(1); h <= n; h++ {
		txs, res := o.content(h)
		lastCommit := &cmttypes.Commit{}
		if h > 1 {
			lastCommit = c.commits[h-1]
		}
		b := cmttypes.MakeBlock(h, txs, lastCommit, nil)
		appHash := sha256.Sum256([]byte(fmt.Sprintf("app-%d", h)))
		b.Header.Populate(
			cmtversion.Consensus{Block: version.BlockProtocol, App: 1}, c.chainID,
			blockTime(h), c.ids[h-1],
			c.vals[h].Hash(), c.vals[h+1].Hash(),
			consensusHash, appHash[:], cmttypes.NewResults(c.results[h-1]).Hash(),
			c.vals[h].Proposer.Address,
		)
		if o.mutate != nil {
			o.mutate(h, b)
		}
		ps, err := b.MakePartSet(cmttypes.BlockPartSizeBytes)
		if err != nil {
			t.Fatal(err)
		}
		id := cmttypes.BlockID{Hash: b.Hash(), PartSetHeader: ps.Header()}
		c.blocks[h], c.ids[h], c.results[h] = b, id, res
		c.commits[h] = signCommit(t, c.chainID, h, id, aligned(t, c.vals[h], c.keys[h]), blockTime(h).Add(500*time.Millisecond))
	}
	return c
}

// signers returns the validators' keys at h in set order.
func (c *chain) signers(h int64) []cmttypes.PrivValidator {
	return aligned(c.t, c.vals[h], c.keys[h])
}

// resign returns a commit for block h signed by signers.
func (c *chain) resign(h int64, signers []cmttypes.PrivValidator) *cmttypes.Commit {
	return signCommit(c.t, c.chainID, h, c.ids[h], signers, blockTime(h).Add(500*time.Millisecond))
}

func (c *chain) copyBlock(h int64) *cmttypes.Block {
	c.t.Helper()
	pb, err := c.blocks[h].ToProto()
	if err != nil {
		c.t.Fatal(err)
	}
	// Through the wire format, so that no byte slice is shared.
	bz, err := pb.Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	var pb2 cmtproto.Block
	if err := pb2.Unmarshal(bz); err != nil {
		c.t.Fatal(err)
	}
	b, err := cmttypes.BlockFromProto(&pb2)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

func (c *chain) copyCommit(h int64) *cmttypes.Commit {
	c.t.Helper()
	bz, err := c.commits[h].ToProto().Marshal()
	if err != nil {
		c.t.Fatal(err)
	}
	var pc cmtproto.Commit
	if err := pc.Unmarshal(bz); err != nil {
		c.t.Fatal(err)
	}
	cm, err := cmttypes.CommitFromProto(&pc)
	if err != nil {
		c.t.Fatal(err)
	}
	return cm
}

// input returns a fresh Input for height h (the chain must have h+1); the
// caller may tamper with it freely by replacing fields.
func (c *chain) input(h int64) Input {
	c.t.Helper()
	res := make([]*abci.ExecTxResult, len(c.results[h]))
	for i, r := range c.results[h] {
		cp := *r
		res[i] = &cp
	}
	next := c.copyBlock(h + 1)
	return Input{
		Block:          c.copyBlock(h),
		Commit:         c.copyCommit(h),
		Validators:     c.vals[h].Copy(),
		Results:        res,
		Next:           &cmttypes.SignedHeader{Header: &next.Header, Commit: c.copyCommit(h + 1)},
		NextValidators: c.vals[h+1].Copy(),
	}
}

// Accounts and calls of the default content.
var (
	codec   = types.NewCodec()
	alice   = mustPair("alice")
	bob     = mustPair("bob")
	shard   = sidechain.ShardID(sha256.Sum256([]byte("shard")))
	garbage = cmttypes.Tx("this is not a transaction")
)

func mustPair(name string) *account.Pair {
	seed := sha256.Sum256([]byte(name))
	p, err := account.PairFromSeed(seed[:])
	if err != nil {
		panic(err)
	}
	return p
}

func mustCall(module, method string, args any) types.Call {
	c, err := types.NewCall(codec, module, method, args)
	if err != nil {
		panic(err)
	}
	return c
}

func transferCall() types.Call {
	return mustCall(balances.ModuleName, "transfer", balances.TransferArgs{Dest: bob.ID(), Amount: types.TEER(1)})
}

func shieldCall(amount types.Balance) types.Call {
	return mustCall(enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
		Shard: shard, EncryptedBeneficiary: []byte("ciphertext"), Amount: amount,
	})
}

func okResult() *abci.ExecTxResult {
	return &abci.ExecTxResult{Code: abci.CodeTypeOK, Events: []abci.Event{{Type: "tx"}}}
}

func failResult(e *types.Error) *abci.ExecTxResult {
	return &abci.ExecTxResult{Code: e.Code, Codespace: e.Module, Log: e.Error()}
}

// defaultContent: every fourth block is empty; the others carry
//
//	0: alice's balances.transfer, OK
//	1: bob's enclavebridge.shield_funds, OK
//	2: bob's enclavebridge.shield_funds of zero, failed (ZeroAmount)
//	3: bytes that are no transaction, failed (Malformed)
func defaultContent(chainID string) content {
	return func(h int64) ([]cmttypes.Tx, []*abci.ExecTxResult) {
		if h%4 == 0 {
			return nil, nil
		}
		n := uint64(h) * 10
		txs := []cmttypes.Tx{
			codec.Sign(alice, types.Chain{ID: chainID}, n, transferCall()),
			codec.Sign(bob, types.Chain{ID: chainID}, n, shieldCall(types.TEER(5))),
			codec.Sign(bob, types.Chain{ID: chainID}, n+1, shieldCall(types.Balance{})),
			garbage,
		}
		res := []*abci.ExecTxResult{okResult(), okResult(), failResult(enclavebridge.ErrZeroAmount), failResult(types.ErrTxMalformed)}
		return txs, res
	}
}
