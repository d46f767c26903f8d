package enclave

import (
	"context"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	scmodule "github.com/integritee-go/integritee/parentchain/modules/sidechain"
	"github.com/integritee-go/integritee/sidechain"
)

// ---- a watched operation is Finalized once the parentchain anchors its block ----

// submitWatched submits a direct invocation with watch set, as
// author_submitAndWatchExtrinsic does, and returns its status channel.
func submitWatched(t *testing.T, e *Enclave, p *account.Pair, call stf.Call, nonce uint64) <-chan rpc.Status {
	t.Helper()
	_, ch, err := submitCT(e.RPC(), context.Background(), e.ShardID(), encrypt(t, e.ShieldingPublicKey(), signedCall(e, p, call, nonce)), true)
	if err != nil {
		t.Fatalf("submit %s nonce %d: %v", call.Name(), nonce, err)
	}
	return ch
}

// chainConfirmed is the parentchain's own (unproven) answer for the shard's
// last confirmed sidechain block in its latest state.
func chainConfirmed(t *testing.T, env *chainEnv) (uint64, string) {
	t.Helper()
	var info scmodule.LatestInfo
	err := env.c.Query("/sidechain/latest/"+env.e.ShardID().String(), &info)
	if err != nil && strings.Contains(err.Error(), "NotFound") {
		return 0, ""
	}
	if err != nil {
		t.Fatal(err)
	}
	return info.Number, info.Hash
}

// wantFinalized reads Finalized(block) from a watch, which must then end.
func wantFinalized(t *testing.T, ch <-chan rpc.Status, block sidechain.Hash) {
	t.Helper()
	got := statusesUntil(t, ch, rpc.Finalized)
	if len(got) != 1 || got[0].BlockHash != block {
		t.Fatalf("statuses %v, want just Finalized(%s)", got, block)
	}
	if rest := collectStatuses(t, ch); len(rest) != 0 {
		t.Fatalf("statuses after Finalized: %v", rest)
	}
}

// TestWatchedCallIsFinalizedOnlyOnceTheChainAnchorsItsBlock: a watched call
// executes in block 2, which is not due for confirmation (interval 2); its
// watcher sees Submitted, Ready and InSidechainBlock(2), and then nothing
// while block 2 is unconfirmed, while the primary's confirmation of block
// 3 is on its way, and while it is in a parentchain block the enclave has
// not verified. Once the enclave verifies that parentchain block, the
// watchers of the calls in blocks 2 and 3 get Finalized, each naming its
// own block, and their watches end.
func TestWatchedCallIsFinalizedOnlyOnceTheChainAnchorsItsBlock(t *testing.T) {
	env := newChainEnv(t, func(c *Config) { c.FinalizationInterval = 2 })
	e := env.e
	env.register()
	alice := dev(t, "Alice")
	mustBlock(t, e, 1)
	env.mustOK(env.block()) // block 1's confirmation (the first block is due at once)
	env.block()
	env.sync()
	if n, ok := e.Finalized(); !ok || n != 1 {
		t.Fatalf("finalized %d %v, want block 1", n, ok)
	}

	ch2 := submitWatched(t, e, alice, setBalance(alice.ID(), teer(1)), 0)
	b2 := mustBlock(t, e, 2)
	h2 := e.sc.Hash(b2)
	want := []rpc.Status{{Kind: rpc.Submitted}, {Kind: rpc.Ready}, {Kind: rpc.InSidechainBlock, BlockHash: h2}}
	if got := statusesUntil(t, ch2, rpc.InSidechainBlock); len(got) != len(want) || got[0] != want[0] || got[1] != want[1] || got[2] != want[2] {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	noStatus(t, ch2)

	// Block 2 is not due: no confirmation, no finality.
	if res := env.block(); len(res) != 0 {
		t.Fatalf("block 2 (not due) sent %d transactions", len(res))
	}
	env.block()
	env.sync()
	if n, _ := chainConfirmed(t, env); n != 1 {
		t.Fatalf("the chain confirmed block %d, want 1", n)
	}
	noStatus(t, ch2)

	// Block 3 is due: the primary sends its confirmation.
	ch3 := submitWatched(t, e, alice, setBalance(alice.ID(), teer(2)), 1)
	b3 := mustBlock(t, e, 3)
	h3 := e.sc.Hash(b3)
	if got := statusesUntil(t, ch3, rpc.InSidechainBlock); got[len(got)-1].BlockHash != h3 {
		t.Fatalf("statuses %v, want InSidechainBlock(%s) last", got, h3)
	}
	noStatus(t, ch2) // sent, not on the chain
	noStatus(t, ch3)

	res := env.block()
	if len(res) != 1 {
		t.Fatalf("%d transactions after block 3, want its confirmation", len(res))
	}
	env.mustOK(res)
	landed := env.c.Height()
	if n, h := chainConfirmed(t, env); n != 3 || h != h3.String() {
		t.Fatalf("the chain confirmed block %d %s, want 3 %s", n, h, h3)
	}
	env.sync() // verifies up to the block before the confirmation's
	if next := e.NextParentchainHeight(); next != landed {
		t.Fatalf("the enclave verified up to %d, want %d (not the confirmation's block)", next-1, landed-1)
	}
	if n, _ := e.Finalized(); n != 1 {
		t.Fatalf("the enclave sees block %d finalized before it verified the confirmation", n)
	}
	noStatus(t, ch2) // on the chain, not verified
	noStatus(t, ch3)

	env.block()
	env.sync()
	if next := e.NextParentchainHeight(); next <= landed {
		t.Fatalf("the enclave has not verified the confirmation's block %d (next %d)", landed, next)
	}
	if n, _ := e.Finalized(); n != 3 {
		t.Fatalf("finalized %d, want 3", n)
	}
	wantFinalized(t, ch2, h2) // its own block, not the anchored one
	wantFinalized(t, ch3, h3)
}

// TestQuietShardsLastBlockIsFinalized: with a long finalization interval
// and no later block, the primary confirms the head after it waited
// idleFinalityAfter parentchain blocks; the watcher of its call gets
// Finalized then, when the enclave verifies the confirmation, and not
// before.
func TestQuietShardsLastBlockIsFinalized(t *testing.T) {
	env := newChainEnv(t) // FinalizationInterval 50
	e := env.e
	env.register()
	alice := dev(t, "Alice")
	mustBlock(t, e, 1)
	env.mustOK(env.block())
	env.block()
	env.sync()
	if n, ok := e.Finalized(); !ok || n != 1 {
		t.Fatalf("finalized %d %v, want block 1", n, ok)
	}

	ch := submitWatched(t, e, alice, setBalance(alice.ID(), teer(1)), 0)
	b2 := mustBlock(t, e, 2)
	h2 := e.sc.Hash(b2)
	statusesUntil(t, ch, rpc.InSidechainBlock)

	var landed int64 // the parentchain block that holds block 2's confirmation
	for i := 0; ; i++ {
		if i > 4*idleFinalityAfter {
			t.Fatalf("block 2 not finalized after %d quiet parentchain blocks (the chain confirmed it at %d)", i, landed)
		}
		env.block()
		if n, h := chainConfirmed(t, env); landed == 0 && n >= 2 {
			if n != 2 || h != h2.String() {
				t.Fatalf("the chain confirmed %d %s, want 2 %s", n, h, h2)
			}
			landed = env.c.Height()
		}
		env.sync()
		if landed == 0 || e.NextParentchainHeight() <= landed {
			noStatus(t, ch)
			continue
		}
		wantFinalized(t, ch, h2)
		break
	}
	if l1 := int64(b2.Data.LayerOneHead.Number); landed < l1+idleFinalityAfter {
		t.Fatalf("block 2 (anchored at parentchain %d) was confirmed at %d, before it waited %d blocks", l1, landed, idleFinalityAfter)
	}
}
