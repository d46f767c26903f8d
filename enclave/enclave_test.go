package enclave

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cometbft/cometbft/crypto/ed25519"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	attsim "github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/enclave/tee/sim"
	"github.com/integritee-go/integritee/parentchain/chaintest"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// ---- a fake host: everything in maps ----

type fakeHost struct {
	mu        sync.Mutex
	sealed    map[string][]byte
	state     map[string][]byte
	blocks    map[sidechain.ShardID]map[uint64][]byte
	broadcast [][]byte
	forwarded [][]byte
	txs       [][]byte
	failStore bool // StoreBlock fails
	// hang, if set, makes SubmitParentchainTx wait until it is closed (a
	// hung node), after a send on hanging.
	hang    chan struct{}
	hanging chan struct{}
	// failSubmits is how many of the next submissions fail (a node that
	// refuses or is unreachable).
	failSubmits int
	// putHang, if set, makes PutState of a snapshot wait until it is
	// closed (a slow disk), after a send on putHanging.
	putHang    chan struct{}
	putHanging chan struct{}
	// chain is the parentchain ReadParentchainState proves from (nil: none);
	// lie, if set, rewrites its answers.
	chain *chaintest.Chain
	lie   func(height int64, reads []StateRead) []StateRead
}

var _ Host = (*fakeHost)(nil)

func newFakeHost() *fakeHost {
	return &fakeHost{sealed: map[string][]byte{}, state: map[string][]byte{}, blocks: map[sidechain.ShardID]map[uint64][]byte{}}
}

func (h *fakeHost) ReadSealed(name string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.sealed[name]
	if !ok {
		return nil, fmt.Errorf("sealed %q: %w", name, os.ErrNotExist)
	}
	return bytes.Clone(b), nil
}

func (h *fakeHost) WriteSealed(name string, data []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.sealed[name] = bytes.Clone(data)
	return nil
}

func (h *fakeHost) PutState(key string, blob []byte) error {
	h.mu.Lock()
	hang, hanging := h.putHang, h.putHanging
	h.mu.Unlock()
	if hang != nil && strings.HasPrefix(key, keySnapshotPrefix) {
		hanging <- struct{}{}
		<-hang
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	h.state[key] = bytes.Clone(blob)
	return nil
}

func (h *fakeHost) GetState(key string) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	b, ok := h.state[key]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(b), nil
}

func (h *fakeHost) DeleteState(key string) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.state, key)
	return nil
}

func (h *fakeHost) StoreBlock(b *sidechain.Block, raw []byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failStore {
		return errors.New("fake host: disk full")
	}
	m := h.blocks[b.Header.Shard]
	if m == nil {
		m = map[uint64][]byte{}
		h.blocks[b.Header.Shard] = m
	}
	m[b.Header.Number] = bytes.Clone(raw)
	return nil
}

func (h *fakeHost) BlockByNumber(shard sidechain.ShardID, n uint64) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	raw, ok := h.blocks[shard][n]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(raw), nil
}

func (h *fakeHost) LastBlock(shard sidechain.ShardID) ([]byte, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	m := h.blocks[shard]
	if len(m) == 0 {
		return nil, ErrNotFound
	}
	return bytes.Clone(m[slices.Max(slices.Collect(maps.Keys(m)))]), nil
}

func (h *fakeHost) BroadcastBlock(raw []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.broadcast = append(h.broadcast, bytes.Clone(raw))
}

func (h *fakeHost) ForwardOperations(sealed []byte) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.forwarded = append(h.forwarded, bytes.Clone(sealed))
}

// ParentchainNonce is a counter: the chain accepted every transaction sent.
func (h *fakeHost) ParentchainNonce(context.Context, account.ID) (uint64, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return uint64(len(h.txs)), nil
}

func (h *fakeHost) SubmitParentchainTx(_ context.Context, tx []byte) error {
	if h.hang != nil {
		h.hanging <- struct{}{}
		<-h.hang
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.failSubmits > 0 {
		h.failSubmits--
		return errors.New("fake host: node unreachable")
	}
	h.txs = append(h.txs, bytes.Clone(tx))
	return nil
}

// ReadParentchainState answers from the attached parentchain, through
// lie when set; without a chain nothing is provable.
func (h *fakeHost) ReadParentchainState(_ context.Context, height int64, keys [][]byte) ([]StateRead, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.chain == nil {
		return nil, ErrStateUnavailable
	}
	out := make([]StateRead, len(keys))
	for i, k := range keys {
		p, err := h.chain.Prove(height, k)
		if err != nil {
			return nil, ErrStateUnavailable
		}
		out[i] = StateRead{Key: p.Key, Value: p.Value, Ops: p.Ops}
	}
	if h.lie != nil {
		out = h.lie(height, out)
	}
	return out, nil
}

func (h *fakeHost) sentTxs() [][]byte {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.txs)
}

// cloneSealed returns a new host holding only h's sealed keys: another
// host of the same enclave instance, with no state and no blocks.
func (h *fakeHost) cloneSealed() *fakeHost {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := newFakeHost()
	for k, v := range h.sealed {
		n.sealed[k] = bytes.Clone(v)
	}
	return n
}

// ---- the enclave under test ----

// machine is a simulated TEE: an executable and a host secret.
type machine struct{ exe, secret string }

func newMachine(t *testing.T, code string) machine {
	t.Helper()
	dir := t.TempDir()
	m := machine{exe: filepath.Join(dir, "integritee-service"), secret: filepath.Join(dir, "host-secret")}
	if err := os.WriteFile(m.exe, []byte(code), 0o700); err != nil {
		t.Fatal(err)
	}
	return m
}

func (m machine) backend(t *testing.T) *sim.Backend {
	t.Helper()
	b, err := sim.New(sim.Config{Executable: m.exe, HostSecretPath: m.secret})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

var genesisValidators = func() *cmttypes.ValidatorSet {
	pk := ed25519.GenPrivKeyFromSecret([]byte("enclave test validator")).PubKey()
	return cmttypes.NewValidatorSet([]*cmttypes.Validator{cmttypes.NewValidator(pk, 10)})
}()

func testConfig() Config {
	return Config{
		ChainID:              "test",
		GenesisValidators:    genesisValidators,
		SlotDuration:         300 * time.Millisecond,
		FinalizationInterval: 50,
		SnapshotInterval:     3,
		KeepSnapshots:        2,
	}
}

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newEnclave(t *testing.T, m machine, h *fakeHost) *Enclave {
	t.Helper()
	e, err := New(context.Background(), m.backend(t), h, testConfig(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	giveDevRoot(e)
	return e
}

// giveDevRoot makes //Alice the root of a shard that has no block yet, in
// its first block, as a development parentchain would (chainView.Root);
// these tests run without one.
func giveDevRoot(e *Enclave) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.sync.View.Root = stf.DevRoot()
}

// slot0 is the start of a slot; slotTime(k) is k slots later.
var slot0 = time.UnixMilli(300 * 5_700_000_000)

func slotTime(k int) time.Time { return slot0.Add(time.Duration(k) * 300 * time.Millisecond) }

func dev(t *testing.T, name string) *account.Pair {
	t.Helper()
	p, err := account.DevPair("//" + name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// encrypt makes the ciphertext a client sends for op.
func encrypt(t *testing.T, pub []byte, op *stf.Operation) []byte {
	t.Helper()
	plain, err := op.Encode()
	if err != nil {
		t.Fatal(err)
	}
	ct, err := keys.ShieldingEncrypt(pub, plain)
	if err != nil {
		t.Fatal(err)
	}
	return ct
}

// signedCall returns call signed by p for e's mrenclave and shard.
func signedCall(e *Enclave, p *account.Pair, call stf.Call, nonce uint64) *stf.Operation {
	return &stf.Operation{Call: stf.SignCall(p, call, nonce, e.MrEnclave(), e.ShardID())}
}

func submit(t *testing.T, e *Enclave, p *account.Pair, call stf.Call, nonce uint64) sidechain.Hash {
	t.Helper()
	h, _, err := submitCT(e.RPC(), context.Background(), e.ShardID(), encrypt(t, e.ShieldingPublicKey(), signedCall(e, p, call, nonce)), false)
	if err != nil {
		t.Fatalf("submit %s nonce %d: %v", call.Name(), nonce, err)
	}
	return h
}

func setBalance(who account.ID, amount types.Balance) stf.Call {
	return stf.Call{SetBalance: &stf.SetBalance{Who: who, Free: amount}}
}

func transfer(from, to account.ID, amount types.Balance) stf.Call {
	return stf.Call{Transfer: &stf.Transfer{From: from, To: to, Amount: amount}}
}

func getterOp(t *testing.T, e *Enclave, p *account.Pair, g stf.Getter) []byte {
	t.Helper()
	b, err := (&stf.Operation{Getter: stf.SignGetter(p, g, e.ShardID())}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// balance reads p's free balance with a getter p signs.
func balance(t *testing.T, e *Enclave, p *account.Pair) string {
	t.Helper()
	id := p.ID()
	v, err := e.RPC().ExecuteGetter(context.Background(), e.ShardID(), getterOp(t, e, p, stf.Getter{FreeBalance: &id}))
	if err != nil {
		t.Fatalf("balance of %s: %v", id, err)
	}
	return v
}

func nonceOf(t *testing.T, e *Enclave, p *account.Pair) string {
	t.Helper()
	id := p.ID()
	v, err := e.RPC().ExecuteGetter(context.Background(), e.ShardID(), getterOp(t, e, p, stf.Getter{Nonce: &id}))
	if err != nil {
		t.Fatalf("nonce of %s: %v", id, err)
	}
	return v
}

func issuance(t *testing.T, e *Enclave, p *account.Pair) string {
	t.Helper()
	v, err := e.RPC().ExecuteGetter(context.Background(), e.ShardID(), getterOp(t, e, p, stf.Getter{TotalIssuance: &stf.TotalIssuanceQuery{}}))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func onSlot(t *testing.T, e *Enclave, k int) *sidechain.Block {
	t.Helper()
	b, err := e.OnSlot(context.Background(), slotTime(k))
	if err != nil {
		t.Fatalf("OnSlot(%d): %v", k, err)
	}
	e.waitSnapshots() // taken by a goroutine after OnSlot: these tests look at them
	return b
}

func mustBlock(t *testing.T, e *Enclave, k int) *sidechain.Block {
	t.Helper()
	b := onSlot(t, e, k)
	if b == nil {
		t.Fatalf("OnSlot(%d) produced no block", k)
	}
	return b
}

func header(t *testing.T, e *Enclave) rpc.Header {
	t.Helper()
	h, err := e.RPC().LatestHeader(e.ShardID())
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func wantErr(t *testing.T, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("error %v, want %v", err, target)
	}
}

func teer(n uint64) types.Balance { return types.TEER(n) }

// ---- (a) block production ----

func TestFirstSlotMakesBlockOneEvenWhenEmpty(t *testing.T) {
	h := newFakeHost()
	e := newEnclave(t, newMachine(t, "v1"), h)
	if e.Ready() {
		t.Fatal("ready before any block")
	}
	wantErr(t, e.RPC().Health(), ErrNotReady)
	if _, err := e.RPC().LatestHeader(e.ShardID()); !errors.Is(err, ErrNoBlock) {
		t.Fatalf("LatestHeader before block 1: %v", err)
	}

	b := mustBlock(t, e, 1)
	if b.Header.Number != 1 || b.Header.ParentHash != (sidechain.Hash{}) || b.Header.Shard != e.ShardID() {
		t.Fatalf("block 1 header = %+v", b.Header)
	}
	if len(b.Data.Operations) != 0 || b.Data.Author != e.Signer() || b.Data.Timestamp != slotTime(1).UnixMilli() {
		t.Fatalf("block 1 data = %+v", b.Data)
	}
	if b.Data.StateHashBefore != sidechain.Hash(stf.NewState(account.ID{}).SnapshotHash()) { // a root-less genesis; the root comes in block 1
		t.Fatal("block 1's state hash before is not the genesis state's hash")
	}
	if err := sidechain.NewCodec().Verify(b); err != nil {
		t.Fatalf("block 1 does not verify: %v", err)
	}
	if !e.Ready() || e.RPC().Health() != nil {
		t.Fatal("not ready after block 1")
	}
	if hd := header(t, e); hd.Number != 1 || hd.Hash != sidechain.NewCodec().Hash(b) {
		t.Fatalf("LatestHeader = %+v", hd)
	}
	// The host stored and broadcast exactly that block.
	raw, err := h.LastBlock(e.ShardID())
	if err != nil || !bytes.Equal(raw, sidechain.NewCodec().Encode(b)) {
		t.Fatalf("stored block 1: %v", err)
	}
	if len(h.broadcast) != 1 || !bytes.Equal(h.broadcast[0], raw) {
		t.Fatalf("broadcast %d blocks", len(h.broadcast))
	}
	// The shard defaults to the mrenclave.
	if e.ShardID() != sidechain.ShardID(e.MrEnclave()) {
		t.Fatal("default shard is not the mrenclave")
	}
}

func TestEmptySlotsAfterBlockOneMakeNothing(t *testing.T) {
	h := newFakeHost()
	e := newEnclave(t, newMachine(t, "v1"), h)
	mustBlock(t, e, 1)
	for k := 2; k < 6; k++ {
		if b := onSlot(t, e, k); b != nil {
			t.Fatalf("empty slot %d made block %d", k, b.Header.Number)
		}
	}
	if hd := header(t, e); hd.Number != 1 {
		t.Fatalf("head %d after empty slots", hd.Number)
	}
	if len(h.broadcast) != 1 {
		t.Fatalf("%d broadcasts, want 1", len(h.broadcast))
	}
}

func TestAtMostOneBlockPerSlot(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	if b := onSlot(t, e, 1); b != nil {
		t.Fatal("a second block in slot 1")
	}
	submit(t, e, alice, setBalance(alice.ID(), teer(10)), 0)
	b2 := mustBlock(t, e, 2)
	submit(t, e, alice, transfer(alice.ID(), bob.ID(), teer(1)), 1)
	// Later in the same slot, and in an earlier slot: nothing.
	if b, err := e.OnSlot(context.Background(), slotTime(2).Add(250*time.Millisecond)); err != nil || b != nil {
		t.Fatalf("second block in slot 2: %v %v", b, err)
	}
	if b := onSlot(t, e, 1); b != nil {
		t.Fatal("a block for a past slot")
	}
	if hd := header(t, e); hd.Number != 2 || hd.Hash != sidechain.NewCodec().Hash(b2) {
		t.Fatalf("head moved: %+v", hd)
	}
	b3 := mustBlock(t, e, 3)
	if b3.Header.Number != 3 || b3.Header.ParentHash != sidechain.NewCodec().Hash(b2) || len(b3.Data.Operations) != 1 {
		t.Fatalf("block 3 = %+v / %d ops", b3.Header, len(b3.Data.Operations))
	}
}

func TestSlotNumbering(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	s := e.Slot(slotTime(0))
	if e.Slot(slotTime(0).Add(299*time.Millisecond)) != s || e.Slot(slotTime(1)) != s+1 {
		t.Fatal("slot boundaries are not every 300 ms")
	}
}

// ---- (b) direct invocation and getters ----

func TestSubmittedCallsExecuteInTheNextBlockAndGettersShowTheBalances(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)

	h1 := submit(t, e, alice, setBalance(alice.ID(), teer(1000)), 0)
	h2 := submit(t, e, alice, transfer(alice.ID(), bob.ID(), types.NewBalance(250_000_000_001)), 1)
	pending, err := e.RPC().Pending(e.ShardID())
	if err != nil || len(pending) != 2 || pending[0] != h1 || pending[1] != h2 {
		t.Fatalf("pending = %v, %v", pending, err)
	}
	// Nothing executes before the block.
	if got := balance(t, e, alice); got != "0" {
		t.Fatalf("Alice has %s before the block", got)
	}

	b := mustBlock(t, e, 2)
	if b.Header.Number != 2 || len(b.Data.Operations) != 2 || b.Data.Operations[0] != h1 || b.Data.Operations[1] != h2 {
		t.Fatalf("block 2 = %+v, ops %v", b.Header, b.Data.Operations)
	}
	if got := balance(t, e, alice); got != "999749999999999" {
		t.Fatalf("Alice = %s, want 999749999999999", got)
	}
	if got := balance(t, e, bob); got != "250000000001" {
		t.Fatalf("Bob = %s, want 250000000001", got)
	}
	if got := nonceOf(t, e, alice); got != "2" {
		t.Fatalf("Alice's nonce = %s, want 2", got)
	}
	if got := nonceOf(t, e, bob); got != "0" {
		t.Fatalf("Bob's nonce = %s, want 0", got)
	}
	if got := issuance(t, e, bob); got != "1000000000000000" {
		t.Fatalf("issuance = %s", got)
	}
	if pending, _ := e.RPC().Pending(e.ShardID()); len(pending) != 0 {
		t.Fatalf("%d operations still pending after the block", len(pending))
	}
	if st := e.Stats(); st.CallsOK != 2 || st.CallsFailed != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if blk, pool, _, iss := e.Progress(); blk != 2 || pool != 0 || iss.String() != "1000000000000000" {
		t.Fatalf("progress = block %d pool %d issuance %s", blk, pool, iss)
	}
}

func TestGetterOfSomeoneElsesAccountIsRefused(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	submit(t, e, alice, setBalance(alice.ID(), teer(5)), 0)
	mustBlock(t, e, 2)
	aliceID := alice.ID()
	for _, g := range []stf.Getter{{FreeBalance: &aliceID}, {Nonce: &aliceID}} {
		_, err := e.RPC().ExecuteGetter(context.Background(), e.ShardID(), getterOp(t, e, bob, g))
		wantErr(t, err, stf.ErrGetterNotOwner)
	}
	// A getter signed for another shard does not verify here.
	raw, _ := (&stf.Operation{Getter: stf.SignGetter(alice, stf.Getter{FreeBalance: &aliceID}, sidechain.ShardID{9})}).Encode()
	_, err := e.RPC().ExecuteGetter(context.Background(), e.ShardID(), raw)
	wantErr(t, err, stf.ErrBadSignature)
	// A call is no getter; garbage is malformed.
	call, _ := signedCall(e, alice, transfer(alice.ID(), aliceID, teer(1)), 1).Encode()
	_, err = e.RPC().ExecuteGetter(context.Background(), e.ShardID(), call)
	wantErr(t, err, stf.ErrInvalidVariant)
	_, err = e.RPC().ExecuteGetter(context.Background(), e.ShardID(), []byte("garbage"))
	wantErr(t, err, stf.ErrMalformed)
	// The getter's shard parameter must be this enclave's.
	_, err = e.RPC().ExecuteGetter(context.Background(), sidechain.ShardID{9}, getterOp(t, e, alice, stf.Getter{FreeBalance: &aliceID}))
	wantErr(t, err, ErrUnknownShard)
}

func TestCiphertextsThatDoNotDecryptAreBadCiphertext(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	other := newEnclave(t, newMachine(t, "v1"), newFakeHost()) // another shard's keys
	if bytes.Equal(e.ShieldingPublicKey(), other.ShieldingPublicKey()) {
		t.Fatal("test set-up: two enclaves share a shielding key")
	}
	alice := dev(t, "Alice")
	op := signedCall(e, alice, setBalance(alice.ID(), teer(1)), 0)
	ct := encrypt(t, e.ShieldingPublicKey(), op)
	cases := map[string][]byte{
		"empty":                nil,
		"short":                ct[:40],
		"truncated":            ct[:len(ct)-1],
		"for another key":      encrypt(t, other.ShieldingPublicKey(), op),
		"the plaintext itself": func() []byte { b, _ := op.Encode(); return b }(),
	}
	for _, i := range []int{0, len(ct) / 2, len(ct) - 1} {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		cases[fmt.Sprintf("flipped byte %d", i)] = bad
	}
	for name, c := range cases {
		_, _, err := submitCT(e.RPC(), context.Background(), e.ShardID(), c, false)
		if !errors.Is(err, ErrBadCiphertext) {
			t.Errorf("%s: %v, want ErrBadCiphertext", name, err)
		}
	}
	if pending, _ := e.RPC().Pending(e.ShardID()); len(pending) != 0 {
		t.Fatal("a bad ciphertext entered the pool")
	}
	// The good one is accepted.
	if _, _, err := submitCT(e.RPC(), context.Background(), e.ShardID(), ct, false); err != nil {
		t.Fatal(err)
	}
}

func TestCallsSignedForAnotherShardOrEnclaveAreRefused(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice := dev(t, "Alice")
	call := setBalance(alice.ID(), teer(1))
	for name, op := range map[string]*stf.Operation{
		"another shard":     {Call: stf.SignCall(alice, call, 0, e.MrEnclave(), sidechain.ShardID{1})},
		"another mrenclave": {Call: stf.SignCall(alice, call, 0, attestation.MrEnclave{1}, e.ShardID())},
		"another nonce": func() *stf.Operation {
			op := signedCall(e, alice, call, 0)
			op.Call.Nonce = 1
			return op
		}(),
	} {
		_, _, err := submitCT(e.RPC(), context.Background(), e.ShardID(), encrypt(t, e.ShieldingPublicKey(), op), false)
		if !errors.Is(err, stf.ErrBadSignature) {
			t.Errorf("%s: %v, want stf.ErrBadSignature", name, err)
		}
	}
	// A transfer from someone other than its signer.
	bob := dev(t, "Bob")
	_, _, err := submitCT(e.RPC(), context.Background(), e.ShardID(), encrypt(t, e.ShieldingPublicKey(), signedCall(e, bob, transfer(alice.ID(), bob.ID(), teer(1)), 0)), false)
	wantErr(t, err, stf.ErrSignerMismatch)
	// A getter is not a call.
	id := alice.ID()
	_, _, err = submitCT(e.RPC(), context.Background(), e.ShardID(), encrypt(t, e.ShieldingPublicKey(), &stf.Operation{Getter: stf.SignGetter(alice, stf.Getter{FreeBalance: &id}, e.ShardID())}), false)
	wantErr(t, err, ErrNotACall)
}

func TestReplayedNonceIsStale(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	ct := encrypt(t, e.ShieldingPublicKey(), signedCall(e, alice, setBalance(alice.ID(), teer(10)), 0))
	if _, _, err := submitCT(e.RPC(), context.Background(), e.ShardID(), ct, false); err != nil {
		t.Fatal(err)
	}
	mustBlock(t, e, 2)
	// The very same ciphertext, and a new call with the used nonce.
	_, _, err := submitCT(e.RPC(), context.Background(), e.ShardID(), ct, false)
	wantErr(t, err, stf.ErrStaleNonce)
	_, _, err = submitCT(e.RPC(), context.Background(), e.ShardID(), encrypt(t, e.ShieldingPublicKey(), signedCall(e, alice, transfer(alice.ID(), bob.ID(), teer(1)), 0)), true)
	wantErr(t, err, stf.ErrStaleNonce)
	if got := balance(t, e, alice); got != teer(10).String() {
		t.Fatalf("Alice = %s after the replays", got)
	}
	if b := onSlot(t, e, 3); b != nil {
		t.Fatal("a replay made a block")
	}
}

func TestWrongShardParamIsUnknownShard(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice := dev(t, "Alice")
	ct := encrypt(t, e.ShieldingPublicKey(), signedCall(e, alice, setBalance(alice.ID(), teer(1)), 0))
	_, _, err := submitCT(e.RPC(), context.Background(), sidechain.ShardID{0xFF}, ct, false)
	wantErr(t, err, ErrUnknownShard)
	_, err = e.RPC().Pending(sidechain.ShardID{0xFF})
	wantErr(t, err, ErrUnknownShard)
	_, err = e.RPC().LatestHeader(sidechain.ShardID{0xFF})
	wantErr(t, err, ErrUnknownShard)
}

func TestFailingCallIsDroppedAndChangesNothing(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	// Bob has nothing to send; Bob is not root.
	submit(t, e, bob, transfer(bob.ID(), alice.ID(), teer(1)), 0)
	onSlot(t, e, 2)
	submit(t, e, bob, setBalance(bob.ID(), teer(1)), 0)
	onSlot(t, e, 3)
	if got := balance(t, e, bob); got != "0" {
		t.Fatalf("Bob = %s", got)
	}
	if got := nonceOf(t, e, bob); got != "0" {
		t.Fatalf("a failed call moved Bob's nonce to %s", got)
	}
	if st := e.Stats(); st.CallsFailed != 2 || st.CallsOK != 0 {
		t.Fatalf("stats = %+v", st)
	}
	if pending, _ := e.RPC().Pending(e.ShardID()); len(pending) != 0 {
		t.Fatal("failed calls stay in the pool")
	}
}

// A watcher of a direct invocation sees Submitted, Ready and then
// InSidechainBlock of the block that executed it: each once. The watch
// stays open after it (Finalized needs a parentchain, which these tests
// lack; see finality_test.go).
func TestWatchedCallReportsEachStatusOnce(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice := dev(t, "Alice")
	mustBlock(t, e, 1)
	ct := encrypt(t, e.ShieldingPublicKey(), signedCall(e, alice, setBalance(alice.ID(), teer(1)), 0))
	_, ch, err := submitCT(e.RPC(), context.Background(), e.ShardID(), ct, true)
	if err != nil {
		t.Fatal(err)
	}
	b := mustBlock(t, e, 2)
	want := []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Ready}, {Kind: rpc.InSidechainBlock, BlockHash: sidechain.NewCodec().Hash(b)}}
	got := statusesUntil(t, ch, rpc.InSidechainBlock)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	submit(t, e, alice, setBalance(alice.ID(), teer(2)), 1)
	mustBlock(t, e, 3)
	noStatus(t, ch) // neither a repeat nor a made-up finality
}

// Whatever comes before, a watched call reaches the block that executed
// it; a failed one ends with Invalid.
func TestWatchedCallEndsInItsBlock(t *testing.T) {
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	ct := encrypt(t, e.ShieldingPublicKey(), signedCall(e, alice, setBalance(alice.ID(), teer(1)), 0))
	_, ch, err := submitCT(e.RPC(), context.Background(), e.ShardID(), ct, true)
	if err != nil {
		t.Fatal(err)
	}
	// And one that will fail: Bob has nothing.
	_, bad, err := submitCT(e.RPC(), context.Background(), e.ShardID(), encrypt(t, e.ShieldingPublicKey(), signedCall(e, bob, transfer(bob.ID(), alice.ID(), teer(1)), 0)), true)
	if err != nil {
		t.Fatal(err)
	}
	b := mustBlock(t, e, 2)
	got := statusesUntil(t, ch, rpc.InSidechainBlock)
	if len(got) < 2 || got[0].Kind != rpc.Submitted {
		t.Fatalf("statuses %v", got)
	}
	if last := got[len(got)-1]; last.Kind != rpc.InSidechainBlock || last.BlockHash != sidechain.NewCodec().Hash(b) {
		t.Fatalf("last status %+v, want InSidechainBlock(%s)", last, sidechain.NewCodec().Hash(b))
	}
	gotBad := collectStatuses(t, bad)
	if last := gotBad[len(gotBad)-1]; last.Kind != rpc.Invalid || !strings.Contains(last.Reason, "InsufficientBalance") {
		t.Fatalf("failed call's last status %+v, want Invalid(InsufficientBalance)", last)
	}
}

// statusesUntil reads a watch through the first status of kind; the watch
// must not end (nor stall for 5s) before it.
func statusesUntil(t *testing.T, ch <-chan rpc.Status, kind string) []rpc.Status {
	t.Helper()
	var got []rpc.Status
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				t.Fatalf("status channel closed before %s; got %v", kind, got)
			}
			got = append(got, s)
			if s.Kind == kind {
				return got
			}
		case <-timeout:
			t.Fatalf("no %s within 5s; got %v", kind, got)
		}
	}
}

// noStatus checks that the watch stays open and quiet for a moment (the
// enclave forwards statuses from a goroutine).
func noStatus(t *testing.T, ch <-chan rpc.Status) {
	t.Helper()
	select {
	case s, ok := <-ch:
		if !ok {
			t.Fatal("status channel closed")
		}
		t.Fatalf("unexpected status %v", s)
	case <-time.After(100 * time.Millisecond):
	}
}

// collectStatuses reads a watch until it ends (after a final status).
func collectStatuses(t *testing.T, ch <-chan rpc.Status) []rpc.Status {
	t.Helper()
	var got []rpc.Status
	timeout := time.After(5 * time.Second)
	for {
		select {
		case s, ok := <-ch:
			if !ok {
				return got
			}
			got = append(got, s)
		case <-timeout:
			t.Fatalf("status channel not closed; got %v", got)
		}
	}
}

// ---- (c) restart ----

// chain runs e through block 1 and then n blocks with one call each:
// set Alice's balance, then transfers of 1..n-1 planck to Bob.
func chain(t *testing.T, e *Enclave, n int) {
	t.Helper()
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	submit(t, e, alice, setBalance(alice.ID(), teer(100)), 0)
	mustBlock(t, e, 2)
	for i := 1; i < n; i++ {
		submit(t, e, alice, transfer(alice.ID(), bob.ID(), types.NewBalance(uint64(i))), uint64(i))
		mustBlock(t, e, 2+i)
	}
}

type snapshot struct {
	head       rpc.Header
	stateHash  [32]byte
	signer     account.ID
	shielding  []byte
	alice, bob string
	issuance   string
	nonce      string
}

func observe(t *testing.T, e *Enclave) snapshot {
	t.Helper()
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	e.mu.Lock()
	sh := e.stateHash
	e.mu.Unlock()
	return snapshot{
		head: header(t, e), stateHash: sh, signer: e.Signer(), shielding: e.ShieldingPublicKey(),
		alice: balance(t, e, alice), bob: balance(t, e, bob), issuance: issuance(t, e, alice), nonce: nonceOf(t, e, alice),
	}
}

func sameSnapshot(t *testing.T, got, want snapshot) {
	t.Helper()
	if got.head != want.head {
		t.Errorf("head %+v, want %+v", got.head, want.head)
	}
	if got.stateHash != want.stateHash {
		t.Errorf("state hash %x, want %x", got.stateHash[:8], want.stateHash[:8])
	}
	if got.signer != want.signer || !bytes.Equal(got.shielding, want.shielding) {
		t.Error("keys changed across the restart")
	}
	if got.alice != want.alice || got.bob != want.bob || got.issuance != want.issuance || got.nonce != want.nonce {
		t.Errorf("balances %s/%s issuance %s nonce %s, want %s/%s %s %s", got.alice, got.bob, got.issuance, got.nonce, want.alice, want.bob, want.issuance, want.nonce)
	}
}

func (h *fakeHost) stateKeys(prefix string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for k := range h.state {
		if strings.HasPrefix(k, prefix) {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

func TestRestartRestoresKeysHeadAndState(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	e1 := newEnclave(t, m, h)
	chain(t, e1, 6) // blocks 1..7; snapshots at 1, 3, 6; the last two kept
	before := observe(t, e1)
	if before.head.Number != 7 || before.bob != "15" {
		t.Fatalf("set-up: head %d, Bob %s", before.head.Number, before.bob)
	}
	if got := h.stateKeys(keySnapshotPrefix); len(got) != 2 || got[0] != numberKey(keySnapshotPrefix, 3) || got[1] != numberKey(keySnapshotPrefix, 6) {
		t.Fatalf("snapshots kept: %q, want those of blocks 3 and 6", got)
	}
	if got := h.stateKeys(keySyncPrefix); len(got) > 3 {
		t.Fatalf("%d sync records kept", len(got))
	}

	e2 := newEnclave(t, m, h) // the same machine and host: a restart
	sameSnapshot(t, observe(t, e2), before)
	if !e2.Ready() {
		t.Fatal("restarted enclave is not ready")
	}

	// It carries on where the first left off.
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	submit(t, e2, alice, transfer(alice.ID(), bob.ID(), types.NewBalance(100)), 6)
	b8 := mustBlock(t, e2, 20)
	if b8.Header.Number != 8 || b8.Header.ParentHash != before.head.Hash || b8.Data.StateHashBefore != sidechain.Hash(before.stateHash) {
		t.Fatalf("block 8 after the restart = %+v, state before %s", b8.Header, b8.Data.StateHashBefore)
	}
	if got := balance(t, e2, bob); got != "115" {
		t.Fatalf("Bob = %s, want 115", got)
	}
}

func TestRestartFallsBackToAnOlderSnapshotOrToGenesis(t *testing.T) {
	for name, damage := range map[string]func(h *fakeHost){
		"latest snapshot missing": func(h *fakeHost) { h.DeleteState(numberKey(keySnapshotPrefix, 6)) },
		"latest snapshot corrupt": func(h *fakeHost) {
			h.mu.Lock()
			h.state[numberKey(keySnapshotPrefix, 6)][20] ^= 1
			h.mu.Unlock()
		},
		"no snapshots at all": func(h *fakeHost) {
			for _, k := range h.stateKeys(keySnapshotPrefix) {
				h.DeleteState(k)
			}
			h.DeleteState(keySnapshotIndex)
		},
	} {
		t.Run(name, func(t *testing.T) {
			m, h := newMachine(t, "v1"), newFakeHost()
			e1 := newEnclave(t, m, h)
			chain(t, e1, 6)
			before := observe(t, e1)
			damage(h)
			sameSnapshot(t, observe(t, newEnclave(t, m, h)), before)
		})
	}
}

func TestRestartRefusesAStoreWhoseBlocksDoNotAddUp(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	chain(t, newEnclave(t, m, h), 6) // blocks 1..7, snapshots 3 and 6
	// Without block 7 the store is an older but consistent one: it restores
	// to block 6 from snapshot 6 (snapshots beyond the head are skipped).
	h.mu.Lock()
	delete(h.blocks[sidechain.ShardID(m.backend(t).MrEnclave())], 7)
	h.mu.Unlock()
	e := newEnclave(t, m, h)
	if hd := header(t, e); hd.Number != 6 {
		t.Fatalf("head %d, want 6", hd.Number)
	}
	// Now break the replay: remove the snapshot index and block 4.
	h.DeleteState(keySnapshotIndex)
	h.mu.Lock()
	delete(h.blocks[e.ShardID()], 4)
	h.mu.Unlock()
	if _, err := New(context.Background(), m.backend(t), h, testConfig(), quiet); err == nil {
		t.Fatal("restored although block 4 is missing and no snapshot covers it")
	}
}

func TestAnotherBuildCannotUseTheSealedStore(t *testing.T) {
	h := newFakeHost()
	newEnclave(t, newMachine(t, "v1"), h)
	if _, err := New(context.Background(), newMachine(t, "v2").backend(t), h, testConfig(), quiet); !errors.Is(err, keys.ErrUnseal) {
		t.Fatalf("another mrenclave on the same store: %v, want keys.ErrUnseal", err)
	}
}

// ---- (d) block import ----

// replica returns an enclave with e's keys (the same instance on another
// host) that has no blocks yet.
func replica(t *testing.T, m machine, h *fakeHost) (*Enclave, *fakeHost) {
	t.Helper()
	h2 := h.cloneSealed()
	r, err := New(context.Background(), m.backend(t), h2, testConfig(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	return r, h2 // it imports the shard's blocks, root included
}

func TestReplicaImportsTheBlocksAndReachesTheSameState(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	e := newEnclave(t, m, h)
	chain(t, e, 4)
	r, rh := replica(t, m, h)
	for n := uint64(1); n <= 5; n++ {
		raw, _ := h.BlockByNumber(e.ShardID(), n)
		if err := r.ImportBlock(raw); err != nil {
			t.Fatalf("import block %d: %v", n, err)
		}
	}
	// The head again is accepted and changes nothing.
	raw, _ := h.LastBlock(e.ShardID())
	if err := r.ImportBlock(raw); err != nil {
		t.Fatalf("re-import of the head: %v", err)
	}
	sameSnapshot(t, observe(t, r), observe(t, e))
	if stored, _ := rh.LastBlock(e.ShardID()); !bytes.Equal(stored, raw) {
		t.Fatal("the replica's host did not store the imported head")
	}
	// The counters behind the proposed/imported metrics.
	if st := e.Stats(); st.BlocksProposed != 5 || st.BlocksImported != 0 {
		t.Fatalf("author's counters %+v, want 5 proposed", st)
	}
	if st := r.Stats(); st.BlocksProposed != 0 || st.BlocksImported != 5 {
		t.Fatalf("replica's counters %+v, want 5 imported (the head's re-import is not one)", st)
	}
}

func TestImportRefusesBadBlocksAndKeepsTheHead(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	e := newEnclave(t, m, h)
	chain(t, e, 2) // head 3
	sc := sidechain.NewCodec()
	head := header(t, e)
	headRaw, _ := h.LastBlock(e.ShardID())
	headBlock, err := sc.Decode(headRaw)
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	stateHash := e.stateHash
	author := e.keys.Signer()
	e.mu.Unlock()

	// next returns a block extending the head, changed by f, sealed by p.
	next := func(p *account.Pair, f func(*sidechain.Header, *sidechain.BlockData)) []byte {
		hd := sidechain.Header{Number: head.Number + 1, ParentHash: head.Hash, Shard: e.ShardID(), NextFinalizationNumber: head.NextFinalizationNumber}
		d := sidechain.BlockData{
			Timestamp:          slotTime(40).UnixMilli(),
			EncryptedStateDiff: e.keys.State().Encrypt(stf.Diff{}.Encode(), e.diffAAD(head.Number+1)),
			StateHashBefore:    sidechain.Hash(stateHash),
			StateHashAfter:     sidechain.Hash(stf.NextStateHash(stateHash, stf.Diff{})),
		}
		if f != nil {
			f(&hd, &d)
		}
		return sc.Encode(sc.Seal(p, hd, d))
	}
	bob := dev(t, "Bob")
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"garbage", []byte("not a block at all"), ErrBadBlock},
		{"empty", nil, ErrBadBlock},
		{"truncated", headRaw[:len(headRaw)-7], ErrBadBlock},
		{"tampered data", func() []byte {
			b := *headBlock
			b.Data.Timestamp++
			return sc.Encode(&b)
		}(), ErrBadBlock},
		{"another shard", next(author, func(hd *sidechain.Header, _ *sidechain.BlockData) { hd.Shard = sidechain.ShardID{0x42} }), ErrUnknownShard},
		{"wrong parent (a competing branch)", next(author, func(hd *sidechain.Header, _ *sidechain.BlockData) { hd.ParentHash = sidechain.Hash{0x13} }), ErrCompetingBlock},
		{"number skips one (queued for its parent)", next(author, func(hd *sidechain.Header, _ *sidechain.BlockData) { hd.Number += 1 }), ErrBlockAhead},
		{"number of the head (a competing block)", next(author, func(hd *sidechain.Header, _ *sidechain.BlockData) { hd.Number = head.Number }), ErrCompetingBlock},
		{"signed by a non-author", next(bob, nil), ErrBadBlock},
		// A stranger's block at a held height is no competing block: it
		// would start fork resolution (the bad-input catalogue's finding).
		{"a stranger's block at the head's number", next(bob, func(hd *sidechain.Header, _ *sidechain.BlockData) { hd.Number = head.Number }), ErrBadBlock},
		{"wrong state before", next(author, func(_ *sidechain.Header, d *sidechain.BlockData) { d.StateHashBefore = sidechain.Hash{1} }), ErrBadBlock},
		{"wrong state after", next(author, func(_ *sidechain.Header, d *sidechain.BlockData) { d.StateHashAfter = sidechain.Hash{1} }), ErrBadBlock},
		{"diff under another key", next(author, func(_ *sidechain.Header, d *sidechain.BlockData) {
			d.EncryptedStateDiff = keys.NewStateCipher([32]byte{1}).Encrypt(stf.Diff{}.Encode(), e.diffAAD(head.Number+1))
		}), ErrBadBlock},
		{"diff of another number", next(author, func(_ *sidechain.Header, d *sidechain.BlockData) {
			d.EncryptedStateDiff = e.keys.State().Encrypt(stf.Diff{}.Encode(), e.diffAAD(head.Number))
		}), ErrBadBlock},
		{"layer-one head ahead", next(author, func(_ *sidechain.Header, d *sidechain.BlockData) { d.LayerOneHead.Number = 5 }), ErrBadBlock},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := e.ImportBlock(c.raw)
			if !errors.Is(err, c.want) {
				t.Fatalf("ImportBlock: %v, want %v", err, c.want)
			}
			if types.AsError(err) == nil {
				t.Fatalf("error %v names no module error", err)
			}
			if hd := header(t, e); hd != head {
				t.Fatalf("head moved to %+v", hd)
			}
			e.mu.Lock()
			sh := e.stateHash
			e.mu.Unlock()
			if sh != stateHash {
				t.Fatal("state hash moved")
			}
		})
	}
	// The control: the same construction, unchanged, is imported.
	if err := e.ImportBlock(next(author, nil)); err != nil {
		t.Fatalf("a well-formed next block was refused: %v", err)
	}
	if hd := header(t, e); hd.Number != head.Number+1 {
		t.Fatalf("head %d after a good import", hd.Number)
	}
}

// ---- (e) unshielding ----

type unshieldTx struct {
	tx   *types.Tx
	args enclavebridge.UnshieldFundsArgs
}

func decodeUnshield(t *testing.T, raw []byte) unshieldTx {
	t.Helper()
	c := types.NewCodec()
	tx, err := c.DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	// The signature (over the chain's genesis hash too) is the chain's to
	// check: chainEnv tests execute these transactions on the real app.
	if tx.Body.Call.Module != enclavebridge.ModuleName || tx.Body.Call.Method != "unshield_funds" {
		t.Fatalf("tx calls %s", tx.Body.Call)
	}
	var a enclavebridge.UnshieldFundsArgs
	if err := c.Unmarshal(tx.Body.Call.Args, &a); err != nil {
		t.Fatal(err)
	}
	return unshieldTx{tx: tx, args: a}
}

// ---- (f) nothing in the clear at the host ----

func TestHostNeverSeesPlaintextState(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	e := newEnclave(t, m, h)
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	const distinctive = 0x0123456789ABCDEF
	amount := types.NewBalance(distinctive)
	mustBlock(t, e, 1)
	submit(t, e, alice, setBalance(alice.ID(), types.NewBalance(distinctive*2)), 0)
	mustBlock(t, e, 2)
	transferOp := signedCall(e, alice, transfer(alice.ID(), bob.ID(), amount), 1)
	if _, _, err := submitCT(e.RPC(), context.Background(), e.ShardID(), encrypt(t, e.ShieldingPublicKey(), transferOp), false); err != nil {
		t.Fatal(err)
	}
	mustBlock(t, e, 3)
	// Enough blocks for a snapshot (3) that holds Bob's record.
	if got := balance(t, e, bob); got != amount.String() {
		t.Fatalf("Bob = %s", got)
	}
	if len(h.stateKeys(keySnapshotPrefix)) == 0 {
		t.Fatal("set-up: no snapshot stored")
	}

	codec := types.NewCodec()
	bobRecord := codec.MustMarshal(stf.Account{Free: amount})
	aliceRecord := codec.MustMarshal(stf.Account{Free: amount, Nonce: 2})
	amountCBOR := codec.MustMarshal(amount)
	opPlain, _ := transferOp.Encode()
	bobID := bob.ID()
	secrets := map[string][]byte{
		"Bob's account record":    bobRecord,
		"Alice's account record":  aliceRecord,
		"the amount as CBOR":      amountCBOR,
		"the amount's 16 bytes":   amountCBOR[1:],
		"the amount's low 8":      amountCBOR[len(amountCBOR)-8:],
		"the transfer operation":  opPlain,
		"Bob's account id":        bobID[:],
		"Bob's state key":         []byte("acct/" + string(bobID[:])),
		"the transfer signature":  transferOp.Call.Signature,
		"the state key namespace": []byte("acct/"),
	}
	if len(amountCBOR) != 17 {
		t.Fatalf("set-up: amount CBOR is %d bytes", len(amountCBOR))
	}

	blobs := map[string][]byte{}
	h.mu.Lock()
	for k, v := range h.state {
		blobs["state "+k] = v
	}
	for k, v := range h.sealed {
		blobs["sealed "+k] = v
	}
	for shard, m := range h.blocks {
		for n, v := range m {
			blobs[fmt.Sprintf("block %s/%d", shard, n)] = v
		}
	}
	for i, v := range h.broadcast {
		blobs[fmt.Sprintf("broadcast %d", i)] = v
	}
	for i, v := range h.txs {
		blobs[fmt.Sprintf("tx %d", i)] = v
	}
	h.mu.Unlock()
	if len(blobs) < 8 {
		t.Fatalf("set-up: only %d blobs to search", len(blobs))
	}
	// The search works: what is public is found in the clear.
	signer := e.Signer()
	if raw, _ := h.LastBlock(e.ShardID()); !bytes.Contains(raw, signer[:]) {
		t.Fatal("set-up: the block's author is not found in the block")
	}
	for bname, blob := range blobs {
		for sname, s := range secrets {
			if bytes.Contains(blob, s) {
				t.Errorf("%s holds %s in the clear", bname, sname)
			}
		}
	}
}

// Aura: a block's slot comes after its parent's. A block stamped before its
// parent would let an author mint blocks for slots long gone.
func TestImportRefusesABlockWhoseSlotIsNotAfterItsParents(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	e := newEnclave(t, m, h)
	chain(t, e, 2) // head 3, made in slot 4
	head := header(t, e)
	e.mu.Lock()
	stateHash := e.stateHash
	e.mu.Unlock()
	sc := sidechain.NewCodec()
	hd := sidechain.Header{Number: head.Number + 1, ParentHash: head.Hash, Shard: e.ShardID(), NextFinalizationNumber: head.NextFinalizationNumber}
	d := sidechain.BlockData{
		Timestamp:          slotTime(2).UnixMilli(), // before the parent's slot 4
		EncryptedStateDiff: e.keys.State().Encrypt(stf.Diff{}.Encode(), e.diffAAD(head.Number+1)),
		StateHashBefore:    sidechain.Hash(stateHash),
		StateHashAfter:     sidechain.Hash(stf.NextStateHash(stateHash, stf.Diff{})),
	}
	err := e.ImportBlock(sc.Encode(sc.Seal(e.keys.Signer(), hd, d)))
	wantErr(t, err, ErrBadBlock)
	if header(t, e) != head {
		t.Fatal("head moved")
	}
}

// A block the host fails to store stops the enclave (ErrCommitFailed: the
// host must restart it, as the service does); the restarted enclave holds
// the stored chain only, and what it makes next fits that chain.
func TestFailedBlockStoreIsFatalAndRestartRecovers(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	e := newEnclave(t, m, h)
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	submit(t, e, alice, setBalance(alice.ID(), teer(10)), 0)
	h.mu.Lock()
	h.failStore = true
	h.mu.Unlock()
	if _, err := e.OnSlot(context.Background(), slotTime(2)); !errors.Is(err, ErrCommitFailed) {
		t.Fatalf("OnSlot after a failed store: %v, want ErrCommitFailed", err)
	}
	h.mu.Lock()
	h.failStore = false
	h.mu.Unlock()

	e = newEnclave(t, m, h) // the host restarts it
	if hd := header(t, e); hd.Number != 1 {
		t.Fatalf("head %d after restart, want the stored 1", hd.Number)
	}
	if got := balance(t, e, alice); got != "0" {
		t.Errorf("Alice = %s: an unstored block's change survived", got)
	}
	submit(t, e, alice, setBalance(alice.ID(), teer(10)), 0)
	if b := mustBlock(t, e, 3); b.Header.Number != 2 {
		t.Fatalf("next block is %d", b.Header.Number)
	}
	submit(t, e, alice, transfer(alice.ID(), bob.ID(), teer(1)), 1)
	mustBlock(t, e, 4)
	want := observe(t, e)
	r, _ := replica(t, m, h)
	for n := uint64(1); n <= 3; n++ {
		raw, _ := h.BlockByNumber(e.ShardID(), n)
		if err := r.ImportBlock(raw); err != nil {
			t.Errorf("a replica refuses stored block %d: %v", n, err)
		}
	}
	e2, err := New(context.Background(), m.backend(t), h, testConfig(), quiet)
	if err != nil {
		t.Fatalf("second restart: %v", err)
	}
	sameSnapshot(t, observe(t, e2), want)
}

// The whole direct-invocation path: a client checks the enclave's RA-TLS
// certificate, fetches the shielding key, submits and watches a call, and
// reads the result with a getter.
func TestDirectInvocationOverTheTrustedRPC(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	b := m.backend(t)
	e, err := New(context.Background(), b, h, testConfig(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	giveDevRoot(e)
	mustBlock(t, e, 1)
	cert, err := ratls.NewCertificate(b, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := rpc.NewServer(e.RPC(), "test", quiet, nil)
	go srv.Serve(l, cert)
	defer srv.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpcclient.Dial(ctx, "wss://"+l.Addr().String(), rpcclient.Options{
		Verifiers: ratls.Verifiers(attsim.NewVerifier()),
		Check: func(r *attestation.Report) error {
			if r.MrEnclave != e.MrEnclave() {
				return errors.New("not our enclave")
			}
			return nil
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pub, err := c.ShieldingKey(ctx)
	if err != nil || !bytes.Equal(pub, e.ShieldingPublicKey()) {
		t.Fatalf("shielding key over RPC: %v", err)
	}
	alice := dev(t, "Alice")
	hash, ch, err := c.SubmitAndWatch(ctx, e.ShardID(), encrypt(t, pub, signedCall(e, alice, setBalance(alice.ID(), teer(3)), 0)))
	if err != nil {
		t.Fatal(err)
	}
	blk := mustBlock(t, e, 2)
	got := statusesUntil(t, ch, rpc.InSidechainBlock)
	if last := got[len(got)-1]; last.BlockHash != sidechain.NewCodec().Hash(blk) {
		t.Fatalf("statuses %v, want to end in InSidechainBlock(%s)", got, sidechain.NewCodec().Hash(blk))
	}
	if hash != blk.Data.Operations[0].String() {
		t.Fatalf("hash %s, block executed %s", hash, blk.Data.Operations[0])
	}
	id := alice.ID()
	v, err := c.ExecuteGetter(ctx, e.ShardID(), getterOp(t, e, alice, stf.Getter{FreeBalance: &id}))
	if err != nil || v != teer(3).String() {
		t.Fatalf("balance over RPC = %q, %v", v, err)
	}
	// A replay comes back as the named error.
	_, err = c.Submit(ctx, e.ShardID(), encrypt(t, pub, signedCall(e, alice, setBalance(alice.ID(), teer(3)), 0)))
	var re *rpcclient.Error
	if !errors.As(err, &re) || re.Name != "stf.StaleNonce" {
		t.Fatalf("replay over RPC: %v", err)
	}
	hd, err := c.Header(ctx, e.ShardID())
	if err != nil || hd.Number != 2 || hd.Hash != sidechain.NewCodec().Hash(blk) {
		t.Fatalf("header over RPC = %+v, %v", hd, err)
	}
}
