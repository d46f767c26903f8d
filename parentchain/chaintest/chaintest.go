// Package chaintest is a TEST KIT: it runs the real parentchain application
// (package parentchain/app over a real state store) in-process and seals the
// blocks it executes into real CometBFT blocks, with headers, commits and
// validator sets signed by four deterministic ed25519 validator keys. Tests
// of the enclave's light client can verify these blocks, whose headers carry
// the real app hash and results hash, and read the real state by proof.
//
// There is no node, no network and no consensus: the kit builds each block
// the way CometBFT's state.MakeBlock and its consensus would, and every
// validator signs every block (round 0).
//
// It must not be imported by non-test code: it depends on package testing
// and its validator keys are public.
//
// Heights. Block executes its transactions as the next height h and seals
// block h at once: header h carries the app hash after h-1 and the results
// hash of h-1, so nothing of h's own execution is needed to seal it. The app
// hash and results of h are committed to by header h+1, which is why
// Input(h) needs block h+1 and seals an empty one if it is missing.
//
// Times. The genesis time is 2026-01-01 00:00:00 UTC; block h's header time
// is genesis + h seconds; the precommits for block h are timestamped at
// block h+1's time, so that block h+1's time is their median, as CometBFT's
// BFT time requires. (CometBFT would give block 1 the genesis time itself;
// the kit gives it genesis + 1s.) Now is just after the last sealed block.
package chaintest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"
	cmtversion "github.com/cometbft/cometbft/api/cometbft/version/v1"
	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/cometbft/cometbft/version"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/parentchain/app"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/types"
)

// chainID is the chain id of every Chain.
const chainID = "chaintest"

// numValidators is the size of the (constant) validator set.
const numValidators = 4

// validatorPower is every validator's voting power.
const validatorPower = 10

// genesisTime is the genesis time of every Chain.
var genesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// blockTime is the header time of height h.
func blockTime(h int64) time.Time { return genesisTime.Add(time.Duration(h) * time.Second) }

// Chain is a parentchain run in-process: the real application executes the
// blocks, and the kit seals them into signed CometBFT blocks. Its methods
// are serialised by a mutex, but they report internal failures with
// t.Fatal, so call them from the test's own goroutine.
type Chain struct {
	t     testing.TB
	codec *types.Codec
	store *state.Store
	app   *app.App
	keys  []cmttypes.PrivValidator // the validators' keys

	mu sync.Mutex
	// Indexed by height; index 0 holds genesis (app hash) or nothing.
	appHashes [][]byte                 // app hash after height h
	vals      []*cmttypes.ValidatorSet // validator set at h (one more than sealed)
	blocks    []*cmttypes.Block
	ids       []cmttypes.BlockID
	commits   []*cmttypes.Commit
	results   [][]*abci.ExecTxResult
	// pending are the transactions Sign handed out that no block has
	// carried yet, by transaction hash.
	pending map[[32]byte]pendingTx
}

type pendingTx struct {
	signer account.ID
	nonce  uint64
}

// New starts a chain: the real application over a fresh state store in
// t.TempDir() (closed by t.Cleanup), initialised with the dev genesis of
// `integritee-node --dev` (//Alice..//Eve funded, //Alice sudo, unverified
// and simulated attestation and debug enclaves allowed) under chain id
// "chaintest" at genesis time 2026-01-01 UTC, with four deterministic
// validators of equal power. Nothing is sealed yet: Height is 0.
func New(t testing.TB) *Chain {
	t.Helper()
	dir := t.TempDir()
	store, err := state.Open(dir, app.StateConfig(0))
	if err != nil {
		t.Fatalf("chaintest: open state: %v", err)
	}
	t.Cleanup(func() { store.Close() })
	c := &Chain{
		t:       t,
		codec:   types.NewCodec(),
		store:   store,
		app:     app.New(store, slog.New(slog.NewTextHandler(io.Discard, nil)), nil),
		keys:    newKeys("chaintest-validator", numValidators),
		pending: map[[32]byte]pendingTx{},
	}

	appState, err := node.AppState(node.GenesisOptions{})
	if err != nil {
		t.Fatalf("chaintest: genesis app state: %v", err)
	}
	gvals := make([]cmttypes.GenesisValidator, len(c.keys))
	for i, pv := range c.keys {
		pk, err := pv.GetPubKey()
		if err != nil {
			t.Fatal(err)
		}
		gvals[i] = cmttypes.GenesisValidator{Address: pk.Address(), PubKey: pk, Power: validatorPower, Name: fmt.Sprintf("validator%d", i)}
	}
	doc := &cmttypes.GenesisDoc{
		GenesisTime:     genesisTime,
		ChainID:         chainID,
		InitialHeight:   1,
		ConsensusParams: cmttypes.DefaultConsensusParams(),
		Validators:      gvals,
		AppState:        appState,
	}
	if err := doc.ValidateAndComplete(); err != nil {
		t.Fatalf("chaintest: genesis: %v", err)
	}

	// As CometBFT's handshake does (state.MakeGenesisState, then
	// InitChain).
	vs := make([]*cmttypes.Validator, len(doc.Validators))
	for i, v := range doc.Validators {
		vs[i] = cmttypes.NewValidator(v.PubKey, v.Power)
	}
	genesisVals := cmttypes.NewValidatorSet(vs)
	params := doc.ConsensusParams.ToProto()
	resp, err := c.app.InitChain(context.Background(), &abci.InitChainRequest{
		Time:            doc.GenesisTime,
		ChainId:         doc.ChainID,
		InitialHeight:   doc.InitialHeight,
		ConsensusParams: &params,
		Validators:      cmttypes.TM2PB.ValidatorUpdates(genesisVals),
		AppStateBytes:   doc.AppState,
	})
	if err != nil {
		t.Fatalf("chaintest: InitChain: %v", err)
	}
	if len(resp.Validators) > 0 || resp.ConsensusParams != nil {
		t.Fatalf("chaintest: InitChain changed the validators or consensus parameters; the kit does not support that")
	}
	if len(resp.AppHash) == 0 {
		t.Fatalf("chaintest: InitChain returned no app hash")
	}

	c.appHashes = [][]byte{bytes.Clone(resp.AppHash)}
	c.vals = []*cmttypes.ValidatorSet{nil, genesisVals}
	c.blocks = []*cmttypes.Block{nil}
	c.ids = []cmttypes.BlockID{{}}
	c.commits = []*cmttypes.Commit{nil}
	c.results = [][]*abci.ExecTxResult{nil}
	return c
}

// ChainID returns the chain's id, "chaintest".
func (c *Chain) ChainID() string { return chainID }

// Chain returns the chain as transactions name it: id and genesis hash.
func (c *Chain) Chain() types.Chain {
	c.mu.Lock()
	defer c.mu.Unlock()
	return types.Chain{ID: chainID, Genesis: types.GenesisHash(chainID, c.vals[1].Hash())}
}

// GenesisValidators returns a copy of the genesis validator set, the trust
// root of a light client for this chain.
func (c *Chain) GenesisValidators() *cmttypes.ValidatorSet {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.copyValidators(c.vals[1])
}

// Codec returns the chain's transaction codec.
func (c *Chain) Codec() *types.Codec { return c.codec }

// Sign signs call by p for this chain with p's next nonce as the chain sees
// it: the nonce of p's account after the last executed block, or one past
// the highest nonce of a transaction Sign handed out for p that no block has
// carried yet, whichever is larger. Transactions signed for one signer must
// therefore be put into blocks in the order they were signed; one that is
// never put into a block leaves a gap that makes p's later transactions
// fail with a future nonce.
func (c *Chain) Sign(p *account.Pair, call types.Call) []byte {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	id := p.ID()
	nonce := c.committedNonce(id)
	for _, tx := range c.pending {
		if tx.signer == id && tx.nonce >= nonce {
			nonce = tx.nonce + 1
		}
	}
	raw := c.codec.Sign(p, types.Chain{ID: chainID, Genesis: types.GenesisHash(chainID, c.vals[1].Hash())}, nonce, call)
	c.pending[types.TxHash(raw)] = pendingTx{signer: id, nonce: nonce}
	return raw
}

// committedNonce asks the application for id's next nonce. The application
// counts the transactions its check state accepted; the kit never calls
// CheckTx, so that is the state after the last executed block.
func (c *Chain) committedNonce(id account.ID) uint64 {
	c.t.Helper()
	r, err := c.app.Query(context.Background(), &abci.QueryRequest{Path: "/system/next_nonce/" + id.Hex()})
	if err != nil || r.Code != abci.CodeTypeOK {
		c.t.Fatalf("chaintest: next nonce of %s: %v %s", id, err, r.GetLog())
	}
	var nn app.NextNonce
	if err := json.Unmarshal(r.Value, &nn); err != nil {
		c.t.Fatalf("chaintest: next nonce of %s: %v", id, err)
	}
	return nn.Nonce
}

// Block executes txs as the next height h on the real application
// (FinalizeBlock, then Commit; block time genesis + h seconds) and seals
// block h: its header carries the app hash after h-1 and the results hash
// of h-1, and all validators sign it. It returns h and copies of the
// transactions' results, in order. Transactions need not be valid: the
// application's verdict is in the results.
func (c *Chain) Block(txs ...[]byte) (int64, []*abci.ExecTxResult) {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.block(txs)
	return h, copyResults(c.t, c.results[h])
}

// block executes and seals the next height; c.mu is held.
func (c *Chain) block(raw [][]byte) int64 {
	t := c.t
	t.Helper()
	h := int64(len(c.blocks))
	vals := c.vals[h]
	next := vals.CopyIncrementProposerPriority(1)

	txs := make([]cmttypes.Tx, len(raw))
	for i, tx := range raw {
		txs[i] = bytes.Clone(tx)
	}
	lastCommit := &cmttypes.Commit{} // the initial height's: empty
	var lastResultsHash []byte       // genesis state's: empty
	if h > 1 {
		lastCommit = c.commits[h-1]
		lastResultsHash = cmttypes.NewResults(c.results[h-1]).Hash()
	}
	b := cmttypes.MakeBlock(h, txs, lastCommit, nil)
	b.Header.Populate(
		cmtversion.Consensus{Block: version.BlockProtocol, App: app.Version}, chainID,
		blockTime(h), c.ids[h-1],
		vals.Hash(), next.Hash(),
		cmttypes.DefaultConsensusParams().Hash(), bytes.Clone(c.appHashes[h-1]), lastResultsHash,
		vals.Proposer.Address,
	)
	if err := b.ValidateBasic(); err != nil {
		t.Fatalf("chaintest: block %d: %v", h, err)
	}
	ps, err := b.MakePartSet(cmttypes.BlockPartSizeBytes)
	if err != nil {
		t.Fatalf("chaintest: block %d: %v", h, err)
	}
	id := cmttypes.BlockID{Hash: b.Hash(), PartSetHeader: ps.Header()}

	reqTxs := make([][]byte, len(txs))
	for i, tx := range txs {
		reqTxs[i] = bytes.Clone(tx)
	}
	req := &abci.FinalizeBlockRequest{
		Txs:                reqTxs,
		Hash:               id.Hash,
		Height:             h,
		Time:               b.Time,
		NextValidatorsHash: b.NextValidatorsHash,
		ProposerAddress:    b.ProposerAddress,
		SyncingToHeight:    h,
	}
	if h > 1 {
		req.DecidedLastCommit = commitInfo(lastCommit, c.vals[h-1])
	}
	resp, err := c.app.FinalizeBlock(context.Background(), req)
	if err != nil {
		t.Fatalf("chaintest: FinalizeBlock %d: %v", h, err)
	}
	if len(resp.TxResults) != len(txs) {
		t.Fatalf("chaintest: FinalizeBlock %d: %d results for %d transactions", h, len(resp.TxResults), len(txs))
	}
	if len(resp.ValidatorUpdates) > 0 || resp.ConsensusParamUpdates != nil {
		t.Fatalf("chaintest: block %d changed the validators or consensus parameters; the kit does not support that", h)
	}
	if _, err := c.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		t.Fatalf("chaintest: Commit %d: %v", h, err)
	}
	if got, err := c.store.AppHashAt(h); err != nil || !bytes.Equal(got, resp.AppHash) {
		t.Fatalf("chaintest: block %d: committed app hash %X (%v), FinalizeBlock answered %X", h, got, err, resp.AppHash)
	}

	c.appHashes = append(c.appHashes, bytes.Clone(resp.AppHash))
	c.vals = append(c.vals, next)
	c.blocks = append(c.blocks, b)
	c.ids = append(c.ids, id)
	c.commits = append(c.commits, signCommit(t, h, id, aligned(t, vals, c.keys), blockTime(h+1)))
	c.results = append(c.results, copyResults(t, resp.TxResults))
	for _, tx := range raw {
		delete(c.pending, types.TxHash(tx))
	}
	return h
}

// Height returns the last sealed (and executed) height, 0 before the first
// block.
func (c *Chain) Height() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return int64(len(c.blocks)) - 1
}

// Input returns what a host would fetch for height h, ready for
// lightclient.Client.Verify: block h, its commit, validators and results,
// and the signed header of h+1 with its validators. Every call returns a
// fresh deep copy that shares no memory with the chain, so a test may
// tamper with it freely.
//
// Block h+1 must be sealed for that: if h is the last sealed height, Input
// first seals an EMPTY block h+1 (so Height grows by one, and the next
// Block call's transactions go to h+2). h must be in 1..Height().
func (c *Chain) Input(h int64) lightclient.Input {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	last := int64(len(c.blocks)) - 1
	if h < 1 || h > last {
		c.t.Fatalf("chaintest: Input(%d): sealed heights are 1..%d", h, last)
	}
	if h == last {
		c.block(nil)
	}
	next := c.copyBlock(h + 1)
	return lightclient.Input{
		Block:          c.copyBlock(h),
		Commit:         c.copyCommit(h),
		Validators:     c.copyValidators(c.vals[h]),
		Results:        copyResults(c.t, c.results[h]),
		Next:           &cmttypes.SignedHeader{Header: &next.Header, Commit: c.copyCommit(h + 1)},
		NextValidators: c.copyValidators(c.vals[h+1]),
	}
}

// Prove returns the application's value of state key key after block h
// (h = 0: genesis) with its proof, which verifies (package
// parentchain/proof) against AppHash(h), the app hash in header h+1
// (Input(h).Next.AppHash). Value is nil and the proof one of absence when
// the key is not set. Only the last state.DefaultVersions heights stay
// provable; older or future heights return an error wrapping
// state.ErrHeightUnavailable.
func (c *Chain) Prove(h int64, key []byte) (*state.Proof, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.store.Prove(h, key)
}

// AppHash returns the app hash after block h (h = 0: genesis), which header
// h+1 carries. h must be in 0..Height().
func (c *Chain) AppHash(h int64) []byte {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if h < 0 || h >= int64(len(c.appHashes)) {
		c.t.Fatalf("chaintest: AppHash(%d): executed heights are 0..%d", h, len(c.appHashes)-1)
	}
	return bytes.Clone(c.appHashes[h])
}

// Now returns a time just after the last sealed block (and its commit's
// signatures), to pass as lightclient.Client.Verify's now: every sealed
// header is before it and well within the light client's default clock
// drift. Sealing more blocks moves it on.
func (c *Chain) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return blockTime(int64(len(c.blocks))).Add(500 * time.Millisecond)
}

// newKeys returns n deterministic validator keys.
func newKeys(seed string, n int) []cmttypes.PrivValidator {
	pvs := make([]cmttypes.PrivValidator, n)
	for i := range pvs {
		k := ed25519.GenPrivKeyFromSecret([]byte(fmt.Sprintf("%s-%d", seed, i)))
		pvs[i] = cmttypes.NewMockPVWithParams(k, false, false)
	}
	return pvs
}

// aligned returns pvs in the order of vals' validators, nil for validators
// without a key in pvs.
func aligned(t testing.TB, vals *cmttypes.ValidatorSet, pvs []cmttypes.PrivValidator) []cmttypes.PrivValidator {
	t.Helper()
	out := make([]cmttypes.PrivValidator, vals.Size())
	for i, v := range vals.Validators {
		for _, pv := range pvs {
			pk, err := pv.GetPubKey()
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(pk.Address(), v.Address) {
				out[i] = pv
			}
		}
	}
	return out
}

// signCommit signs id at height h, round 0: signers[i] signs as the
// validator at index i of the set (nil: absent).
func signCommit(t testing.TB, h int64, id cmttypes.BlockID, signers []cmttypes.PrivValidator, ts time.Time) *cmttypes.Commit {
	t.Helper()
	sigs := make([]cmttypes.CommitSig, len(signers))
	for i, pv := range signers {
		if pv == nil {
			sigs[i] = cmttypes.NewCommitSigAbsent()
			continue
		}
		vote, err := cmttypes.MakeVote(pv, chainID, int32(i), h, 0, cmttypes.PrecommitType, id, ts)
		if err != nil {
			t.Fatalf("chaintest: sign block %d: %v", h, err)
		}
		sigs[i] = vote.CommitSig()
	}
	return &cmttypes.Commit{Height: h, Round: 0, BlockID: id, Signatures: sigs}
}

// commitInfo is FinalizeBlock's DecidedLastCommit for commit, made by vals.
func commitInfo(commit *cmttypes.Commit, vals *cmttypes.ValidatorSet) abci.CommitInfo {
	votes := make([]abci.VoteInfo, len(commit.Signatures))
	for i, s := range commit.Signatures {
		v := vals.Validators[i]
		votes[i] = abci.VoteInfo{
			Validator:   abci.Validator{Address: bytes.Clone(v.Address), Power: v.VotingPower},
			BlockIdFlag: cmtproto.BlockIDFlag(s.BlockIDFlag),
		}
	}
	return abci.CommitInfo{Round: commit.Round, Votes: votes}
}

// copyBlock copies block h through its wire format, so that no byte slice
// is shared and no hash is cached.
func (c *Chain) copyBlock(h int64) *cmttypes.Block {
	t := c.t
	t.Helper()
	pb, err := c.blocks[h].ToProto()
	if err != nil {
		t.Fatal(err)
	}
	bz, err := pb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var pb2 cmtproto.Block
	if err := pb2.Unmarshal(bz); err != nil {
		t.Fatal(err)
	}
	b, err := cmttypes.BlockFromProto(&pb2)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// copyCommit copies commit h through its wire format.
func (c *Chain) copyCommit(h int64) *cmttypes.Commit {
	t := c.t
	t.Helper()
	bz, err := c.commits[h].ToProto().Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var pc cmtproto.Commit
	if err := pc.Unmarshal(bz); err != nil {
		t.Fatal(err)
	}
	cm, err := cmttypes.CommitFromProto(&pc)
	if err != nil {
		t.Fatal(err)
	}
	return cm
}

// copyValidators copies vs through its wire format.
func (c *Chain) copyValidators(vs *cmttypes.ValidatorSet) *cmttypes.ValidatorSet {
	t := c.t
	t.Helper()
	pv, err := vs.ToProto()
	if err != nil {
		t.Fatal(err)
	}
	bz, err := pv.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	var pv2 cmtproto.ValidatorSet
	if err := pv2.Unmarshal(bz); err != nil {
		t.Fatal(err)
	}
	out, err := cmttypes.ValidatorSetFromProto(&pv2)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// copyResults copies rs through their wire format.
func copyResults(t testing.TB, rs []*abci.ExecTxResult) []*abci.ExecTxResult {
	t.Helper()
	out := make([]*abci.ExecTxResult, len(rs))
	for i, r := range rs {
		bz, err := r.Marshal()
		if err != nil {
			t.Fatal(err)
		}
		out[i] = new(abci.ExecTxResult)
		if err := out[i].Unmarshal(bz); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// Query answers an unproven JSON query (abci_query path, e.g.
// "/enclavebridge/shard_status/<shard>") from the last committed state, as
// the node's RPC would, decoding the answer into out.
func (c *Chain) Query(path string, out any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, err := c.app.Query(context.Background(), &abci.QueryRequest{Path: path})
	if err != nil {
		return err
	}
	if r.Code != 0 {
		return fmt.Errorf("chaintest: query %s: %s", path, r.Log)
	}
	return json.Unmarshal(r.Value, out)
}
