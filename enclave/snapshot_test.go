package enclave

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/sidechain"
)

// A snapshot is encoded, sealed and stored after the enclave's lock is
// released: while the host's disk hangs on it, the enclave authors the next
// block and answers getters. (At a million accounts a snapshot under the
// lock held block production for 3.6 s.)
func TestASlowSnapshotHoldsNoBlockProduction(t *testing.T) {
	h := newFakeHost()
	e := newEnclave(t, newMachine(t, "v1"), h)
	chain(t, e, 2) // blocks 1..3; the test config snapshots every 3 blocks
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	h.mu.Lock()
	h.putHang, h.putHanging = make(chan struct{}), make(chan struct{}, 1)
	h.mu.Unlock()
	submit(t, e, alice, transfer(alice.ID(), bob.ID(), teer(1)), 2)
	produced := make(chan *sidechain.Block, 2)
	go func() {
		b, _ := e.OnSlot(context.Background(), slotTime(10)) // block 4
		produced <- b
		submit(t, e, alice, transfer(alice.ID(), bob.ID(), teer(1)), 3)
		b, _ = e.OnSlot(context.Background(), slotTime(11)) // block 5
		produced <- b
	}()
	for range 2 {
		select {
		case b := <-produced:
			if b == nil {
				t.Fatal("no block")
			}
		case <-time.After(10 * time.Second):
			t.Fatal("block production waited for the snapshot")
		}
	}
	// Block 6 is due for a snapshot: it hangs at the host, and block 7 goes on.
	submit(t, e, alice, transfer(alice.ID(), bob.ID(), teer(1)), 4)
	if b, err := e.OnSlot(context.Background(), slotTime(12)); err != nil || b == nil || b.Header.Number != 6 {
		t.Fatalf("block 6: %v %v", b, err)
	}
	select {
	case <-h.putHanging:
	case <-time.After(10 * time.Second):
		t.Fatal("the snapshot of block 6 never reached the host")
	}
	submit(t, e, alice, transfer(alice.ID(), bob.ID(), teer(1)), 5)
	done := make(chan *sidechain.Block, 1)
	go func() {
		b, _ := e.OnSlot(context.Background(), slotTime(13))
		done <- b
	}()
	select {
	case b := <-done:
		if b == nil || b.Header.Number != 7 {
			t.Fatalf("block 7: %v", b)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("block 7 waited for the snapshot of block 6")
	}
	h.mu.Lock()
	close(h.putHang)
	h.putHang = nil
	h.mu.Unlock()
	e.waitSnapshots()
	if got := h.stateKeys(keySnapshotPrefix); !slices.Contains(got, numberKey(keySnapshotPrefix, 6)) {
		t.Fatalf("snapshots %q, want block 6's", got)
	}
}

// A snapshot whose state was replaced while it was being written (a
// rollback, a join) is not listed in the index.
func TestASnapshotOfAReplacedStateIsNotListed(t *testing.T) {
	h := newFakeHost()
	e := newEnclave(t, newMachine(t, "v1"), h)
	chain(t, e, 4) // blocks 1..5; snapshot 3 listed
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	h.mu.Lock()
	h.putHang, h.putHanging = make(chan struct{}), make(chan struct{}, 1)
	h.mu.Unlock()
	submit(t, e, alice, transfer(alice.ID(), bob.ID(), teer(1)), 4)
	if b, err := e.OnSlot(context.Background(), slotTime(20)); err != nil || b == nil || b.Header.Number != 6 {
		t.Fatalf("block 6: %v %v", b, err)
	}
	<-h.putHanging
	e.mu.Lock()
	e.setState(e.state) // as a rollback or a join would replace it
	e.mu.Unlock()
	h.mu.Lock()
	close(h.putHang)
	h.putHang = nil
	h.mu.Unlock()
	e.waitSnapshots()
	var idx snapshotIndex
	if err := e.getSealed(keySnapshotIndex, "snapshot-index", &idx); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(idx.Numbers, 6) {
		t.Fatalf("index %v lists the snapshot of the replaced state", idx.Numbers)
	}
}

// Restore takes no snapshot that is not of the stored block of its number
// (one of a losing branch, or an old copy the host put back): it falls back
// to an older one and replays the blocks after it.
func TestRestoreSkipsASnapshotOfAnotherBranch(t *testing.T) {
	m, h := newMachine(t, "v1"), newFakeHost()
	e1 := newEnclave(t, m, h)
	chain(t, e1, 6) // blocks 1..7; snapshots 3 and 6 listed
	before := observe(t, e1)
	// Block 6's record now holds block 3's state, validly sealed: what a
	// snapshot of another branch at 6 would look like to restore.
	var three snapshotBlob
	if err := e1.getSealed(numberKey(keySnapshotPrefix, 3), "snapshot", &three); err != nil {
		t.Fatal(err)
	}
	three.Number = 6
	if err := e1.putSealed(numberKey(keySnapshotPrefix, 6), "snapshot", three); err != nil {
		t.Fatal(err)
	}
	sameSnapshot(t, observe(t, newEnclave(t, m, h)), before)
}
