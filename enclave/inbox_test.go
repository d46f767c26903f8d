package enclave

import (
	"context"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
)

// A parentchain backlog of more calls than one block takes, beside a full
// pool: each block takes whole parentchain blocks while they fit
// (MaxInboxCallsPerBlock), with a layer-one head below the verified one,
// the pool fills the rest, and every call executes once. (Before, a block
// took the whole inbox and up to 4,000 pooled operations: beyond the block
// codec's 4,096 operations the author stopped with CommitFailed, so anyone
// paying for enough invoke calls could halt the shard.)
func TestInboxBacklogIsTakenInBlocksThatFit(t *testing.T) {
	env := newChainEnv(t)
	e := env.e
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	env.startWithDeposit(bob.ID(), teer(100)) // sidechain blocks 1 and 2

	// The pool: the root's setBalance calls.
	const pooled = 3500
	for i := 0; i < pooled; i += trustedrpc.MaxBatchOperations {
		var ops [][]byte
		for n := i; n < min(i+trustedrpc.MaxBatchOperations, pooled); n++ {
			ops = append(ops, encoded(t, signedCall(e, alice, setBalance(account.ID{9, byte(n >> 8), byte(n)}, teer(1)), uint64(n))))
		}
		res, err := e.RPC().SubmitOperations(context.Background(), e.ShardID(), ops, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res {
			if r.Err != nil {
				t.Fatal(r.Err)
			}
		}
	}
	// The parentchain: two blocks of 600 invoke calls each, Bob's direct
	// transfers of 1 planck to Alice, which together pass the inbox bound.
	const perBlock, l1Blocks = 600, 2
	if perBlock*l1Blocks <= MaxInboxCallsPerBlock || perBlock > MaxInboxCallsPerBlock {
		t.Fatalf("the test needs blocks that fit one by one but not together")
	}
	for k := range l1Blocks {
		txs := make([][]byte, perBlock)
		for i := range txs {
			op := encrypt(t, e.ShieldingPublicKey(), signedCall(e, bob, transfer(bob.ID(), alice.ID(), types.NewBalance(1)), uint64(k*perBlock+i)))
			txs[i] = env.sign(alice, enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{Shard: e.ShardID(), Ciphertext: op})
		}
		env.mustOK(env.block(txs...))
	}
	env.block()
	env.sync()
	verified := viewOf(e).Height

	var l1Heads []int64
	for slot := 3; slot < 12 && (e.pool.Len() > 0 || e.inboxDue()); slot++ {
		b := onSlot(t, e, slot)
		if b == nil {
			continue
		}
		if n := len(b.Data.Operations); n > MaxOperationsPerBlock {
			t.Fatalf("block %d holds %d operations, more than %d", b.Header.Number, n, MaxOperationsPerBlock)
		}
		l1Heads = append(l1Heads, b.Data.LayerOneHead.Number)
	}
	if len(l1Heads) < 2 || l1Heads[0] >= verified {
		t.Fatalf("layer-one heads %v (verified %d): the first block should stop below the second parentchain block of calls", l1Heads, verified)
	}
	if e.pool.Len() != 0 || e.inboxDue() {
		t.Fatalf("after %d blocks: %d pooled, inbox due %v", len(l1Heads), e.pool.Len(), e.inboxDue())
	}
	if got := nonceOf(t, e, bob); got != "1200" {
		t.Errorf("Bob's nonce %s: his 1,200 indirect transfers did not all execute once", got)
	}
	if got := nonceOf(t, e, alice); got != "3500" {
		t.Errorf("Alice's nonce %s: her 3,500 pooled calls did not all execute once", got)
	}
	want, _ := teer(100).Sub(types.NewBalance(1200))
	if got := balance(t, e, bob); got != want.String() {
		t.Errorf("Bob's balance %s, want 100 TEER less 1,200 planck, %s", got, want)
	}
}

// inboxDue reports whether the inbox holds calls up to the verified head.
func (e *Enclave) inboxDue() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.inboxDueLocked()
}
