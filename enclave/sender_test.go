package enclave

import (
	"context"
	"testing"
	"time"

	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// The enclave's parentchain transactions go out after its lock is released:
// while the node hangs on a submission, the enclave still authors blocks,
// answers getters and takes submissions; the transaction reaches the node
// once it answers. (Before, SendDue held the lock across the node's calls,
// and a block waited 700 ms for a slow node under load.)
func TestAHungNodeHoldsNoBlockProduction(t *testing.T) {
	h := newFakeHost()
	e := newEnclave(t, newMachine(t, "v1"), h)
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	mustBlock(t, e, 1)
	call, err := types.NewCall(e.codec, enclavebridge.ModuleName, "confirm_processed_parentchain_block",
		enclavebridge.ConfirmProcessedParentchainBlockArgs{Shard: e.ShardID(), BlockNumber: 1})
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.confirms = append(e.confirms, call)
	e.mu.Unlock()
	h.hang, h.hanging = make(chan struct{}), make(chan struct{}, 1)
	sent := make(chan struct{})
	go func() {
		e.SendDue(context.Background())
		close(sent)
	}()
	select {
	case <-h.hanging:
	case <-time.After(10 * time.Second):
		t.Fatal("SendDue never reached the node")
	}
	// The node hangs. The enclave goes on.
	submit(t, e, alice, setBalance(bob.ID(), teer(5)), 0)
	produced := make(chan *sidechain.Block, 1)
	go func() {
		b, _ := e.OnSlot(context.Background(), slotTime(2))
		produced <- b
	}()
	select {
	case b := <-produced:
		if b == nil || b.Header.Number != 2 {
			t.Fatalf("OnSlot while the node hangs: %v", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("OnSlot waited for the hung node")
	}
	if got := balance(t, e, bob); got != "5000000000000" {
		t.Fatalf("Bob = %s", got)
	}
	if n := len(h.sentTxs()); n != 0 {
		t.Fatalf("%d transactions at the node while it hangs", n)
	}
	close(h.hang)
	select {
	case <-sent:
	case <-time.After(10 * time.Second):
		t.Fatal("SendDue did not return once the node answered")
	}
	if n := len(h.sentTxs()); n != 1 {
		t.Fatalf("%d transactions at the node, want the confirmation", n)
	}
}

// A call the node refuses (or does not answer) goes back to the enclave
// with the rest of the queue, which sends it again when next due, as it did
// when it sent under the lock; Register reports the refusal.
func TestARefusedParentchainCallGoesBackToTheEnclave(t *testing.T) {
	h := newFakeHost()
	e := newEnclave(t, newMachine(t, "v1"), h)
	mustBlock(t, e, 1)
	queue := func(n int64) {
		call, err := types.NewCall(e.codec, enclavebridge.ModuleName, "confirm_processed_parentchain_block",
			enclavebridge.ConfirmProcessedParentchainBlockArgs{Shard: e.ShardID(), BlockNumber: n})
		if err != nil {
			t.Fatal(err)
		}
		e.mu.Lock()
		e.confirms = append(e.confirms, call)
		e.mu.Unlock()
	}
	pending := func() (queued, confirms int) {
		e.send.mu.Lock()
		queued = len(e.send.queue)
		e.send.mu.Unlock()
		e.mu.Lock()
		defer e.mu.Unlock()
		return queued, len(e.confirms)
	}
	h.mu.Lock()
	h.failSubmits = 1
	h.mu.Unlock()
	queue(1)
	queue(2)
	e.SendDue(context.Background())
	if q, c := pending(); len(h.sentTxs()) != 0 || q != 0 || c != 2 {
		t.Fatalf("after a refusal: %d sent, %d queued, %d confirmations pending; want 0, 0, 2", len(h.sentTxs()), q, c)
	}
	e.SendDue(context.Background())
	if q, c := pending(); len(h.sentTxs()) != 2 || q != 0 || c != 0 {
		t.Fatalf("after the node came back: %d sent, %d queued, %d pending; want 2, 0, 0", len(h.sentTxs()), q, c)
	}
	// Register waits for its own outcome and reports the refusal.
	h.mu.Lock()
	h.failSubmits = 1
	h.mu.Unlock()
	if _, err := e.Register(context.Background(), "wss://v1", true); err == nil {
		t.Fatal("Register reported no error for a refused registration")
	}
	if _, err := e.Register(context.Background(), "wss://v1", true); err != nil {
		t.Fatalf("Register: %v", err)
	}
}
