package enclave

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
)

// ---- several validateers of one shard on one parentchain ----

// sealAll seals one parentchain block carrying, first, every transaction
// each enclave sent since its last relayed one (in the order sent), then
// txs; every relayed enclave transaction must succeed.
func sealAll(t *testing.T, envs []*chainEnv, txs ...[]byte) []*abci.ExecTxResult {
	t.Helper()
	var all [][]byte
	for _, x := range envs {
		sent := x.h.sentTxs()[x.relayed:]
		x.relayed += len(sent)
		all = append(all, sent...)
	}
	own := len(all)
	_, res := envs[0].c.Block(append(all, txs...)...)
	for i, r := range res[:own] {
		if r.Code != 0 {
			t.Fatalf("an enclave's parentchain tx %d failed: %s", i, r.Log)
		}
	}
	return res[own:]
}

// syncEach brings every enclave to the chain's last verifiable head.
func syncEach(envs ...*chainEnv) {
	for _, x := range envs {
		x.sync()
	}
}

// round seals a block with the enclaves' transactions (and txs) and has
// every enclave verify up to it.
func round(t *testing.T, envs []*chainEnv, txs ...[]byte) []*abci.ExecTxResult {
	t.Helper()
	res := sealAll(t, envs, txs...)
	syncEach(envs...)
	return res
}

// twoValidateers starts a shard on A (block 1), registers B, joins it to
// the shard over MU-RA and waits until both announcements are on the chain
// and both enclaves prove the authority set [A, B].
func twoValidateers(t *testing.T) (a, b *chainEnv) {
	t.Helper()
	a = newChainEnv(t)
	a.register()
	mustBlock(t, a.e, 1)
	b = a.peer("v1")
	a.registerPeer(b)
	if err := a.join(b); err != nil {
		t.Fatalf("join: %v", err)
	}
	envs := []*chainEnv{a, b}
	want := []account.ID{a.e.Signer(), b.e.Signer()}
	for i := 0; ; i++ {
		round(t, envs)
		if slices.Equal(viewOf(a.e).Authorities, want) && slices.Equal(viewOf(b.e).Authorities, want) {
			break
		}
		if i == 5 {
			t.Fatalf("authorities A %v, B %v; want %v", viewOf(a.e).Authorities, viewOf(b.e).Authorities, want)
		}
	}
	if h := viewOf(a.e).Height; !slices.Equal(a.nodeStatus(h), want) {
		t.Fatalf("the node's shard status at %d is %v, want %v", h, a.nodeStatus(h), want)
	}
	if !a.e.Initialized() || !b.e.Initialized() {
		t.Fatal("an authority with a head is not initialized")
	}
	return a, b
}

// shieldTx is a parentchain shield_funds of amount into the shard, for to.
func shieldTx(env *chainEnv, from *account.Pair, to account.ID, amount types.Balance) []byte {
	env.t.Helper()
	ct, err := keys.ShieldingEncrypt(env.e.ShieldingPublicKey(), to[:])
	if err != nil {
		env.t.Fatal(err)
	}
	return env.sign(from, enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{Shard: env.e.ShardID(), EncryptedBeneficiary: ct, Amount: amount})
}

// lastBroadcast is the last block the host broadcast for its enclave.
func lastBroadcast(t *testing.T, h *fakeHost) []byte {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.broadcast) == 0 {
		t.Fatal("the host broadcast no block")
	}
	return bytes.Clone(h.broadcast[len(h.broadcast)-1])
}

// authorSomewhere runs slots from k on, on every enclave, until one of
// them authors a block; it returns the author's index, the block as
// broadcast, and the slot after it.
func authorSomewhere(t *testing.T, k int, envs ...*chainEnv) (int, []byte, int) {
	t.Helper()
	for end := k + 8; k < end; k++ {
		for i, x := range envs {
			if b := onSlot(t, x.e, k); b != nil {
				return i, lastBroadcast(t, x.h), k + 1
			}
		}
	}
	t.Fatalf("no enclave authored a block in slots up to %d", k)
	return 0, nil, 0
}

// authorIn has env author a block in its next own slot from k on (by its
// place among the proven authorities); it returns the block as broadcast
// and the slot after it.
func authorIn(t *testing.T, env *chainEnv, k int) ([]byte, int) {
	t.Helper()
	v := viewOf(env.e)
	i := slices.Index(v.Authorities, env.e.Signer())
	if i < 0 {
		t.Fatalf("%s is not an authority: %v", env.e.Signer(), v.Authorities)
	}
	k = slotOf(env.e, k, i, len(v.Authorities))
	mustBlock(t, env.e, k)
	return lastBroadcast(t, env.h), k + 1
}

func stateHashOf(e *Enclave) [32]byte {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stateHash
}

func inboxOf(e *Enclave) []l1Block {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.sync.Inbox)
}

// sameShardState fails unless the enclaves hold the same head and state.
func sameShardState(t *testing.T, step string, envs ...*chainEnv) {
	t.Helper()
	h0, s0 := header(t, envs[0].e), stateHashOf(envs[0].e)
	for _, x := range envs[1:] {
		if h := header(t, x.e); h != h0 {
			t.Fatalf("%s: heads differ: %d %s and %d %s", step, h0.Header.Number, h0.Hash, h.Header.Number, h.Hash)
		}
		if s := stateHashOf(x.e); s != s0 {
			t.Fatalf("%s: state hashes differ at block %d: %x and %x", step, h0.Header.Number, s0[:8], s[:8])
		}
	}
}

// balancesAre checks p's balance on every enclave.
func balancesAre(t *testing.T, step string, p *account.Pair, want types.Balance, envs ...*chainEnv) {
	t.Helper()
	for i, x := range envs {
		if got := balance(t, x.e, p); got != want.String() {
			t.Fatalf("%s: %s's balance on enclave %d is %s, want %s", step, p.ID(), i, got, want)
		}
	}
}

// emptyInboxes fails unless no enclave's inbox holds parentchain calls.
func emptyInboxes(t *testing.T, step string, envs ...*chainEnv) {
	t.Helper()
	for i, x := range envs {
		if in := inboxOf(x.e); len(in) != 0 {
			t.Fatalf("%s: enclave %d's inbox holds %d parentchain blocks (first %d)", step, i, len(in), in[0].Height)
		}
	}
}

// TestTwoValidateersShareTheShard: A starts the shard and B joins it over
// MU-RA; both become authorities. A deposit on the parentchain, verified
// by both, is executed by the slot's author only, in its block; the other
// applies the block's diff. Both end with the deposit credited exactly once,
// the same head and state hash and empty inboxes; then the importer authors
// and the author imports, so that both author blocks of the one shard.
func TestTwoValidateersShareTheShard(t *testing.T) {
	a, b := twoValidateers(t)
	envs := []*chainEnv{a, b}
	alice, incognito, bob := dev(t, "Alice"), dev(t, "AliceIncognito"), dev(t, "Bob")
	sameShardState(t, "after the join", a, b)

	res := round(t, envs, shieldTx(a, alice, incognito.ID(), teer(10)))
	a.mustOK(res)
	round(t, envs) // both verify the block after it too
	for i, x := range envs {
		if in := inboxOf(x.e); len(in) != 1 || len(in[0].Calls) != 1 {
			t.Fatalf("enclave %d's inbox after the deposit: %+v", i, in)
		}
	}
	balancesAre(t, "deposit verified, no block yet", incognito, teer(0), a, b)

	author, raw, k := authorSomewhere(t, 10, a, b)
	importer := envs[1-author]
	if err := importer.e.ImportBlock(raw); err != nil {
		t.Fatalf("the importer refused the author's block: %v", err)
	}
	balancesAre(t, "the deposit's block on both", incognito, teer(10), a, b)
	sameShardState(t, "the deposit's block on both", a, b)
	emptyInboxes(t, "the deposit's block on both", a, b)

	// The parentchain moves on (with the author's confirmation); no one
	// executes the deposit again.
	round(t, envs)
	round(t, envs)
	emptyInboxes(t, "later parentchain blocks", a, b)

	// Now the importer authors, and the author imports.
	submit(t, importer.e, incognito, transfer(incognito.ID(), bob.ID(), teer(3)), 0)
	raw, _ = authorIn(t, importer, k)
	if err := envs[author].e.ImportBlock(raw); err != nil {
		t.Fatalf("the first author refused the second one's block: %v", err)
	}
	balancesAre(t, "the importer's block on both", incognito, teer(7), a, b)
	balancesAre(t, "the importer's block on both", bob, teer(3), a, b)
	sameShardState(t, "the importer's block on both", a, b)
	emptyInboxes(t, "the importer's block on both", a, b)
	for i, x := range envs {
		if st := x.e.Stats(); st.BlocksProposed < 1 || st.BlocksImported < 1 {
			t.Fatalf("enclave %d: %d blocks authored, %d imported; want at least one of each", i, st.BlocksProposed, st.BlocksImported)
		}
	}
	round(t, envs) // every enclave's confirmations are accepted on the chain
}

// TestBlocksOutOfOrderWaitForTheirParent: B gets A's blocks n+3 and n+2
// before n+1. They wait in the queue (ErrBlockAhead), MissingBlocks names
// what to fetch, and B does not author on its stale head meanwhile (which
// would fork the shard), even with a deposit due; once n+1 arrives B
// imports all three and reaches A's head and state, and authors again.
func TestBlocksOutOfOrderWaitForTheirParent(t *testing.T) {
	a, b := twoValidateers(t)
	envs := []*chainEnv{a, b}
	alice, incognito := dev(t, "Alice"), dev(t, "AliceIncognito")
	n := header(t, b.e).Header.Number

	var raws [][]byte
	k := 10
	for i := range 3 {
		submit(t, a.e, alice, setBalance(alice.ID(), teer(uint64(i+1))), uint64(i))
		var raw []byte
		raw, k = authorIn(t, a, k)
		raws = append(raws, raw)
	}
	if got := header(t, a.e).Header.Number; got != n+3 {
		t.Fatalf("A's head is %d, want %d", got, n+3)
	}

	bHead := header(t, b.e)
	if err := b.e.ImportBlock(raws[2]); !errors.Is(err, ErrBlockAhead) {
		t.Fatalf("block n+3 before its parent: %v, want ErrBlockAhead", err)
	}
	if from, to, ok := b.e.MissingBlocks(); !ok || from != n+1 || to != n+2 {
		t.Fatalf("missing blocks (%d, %d, %v), want (%d, %d)", from, to, ok, n+1, n+2)
	}
	if err := b.e.ImportBlock(raws[1]); !errors.Is(err, ErrBlockAhead) {
		t.Fatalf("block n+2 before its parent: %v, want ErrBlockAhead", err)
	}
	if from, to, ok := b.e.MissingBlocks(); !ok || from != n+1 || to != n+1 {
		t.Fatalf("missing blocks (%d, %d, %v), want (%d, %d)", from, to, ok, n+1, n+1)
	}
	if err := b.e.RPC().ImportBlock(context.Background(), raws[1]); err != nil {
		t.Fatalf("a queued block over the trusted RPC: %v, want accepted", err)
	}
	if st := b.e.Stats(); st.Queued != 2 || st.Behind != 3 {
		t.Fatalf("B's queue: %d blocks, %d behind; want 2 and 3", st.Queued, st.Behind)
	}
	if header(t, b.e) != bHead {
		t.Fatal("queued blocks moved B's head")
	}

	// A deposit both verify: B has something to author, but is behind.
	a.mustOK(round(t, envs, shieldTx(a, alice, incognito.ID(), teer(10))))
	round(t, envs)
	if len(inboxOf(b.e)) == 0 {
		t.Fatal("B's inbox does not hold the deposit")
	}
	iB := slices.Index(viewOf(b.e).Authorities, b.e.Signer())
	for range 3 {
		k = slotOf(b.e, k, iB, 2)
		if blk := onSlot(t, b.e, k); blk != nil {
			t.Fatalf("B authored block %d on its stale head while blocks up to %d wait", blk.Header.Number, n+3)
		}
		k++
	}
	if header(t, b.e) != bHead {
		t.Fatal("B's head moved while it waited")
	}

	if err := b.e.ImportBlock(raws[0]); err != nil {
		t.Fatalf("block n+1: %v", err)
	}
	sameShardState(t, "the queue drained", a, b)
	if got := header(t, b.e).Header.Number; got != n+3 {
		t.Fatalf("B's head is %d, want %d", got, n+3)
	}
	if _, _, ok := b.e.MissingBlocks(); ok {
		t.Fatal("B still misses blocks")
	}
	if st := b.e.Stats(); st.Queued != 0 || st.Behind != 0 || st.BlocksImported < 3 {
		t.Fatalf("B after the queue drained: %+v", st)
	}
	balancesAre(t, "A's blocks on both", alice, teer(3), a, b)

	// Caught up, B authors the deposit's block in its slot; A imports it.
	raw, _ := authorIn(t, b, k)
	if err := a.e.ImportBlock(raw); err != nil {
		t.Fatalf("A refused B's block: %v", err)
	}
	sameShardState(t, "B's block on both", a, b)
	balancesAre(t, "B's block on both", incognito, teer(10), a, b)
	emptyInboxes(t, "B's block on both", a, b)
}

// TestCompetingBlockIsRefusedAndCounted: a partition lets A and B each
// author a block at the same number. Each refuses the other's block as
// competing (counted in Stats().Forks) and keeps its own head and state;
// the held block sent again is nothing to do. Below the head, the same:
// the block stored at that number is the one that counts.
func TestCompetingBlockIsRefusedAndCounted(t *testing.T) {
	a, b := twoValidateers(t)
	alice := dev(t, "Alice")
	n := header(t, a.e).Header.Number

	// The partition: each side has its own call and authors n+1.
	submit(t, a.e, alice, setBalance(alice.ID(), teer(1)), 0)
	submit(t, b.e, alice, setBalance(alice.ID(), teer(2)), 0)
	rawA, k := authorIn(t, a, 10)
	rawB, k := authorIn(t, b, k)
	if bytes.Equal(rawA, rawB) {
		t.Fatal("the two blocks are the same")
	}
	for _, x := range []*chainEnv{a, b} {
		if got := header(t, x.e).Header.Number; got != n+1 {
			t.Fatalf("head %d, want %d", got, n+1)
		}
	}

	refused := func(step string, x *chainEnv, raw []byte, forks uint64) {
		t.Helper()
		head, state := header(t, x.e), stateHashOf(x.e)
		if err := x.e.ImportBlock(raw); !errors.Is(err, ErrCompetingBlock) {
			t.Fatalf("%s: %v, want ErrCompetingBlock", step, err)
		}
		if got := x.e.Stats().Forks; got != forks {
			t.Fatalf("%s: %d forks counted, want %d", step, got, forks)
		}
		if header(t, x.e) != head || stateHashOf(x.e) != state {
			t.Fatalf("%s: the head or state moved", step)
		}
	}
	held := func(step string, x *chainEnv, raw []byte, forks uint64) {
		t.Helper()
		head := header(t, x.e)
		if err := x.e.ImportBlock(raw); err != nil {
			t.Fatalf("%s: %v, want nil", step, err)
		}
		if got := x.e.Stats().Forks; got != forks {
			t.Fatalf("%s: %d forks counted, want %d", step, got, forks)
		}
		if header(t, x.e) != head {
			t.Fatalf("%s: the head moved", step)
		}
	}

	refused("A's block at B's head", b, rawA, 1)
	refused("B's block at A's head", a, rawB, 1)
	held("B's own block again", b, rawB, 1)
	held("A's own block again", a, rawA, 1)
	balancesAre(t, "A's side", alice, teer(1), a)
	balancesAre(t, "B's side", alice, teer(2), b)

	// B moves on; A's block at n+1 is now below B's head.
	submit(t, b.e, alice, setBalance(alice.ID(), teer(3)), 1)
	authorIn(t, b, k)
	// Forks counts distinct unresolved forks: the one at n+1 is still open.
	refused("A's block below B's head", b, rawA, 1)
	held("B's stored block below its head", b, rawB, 1)
	refused("A's block below B's head, again", b, rawA, 1)
}

// TestSilentValidateerLeavesTheAuthoritySet: B stops (verifies nothing,
// sends nothing) while the parentchain goes on. Once it has been silent
// for more than the chain's ShardSilenceBlocks, A's proven authorities,
// like the node's own shard status, are [A] alone; A, whose heartbeats
// the chain accepts, stays in. B, back, verifies the chain, sends its
// heartbeat and is an authority again, on A's view and the node's.
func TestSilentValidateerLeavesTheAuthoritySet(t *testing.T) {
	a, b := twoValidateers(t)
	both := []account.ID{a.e.Signer(), b.e.Signer()}
	silence := int64(viewOf(a.e).Params.ShardSilenceBlocks)
	if silence == 0 {
		t.Fatal("the chain's silence bound is 0")
	}
	lastB := viewOf(b.e).SelfActivity
	lastA := viewOf(a.e).SelfActivity
	if lastB == 0 || lastA == 0 {
		t.Fatalf("last activity A %d, B %d", lastA, lastB)
	}

	heartbeats := func() int {
		n := 0
		c := types.NewCodec()
		for _, raw := range a.h.sentTxs() {
			if tx, err := c.DecodeTx(raw); err == nil && tx.Body.Call.Module == enclavebridge.ModuleName && tx.Body.Call.Method == "confirm_processed_parentchain_block" {
				n++
			}
		}
		return n
	}
	before := heartbeats()
	dropped := int64(0)
	for i := 0; dropped == 0; i++ {
		if i > int(silence)+10 {
			t.Fatalf("B still an authority %d blocks after its last activity", i)
		}
		round(t, []*chainEnv{a}) // only A relays and verifies
		v := viewOf(a.e)
		node := a.nodeStatus(v.Height)
		if !slices.Equal(v.Authorities, node) {
			t.Fatalf("at %d: A's proven authorities %v, the node's %v", v.Height, v.Authorities, node)
		}
		switch {
		case slices.Equal(v.Authorities, both):
			if v.Height-lastB > silence {
				t.Fatalf("at %d, B silent since %d is still an authority", v.Height, lastB)
			}
		case slices.Equal(v.Authorities, []account.ID{a.e.Signer()}):
			if v.Height-lastB <= silence {
				t.Fatalf("at %d, B active at %d left the authority set early", v.Height, lastB)
			}
			dropped = v.Height
		default:
			t.Fatalf("at %d: authorities %v", v.Height, v.Authorities)
		}
	}
	if dropped-lastA <= silence {
		t.Fatalf("B dropped at %d, within A's own silence bound (A active at %d): the test proves nothing about A's heartbeat", dropped, lastA)
	}
	if got := heartbeats() - before; got < 2 {
		t.Fatalf("A sent %d heartbeats over %d blocks", got, dropped-lastA)
	}
	if !slices.Contains(viewOf(a.e).Members, b.e.Signer()) {
		t.Fatal("silent B is no longer a member of the shard")
	}
	// A authors alone in every slot now.
	submit(t, a.e, dev(t, "Alice"), setBalance(dev(t, "Alice").ID(), teer(1)), 0)
	k := slotOf(a.e, 10, 1, 2) // B's slot among two
	mustBlock(t, a.e, k)

	// B is back: it verifies what it missed and sends a heartbeat.
	sentB := len(b.h.sentTxs())
	b.sync()
	if len(b.h.sentTxs()) == sentB {
		t.Fatal("B, back after its silence, sent no heartbeat")
	}
	if err := b.e.ImportBlock(lastBroadcast(t, a.h)); err != nil {
		t.Fatalf("B refused A's block authored alone: %v", err)
	}
	envs := []*chainEnv{a, b}
	round(t, envs)
	round(t, envs)
	for i, x := range envs {
		if v := viewOf(x.e); !slices.Equal(v.Authorities, both) {
			t.Fatalf("enclave %d's authorities after B's heartbeat: %v", i, v.Authorities)
		}
	}
	if h := viewOf(a.e).Height; !slices.Equal(a.nodeStatus(h), both) {
		t.Fatalf("the node's shard status after B's heartbeat: %v", a.nodeStatus(h))
	}
	sameShardState(t, "B back", a, b)
}

// TestDepositCreditedOnceWhateverTheHostReplays: A takes a deposit into
// block n+1 while B, which verified the deposit too, still holds it in its
// inbox. The host then replays B's (and A's) parentchain inputs of the
// deposit; restarts B on a copy of its files from before block n+1 and
// hands it the block again; and finally restarts B under block n+1 with
// idle progress B sealed at head n, later on the parentchain than block
// n+1's sealed progress, whose inbox still holds the deposit. Each time
// the deposit stays credited once, on both enclaves, also in the blocks
// each authors afterwards.
func TestDepositCreditedOnceWhateverTheHostReplays(t *testing.T) {
	a, b := twoValidateers(t)
	envs := []*chainEnv{a, b}
	alice, incognito, bob := dev(t, "Alice"), dev(t, "AliceIncognito"), dev(t, "Bob")
	n := header(t, b.e).Header.Number
	saveIdle := func() []byte {
		t.Helper()
		b.e.mu.Lock()
		b.e.saveIdleLocked() // as every idleSaveEvery parentchain blocks
		b.e.mu.Unlock()
		raw, err := b.h.GetState(keyIdleSync)
		if err != nil {
			t.Fatalf("no idle progress sealed: %v", err)
		}
		return raw
	}
	holdsDeposit := func(step string, at int64) {
		t.Helper()
		if in := inboxOf(b.e); len(in) != 1 || in[0].Height != at {
			t.Fatalf("%s: B's inbox %+v, want the deposit's block %d", step, in, at)
		}
	}

	depositAt := a.c.Height() + 1
	a.mustOK(round(t, envs, shieldTx(a, alice, incognito.ID(), teer(10))))
	round(t, envs)
	holdsDeposit("deposit verified", depositAt)
	saveIdle()
	before := b.h.snapshotFiles() // B's files: head n, the deposit in the inbox

	raw, k := authorIn(t, a, 10) // A takes the deposit into n+1
	// B has not heard of n+1 yet; it verifies on and seals its progress.
	round(t, envs)
	holdsDeposit("B verified on at head n", depositAt)
	lateIdle := saveIdle()
	if err := b.e.ImportBlock(raw); err != nil {
		t.Fatalf("B refused A's block: %v", err)
	}
	balancesAre(t, "the deposit's block", incognito, teer(10), a, b)
	emptyInboxes(t, "the deposit's block", a, b)

	// Replayed verification inputs: refused, nothing credited.
	if got := b.e.NextParentchainHeight(); got <= depositAt {
		t.Fatalf("B verifies %d next: it has not verified the deposit's block %d", got, depositAt)
	}
	for _, x := range envs {
		for _, h := range []int64{depositAt - 1, depositAt} {
			if err := x.e.ImportParentchainBlock(context.Background(), a.c.Input(h), a.c.Now()); err == nil {
				t.Fatalf("parentchain block %d verified a second time", h)
			}
		}
	}
	emptyInboxes(t, "replayed parentchain inputs", a, b)
	balancesAre(t, "replayed parentchain inputs", incognito, teer(10), a, b)

	// B restarted on the copy of its files from before block n+1 (the
	// host keeps its transaction history: nonces); it gets the block again.
	before.txs = b.h.sentTxs()
	b.h = before
	b.e = b.start()
	if got := header(t, b.e).Header.Number; got != n {
		t.Fatalf("B restarted at %d, want %d", got, n)
	}
	balancesAre(t, "B rolled back", incognito, teer(0), b)
	holdsDeposit("B rolled back", depositAt)
	if err := b.e.ImportBlock(raw); err != nil {
		t.Fatalf("B rolled back refused block %d: %v", n+1, err)
	}
	balancesAre(t, "B rolled back, block n+1 again", incognito, teer(10), a, b)
	emptyInboxes(t, "B rolled back, block n+1 again", a, b)

	// The idle progress sealed at head n, later than block n+1's progress,
	// with the deposit in its inbox: it names another head, and does not
	// apply.
	b.h.mu.Lock()
	b.h.state[keyIdleSync] = lateIdle
	b.h.mu.Unlock()
	b.e = b.start()
	if got := header(t, b.e).Header.Number; got != n+1 {
		t.Fatalf("B restarted at %d, want %d", got, n+1)
	}
	emptyInboxes(t, "B restarted on idle progress of head n", b)
	round(t, envs)
	sameShardState(t, "B restarted on idle progress of head n", a, b)

	// Each authors a block afterwards: neither takes the deposit again.
	for i, x := range envs {
		submit(t, x.e, incognito, transfer(incognito.ID(), bob.ID(), teer(1)), uint64(i))
		raw, next := authorIn(t, x, k)
		k = next
		if err := envs[1-i].e.ImportBlock(raw); err != nil {
			t.Fatalf("enclave %d refused enclave %d's block: %v", 1-i, i, err)
		}
		balancesAre(t, "a later block", incognito, teer(uint64(9-i)), a, b)
		sameShardState(t, "a later block", a, b)
		emptyInboxes(t, "a later block", a, b)
	}
	round(t, envs)
}

// TestDepositCreditedOnceWhenTheJoinerVerifiedItBeforeJoining: a deposit
// taken into the shard's block 2 before B joined. B verified the whole
// parentchain before it joined, the deposit's block included; after the
// join (head 2), its own first block must not execute the deposit again.
func TestDepositCreditedOnceWhenTheJoinerVerifiedItBeforeJoining(t *testing.T) {
	a := newChainEnv(t)
	a.register()
	alice, incognito := dev(t, "Alice"), dev(t, "AliceIncognito")
	mustBlock(t, a.e, 1)
	a.shield(alice, incognito.ID(), teer(10))
	mustBlock(t, a.e, 2)
	balancesAre(t, "A alone", incognito, teer(10), a)

	b := a.peer("v1")
	a.registerPeer(b) // B verifies the parentchain from genesis: the deposit too
	if err := a.join(b); err != nil {
		t.Fatal(err)
	}
	envs := []*chainEnv{a, b}
	both := []account.ID{a.e.Signer(), b.e.Signer()}
	for i := 0; !slices.Equal(viewOf(b.e).Authorities, both); i++ {
		if i == 5 {
			t.Fatalf("B's authorities %v", viewOf(b.e).Authorities)
		}
		round(t, envs)
	}
	balancesAre(t, "joined", incognito, teer(10), a, b)

	// B's first block: a call of the root, and nothing else.
	submit(t, b.e, alice, setBalance(dev(t, "Bob").ID(), teer(1)), 0)
	raw, _ := authorIn(t, b, 10)
	if err := a.e.ImportBlock(raw); err != nil {
		t.Fatalf("A refused B's block: %v", err)
	}
	balancesAre(t, "B's first block", incognito, teer(10), a, b)
	emptyInboxes(t, "B's first block", a, b)
	sameShardState(t, "B's first block", a, b)
}

// TestDepositCreditedOnceWhenTheJoinerVerifiesItAfterJoining: B joins
// while its light client is behind the deposit that the provider's head
// already holds; verifying that parentchain block afterwards, B must not
// queue the deposit again, and its first block must not credit it twice.
func TestDepositCreditedOnceWhenTheJoinerVerifiesItAfterJoining(t *testing.T) {
	a := newChainEnv(t)
	a.register()
	alice, incognito := dev(t, "Alice"), dev(t, "AliceIncognito")
	mustBlock(t, a.e, 1)
	b := a.peer("v1")
	a.registerPeer(b) // B verifies up to here
	behind := b.e.NextParentchainHeight()
	a.shield(alice, incognito.ID(), teer(10)) // only A verifies the deposit
	mustBlock(t, a.e, 2)
	if err := a.join(b); err != nil {
		t.Fatal(err)
	}
	if got := b.e.NextParentchainHeight(); got != behind {
		t.Fatalf("B verified on to %d during the join", got)
	}
	balancesAre(t, "joined", incognito, teer(10), a, b)
	envs := []*chainEnv{a, b}
	both := []account.ID{a.e.Signer(), b.e.Signer()}
	for i := 0; !slices.Equal(viewOf(b.e).Authorities, both); i++ {
		if i == 5 {
			t.Fatalf("B's authorities %v", viewOf(b.e).Authorities)
		}
		round(t, envs) // B verifies the deposit's parentchain block here
	}
	emptyInboxes(t, "B verified the deposit after joining", b)

	submit(t, b.e, alice, setBalance(dev(t, "Bob").ID(), teer(1)), 0)
	raw, _ := authorIn(t, b, 10)
	if err := a.e.ImportBlock(raw); err != nil {
		t.Fatalf("A refused B's block: %v", err)
	}
	balancesAre(t, "B's first block", incognito, teer(10), a, b)
	sameShardState(t, "B's first block", a, b)
}

// TestRejoinedValidateerBehindTheParentchainWaitsToAuthor: B, an authority
// of the shard, loses its state (the host wipes it, the sealed keys stay),
// verifies the parentchain only up to a height where it is still an
// authority, and joins again: its head's layer-one head is ahead of what
// it verified. In its slots it must wait (no block, no error) rather than
// build a block anchored below its parent's layer-one head, which its own
// import check refuses with the fatal ErrCommitFailed; once it has verified
// the chain, it authors, and A imports the block.
func TestRejoinedValidateerBehindTheParentchainWaitsToAuthor(t *testing.T) {
	a, b := twoValidateers(t)
	envs := []*chainEnv{a, b}
	x := b.e.NextParentchainHeight() - 1 // B is an authority at x
	for range 5 {
		round(t, envs)
	}
	alice := dev(t, "Alice")
	submit(t, a.e, alice, setBalance(alice.ID(), teer(1)), 0)
	_, k := authorIn(t, a, 10)

	wiped := b.h.cloneSealed()
	wiped.chain, wiped.txs = b.c, b.h.sentTxs()
	b.h = wiped
	b.e = b.start()
	for h := int64(1); h <= x; h++ {
		if err := b.e.ImportParentchainBlock(context.Background(), b.c.Input(h), b.c.Now()); err != nil {
			t.Fatalf("parentchain block %d: %v", h, err)
		}
	}
	if !slices.Contains(viewOf(b.e).Authorities, b.e.Signer()) {
		t.Fatalf("B is no authority at %d: %v", x, viewOf(b.e).Authorities)
	}
	if err := a.join(b); err != nil {
		t.Fatalf("rejoin: %v", err)
	}
	a.e.mu.Lock()
	headL1 := a.e.headL1Locked()
	a.e.mu.Unlock()
	if headL1 <= x {
		t.Fatalf("the joined head's layer-one head %d is not ahead of B's %d", headL1, x)
	}

	submit(t, b.e, alice, setBalance(alice.ID(), teer(2)), 1)
	for end := k + 4; k < end; k++ {
		if blk, err := b.e.OnSlot(context.Background(), slotTime(k)); err != nil || blk != nil {
			t.Fatalf("slot %d, B's parentchain at %d below its head's %d: block %v, err %v; want none, no error", k, x, headL1, blk != nil, err)
		}
	}
	round(t, envs)
	raw, _ := authorIn(t, b, k)
	if err := a.e.ImportBlock(raw); err != nil {
		t.Fatalf("A refused B's block: %v", err)
	}
	sameShardState(t, "B caught up and authored", a, b)
}
