package enclave

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/chaintest"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	scmodule "github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// ---- an enclave on a real parentchain (package chaintest) ----

// chainEnv is an enclave whose host fetches a real parentchain application's
// blocks and proofs; the test decides what the host passes on.
type chainEnv struct {
	t       *testing.T
	m       machine
	h       *fakeHost
	c       *chaintest.Chain
	cfg     Config
	e       *Enclave
	relayed int           // the enclave's sent transactions already put in blocks
	logs    *lockedBuffer // the enclave's log
}

// lockedBuffer is a log sink safe for the enclave's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func newChainEnv(t *testing.T, tune ...func(*Config)) *chainEnv {
	t.Helper()
	c := chaintest.New(t)
	h := newFakeHost()
	h.chain = c
	cfg := testConfig()
	cfg.ChainID, cfg.GenesisValidators = c.ChainID(), c.GenesisValidators()
	for _, f := range tune {
		f(&cfg)
	}
	env := &chainEnv{t: t, m: newMachine(t, "v1"), h: h, c: c, cfg: cfg, logs: &lockedBuffer{}}
	env.e = env.start()
	return env
}

// start starts (or restarts) the enclave on the host's files.
func (env *chainEnv) start() *Enclave {
	env.t.Helper()
	e, err := New(context.Background(), env.m.backend(env.t), env.h, env.cfg, slog.New(slog.NewTextHandler(env.logs, nil)))
	if err != nil {
		env.t.Fatal(err)
	}
	return e
}

// block seals a parentchain block carrying, first, every transaction the
// enclave sent since the last block, then txs; it returns the results.
func (env *chainEnv) block(txs ...[]byte) []*abci.ExecTxResult {
	env.t.Helper()
	sent := env.h.sentTxs()[env.relayed:]
	env.relayed += len(sent)
	_, res := env.c.Block(append(slices.Clone(sent), txs...)...)
	return res
}

// finalize relays the primary's confirmation of its head (sent when an
// unshielding waits for it) into a block, seals the next, and syncs: the
// enclave then sees its block anchored and pays out.
func (env *chainEnv) finalize() {
	env.t.Helper()
	env.mustOK(env.block())
	env.block()
	env.sync()
}

// sync imports every sealed parentchain block whose successor is sealed.
func (env *chainEnv) sync() {
	env.t.Helper()
	for h := env.e.NextParentchainHeight(); h < env.c.Height(); h++ {
		if err := env.e.ImportParentchainBlock(context.Background(), env.c.Input(h), env.c.Now()); err != nil {
			env.t.Fatalf("import parentchain block %d: %v", h, err)
		}
	}
	env.e.SendDue(context.Background()) // as the host does after each batch
}

func (env *chainEnv) call(module, method string, args any) types.Call {
	env.t.Helper()
	c, err := types.NewCall(env.c.Codec(), module, method, args)
	if err != nil {
		env.t.Fatal(err)
	}
	return c
}

func (env *chainEnv) sign(p *account.Pair, module, method string, args any) []byte {
	return env.c.Sign(p, env.call(module, method, args))
}

// register funds the enclave's account, registers it (unattested, as dev
// chains allow) and lets it announce itself, which makes it the shard's
// first authority.
func (env *chainEnv) register() {
	env.t.Helper()
	e := env.e
	env.block(env.sign(dev(env.t, "Alice"), balances.ModuleName, "transfer", balances.TransferArgs{Dest: e.Signer(), Amount: teer(10)}))
	if _, err := e.Register(context.Background(), "wss://me", true); err != nil {
		env.t.Fatal(err)
	}
	env.block() // the registration
	env.block()
	env.sync() // the enclave sees it and announces itself
	env.block()
	env.block()
	env.sync()
	if v := viewOf(e); !slices.Equal(v.Authorities, []account.ID{e.Signer()}) {
		env.t.Fatalf("after registering, the proven authorities are %v", v.Authorities)
	}
}

// registerOther registers p's key as another enclave of the same build and
// has it confirm a block for the shard, which puts it in the shard's status.
func (env *chainEnv) registerOther(p *account.Pair) {
	env.t.Helper()
	mr := env.e.MrEnclave()
	env.mustOK(env.block(env.sign(p, teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{Proof: mr[:], URL: "wss://other", Method: "skip"})))
	env.mustOK(env.block(env.sign(p, enclavebridge.ModuleName, "confirm_processed_parentchain_block", enclavebridge.ConfirmProcessedParentchainBlockArgs{Shard: env.e.ShardID(), BlockNumber: 1})))
}

func (env *chainEnv) mustOK(res []*abci.ExecTxResult) {
	env.t.Helper()
	for i, r := range res {
		if r.Code != 0 {
			env.t.Fatalf("parentchain tx %d failed: %s", i, r.Log)
		}
	}
}

// shield has from shield amount into the shard for to on the parentchain,
// and lets the enclave verify it (the credit waits for the next block).
func (env *chainEnv) shield(from *account.Pair, to account.ID, amount types.Balance) {
	env.t.Helper()
	ct, err := keys.ShieldingEncrypt(env.e.ShieldingPublicKey(), to[:])
	if err != nil {
		env.t.Fatal(err)
	}
	env.mustOK(env.block(env.sign(from, enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{Shard: env.e.ShardID(), EncryptedBeneficiary: ct, Amount: amount})))
	env.block()
	env.sync()
}

// startWithDeposit registers env's enclave, has it start the shard (block
// 1) and credits amount to to from //Alice's shield_funds (block 2).
func (env *chainEnv) startWithDeposit(to account.ID, amount types.Balance) {
	env.t.Helper()
	env.register()
	mustBlock(env.t, env.e, 1)
	env.shield(dev(env.t, "Alice"), to, amount)
	mustBlock(env.t, env.e, 2)
}

// setLie makes the host rewrite its proven answers (nil: honest again).
func (env *chainEnv) setLie(lie func(height int64, reads []StateRead) []StateRead) {
	env.h.mu.Lock()
	defer env.h.mu.Unlock()
	env.h.lie = lie
}

func viewOf(e *Enclave) chainView {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.sync.View
}

func fresh(e *Enclave) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.viewFreshLocked()
}

func outboxLen(e *Enclave) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return len(e.state.Outbox())
}

// nodeStatus is the node's own answer for the shard's status at height.
func (env *chainEnv) nodeStatus(height int64) []account.ID {
	env.t.Helper()
	var st []enclavebridge.ShardSignerStatus
	err := env.c.Query("/enclavebridge/shard_status/"+env.e.ShardID().String()+"/"+strconv.FormatInt(height, 10), &st)
	if err != nil && strings.Contains(err.Error(), "UnknownShard") {
		return nil
	}
	if err != nil {
		env.t.Fatal(err)
	}
	var out []account.ID
	for _, s := range st {
		out = append(out, s.Signer)
	}
	return out
}

// ---- authorities, finality and payouts come from proven reads ----

// TestAuthoritiesFollowTheChainsShardStatusAtEveryHeight replays a history
// of registrations, announcements, unregistration, re-registration and a
// configuration change with an enactment delay, and after every block
// compares the authorities the enclave derived from proofs with the node's
// own ShardStatus query at that height.
func TestAuthoritiesFollowTheChainsShardStatusAtEveryHeight(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	me, bob := e.Signer(), dev(t, "Bob")
	check := func(step string, want ...account.ID) {
		t.Helper()
		env.block() // nothing in it: the latest state is the verified height's
		env.sync()
		v := viewOf(e)
		if !fresh(e) {
			t.Fatalf("%s: view of height %d is not fresh", step, v.Height)
		}
		if node := env.nodeStatus(v.Height); !slices.Equal(v.Authorities, node) {
			t.Fatalf("%s: proven authorities %v, the node's ShardStatus %v", step, v.Authorities, node)
		}
		if !slices.Equal(v.Authorities, want) {
			t.Fatalf("%s: authorities %v, want %v", step, v.Authorities, want)
		}
	}

	env.block()
	check("unknown shard")
	alice := dev(t, "Alice")
	submit(t, e, alice, setBalance(alice.ID(), teer(1)), 0)
	if b := onSlot(t, e, 1); b != nil {
		t.Fatal("an enclave the chain has not registered authored a block")
	}

	env.register()
	check("registered and announced", me)
	mustBlock(t, e, 2)
	if !e.Initialized() {
		t.Fatal("an enclave the chain lists is not initialized")
	}

	env.registerOther(bob)
	check("a second enclave", me, bob.ID())
	// Aura over the proven set: slots alternate.
	submit(t, e, alice, setBalance(alice.ID(), teer(2)), 1)
	mine, theirs := 4, 5
	if me != viewOf(e).Authorities[uint64(e.Slot(slotTime(mine)))%2] {
		mine, theirs = 5, 4
	}
	if b := onSlot(t, e, theirs); b != nil {
		t.Fatal("authored the other enclave's slot")
	}
	mustBlock(t, e, mine)

	env.mustOK(env.block(env.sign(bob, teerex.ModuleName, "unregister_enclave", teerex.UnregisterEnclaveArgs{Signer: bob.ID()})))
	check("the second enclave unregistered", me)

	mr := e.MrEnclave()
	env.mustOK(env.block(env.sign(bob, teerex.ModuleName, "register_enclave", teerex.RegisterEnclaveArgs{Proof: mr[:], URL: "wss://other", Method: "skip"})))
	check("re-registered: back in its old place", me, bob.ID())

	// Sudo tightens the security flags: registrations made without
	// attestation ("skip", both of them) are no longer authorised.
	setFlags := func(f teerex.SecurityFlags) {
		t.Helper()
		call := env.call(teerex.ModuleName, "set_security_flags", teerex.SetSecurityFlagsArgs{Flags: f})
		env.mustOK(env.block(env.sign(alice, sudo.ModuleName, "sudo", sudo.SudoArgs{Call: call})))
	}
	setFlags(teerex.SecurityFlags{AllowSkip: false, AllowSim: true, AllowDebug: true})
	check("skip registrations withdrawn by sudo")
	submit(t, e, alice, setBalance(alice.ID(), teer(3)), 2)
	for k := 6; k < 9; k++ {
		if b := onSlot(t, e, k); b != nil {
			t.Fatal("an enclave whose registration the flags no longer admit authored a block")
		}
	}
	setFlags(teerex.SecurityFlags{AllowSkip: true, AllowSim: true, AllowDebug: true})
	check("skip registrations admitted again", me, bob.ID())

	env.mustOK(env.block(env.sign(bob, enclavebridge.ModuleName, "update_shard_config", enclavebridge.UpdateShardConfigArgs{Shard: e.ShardID(), Config: enclavebridge.ShardConfig{EnclaveFingerprint: mr}})))
	check("configured with this build", me, bob.ID())

	other := attestation.MrEnclave{0xEE}
	env.mustOK(env.block(env.sign(bob, enclavebridge.ModuleName, "update_shard_config", enclavebridge.UpdateShardConfigArgs{Shard: e.ShardID(), Config: enclavebridge.ShardConfig{EnclaveFingerprint: other}, Delay: 4})))
	enactAt := env.c.Height() + 4
	for viewOf(e).Height < enactAt-1 {
		check("an upgrade pending", me, bob.ID())
	}
	check("the upgrade enacted: no enclave of this build is authorised")
	submit(t, e, alice, setBalance(alice.ID(), teer(4)), 3)
	for k := 10; k < 14; k++ {
		if b := onSlot(t, e, k); b != nil {
			t.Fatal("an enclave the chain no longer authorises authored a block")
		}
	}
}

// TestLyingHostStallsTheEnclaveButNeverMisleadsIt has the host answer the
// enclave's state reads with a wrong value, a missing key, a key claimed
// present, a stale height, another key's answer and too few answers. Each
// time the enclave refuses the read, counts it, and acts on no parentchain
// fact (no block, no payout) until honest answers come back.
func TestLyingHostStallsTheEnclaveButNeverMisleadsIt(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	env.register()
	alice := dev(t, "Alice")
	mustBlock(t, e, 1)
	nonce := uint64(0)
	slot := 2

	// Reads are, in order: status, config, last confirmed block.
	lies := []struct {
		name string
		lie  func(height int64, rs []StateRead) []StateRead
	}{
		{"a wrong value", func(_ int64, rs []StateRead) []StateRead {
			rs[0].Value = append(bytes.Clone(rs[0].Value[:len(rs[0].Value)-1]), rs[0].Value[len(rs[0].Value)-1]^1)
			return rs
		}},
		{"a present key claimed absent", func(_ int64, rs []StateRead) []StateRead { rs[0].Value = nil; return rs }},
		{"an absent key claimed present", func(_ int64, rs []StateRead) []StateRead {
			rs[2].Value = env.c.Codec().MustMarshal(scmodule.BlockConfirmation{Number: 99})
			return rs
		}},
		{"a stale height", func(h int64, rs []StateRead) []StateRead {
			for i := range rs {
				p, err := env.c.Prove(h-1, rs[i].Key)
				if err != nil {
					t.Error(err)
				}
				rs[i] = StateRead{Key: p.Key, Value: p.Value, Ops: p.Ops}
			}
			return rs
		}},
		{"another key's answer", func(_ int64, rs []StateRead) []StateRead { rs[0], rs[1] = rs[1], rs[0]; return rs }},
		{"too few answers", func(_ int64, rs []StateRead) []StateRead { return rs[:len(rs)-1] }},
	}
	for _, l := range lies {
		before, sent := e.Stats().ProofFailures, len(env.h.sentTxs())
		env.setLie(l.lie)
		env.block()
		env.sync()
		if got := e.Stats().ProofFailures; got != before+1 {
			t.Fatalf("%s: %d proof failures, want %d", l.name, got, before+1)
		}
		if fresh(e) {
			t.Fatalf("%s: the enclave took the lie as its view", l.name)
		}
		submit(t, e, alice, setBalance(alice.ID(), teer(1+nonce)), nonce)
		nonce++
		if b := onSlot(t, e, slot); b != nil {
			t.Fatalf("%s: authored a block without knowing the authorities", l.name)
		}
		slot++
		e.SendDue(context.Background())
		if got := len(env.h.sentTxs()); got != sent {
			t.Fatalf("%s: sent %d parentchain txs on a refused view", l.name, got-sent)
		}

		env.setLie(nil)
		env.block()
		env.sync()
		if !fresh(e) {
			t.Fatalf("%s: honest answers did not restore the view", l.name)
		}
		mustBlock(t, e, slot)
		slot++
	}
	if got := balance(t, e, alice); got != teer(uint64(len(lies))).String() {
		t.Fatalf("Alice = %s after the honest blocks", got)
	}
}

// TestUnshieldIsPaidOnceWhateverTheHostDoes shields funds on the
// parentchain and unshields some. The payout request goes out once the
// chain proves the call unpaid; a restart from before the payout sends it
// again, and the chain refuses to pay twice; a host that forges the
// "unpaid" read only delays a payout.
func TestUnshieldIsPaidOnceWhateverTheHostDoes(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	alice, charlie := dev(t, "Alice"), dev(t, "Charlie")
	env.startWithDeposit(alice.ID(), teer(10))
	if got := balance(t, e, alice); got != teer(10).String() {
		t.Fatalf("shielded balance %s", got)
	}

	opHash := submit(t, e, alice, stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: charlie.ID(), Amount: teer(3), Shard: e.ShardID()}}, 0)
	mustBlock(t, e, 3)
	env.finalize() // payouts wait for their block's confirmation on the parentchain
	us := unshieldTxs(t, env.h.sentTxs()[env.relayed:])
	if len(us) != 1 {
		t.Fatalf("%d unshield_funds after the unshielding block, want 1", len(us))
	}
	if a := us[0].args; a.Beneficiary != charlie.ID() || a.Amount != teer(3) || a.CallHash != [32]byte(opHash) {
		t.Fatalf("unshield_funds args = %+v", a)
	}
	charlie0 := chainFree(t, env, charlie.ID())
	env.mustOK(env.block()) // the chain pays
	if got := chainFree(t, env, charlie.ID()); got != add(t, charlie0, teer(3)) {
		t.Fatalf("Charlie on the parentchain %s, before %s", got, charlie0)
	}
	env.block()

	// A restart from before the payout: the enclave's restored view is
	// older than the payout, and it acts on no view it did not read in this
	// run, so nothing goes out until it verified the chain again (which
	// shows the payout); were it sent, the chain would refuse the call hash
	// it already paid.
	env.e = env.start()
	e = env.e
	e.SendDue(context.Background())
	if res := env.block(); len(res) != 0 {
		t.Fatalf("sent on a restored view after a restart: %+v", res)
	}
	if got := chainFree(t, env, charlie.ID()); got != add(t, charlie0, teer(3)) {
		t.Fatalf("paid twice: Charlie on the parentchain %s", got)
	}
	env.block()
	env.sync() // the verified payout: the next block takes it out of the outbox
	// Catching up, the enclave acted on the facts proven at each height it
	// verified, old ones included (a confirmation on an old ancestor, the
	// payout again): the chain refuses them all, and pays nothing twice.
	for _, r := range env.block() {
		if r.Code == 0 {
			t.Fatalf("a call made on an old height passed: %+v", r)
		}
	}
	if got := chainFree(t, env, charlie.ID()); got != add(t, charlie0, teer(3)) {
		t.Fatalf("paid twice: Charlie on the parentchain %s", got)
	}
	mustBlock(t, e, 4)
	if outboxLen(e) != 0 {
		t.Fatal("a verified payout stayed in the outbox")
	}
	sent := len(env.h.sentTxs())
	e.SendDue(context.Background())
	if got := len(env.h.sentTxs()); got != sent {
		t.Fatal("a paid unshielding was sent again")
	}

	// A host that forges "already paid" for a new unshielding: refused,
	// nothing sent; honest again, it is sent.
	env.setLie(func(_ int64, rs []StateRead) []StateRead {
		for i := range rs {
			if bytes.HasPrefix(rs[i].Key, []byte("enclavebridge/unshield/")) {
				rs[i].Value = env.c.Codec().MustMarshal(int64(1))
			}
		}
		return rs
	})
	failures := e.Stats().ProofFailures
	submit(t, e, alice, stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: charlie.ID(), Amount: teer(2), Shard: e.ShardID()}}, 1)
	mustBlock(t, e, 5)
	if got := len(unshieldTxs(t, env.h.sentTxs()[sent:])); got != 0 {
		t.Fatal("sent an unshielding on a forged read")
	}
	if e.Stats().ProofFailures == failures {
		t.Fatal("the forged read was not refused")
	}
	env.setLie(nil)
	env.finalize() // block 5 confirmed, read honestly: the payout goes out
	if us := unshieldTxs(t, env.h.sentTxs()[sent:]); len(us) != 1 || us[0].args.Amount != teer(2) {
		t.Fatalf("after honest answers: %d unshieldings sent", len(us))
	}
	env.mustOK(env.block())
	if got := chainFree(t, env, charlie.ID()); got != add(t, charlie0, teer(5)) {
		t.Fatalf("Charlie on the parentchain %s, want +5 TEER in all", got)
	}
	if got := balance(t, e, alice); got != teer(5).String() {
		t.Fatalf("Alice on the sidechain %s, want 5 TEER", got)
	}
}

// unshieldTxs decodes the unshield_funds among txs.
func unshieldTxs(t *testing.T, txs [][]byte) []unshieldTx {
	t.Helper()
	var out []unshieldTx
	c := types.NewCodec()
	for _, raw := range txs {
		if tx, err := c.DecodeTx(raw); err == nil && tx.Body.Call.Module == enclavebridge.ModuleName && tx.Body.Call.Method == "unshield_funds" {
			out = append(out, decodeUnshield(t, raw))
		}
	}
	return out
}

// TestFailedUnshieldingsSendNothing: an unshielding for another shard, or
// beyond the balance, fails in the state transition and sends nothing,
// although the enclave knows the chain and could send.
func TestFailedUnshieldingsSendNothing(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	env.register()
	alice, charlie := dev(t, "Alice"), dev(t, "Charlie")
	mustBlock(t, e, 1)
	submit(t, e, alice, setBalance(alice.ID(), teer(5)), 0)
	mustBlock(t, e, 2)
	sent := len(unshieldTxs(t, env.h.sentTxs()))
	submit(t, e, alice, stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: charlie.ID(), Amount: teer(1), Shard: sidechain.ShardID{3}}}, 1)
	onSlot(t, e, 3)
	submit(t, e, alice, stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: charlie.ID(), Amount: teer(6), Shard: e.ShardID()}}, 1)
	onSlot(t, e, 4)
	if got := len(unshieldTxs(t, env.h.sentTxs())); got != sent {
		t.Fatalf("%d unshield txs for failed unshieldings", got-sent)
	}
	if got := balance(t, e, alice); got != teer(5).String() {
		t.Fatalf("Alice = %s", got)
	}
	// The control: a good one is sent.
	submit(t, e, alice, stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: charlie.ID(), Amount: teer(1), Shard: e.ShardID()}}, 1)
	mustBlock(t, e, 5)
	env.finalize() // the earlier confirmation of block 2 lands first
	env.finalize() // then block 5's
	if got := len(unshieldTxs(t, env.h.sentTxs())); got != sent+1 {
		t.Fatalf("%d txs for a good unshielding, want 1", got-sent)
	}
}

// TestFinalityConfirmsOnTopOfTheChainsProvenLastBlock: the primary confirms
// every second block with the ancestor the chain holds, read by proof, and
// the chain accepts each confirmation.
func TestFinalityConfirmsOnTopOfTheChainsProvenLastBlock(t *testing.T) {
	env := newChainEnv(t, func(c *Config) { c.FinalizationInterval = 2 })
	e := env.e
	env.register()
	alice := dev(t, "Alice")
	b1 := mustBlock(t, e, 1)
	res := env.block()
	if len(res) != 1 {
		t.Fatalf("%d confirmations sent for block 1, want 1", len(res))
	}
	env.mustOK(res)
	env.block()
	env.sync()
	if n, ok := e.Finalized(); !ok || n != b1.Header.Number {
		t.Fatalf("finalized %d %v after the chain recorded block 1", n, ok)
	}
	if f := viewOf(e).Finalized; f == nil || f.Hash != [32]byte(e.sc.Hash(b1)) {
		t.Fatalf("proven last confirmed block %+v", f)
	}
	submit(t, e, alice, setBalance(alice.ID(), teer(1)), 0)
	mustBlock(t, e, 2)
	if res := env.block(); len(res) != 0 {
		t.Fatalf("block 2 (not due) sent %d confirmations", len(res))
	}
	submit(t, e, alice, setBalance(alice.ID(), teer(2)), 1)
	b3 := mustBlock(t, e, 3)
	res = env.block()
	if len(res) != 1 {
		t.Fatalf("%d confirmations for block 3, want 1", len(res))
	}
	env.mustOK(res) // the chain checked the ancestor against its own
	env.block()
	env.sync()
	if n, _ := e.Finalized(); n != b3.Header.Number {
		t.Fatalf("finalized %d, want 3", n)
	}
}

// chainFree reads an account's free balance on the parentchain by proof at
// the last sealed height.
func chainFree(t *testing.T, env *chainEnv, id account.ID) types.Balance {
	t.Helper()
	p, err := env.c.Prove(env.c.Height(), balances.AccountKey(id))
	if err != nil {
		t.Fatal(err)
	}
	var a balances.Account
	if p.Value != nil {
		if err := env.c.Codec().Unmarshal(p.Value, &a); err != nil {
			t.Fatal(err)
		}
	}
	return a.Free
}

func add(t *testing.T, a, b types.Balance) types.Balance {
	t.Helper()
	s, err := a.Add(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// peerBlock returns a block extending e's head, anchored at the verified
// parentchain block l1, at slot k, sealed by p, changed by f. Its (empty)
// diff is encrypted under e's state key, as a peer of the shard would.
func peerBlock(t *testing.T, e *Enclave, p *account.Pair, l1 int64, k int, f func(*sidechain.BlockData)) []byte {
	t.Helper()
	e.mu.Lock()
	hd := sidechain.Header{Number: e.head.Header.Number + 1, ParentHash: e.headHash, Shard: e.shard, NextFinalizationNumber: e.head.Header.NextFinalizationNumber}
	h, ok := e.heads[l1]
	d := sidechain.BlockData{
		Timestamp:          slotTime(k).UnixMilli(),
		LayerOneHead:       sidechain.LayerOneHead{Number: l1, Hash: sidechain.Hash(h.hash)},
		EncryptedStateDiff: e.keys.State().Encrypt(stf.Diff{}.Encode(), e.diffAAD(e.head.Header.Number+1)),
		StateHashBefore:    sidechain.Hash(e.stateHash),
		StateHashAfter:     sidechain.Hash(stf.NextStateHash(e.stateHash, stf.Diff{})),
	}
	e.mu.Unlock()
	if !ok && l1 != 0 {
		t.Fatalf("parentchain block %d is not a recent verified one", l1)
	}
	if f != nil {
		f(&d)
	}
	return e.sc.Encode(e.sc.Seal(p, hd, d))
}

// slotOf returns a slot k after from whose author, among n authorities, is
// index i.
func slotOf(e *Enclave, from, i, n int) int {
	for k := from; ; k++ {
		if int(e.Slot(slotTime(k))%uint64(n)) == i {
			return k
		}
	}
}

// TestImportChecksTheLayerOneHeadAndTheAuthorThere: a block's layer-one
// head must be a parentchain block the enclave verified (number and hash),
// not older than its parent's; its timestamp may not run ahead of the
// verified parentchain; and its author is checked against the authorities
// proven at that head, not at the enclave's latest.
func TestImportChecksTheLayerOneHeadAndTheAuthorThere(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	env.register()
	me, bob := e.keys.Signer(), dev(t, "Bob")
	mustBlock(t, e, 1)
	alone := viewOf(e).Height // authorities: this enclave
	env.registerOther(bob)
	env.block()
	env.sync()
	both := viewOf(e).Height // authorities: this enclave, then Bob
	if got := viewOf(e).Authorities; !slices.Equal(got, []account.ID{me.ID(), bob.ID()}) {
		t.Fatalf("authorities %v", got)
	}

	refuse := func(name string, raw []byte, want string) {
		t.Helper()
		before := header(t, e)
		err := e.ImportBlock(raw)
		if !errors.Is(err, ErrBadBlock) || !strings.Contains(err.Error(), want) {
			t.Fatalf("%s: %v, want ErrBadBlock about %q", name, err, want)
		}
		if header(t, e) != before {
			t.Fatalf("%s: the head moved", name)
		}
	}
	accept := func(name string, raw []byte) {
		t.Helper()
		if err := e.ImportBlock(raw); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}

	k := slotOf(e, 10, 1, 2) // Bob's slot among two, this enclave's when alone
	refuse("another hash at the head's number", peerBlock(t, e, me, both, k, func(d *sidechain.BlockData) { d.LayerOneHead.Hash[0] ^= 1 }), "has hash")
	if before, err := header(t, e), e.ImportBlock(peerBlock(t, e, me, 0, k, func(d *sidechain.BlockData) { d.LayerOneHead.Number = both + 50 })); !errors.Is(err, ErrLayerOneAhead) || header(t, e) != before {
		t.Fatalf("a head this enclave never verified: %v, want ErrLayerOneAhead and the head unmoved", err)
	}
	e.mu.Lock()
	e.queue = blockQueue{} // it would wait for that parentchain block
	e.mu.Unlock()
	refuse("no head at all", peerBlock(t, e, me, 0, k, nil), "older than its parent's")
	refuse("a timestamp far ahead of the parentchain", peerBlock(t, e, me, both, k, func(d *sidechain.BlockData) {
		d.Timestamp = env.c.Now().Add(DefaultMaxBlockAhead + time.Minute).UnixMilli()
	}), "ahead of the latest verified parentchain block")
	refuse("the enclave in Bob's slot at a head where both author", peerBlock(t, e, me, both, k, nil), "is not slot")
	// The same slot at the head where this enclave authored alone is its.
	accept("the enclave's slot at the earlier head", peerBlock(t, e, me, alone, k, nil))
	k = slotOf(e, k+1, 1, 2)
	accept("Bob in his slot", peerBlock(t, e, bob, both, k, nil))
	k = slotOf(e, k+1, 0, 2)
	refuse("a head older than the parent's", peerBlock(t, e, me, alone, k, nil), "older than its parent's")
	accept("the enclave in its slot", peerBlock(t, e, me, both, k, nil))
}

// TestNoBlockWhileTheParentchainStands: once the verified parentchain is
// older than the bound, the enclave makes no block (every importer would
// refuse it); when the parentchain moves on, it does again.
func TestNoBlockWhileTheParentchainStands(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	env.register()
	alice := dev(t, "Alice")
	submit(t, e, alice, setBalance(alice.ID(), teer(1)), 0)
	late := env.c.Now().Add(DefaultMaxBlockAhead + time.Second)
	if b, err := e.OnSlot(context.Background(), late); err != nil || b != nil {
		t.Fatalf("made block %v (%v) %s after the last verified parentchain block", b, err, DefaultMaxBlockAhead)
	}
	if b, err := e.OnSlot(context.Background(), env.c.Now()); err != nil || b == nil {
		t.Fatalf("no block within the bound: %v", err)
	}
}

// TestSwappedSyncRecordsHaltInsteadOfCreditingTwice: the host stores the
// parentchain progress sealed with block 1 under block 3's key, so that a
// restart would rewind the light client to before a deposit the state
// already holds and credit it again. The record no longer opens under
// another key: the enclave refuses to start, with a clear error; put back,
// it starts with the deposit credited once.
func TestSwappedSyncRecordsHaltInsteadOfCreditingTwice(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	alice := dev(t, "Alice")
	env.startWithDeposit(alice.ID(), teer(10)) // the deposit
	submit(t, e, alice, transfer(alice.ID(), dev(t, "Bob").ID(), teer(1)), 0)
	mustBlock(t, e, 3)

	h := env.h
	h.mu.Lock()
	k1, k3 := numberKey(keySyncPrefix, 1), numberKey(keySyncPrefix, 3)
	good, old := h.state[k3], h.state[k1]
	if good == nil || old == nil {
		h.mu.Unlock()
		t.Fatal("sync records of blocks 1 and 3 are not both stored")
	}
	h.state[k3] = old
	h.mu.Unlock()
	_, err := New(context.Background(), env.m.backend(t), h, env.cfg, quiet)
	if err == nil || !strings.Contains(err.Error(), "does not decrypt under its key") {
		t.Fatalf("restart on a swapped sync record: %v, want a refusal", err)
	}

	h.mu.Lock()
	h.state[k3] = good
	h.mu.Unlock()
	env.e = env.start()
	env.block()
	env.sync()
	if got := balance(t, env.e, alice); got != teer(9).String() {
		t.Fatalf("Alice = %s after the restart, want the deposit once (9 TEER)", got)
	}
}

// TestLogsNameErrorsButNoAccountsOrAmounts: a failed indirect invocation
// (a transfer beyond the balance) is logged by its error's name; neither
// the incognito account nor any amount reaches the host's log.
func TestLogsNameErrorsButNoAccountsOrAmounts(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	alice, incognito := dev(t, "Alice"), dev(t, "AliceIncognito")
	who := incognito.ID()
	env.startWithDeposit(who, types.NewBalance(7_777_777))

	op := encrypt(t, e.ShieldingPublicKey(), signedCall(e, incognito, transfer(who, dev(t, "Bob").ID(), types.NewBalance(9_999_999)), 0))
	env.mustOK(env.block(env.sign(alice, enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{Shard: e.ShardID(), Ciphertext: op})))
	env.block()
	env.sync()
	mustBlock(t, e, 3) // the block that takes the invocation

	logs := env.logs.String()
	if !strings.Contains(logs, "indirect invocation failed") || !strings.Contains(logs, "stf.InsufficientBalance") {
		t.Fatalf("the failure is not logged by name:\n%s", logs)
	}
	for _, secret := range []string{who.String(), who.Hex(), fmt.Sprintf("%x", who[:]), "7777777", "9999999"} {
		if strings.Contains(logs, secret) {
			t.Fatalf("the log holds %q:\n%s", secret, logs)
		}
	}
}

// snapshotFiles copies the host's files (sealed keys, state blobs, blocks),
// as an operator copies a data dir.
func (h *fakeHost) snapshotFiles() *fakeHost {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := newFakeHost()
	for k, v := range h.sealed {
		n.sealed[k] = bytes.Clone(v)
	}
	for k, v := range h.state {
		n.state[k] = bytes.Clone(v)
	}
	for s, m := range h.blocks {
		n.blocks[s] = map[uint64][]byte{}
		for k, v := range m {
			n.blocks[s][k] = bytes.Clone(v)
		}
	}
	n.chain = h.chain
	return n
}

// TestRollbackHaltsInsteadOfPayingTwice: the host copies the data dir,
// lets an unshielding be paid, puts the copy back and restarts. The
// restored enclave believes in the old balance; a new unshielding of the
// same funds (another call hash), sent before the enclave has verified the
// payout, is refused by the chain; once it verifies the payout, it halts
// with a named error and acts no more. The money adds up: paid once.
func TestRollbackHaltsInsteadOfPayingTwice(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	alice, charlie := dev(t, "Alice"), dev(t, "Charlie")
	env.startWithDeposit(alice.ID(), teer(10))
	copied := env.h.snapshotFiles() // the operator's copy: Alice holds 10 TEER

	submit(t, e, alice, stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: charlie.ID(), Amount: teer(7), Shard: e.ShardID()}}, 0)
	mustBlock(t, e, 3)
	env.finalize()
	charlie0 := chainFree(t, env, charlie.ID())
	env.mustOK(env.block()) // paid: 7 TEER
	env.block()
	env.sync()
	paid := add(t, charlie0, teer(7))
	if got := chainFree(t, env, charlie.ID()); got != paid {
		t.Fatalf("Charlie = %s after the first payout", got)
	}

	// The copy goes back; the host keeps its transaction history (nonces).
	copied.txs = env.h.sentTxs()
	env.h = copied
	env.e = env.start()
	e = env.e
	if got := balance(t, e, alice); got != teer(10).String() {
		t.Fatalf("the restored enclave shows Alice %s, want the old 10 TEER", got)
	}
	// Before it verifies the chain again, a second unshielding of the same
	// funds waits: the restored view is not acted on, and the block is not
	// confirmed (were it sent, naming the height it verified, the chain
	// would refuse it: PayoutNotSeen; the parentchain module's tests).
	submit(t, e, alice, stf.Call{Unshield: &stf.Unshield{From: alice.ID(), To: charlie.ID(), Amount: teer(9), Shard: e.ShardID()}}, 0)
	mustBlock(t, e, 3)
	if res := env.block(); len(res) != 0 {
		t.Fatalf("sent on a restored view: %+v", res)
	}
	if got := chainFree(t, env, charlie.ID()); got != paid {
		t.Fatalf("paid twice: Charlie = %s", got)
	}

	// Verifying on, the enclave meets the payout its state does not know.
	env.block()
	var haltErr error
	for h := e.NextParentchainHeight(); h < env.c.Height() && haltErr == nil; h++ {
		haltErr = e.ImportParentchainBlock(context.Background(), env.c.Input(h), env.c.Now())
	}
	if !errors.Is(haltErr, ErrHalted) {
		t.Fatalf("verifying past the payout: %v, want ErrHalted", haltErr)
	}
	sent := len(env.h.sentTxs())
	if _, err := e.OnSlot(context.Background(), slotTime(9)); !errors.Is(err, ErrHalted) {
		t.Fatalf("a halted enclave's slot: %v", err)
	}
	e.SendDue(context.Background())
	if got := len(env.h.sentTxs()); got != sent {
		t.Fatal("a halted enclave sent parentchain transactions")
	}
	if got := chainFree(t, env, charlie.ID()); got != paid {
		t.Fatalf("Charlie = %s at the end", got)
	}
}

// TestWipedStateRestartsNothing: the host wipes the shard's state and
// blocks but keeps the sealed keys (as --clean-reset does) on a shard with
// history. The enclave replays the parentchain into a fresh state, which is
// not the shard's: it authors no block and sends no payout.
func TestWipedStateRestartsNothing(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	alice, dave, charlie := dev(t, "Alice"), dev(t, "Dave"), dev(t, "Charlie")
	env.startWithDeposit(dave.ID(), teer(10))
	// Dave unshields 3 indirectly; then the root (//Alice, directly) sets
	// his balance to 1, so that his second indirect unshielding, of 5,
	// fails. A state rebuilt from the parentchain alone never saw the
	// direct call, and would pay the 5.
	unshield := func(amount uint64, nonce uint64) []byte {
		op := encrypt(t, e.ShieldingPublicKey(), signedCall(e, dave, stf.Call{Unshield: &stf.Unshield{From: dave.ID(), To: charlie.ID(), Amount: teer(amount), Shard: e.ShardID()}}, nonce))
		return env.sign(alice, enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{Shard: e.ShardID(), Ciphertext: op})
	}
	env.mustOK(env.block(unshield(3, 0)))
	env.block()
	env.sync()
	mustBlock(t, e, 3)
	env.finalize()
	env.mustOK(env.block()) // the payout
	submit(t, e, alice, setBalance(dave.ID(), teer(1)), 0)
	mustBlock(t, e, 4)
	env.mustOK(env.block(unshield(5, 1))) // fails on the sidechain: Dave has 1
	env.block()
	env.sync()
	mustBlock(t, e, 5)
	if got := balance(t, e, dave); got != teer(1).String() {
		t.Fatalf("Dave = %s on the sidechain", got)
	}
	charlie0 := chainFree(t, env, charlie.ID())

	// Wiped: the keys stay, the state and blocks go.
	wiped := env.h.cloneSealed()
	wiped.chain = env.c
	wiped.txs = env.h.sentTxs()
	env.h = wiped
	env.e = env.start()
	e = env.e
	sent := len(env.h.sentTxs())
	env.block()
	env.sync() // verifies the shield and both invocations again: they wait in the inbox
	if got := balance(t, e, dave); got != "0" {
		t.Fatalf("the wiped enclave's state shows Dave %s: parentchain calls changed a state without a block", got)
	}
	e.SendDue(context.Background())
	for k := 10; k < 14; k++ {
		if b := onSlot(t, e, k); b != nil {
			t.Fatal("a wiped enclave started the shard afresh")
		}
	}
	env.block()
	env.sync()
	if got := unshieldTxs(t, env.h.sentTxs()[sent:]); len(got) != 0 {
		t.Fatalf("a wiped enclave sent %d payouts", len(got))
	}
	env.block()
	if got := chainFree(t, env, charlie.ID()); got != charlie0 {
		t.Fatalf("Charlie = %s, was %s", got, charlie0)
	}
}

// TestRestartNamingAnotherChainIsRefused: once the enclave has verified a
// parentchain, a host that restarts it naming another chain id (to have it
// sign for another chain) is refused; the sealed light client decides.
func TestRestartNamingAnotherChainIsRefused(t *testing.T) {
	env := newChainEnv(t)
	env.register()
	mustBlock(t, env.e, 1)
	env.cfg.ChainID = "another-chain"
	_, err := New(context.Background(), env.m.backend(t), env.h, env.cfg, quiet)
	if err == nil || !strings.Contains(err.Error(), `follows "chaintest"`) {
		t.Fatalf("restart naming another chain: %v", err)
	}
}
