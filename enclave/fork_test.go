package enclave

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/stf"
)

// storedBlocks returns env's stored blocks from..to, as a peer's untrusted
// port serves them.
func storedBlocks(t *testing.T, env *chainEnv, from, to uint64) [][]byte {
	t.Helper()
	var out [][]byte
	for n := from; n <= to; n++ {
		raw, err := env.h.BlockByNumber(env.e.ShardID(), n)
		if err != nil {
			t.Fatalf("block %d: %v", n, err)
		}
		out = append(out, raw)
	}
	return out
}

// TestPartitionHealsIntoOneChain: a partition lets A and B each author two
// blocks on the same ancestor, with different calls (one shared, forwarded
// to both before the partition; one each). When it heals, both resolve the
// fork the same way (the branch whose first block has the lower slot), the
// loser rolls back to the common ancestor and takes the winner's branch:
// one head and one state on both; the loser's lost call that the winner
// lacks is pooled again (its watcher sees Retracted), and goes into the next
// block.
func TestPartitionHealsIntoOneChain(t *testing.T) {
	a, b := twoValidateers(t)
	alice, bob, charlie, dave := dev(t, "Alice"), dev(t, "Bob"), dev(t, "Charlie"), dev(t, "Dave")
	// Before the partition: Dave has 10 on both.
	submit(t, a.e, alice, setBalance(dave.ID(), teer(10)), 0)
	raw0, k0 := authorIn(t, a, 10)
	if err := b.e.ImportBlock(raw0); err != nil {
		t.Fatal(err)
	}
	n := header(t, a.e).Header.Number

	// The partition: A authors first (lower slots), then B, on the same
	// ancestor; each with calls the other never sees.
	submit(t, a.e, alice, setBalance(bob.ID(), teer(1)), 1)
	_, k := authorIn(t, a, k0)
	submit(t, a.e, alice, setBalance(bob.ID(), teer(2)), 2)
	_, k = authorIn(t, a, k)
	submit(t, b.e, dave, transfer(dave.ID(), charlie.ID(), teer(3)), 0)
	_, watch, err := submitCT(b.e.RPC(), context.Background(), b.e.ShardID(),
		encrypt(t, b.e.ShieldingPublicKey(), signedCall(b.e, dave, transfer(dave.ID(), charlie.ID(), teer(4)), 1)), true)
	if err != nil {
		t.Fatal(err)
	}
	_, k = authorIn(t, b, k) // one block with both calls
	if got := header(t, b.e).Header.Number; got != n+1 {
		t.Fatalf("B's head %d, want %d", got, n+1)
	}
	// Dave's next call waits in B's pool: its queue's nonce moved past the
	// lost block's (a rollback must set it back, or the lost calls cannot
	// be pooled again; a bug the e2e partition test found).
	submit(t, b.e, dave, transfer(dave.ID(), charlie.ID(), teer(2)), 2)

	bBranch := storedBlocks(t, b, n, n+1) // what B's untrusted port served before healing
	if err := a.e.ImportBlock(bBranch[1]); err == nil {
		t.Fatal("A imported B's competing block")
	}

	// Healing: each hears the other's newest block; it competes.
	if err := b.e.ImportBlock(lastBroadcast(t, a.h)); err == nil {
		t.Fatal("B imported A's competing block")
	}
	if at, ok := b.e.ForkPoint(); !ok || at != n+2 {
		t.Fatalf("B's fork point %d %v, want %d", at, ok, n+2)
	}
	if at, ok := a.e.ForkPoint(); !ok || at != n+1 {
		t.Fatalf("A's fork point %d %v, want %d", at, ok, n+1)
	}
	// B fetches A's blocks from below the fork: A's branch wins (lower
	// slot of its first block), B rolls back to n and takes it.
	switched, err := b.e.ResolveFork(context.Background(), storedBlocks(t, a, n, n+2))
	if err != nil || !switched {
		t.Fatalf("B resolving against A: switched %v, %v", switched, err)
	}
	// A, given B's blocks (from the ancestor), keeps its own.
	switched, err = a.e.ResolveFork(context.Background(), bBranch)
	if err != nil || switched {
		t.Fatalf("A resolving against B: switched %v, %v", switched, err)
	}
	sameShardState(t, "after the fork", a, b)
	if st := b.e.Stats(); st.Rollbacks != 1 {
		t.Fatalf("B's rollbacks %d", st.Rollbacks)
	}
	if st := a.e.Stats(); st.Rollbacks != 0 {
		t.Fatalf("A's rollbacks %d", st.Rollbacks)
	}
	if _, ok := b.e.ForkPoint(); ok {
		t.Fatal("B still sees a fork")
	}
	balancesAre(t, "A's branch", bob, teer(2), a, b)
	if got := balance(t, b.e, charlie); got != "0" {
		t.Fatalf("Charlie on B after the rollback: %s, want 0 (B's branch lost)", got)
	}
	// The watcher of B's lost call saw it in B's block, then Retracted.
	var kinds []string
	deadline := time.After(5 * time.Second)
	for i := -1; i < 0 || i == len(kinds)-1; i = slices.Index(kinds, "Retracted") {
		select {
		case st := <-watch:
			kinds = append(kinds, st.Kind)
		case <-deadline:
			t.Fatalf("watch of a call in the lost block: %v, want InSidechainBlock, Retracted, then pooled again", kinds)
		}
	}
	if i := slices.Index(kinds, "Retracted"); i < 1 || kinds[i-1] != "InSidechainBlock" || i == len(kinds)-1 {
		t.Fatalf("watch of a call in the lost block: %v, want InSidechainBlock, Retracted, then pooled again", kinds)
	}

	// B's lost calls were pooled again: B authors them in its next slot
	// on the winning branch; A imports the block.
	raw, _ := authorIn(t, b, k)
	if err := a.e.ImportBlock(raw); err != nil {
		t.Fatalf("A refused B's block on the winning branch: %v", err)
	}
	sameShardState(t, "B's lost calls again", a, b)
	balancesAre(t, "B's lost calls again", charlie, teer(9), a, b)
	balancesAre(t, "B's lost calls again", dave, teer(1), a, b)
}

// TestPrimaryKeepsTheBranchItSentForConfirmation: the primary (A) authors,
// on a fork, a block with an unshielding and sends its confirmation at
// once; B's competing block has the earlier slot. Were A to switch to B's
// branch before its confirmation lands, the chain would anchor a block
// nobody holds any more. A keeps its branch; once the confirmation lands,
// B takes A's branch as the anchored one, and both end on one chain.
func TestPrimaryKeepsTheBranchItSentForConfirmation(t *testing.T) {
	a, b := twoValidateers(t)
	if viewOf(a.e).Authorities[0] != a.e.Signer() {
		t.Fatal("A is not the primary")
	}
	alice, bob, charlie, dave := dev(t, "Alice"), dev(t, "Bob"), dev(t, "Charlie"), dev(t, "Dave")
	submit(t, a.e, alice, setBalance(dave.ID(), teer(10)), 0)
	raw0, k := authorIn(t, a, 10)
	if err := b.e.ImportBlock(raw0); err != nil {
		t.Fatal(err)
	}
	n := header(t, a.e).Header.Number

	// B authors first (the earlier slot), A later, with an unshielding.
	submit(t, b.e, alice, setBalance(bob.ID(), teer(1)), 1)
	_, k = authorIn(t, b, k)
	sent := len(a.h.sentTxs())
	submit(t, a.e, dave, stf.Call{Unshield: &stf.Unshield{From: dave.ID(), To: charlie.ID(), Amount: teer(1), Shard: a.e.ShardID()}}, 0)
	authorIn(t, a, k)
	confirmed := false
	for _, raw := range a.h.sentTxs()[sent:] {
		if tx, err := a.c.Codec().DecodeTx(raw); err == nil && tx.Body.Call.String() == "sidechain.confirm_imported_sidechain_block" {
			confirmed = true
		}
	}
	if !confirmed {
		t.Fatal("the primary did not send a confirmation of its block with the unshielding")
	}

	// A hears B's branch: the earlier slot, but A keeps its own.
	if switched, err := a.e.ResolveFork(context.Background(), storedBlocks(t, b, n, n+1)); err != nil || switched {
		t.Fatalf("A resolving against B with its confirmation in flight: switched %v, %v", switched, err)
	}
	aBranch := storedBlocks(t, a, n, n+1)

	// The confirmation lands; both verify it; B takes A's anchored branch.
	a.finalize()
	b.sync()
	if switched, err := b.e.ResolveFork(context.Background(), aBranch); err != nil || !switched {
		t.Fatalf("B resolving against A's anchored branch: switched %v, %v", switched, err)
	}
	sameShardState(t, "after the fork", a, b)
	balancesAre(t, "A's branch", dave, teer(9), a, b)
	if got := balance(t, b.e, bob); got != "0" {
		t.Fatalf("Bob on B: %s, want 0 (B's branch lost)", got)
	}
}

// TestJoinedValidateerResolvesAForkAboveItsJoinHead: B joined at block 3
// and holds no block below it. A fork at block 4 is resolved on B's side
// too, though the host hands over A's blocks from further down (it fetches
// from below the competing height): those are B's join history, not a
// divergence. (Before, B took A's block 1 for the divergence, failed to
// find its own block 1, and never resolved the fork: the shard split, as
// the wipe-validateer fault scenario found.)
func TestJoinedValidateerResolvesAForkAboveItsJoinHead(t *testing.T) {
	a := newChainEnv(t)
	a.register()
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, a.e, 1)
	submit(t, a.e, alice, setBalance(bob.ID(), teer(1)), 0)
	mustBlock(t, a.e, 2)
	submit(t, a.e, alice, setBalance(bob.ID(), teer(2)), 1)
	mustBlock(t, a.e, 3)
	b := a.peer("v1")
	a.registerPeer(b)
	if err := a.join(b); err != nil {
		t.Fatalf("join: %v", err)
	}
	if n := header(t, b.e).Header.Number; n != 3 {
		t.Fatalf("B joined at block %d, want 3", n)
	}
	envs := []*chainEnv{a, b}
	want := []account.ID{a.e.Signer(), b.e.Signer()}
	for i := 0; !slices.Equal(viewOf(a.e).Authorities, want) || !slices.Equal(viewOf(b.e).Authorities, want); i++ {
		if i == 6 {
			t.Fatalf("authorities A %v, B %v; want %v", viewOf(a.e).Authorities, viewOf(b.e).Authorities, want)
		}
		round(t, envs)
	}

	// The partition: each authors block 4 on block 3.
	submit(t, a.e, alice, setBalance(bob.ID(), teer(3)), 2)
	_, k := authorIn(t, a, 10)
	submit(t, b.e, alice, setBalance(bob.ID(), teer(4)), 2)
	authorIn(t, b, k)
	if ha, hb := header(t, a.e), header(t, b.e); ha.Header.Number != 4 || hb.Header.Number != 4 || ha.Hash == hb.Hash {
		t.Fatalf("no fork at 4: A %d %s, B %d %s", ha.Header.Number, ha.Hash, hb.Header.Number, hb.Hash)
	}
	// Healing: each gets the other's blocks from block 1 (or the lowest
	// the other holds) up to its head.
	bSwitched, err := b.e.ResolveFork(context.Background(), storedBlocks(t, a, 1, 4))
	if err != nil {
		t.Fatalf("B resolving against A's blocks 1..4: %v", err)
	}
	aSwitched, err := a.e.ResolveFork(context.Background(), storedBlocks(t, b, 3, 4))
	if err != nil {
		t.Fatalf("A resolving against B's blocks 3..4: %v", err)
	}
	if aSwitched == bSwitched {
		t.Fatalf("switched: A %v, B %v; want exactly one", aSwitched, bSwitched)
	}
	sameShardState(t, "after the fork", a, b)

	// Blocks only from below B's join head are its history: nothing to do.
	forged := storedBlocks(t, a, 1, 3)
	if _, err := b.e.ResolveFork(context.Background(), forged[:2]); err != nil {
		t.Fatalf("blocks below B's join head only: %v", err)
	}
}
