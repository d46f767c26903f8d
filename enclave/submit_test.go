package enclave

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/enclave/pool"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/sidechain"
)

func encoded(t *testing.T, op *stf.Operation) []byte {
	t.Helper()
	b, err := op.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// A batch of plain operations is judged element by element: the good ones
// are pooled and executed, each bad one gets its own error, and one bad
// signature does not spoil the batch.
func TestPlainBatchJudgesEachOperation(t *testing.T) {
	h := newFakeHost()
	e := newEnclave(t, newMachine(t, "v1"), h)
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	id := alice.ID()
	badSig := signedCall(e, alice, setBalance(bob.ID(), teer(7)), 1)
	badSig.Call.Signature = bytes.Clone(badSig.Call.Signature)
	badSig.Call.Signature[0] ^= 1
	ops := [][]byte{
		encoded(t, signedCall(e, alice, setBalance(alice.ID(), teer(1000)), 0)),
		encoded(t, badSig),
		encoded(t, &stf.Operation{Getter: stf.SignGetter(alice, stf.Getter{FreeBalance: &id}, e.ShardID())}),
		{0xde, 0xad},
		encoded(t, &stf.Operation{Call: stf.SignCall(alice, setBalance(bob.ID(), teer(1)), 1, attestation.MrEnclave{1}, e.ShardID())}),
		encoded(t, signedCall(e, alice, transfer(alice.ID(), bob.ID(), teer(10)), 1)),
		encoded(t, signedCall(e, alice, setBalance(alice.ID(), teer(1000)), 0)), // the first again
	}
	w := make(chanWatcher, 64)
	res, err := e.RPC().SubmitOperations(context.Background(), e.ShardID(), ops, w)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, stf.ErrBadSignature, ErrNotACall, stf.ErrMalformed, stf.ErrBadSignature, nil, pool.ErrDuplicate} {
		if want == nil && res[i].Err != nil || want != nil && !errors.Is(res[i].Err, want) {
			t.Errorf("operation %d: %v, want %v", i, res[i].Err, want)
		}
		if (res[i].Err == nil) == (res[i].Hash == sidechain.Hash{}) {
			t.Errorf("operation %d: hash %s with error %v", i, res[i].Hash, res[i].Err)
		}
	}
	if len(h.forwarded) != 1 {
		t.Fatalf("%d forwards, want one sealed batch", len(h.forwarded))
	}
	for _, op := range [][]byte{ops[0], ops[5]} {
		if bytes.Contains(h.forwarded[0], op[len(op)-16:]) {
			t.Fatal("the forwarded batch shows an operation to the host")
		}
	}
	b := mustBlock(t, e, 2)
	if len(b.Data.Operations) != 2 || b.Data.Operations[0] != res[0].Hash || b.Data.Operations[1] != res[5].Hash {
		t.Fatalf("block 2 holds %v", b.Data.Operations)
	}
	if hd := header(t, e); hd.StateHash != sidechain.Hash(stateHashOf(e)) || hd.StateHash != b.Data.StateHashAfter {
		t.Fatalf("chain_getHeader's state hash %s, the enclave's %x", hd.StateHash, stateHashOf(e))
	}
	if got := balance(t, e, bob); got != "10000000000000" {
		t.Fatalf("Bob = %s", got)
	}
	seen := map[sidechain.Hash]bool{}
	for len(w) > 0 {
		s := <-w
		if s.Kind == rpc.InSidechainBlock && s.BlockHash == header(t, e).Hash {
			seen[s.BlockHash] = true
		}
	}
	if !seen[header(t, e).Hash] {
		t.Fatal("the watcher never heard InSidechainBlock")
	}
}

// A validateer pools the batch a peer of its shard forwards, without the
// signatures being checked again; what the host makes or changes of it is
// refused, and a replayed batch pools nothing twice.
func TestForwardedBatchOnlyFromTheShardsEnclaves(t *testing.T) {
	a, b := twoValidateers(t)
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	ops := [][]byte{
		encoded(t, signedCall(a.e, alice, setBalance(bob.ID(), teer(5)), 0)),
		encoded(t, signedCall(a.e, bob, transfer(bob.ID(), alice.ID(), teer(1)), 0)),
	}
	res, err := a.e.RPC().SubmitOperations(context.Background(), a.e.ShardID(), ops, nil)
	if err != nil || res[0].Err != nil || res[1].Err != nil {
		t.Fatalf("submit: %+v %v", res, err)
	}
	a.h.mu.Lock()
	sealed := bytes.Clone(a.h.forwarded[len(a.h.forwarded)-1])
	a.h.mu.Unlock()

	// The host flips a byte, or sends a batch sealed by an enclave of
	// another shard.
	forged := bytes.Clone(sealed)
	forged[len(forged)/2] ^= 1
	_, err = b.e.RPC().SubmitForwarded(context.Background(), b.e.ShardID(), forged)
	wantErr(t, err, ErrBadForward)
	other := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	if _, err := other.RPC().SubmitOperations(context.Background(), other.ShardID(), [][]byte{encoded(t, signedCall(other, alice, setBalance(bob.ID(), teer(5)), 0))}, nil); err != nil {
		t.Fatal(err)
	}
	_, err = b.e.RPC().SubmitForwarded(context.Background(), b.e.ShardID(), other.host.(*fakeHost).forwarded[0])
	wantErr(t, err, ErrBadForward)
	// Or a blob the shard's key sealed for another purpose: a block's
	// state diff (the additional data names the purpose).
	blk, err := a.e.sc.Decode(lastBroadcast(t, a.h))
	if err != nil {
		t.Fatal(err)
	}
	_, err = b.e.RPC().SubmitForwarded(context.Background(), b.e.ShardID(), blk.Data.EncryptedStateDiff)
	wantErr(t, err, ErrBadForward)
	if n := b.e.pool.Len(); n != 0 {
		t.Fatalf("B pooled %d operations from forged forwards", n)
	}

	n, err := b.e.RPC().SubmitForwarded(context.Background(), b.e.ShardID(), sealed)
	if err != nil || n != 2 {
		t.Fatalf("forward: %d pooled, %v", n, err)
	}
	if n, _ := b.e.RPC().SubmitForwarded(context.Background(), b.e.ShardID(), sealed); n != 0 {
		t.Fatalf("a replayed forward pooled %d again", n)
	}
	for _, r := range res {
		if _, ok := b.e.pool.Get(r.Hash); !ok {
			t.Fatalf("B does not pool %s", r.Hash)
		}
	}
	if _, err := b.e.RPC().SubmitForwarded(context.Background(), sidechain.ShardID{9}, sealed); !errors.Is(err, ErrUnknownShard) {
		t.Fatalf("another shard: %v", err)
	}
}

// A validateer that holds a peer's forwarded operation answers the
// signer's next nonce past it, before it imports the block holding it
// (the e2e failure: a client's next transfer through it got NonceTaken).
func TestNonceGetterCountsForwardedOperations(t *testing.T) {
	a, b := twoValidateers(t)
	bob := dev(t, "Bob")
	if n := nonceOf(t, b.e, bob); n != "0" {
		t.Fatalf("before: %s", n)
	}
	ops := [][]byte{encoded(t, signedCall(a.e, bob, transfer(bob.ID(), dev(t, "Alice").ID(), teer(1)), 0))}
	if res, err := a.e.RPC().SubmitOperations(context.Background(), a.e.ShardID(), ops, nil); err != nil || res[0].Err != nil {
		t.Fatalf("submit: %+v %v", res, err)
	}
	a.h.mu.Lock()
	sealed := bytes.Clone(a.h.forwarded[len(a.h.forwarded)-1])
	a.h.mu.Unlock()
	if n, err := b.e.RPC().SubmitForwarded(context.Background(), b.e.ShardID(), sealed); err != nil || n != 1 {
		t.Fatalf("forward: %d, %v", n, err)
	}
	if n := nonceOf(t, a.e, bob); n != "1" {
		t.Errorf("the validateer submitted to answers %s, want 1", n)
	}
	if n := nonceOf(t, b.e, bob); n != "1" {
		t.Errorf("the peer holding the forward answers %s, want 1", n)
	}
}
