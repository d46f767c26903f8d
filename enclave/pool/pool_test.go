package pool

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/types"
)

func acct(i byte) account.ID { return account.ID{i} }

var (
	alice = acct(1)
	bob   = acct(2)
	carol = acct(3)
)

// op returns an (unsigned: the pool does not verify) call of signer with
// nonce and its hash.
func op(signer account.ID, nonce uint64) (*stf.SignedCall, [32]byte) {
	sc := &stf.SignedCall{
		Call:      stf.Call{Transfer: &stf.Transfer{From: signer, To: signer, Amount: types.NewBalance(nonce)}},
		Signer:    signer,
		Nonce:     nonce,
		Signature: make([]byte, 64),
	}
	return sc, sc.Hash()
}

func hashOf(signer account.ID, nonce uint64) [32]byte { _, h := op(signer, nonce); return h }

func newPool(t *testing.T, cfg Config) *Pool {
	t.Helper()
	p, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func submit(t *testing.T, p *Pool, signer account.ID, nonce, stateNonce uint64, want Status) [32]byte {
	t.Helper()
	sc, h := op(signer, nonce)
	got, err := p.Submit(sc, h, stateNonce)
	if err != nil {
		t.Fatalf("submit %x/%d: %v", signer[0], nonce, err)
	}
	if got != want {
		t.Fatalf("submit %x/%d: %s, want %s", signer[0], nonce, got, want)
	}
	checkInvariants(t, p)
	return h
}

// checkInvariants verifies the pool's internal bookkeeping.
func checkInvariants(t *testing.T, p *Pool) {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for id, q := range p.accounts {
		if len(q.ops) == 0 {
			t.Errorf("empty queue kept for %x", id[0])
		}
		if q.readyEnd < q.next {
			t.Errorf("readyEnd %d < next %d", q.readyEnd, q.next)
		}
		if q.ops[q.readyEnd] != nil {
			t.Errorf("%x: nonce readyEnd=%d is pooled", id[0], q.readyEnd)
		}
		for nonce, e := range q.ops {
			n++
			if e.op.Signer != id || e.op.Nonce != nonce {
				t.Errorf("entry filed under the wrong account or nonce")
			}
			if p.byHash[e.hash] != e {
				t.Errorf("entry missing from the hash index")
			}
			if nonce < q.next {
				t.Errorf("%x: stale nonce %d pooled (next %d)", id[0], nonce, q.next)
			}
			if inRun := nonce < q.readyEnd; inRun != e.ready {
				t.Errorf("%x: nonce %d ready=%v, run [%d,%d)", id[0], nonce, e.ready, q.next, q.readyEnd)
			}
		}
	}
	if n != len(p.byHash) {
		t.Errorf("hash index holds %d, queues %d", len(p.byHash), n)
	}
	future := 0
	for _, e := range p.byHash {
		if !e.ready {
			future++
		}
	}
	if future != p.future {
		t.Errorf("%d Future operations, the count says %d", future, p.future)
	}
}

type snapshot struct {
	entries  []Entry
	len      int
	watchers int
}

func snap(p *Pool) snapshot { return snapshot{p.Pending(), p.Len(), p.Watchers()} }

func wantEvents(t *testing.T, ch <-chan StatusEvent, want ...Status) []StatusEvent {
	t.Helper()
	var got []StatusEvent
	for range want {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("channel closed after %v, want %v", got, want)
			}
			got = append(got, ev)
		default:
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	for i, ev := range got {
		if ev.Status != want[i] {
			t.Fatalf("event %d: %s, want %v", i, ev.Status, want)
		}
	}
	if len(want) > 0 && want[len(want)-1].Final() {
		if _, ok := <-ch; ok {
			t.Fatal("channel not closed after a final status")
		}
	} else {
		select {
		case ev, ok := <-ch:
			if ok {
				t.Fatalf("unexpected event %s", ev.Status)
			}
			t.Fatal("channel closed early")
		default:
		}
	}
	return got
}

func TestConfig(t *testing.T) {
	p := newPool(t, Config{})
	if p.Config() != DefaultConfig() || DefaultConfig().MaxSize != 100000 || DefaultConfig().MaxPerAccount != 10000 {
		t.Errorf("defaults: %+v", p.Config())
	}
	if got, want := newPool(t, Config{MaxSize: 5}).Config(), DefaultConfig(); got != (Config{MaxSize: 5, MaxPerAccount: want.MaxPerAccount,
		MaxFuture: want.MaxFuture, MaxFuturePerAccount: want.MaxFuturePerAccount, FutureTTL: want.FutureTTL}) {
		t.Errorf("partial config: %+v", got)
	}
	for _, c := range []Config{{MaxSize: -1}, {MaxPerAccount: -1}, {MaxFuture: -1}, {MaxFuturePerAccount: -1}, {FutureTTL: -1}} {
		if err := c.ValidateBasic(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%+v: %v", c, err)
		}
		if _, err := New(c); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("New(%+v): %v", c, err)
		}
	}
	if err := DefaultConfig().ValidateBasic(); err != nil {
		t.Error(err)
	}
}

func TestStatusNames(t *testing.T) {
	want := map[Status]string{Submitted: "Submitted", Ready: "Ready", Future: "Future",
		InSidechainBlock: "InSidechainBlock", Invalid: "Invalid", Dropped: "Dropped",
		Retracted: "Retracted", Finalized: "Finalized", 0: "Unknown", 99: "Unknown"}
	for s, n := range want {
		if s.String() != n {
			t.Errorf("%d: %s", s, s)
		}
	}
	// InSidechainBlock is not final: a fork may retract the block until
	// the parentchain anchors it.
	for _, s := range []Status{Submitted, Ready, Future, InSidechainBlock, Retracted} {
		if s.Final() {
			t.Errorf("%s final", s)
		}
	}
	for _, s := range []Status{Finalized, Invalid, Dropped} {
		if !s.Final() {
			t.Errorf("%s not final", s)
		}
	}
}

func TestSubmitReadyFuturePromotion(t *testing.T) {
	p := newPool(t, Config{})
	h5 := submit(t, p, alice, 5, 3, Future) // gap 3, 4
	h4 := submit(t, p, alice, 4, 3, Future)
	w5, w4 := p.Subscribe(h5), p.Subscribe(h4)
	wantEvents(t, w5, Future) // current status on subscribe
	wantEvents(t, w4, Future)
	if len(p.Ready(0)) != 0 {
		t.Fatal("future operations reported ready")
	}
	// Filling the gap promotes the whole run, in nonce order.
	sc3, h3 := op(alice, 3)
	st, w3, err := p.SubmitAndWatch(sc3, h3, 3)
	if err != nil || st != Ready {
		t.Fatalf("fill: %s %v", st, err)
	}
	wantEvents(t, w3, Submitted, Ready)
	wantEvents(t, w4, Ready)
	wantEvents(t, w5, Ready)
	checkInvariants(t, p)
	got := p.Ready(0)
	if len(got) != 3 || got[0].Hash != h3 || got[1].Hash != h4 || got[2].Hash != h5 {
		t.Fatalf("ready = %v", got)
	}
	for _, e := range got {
		if e.Status != Ready {
			t.Error("entry status")
		}
	}
	// Following the run directly is Ready; after a gap, Future.
	submit(t, p, alice, 6, 3, Ready)
	submit(t, p, alice, 8, 3, Future)
	if p.Len() != 5 {
		t.Errorf("len %d", p.Len())
	}
	if e, ok := p.Get(hashOf(alice, 8)); !ok || e.Status != Future || e.Op.Nonce != 8 {
		t.Errorf("get: %+v %v", e, ok)
	}
	if _, ok := p.Get([32]byte{}); ok {
		t.Error("get of unknown hash")
	}
	// Pending lists everything in arrival order.
	var nonces []uint64
	for _, e := range p.Pending() {
		nonces = append(nonces, e.Op.Nonce)
	}
	if !reflect.DeepEqual(nonces, []uint64{5, 4, 3, 6, 8}) {
		t.Errorf("pending order %v", nonces)
	}
}

func TestSubmitErrorsLeavePoolUnchanged(t *testing.T) {
	p := newPool(t, Config{MaxSize: 4, MaxPerAccount: 3})
	submit(t, p, alice, 2, 2, Ready)
	submit(t, p, alice, 3, 2, Ready)
	submit(t, p, alice, 5, 2, Future)
	watch := p.Subscribe(hashOf(alice, 3))
	wantEvents(t, watch, Ready)

	check := func(name string, sc *stf.SignedCall, h [32]byte, stateNonce uint64, want error) {
		t.Helper()
		before := snap(p)
		st, err := p.Submit(sc, h, stateNonce)
		if !errors.Is(err, want) || st != 0 {
			t.Errorf("%s: %s %v, want %v", name, st, err, want)
		}
		if types.AsError(err) == nil {
			t.Errorf("%s: %v is not a named error", name, err)
		}
		if after := snap(p); !reflect.DeepEqual(before, after) {
			t.Errorf("%s: pool changed", name)
		}
		// SubmitAndWatch refuses the same way and leaves no watcher behind.
		st, ch, err := p.SubmitAndWatch(sc, h, stateNonce)
		if !errors.Is(err, want) || ch != nil || st != 0 {
			t.Errorf("%s (watch): %v", name, err)
		}
		if after := snap(p); !reflect.DeepEqual(before, after) {
			t.Errorf("%s (watch): pool changed", name)
		}
		checkInvariants(t, p)
	}
	sc, h := op(alice, 3)
	check("duplicate", sc, h, 2, ErrDuplicate)
	sc, h = op(alice, 1)
	check("stale", sc, h, 2, ErrStaleNonce)
	check("stale (state nonce ahead)", sc, h, 0, ErrStaleNonce) // the pool knows 2
	other := *sc
	other.Nonce = 3
	other.Signature = []byte{1}
	check("nonce taken", &other, other.Hash(), 2, ErrNonceTaken)
	sc, h = op(alice, 9)
	check("account full", sc, h, 2, ErrAccountFull)
	check("nil", nil, h, 0, ErrMalformed)
	submit(t, p, bob, 0, 0, Ready) // 4 = MaxSize
	sc, h = op(carol, 0)
	check("pool full", sc, h, 0, ErrPoolFull)
	if !errors.Is(ErrStaleNonce, stf.ErrStaleNonce) {
		t.Error("pool's stale nonce is not the STF's")
	}
	// Space frees up when operations leave.
	p.Remove(hashOf(bob, 0))
	submit(t, p, carol, 0, 0, Ready)
	wantEvents(t, watch) // nothing happened to alice/3
}

func TestReadyOrderRoundRobin(t *testing.T) {
	p := newPool(t, Config{})
	// Arrival: A1 (future), B0, A0, C0, B1, A2, A3, C2 (future), B2.
	submit(t, p, alice, 1, 0, Future)
	submit(t, p, bob, 0, 0, Ready)
	submit(t, p, alice, 0, 0, Ready)
	submit(t, p, carol, 0, 0, Ready)
	submit(t, p, bob, 1, 0, Ready)
	submit(t, p, alice, 2, 0, Ready)
	submit(t, p, alice, 3, 0, Ready)
	submit(t, p, carol, 2, 0, Future)
	submit(t, p, bob, 2, 0, Ready)

	type k struct {
		who   byte
		nonce uint64
	}
	list := func(es []Entry) []k {
		var out []k
		for _, e := range es {
			out = append(out, k{e.Op.Signer[0], e.Op.Nonce})
		}
		return out
	}
	// Bob's head (B0) arrived first, then Alice's (A0), then Carol's.
	want := []k{{2, 0}, {1, 0}, {3, 0}, {2, 1}, {1, 1}, {2, 2}, {1, 2}, {1, 3}}
	if got := list(p.Ready(0)); !reflect.DeepEqual(got, want) {
		t.Fatalf("ready order\n got %v\nwant %v", got, want)
	}
	if got := list(p.Ready(4)); !reflect.DeepEqual(got, want[:4]) {
		t.Errorf("ready(4) = %v", got)
	}
	if got := list(p.Ready(100)); !reflect.DeepEqual(got, want) {
		t.Errorf("ready(100) = %v", got)
	}
	if got := p.Ready(-1); len(got) != len(want) {
		t.Errorf("ready(-1) has %d", len(got))
	}
	// Executing the list in order never meets a nonce gap.
	last := map[byte]uint64{}
	for _, e := range p.Ready(0) {
		if n, seen := last[e.Op.Signer[0]]; seen && e.Op.Nonce != n+1 {
			t.Errorf("gap for %x", e.Op.Signer[0])
		}
		last[e.Op.Signer[0]] = e.Op.Nonce
	}
	if p.Len() != 9 {
		t.Errorf("Ready removed operations: len %d", p.Len())
	}
}

func TestRemoveDemotes(t *testing.T) {
	p := newPool(t, Config{})
	h0 := submit(t, p, alice, 0, 0, Ready)
	h1 := submit(t, p, alice, 1, 0, Ready)
	h2 := submit(t, p, alice, 2, 0, Ready)
	w1, w2 := p.Subscribe(h1), p.Subscribe(h2)
	wantEvents(t, w1, Ready)
	wantEvents(t, w2, Ready)
	if n := p.Remove(h1, [32]byte{42}); n != 1 {
		t.Errorf("removed %d", n)
	}
	checkInvariants(t, p)
	wantEvents(t, w1, Dropped)
	wantEvents(t, w2, Future) // nonce 1 is missing again
	if got := p.Ready(0); len(got) != 1 || got[0].Hash != h0 {
		t.Errorf("ready %v", got)
	}
	// Resubmitting nonce 1 promotes 2 again.
	submit(t, p, alice, 1, 0, Ready)
	wantEvents(t, w2, Ready)
	if p.Remove() != 0 || p.Remove([32]byte{42}) != 0 {
		t.Error("removed what was not pooled")
	}
	// Removing everything (last first: no demotions) drops the queue.
	if n := p.Remove(h2, h1, h0); n != 3 {
		t.Errorf("removed %d", n)
	}
	if p.Len() != 0 || len(p.accounts) != 0 {
		t.Errorf("leftovers: %d, %d accounts", p.Len(), len(p.accounts))
	}
	wantEvents(t, w2, Dropped)
}

func TestMarkInBlock(t *testing.T) {
	p := newPool(t, Config{})
	h0 := submit(t, p, alice, 0, 0, Ready)
	h1 := submit(t, p, alice, 1, 0, Ready)
	h3 := submit(t, p, alice, 3, 0, Future)
	hb := submit(t, p, bob, 0, 0, Ready)
	w0, w1, w3 := p.Subscribe(h0), p.Subscribe(h1), p.Subscribe(h3)
	foreign := [32]byte{0xf0}
	wf := p.Subscribe(foreign) // an operation this pool never held
	wantEvents(t, w0, Ready)
	wantEvents(t, w1, Ready)
	wantEvents(t, w3, Future)
	if p.Watchers() != 4 {
		t.Errorf("watchers %d", p.Watchers())
	}

	block := [32]byte{0xbb, 1}
	p.MarkInBlock([][32]byte{h0, foreign}, block)
	checkInvariants(t, p)
	evs := wantEvents(t, w0, InSidechainBlock)
	if evs[0].BlockHash != block || evs[0].Hash != h0 {
		t.Errorf("event %+v", evs[0])
	}
	if ev := wantEvents(t, wf, InSidechainBlock); ev[0].BlockHash != block {
		t.Error("foreign watcher's block hash")
	}
	// Nonce 1 stays ready: the state nonce is now past 0.
	wantEvents(t, w1)
	if got := p.Ready(0); len(got) != 2 || got[0].Hash != h1 && got[1].Hash != h1 {
		t.Errorf("ready after block %v", got)
	}
	// A late submission read the state before the block: nonce 0 is stale.
	sc, _ := op(alice, 0)
	sc.Signature = []byte{9}
	h := sc.Hash()
	if _, err := p.Submit(sc, h, 0); !errors.Is(err, ErrStaleNonce) {
		t.Errorf("late submission: %v", err)
	}

	// Nonce 3 executes in another validateer's block (2 and 1 were used
	// elsewhere): 1 is stale now and leaves as Invalid.
	p.MarkInBlock([][32]byte{h3}, [32]byte{0xbb, 2})
	checkInvariants(t, p)
	wantEvents(t, w3, InSidechainBlock)
	if ev := wantEvents(t, w1, Invalid); ev[0].Reason == "" {
		t.Error("invalid without a reason")
	}
	if got := p.Ready(0); len(got) != 1 || got[0].Hash != hb {
		t.Errorf("ready %v", got)
	}
	// The watchers of executed operations wait for Finalized; the Invalid
	// one's is gone.
	if p.Watchers() != 3 {
		t.Errorf("watchers left: %d, want 3", p.Watchers())
	}
	p.MarkFinalized([][32]byte{h0, foreign}, block)
	p.MarkFinalized([][32]byte{h3}, [32]byte{0xbb, 2})
	wantEvents(t, w0, Finalized)
	wantEvents(t, wf, Finalized)
	wantEvents(t, w3, Finalized)
	if p.Watchers() != 0 {
		t.Errorf("watchers left: %d", p.Watchers())
	}
	// Alice's queue is gone; the next submission brings its own state nonce.
	submit(t, p, alice, 4, 4, Ready)
}

// TestInSidechainBlockIsNotFinal: a watcher stays subscribed after its
// operation's block, since a fork may still retract the block.
func TestInSidechainBlockIsNotFinal(t *testing.T) {
	p := newPool(t, Config{})
	sc, h := op(alice, 0)
	_, ch, err := p.SubmitAndWatch(sc, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.MarkInBlock([][32]byte{h}, [32]byte{0xb1})
	wantEvents(t, ch, Submitted, Ready, InSidechainBlock) // fails if closed
	if p.Watchers() != 1 || p.Len() != 0 {
		t.Errorf("watchers %d, len %d", p.Watchers(), p.Len())
	}
	// A second InSidechainBlock (e.g. the block imported again after a
	// retraction) reaches the same watcher.
	p.MarkInBlock([][32]byte{h}, [32]byte{0xb2})
	if ev := wantEvents(t, ch, InSidechainBlock); ev[0].BlockHash != [32]byte{0xb2} {
		t.Errorf("block %x", ev[0].BlockHash)
	}
	p.Unsubscribe(h, ch)
	if _, ok := <-ch; ok || p.Watchers() != 0 {
		t.Errorf("unsubscribe: open %v, watchers %d", ok, p.Watchers())
	}
}

func TestMarkFinalized(t *testing.T) {
	p := newPool(t, Config{})
	sc, h := op(alice, 0)
	_, ch, err := p.SubmitAndWatch(sc, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	late := p.Subscribe(h) // gets Ready first
	hb := submit(t, p, bob, 0, 0, Ready)
	wb := p.Subscribe(hb)
	foreign := [32]byte{0xf0} // executed in a peer's block, never pooled here
	wf := p.Subscribe(foreign)
	wantEvents(t, late, Ready)
	wantEvents(t, wb, Ready)

	block := [32]byte{0xbb, 7}
	p.MarkInBlock([][32]byte{h, foreign}, block)
	wantEvents(t, ch, Submitted, Ready, InSidechainBlock)
	wantEvents(t, late, InSidechainBlock)
	wantEvents(t, wf, InSidechainBlock)

	p.MarkFinalized([][32]byte{h, foreign}, block)
	checkInvariants(t, p)
	for _, w := range []<-chan StatusEvent{ch, late} {
		ev := wantEvents(t, w, Finalized) // and closed
		if ev[0].Hash != h || ev[0].BlockHash != block || ev[0].Reason != "" {
			t.Errorf("event %+v", ev[0])
		}
	}
	if ev := wantEvents(t, wf, Finalized); ev[0].Hash != foreign || ev[0].BlockHash != block {
		t.Errorf("foreign event %+v", ev[0])
	}
	// Bob's pooled operation and its watcher are untouched.
	wantEvents(t, wb)
	if p.Watchers() != 1 || p.Len() != 1 {
		t.Errorf("watchers %d, len %d", p.Watchers(), p.Len())
	}
	// Finalizing again, or a hash nobody watches, does nothing.
	p.MarkFinalized([][32]byte{h, {0xee}}, block)
	p.MarkFinalized(nil, block)
	wantEvents(t, wb)
	if p.Watchers() != 1 || p.Len() != 1 {
		t.Errorf("watchers %d, len %d", p.Watchers(), p.Len())
	}
}

// TestRetract: a retracted operation's watcher stays subscribed and sees
// the operation's next block and its finalization, whether the winning
// branch holds the operation or it is pooled again.
func TestRetract(t *testing.T) {
	p := newPool(t, Config{})
	sc, h := op(alice, 0)
	_, ch, err := p.SubmitAndWatch(sc, h, 0)
	if err != nil {
		t.Fatal(err)
	}
	sc2, h2 := op(bob, 0)
	_, ch2, err := p.SubmitAndWatch(sc2, h2, 0)
	if err != nil {
		t.Fatal(err)
	}
	lost, won, again := [32]byte{0xb1}, [32]byte{0xb2}, [32]byte{0xb3}
	p.MarkInBlock([][32]byte{h, h2}, lost)
	wantEvents(t, ch, Submitted, Ready, InSidechainBlock)
	wantEvents(t, ch2, Submitted, Ready, InSidechainBlock)

	p.Retract([][32]byte{h, h2, {0xee}}) // {0xee}: nobody watches it
	checkInvariants(t, p)
	wantEvents(t, ch, Retracted) // and still open
	wantEvents(t, ch2, Retracted)
	if p.Watchers() != 2 || p.Len() != 0 {
		t.Errorf("after Retract: watchers %d, len %d", p.Watchers(), p.Len())
	}

	// Alice's operation is in the winning block.
	p.MarkInBlock([][32]byte{h}, won)
	if ev := wantEvents(t, ch, InSidechainBlock); ev[0].BlockHash != won {
		t.Errorf("block %x, want the winner", ev[0].BlockHash[:1])
	}
	p.MarkFinalized([][32]byte{h}, won)
	if ev := wantEvents(t, ch, Finalized); ev[0].BlockHash != won {
		t.Errorf("finalized %x, want the winner", ev[0].BlockHash[:1])
	}

	// Bob's is pooled again and executes in a later block.
	if st, err := p.Submit(sc2, h2, 0); err != nil || st != Ready {
		t.Fatalf("pooled again: %s, %v", st, err)
	}
	wantEvents(t, ch2, Submitted, Ready)
	p.MarkInBlock([][32]byte{h2}, again)
	wantEvents(t, ch2, InSidechainBlock)
	p.MarkFinalized([][32]byte{h2}, again)
	if ev := wantEvents(t, ch2, Finalized); ev[0].BlockHash != again {
		t.Errorf("finalized %x", ev[0].BlockHash[:1])
	}
	if p.Watchers() != 0 || p.Len() != 0 {
		t.Errorf("watchers %d, len %d", p.Watchers(), p.Len())
	}
	checkInvariants(t, p)
}

func TestMarkInvalid(t *testing.T) {
	p := newPool(t, Config{})
	h0 := submit(t, p, alice, 0, 0, Ready)
	h1 := submit(t, p, alice, 1, 0, Ready)
	w0, w1 := p.Subscribe(h0), p.Subscribe(h1)
	wantEvents(t, w0, Ready)
	wantEvents(t, w1, Ready)
	p.MarkInvalid(h0, "stf.InsufficientBalance: balance too low")
	checkInvariants(t, p)
	if ev := wantEvents(t, w0, Invalid); ev[0].Reason != "stf.InsufficientBalance: balance too low" {
		t.Errorf("reason %q", ev[0].Reason)
	}
	wantEvents(t, w1, Future) // nonce 0 is still unused in the state
	if p.Len() != 1 || len(p.Ready(0)) != 0 {
		t.Error("after invalid")
	}
	// Not pooled: watchers are told anyway.
	w := p.Subscribe([32]byte{5})
	p.MarkInvalid([32]byte{5}, "bad")
	wantEvents(t, w, Invalid)
}

func TestPrune(t *testing.T) {
	p := newPool(t, Config{})
	h3 := submit(t, p, alice, 3, 3, Ready)
	h4 := submit(t, p, alice, 4, 3, Ready)
	h7 := submit(t, p, alice, 7, 3, Future)
	w3, w7 := p.Subscribe(h3), p.Subscribe(h7)
	wantEvents(t, w3, Ready)
	wantEvents(t, w7, Future)

	if n := p.Prune(alice, 3); n != 0 {
		t.Errorf("no-op prune: %d", n)
	}
	if n := p.Prune(carol, 10); n != 0 {
		t.Errorf("prune of unknown account: %d", n)
	}
	// The state moved to 7 (3..6 used elsewhere): 3 and 4 are stale, 7 ready.
	if n := p.Prune(alice, 7); n != 2 {
		t.Errorf("pruned %d", n)
	}
	checkInvariants(t, p)
	wantEvents(t, w3, Invalid)
	wantEvents(t, w7, Ready)
	if _, ok := p.Get(h4); ok {
		t.Error("stale operation kept")
	}
	// A rollback (fork) lowers the state nonce: 7 waits again.
	if n := p.Prune(alice, 5); n != 0 {
		t.Errorf("rollback pruned %d", n)
	}
	checkInvariants(t, p)
	wantEvents(t, w7, Future)
	submit(t, p, alice, 5, 5, Ready)
	submit(t, p, alice, 6, 5, Ready)
	wantEvents(t, w7, Ready)
	// Pruning everything drops the queue.
	if n := p.Prune(alice, 100); n != 3 || p.Len() != 0 || len(p.accounts) != 0 {
		t.Errorf("prune all: %d, len %d", n, p.Len())
	}
	wantEvents(t, w7, Invalid)
}

// The RPC reads the state nonce without the importer's lock, so it may see
// a block's state before the importer marks the block's operations: a
// submission must not report them Invalid (the bug the sidechain benchmark
// found: executed transfers reported "stale nonce").
func TestSubmitSeeingALaterStateDoesNotInvalidateOperationsInTheBlock(t *testing.T) {
	p := newPool(t, Config{})
	h0 := submit(t, p, alice, 0, 0, Ready)
	h1 := submit(t, p, alice, 1, 0, Ready)
	w0, w1 := p.Subscribe(h0), p.Subscribe(h1)
	wantEvents(t, w0, Ready)
	wantEvents(t, w1, Ready)
	// The block holding 0 and 1 is applied; the RPC reads nonce 2 first.
	submit(t, p, alice, 2, 2, Ready)
	sc, _ := op(alice, 1)
	if _, err := p.Submit(sc, [32]byte{1, 1}, 2); !errors.Is(err, ErrStaleNonce) {
		t.Fatalf("a second operation with a used nonce: %v", err)
	}
	p.MarkInBlock([][32]byte{h0, h1}, [32]byte{9})
	wantEvents(t, w0, InSidechainBlock)
	wantEvents(t, w1, InSidechainBlock)
	if got := p.Ready(0); len(got) != 1 || got[0].Op.Nonce != 2 {
		t.Errorf("ready %v", got)
	}
	checkInvariants(t, p)
}

// A peer's block used nonces of operations this pool never held:
// PruneAccounts brings the queue up, readies what follows and reports the
// now stale ones Invalid.
func TestPruneAccountsAfterAPeersBlock(t *testing.T) {
	p := newPool(t, Config{})
	h0 := submit(t, p, alice, 0, 0, Ready)
	submit(t, p, alice, 2, 0, Future)
	submit(t, p, bob, 0, 0, Ready)
	w0 := p.Subscribe(h0)
	wantEvents(t, w0, Ready)
	// Alice's 0 and 1 executed elsewhere (another operation 0 than ours).
	nonces := map[account.ID]uint64{alice: 2, bob: 0}
	if n := p.PruneAccounts([]account.ID{alice, bob, acct(9)}, func(id account.ID) uint64 { return nonces[id] }); n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
	wantEvents(t, w0, Invalid)
	got := p.Ready(0)
	if len(got) != 2 {
		t.Fatalf("ready %v", got)
	}
	checkInvariants(t, p)
	// A refused submission leaves no empty queue behind.
	sc, h := op(carol, 1)
	if _, err := p.Submit(sc, h, 5); !errors.Is(err, ErrStaleNonce) {
		t.Errorf("stale: %v", err)
	}
	if _, ok := p.accounts[carol]; ok {
		t.Error("empty queue left behind")
	}
}

// The next nonce counts the Ready operations, not the Future ones, and a
// state ahead of the pool wins (the regression: a validateer holding a
// forwarded operation with nonce 1, not yet at the peer's block holding
// it, answered 1, and the client's next transfer was refused NonceTaken).
func TestNextNonceCountsReadyOperations(t *testing.T) {
	p := newPool(t, Config{})
	if n := p.NextNonce(alice, 4); n != 4 {
		t.Errorf("no pooled operation: %d, want the state's 4", n)
	}
	submit(t, p, alice, 1, 1, Ready)
	submit(t, p, alice, 2, 1, Ready)
	submit(t, p, alice, 5, 1, Future)
	for _, c := range []struct{ state, want uint64 }{
		{0, 3}, // the state lags the pool's view
		{1, 3},
		{2, 3},
		{3, 3},
		{4, 4}, // the state ran past the pooled ones
		{7, 7},
	} {
		if n := p.NextNonce(alice, c.state); n != c.want {
			t.Errorf("state nonce %d: next %d, want %d", c.state, n, c.want)
		}
	}
	if n := p.NextNonce(bob, 0); n != 0 {
		t.Errorf("another account: %d", n)
	}
	checkInvariants(t, p)
}

func TestWatchLifecycle(t *testing.T) {
	p := newPool(t, Config{})
	sc, h := op(alice, 1)
	st, ch, err := p.SubmitAndWatch(sc, h, 0)
	if err != nil || st != Future {
		t.Fatal(st, err)
	}
	second := p.Subscribe(h)
	submit(t, p, alice, 0, 0, Ready)
	p.MarkInBlock([][32]byte{hashOf(alice, 0), h}, [32]byte{1})
	evs := wantEvents(t, ch, Submitted, Future, Ready, InSidechainBlock)
	for _, ev := range evs {
		if ev.Hash != h {
			t.Error("event of another hash")
		}
	}
	wantEvents(t, second, Future, Ready, InSidechainBlock)
	p.MarkFinalized([][32]byte{hashOf(alice, 0), h}, [32]byte{1})
	wantEvents(t, ch, Finalized)
	wantEvents(t, second, Finalized)

	// Unsubscribe closes; a second Unsubscribe does nothing.
	w := p.Subscribe([32]byte{7})
	p.Unsubscribe([32]byte{7}, w)
	if _, ok := <-w; ok {
		t.Error("unsubscribed channel open")
	}
	p.Unsubscribe([32]byte{7}, w)
	p.Unsubscribe([32]byte{8}, make(chan StatusEvent))
	if p.Watchers() != 0 {
		t.Errorf("watchers %d", p.Watchers())
	}
	// Subscribe-then-submit works and so does unsubscribing one of two.
	sc, h = op(bob, 0)
	a, b := p.Subscribe(h), p.Subscribe(h)
	p.Unsubscribe(h, a)
	if _, err := p.Submit(sc, h, 0); err != nil {
		t.Fatal(err)
	}
	wantEvents(t, b, Submitted, Ready)
	p.Remove(h)
	wantEvents(t, b, Dropped)
}

// TestSlowWatcherGetsFinal: a watcher that never reads misses intermediate
// statuses once its buffer is nearly full, but always gets the final one.
func TestSlowWatcherGetsFinal(t *testing.T) {
	p := newPool(t, Config{})
	h1 := submit(t, p, alice, 1, 0, Future)
	w := p.Subscribe(h1)
	for i := 0; i < 3*watchBuffer; i++ { // Ready/Future flip-flops
		h0 := submit(t, p, alice, 0, 0, Ready)
		p.Remove(h0)
	}
	p.MarkInvalid(h1, "gone")
	var got []Status
	for ev := range w {
		got = append(got, ev.Status)
	}
	if len(got) != watchBuffer || got[len(got)-1] != Invalid {
		t.Errorf("got %d events, last %s", len(got), got[len(got)-1])
	}
}

func TestConcurrentUse(t *testing.T) {
	const signers, per = 8, 100
	p := newPool(t, Config{MaxFuturePerAccount: per})
	var wg sync.WaitGroup
	var watched sync.WaitGroup
	finals := make(chan Status, signers*per)
	for s := 0; s < signers; s++ {
		wg.Add(1)
		go func(s int) {
			defer wg.Done()
			id := acct(byte(10 + s))
			// Nonces in reverse: all Future until 0 arrives.
			for n := per - 1; n >= 0; n-- {
				sc, h := op(id, uint64(n))
				_, ch, err := p.SubmitAndWatch(sc, h, 0)
				if err != nil {
					t.Error(err)
					return
				}
				watched.Add(1)
				go func() {
					defer watched.Done()
					var prev, last StatusEvent
					for ev := range ch {
						prev, last = last, ev
					}
					// Finalized names the block the operation was in.
					if last.Status == Finalized && (prev.Status != InSidechainBlock || prev.BlockHash != last.BlockHash) {
						t.Errorf("%s(%x) before Finalized(%x)", prev.Status, prev.BlockHash[:2], last.BlockHash[:2])
					}
					finals <- last.Status
				}()
			}
		}(s)
	}
	// A block producer: executes what is ready; each block is finalized
	// after the next one is produced.
	done := make(chan struct{})
	var executed sync.Map
	go func() {
		defer close(done)
		var prevOps [][32]byte
		var prevBlock [32]byte
		defer func() { p.MarkFinalized(prevOps, prevBlock) }()
		for blocks := 0; ; blocks++ {
			es := p.Ready(37)
			var hs [][32]byte
			for _, e := range es {
				if _, dup := executed.LoadOrStore(e.Hash, true); dup {
					t.Error("executed twice")
				}
				hs = append(hs, e.Hash)
			}
			bh := sha256.Sum256([]byte(fmt.Sprint(blocks)))
			p.MarkInBlock(hs, bh)
			p.MarkFinalized(prevOps, prevBlock)
			prevOps, prevBlock = hs, bh
			if blocks > 1_000_000 {
				t.Error("producer never finished")
				return
			}
			if p.Len() == 0 && blocks > 10 {
				n := 0
				executed.Range(func(any, any) bool { n++; return true })
				if n == signers*per {
					return
				}
			}
		}
	}()
	wg.Wait()
	<-done
	watched.Wait()
	close(finals)
	n := 0
	for st := range finals {
		if st != Finalized {
			t.Errorf("final %s", st)
		}
		n++
	}
	if n != signers*per || p.Len() != 0 || p.Watchers() != 0 {
		t.Errorf("finals %d, len %d, watchers %d", n, p.Len(), p.Watchers())
	}
	checkInvariants(t, p)
}

func TestBoundsLarge(t *testing.T) {
	p := newPool(t, Config{MaxSize: 1000, MaxPerAccount: 100})
	for n := uint64(0); n < 100; n++ {
		submit(t, p, alice, n, 0, Ready)
	}
	sc, h := op(alice, 100)
	if _, err := p.Submit(sc, h, 0); !errors.Is(err, ErrAccountFull) {
		t.Errorf("101st: %v", err)
	}
	for i := byte(0); i < 9; i++ {
		for n := uint64(0); n < 100; n++ {
			sc, h := op(acct(100+i), n)
			if _, err := p.Submit(sc, h, 0); err != nil {
				t.Fatal(err)
			}
		}
	}
	sc, h = op(bob, 0)
	if _, err := p.Submit(sc, h, 0); !errors.Is(err, ErrPoolFull) {
		t.Errorf("1001st: %v", err)
	}
	if len(p.Ready(0)) != 1000 || len(p.Ready(250)) != 250 {
		t.Error("ready counts")
	}
	checkInvariants(t, p)
}

func TestFunctionWatcherGetsEveryStatusAndNothingAfterTheFinal(t *testing.T) {
	p := newPool(t, Config{})
	c, h := op(acct(1), 0)
	var got []Status
	if _, err := p.SubmitAndWatchFunc(c, h, 0, func(ev StatusEvent) { got = append(got, ev.Status) }); err != nil {
		t.Fatal(err)
	}
	if p.Watchers() != 1 {
		t.Fatalf("%d watchers", p.Watchers())
	}
	p.MarkInBlock([][32]byte{h}, [32]byte{7})
	p.MarkFinalized([][32]byte{h}, [32]byte{7})
	p.MarkFinalized([][32]byte{h}, [32]byte{7})
	if want := []Status{Submitted, Ready, InSidechainBlock, Finalized}; !slices.Equal(got, want) {
		t.Fatalf("statuses %v, want %v", got, want)
	}
	if p.Watchers() != 0 {
		t.Fatalf("%d watchers after the final status", p.Watchers())
	}
	// A refused submission leaves no watcher.
	if _, err := p.SubmitAndWatchFunc(c, h, 1, func(StatusEvent) { t.Fatal("status of a refused operation") }); !errors.Is(err, ErrStaleNonce) {
		t.Fatalf("stale: %v", err)
	}
	if p.Watchers() != 0 {
		t.Fatalf("%d watchers after a refusal", p.Watchers())
	}
}

func TestExpireWatchesEndsOnlyThoseLongInABlock(t *testing.T) {
	p := newPool(t, Config{})
	c1, h1 := op(acct(1), 0)
	c2, h2 := op(acct(2), 0)
	c3, h3 := op(acct(3), 0)
	var n1 int
	if _, err := p.SubmitAndWatchFunc(c1, h1, 0, func(StatusEvent) { n1++ }); err != nil {
		t.Fatal(err)
	}
	_, ch2, err := p.SubmitAndWatch(c2, h2, 0)
	if err != nil {
		t.Fatal(err)
	}
	_, ch3, err := p.SubmitAndWatch(c3, h3, 0)
	if err != nil {
		t.Fatal(err)
	}
	p.MarkInBlock([][32]byte{h1, h2}, [32]byte{1})
	if n := p.ExpireWatches(time.Now().Add(-time.Hour)); n != 0 {
		t.Fatalf("expired %d watches an hour early", n)
	}
	if n := p.ExpireWatches(time.Now().Add(time.Second)); n != 2 {
		t.Fatalf("expired %d, want the two in a block", n)
	}
	for range ch2 { // closed without a final status
	}
	if p.Watchers() != 1 {
		t.Fatalf("%d watchers left, want the one not in a block", p.Watchers())
	}
	calls := n1
	p.MarkFinalized([][32]byte{h1}, [32]byte{1})
	if n1 != calls {
		t.Fatal("an expired function watcher was called again")
	}
	select {
	case s := <-ch3:
		if s.Status != Submitted {
			t.Fatalf("unexpected %v", s.Status)
		}
	default:
		t.Fatal("the pooled operation's watch lost its statuses")
	}
}

// Future operations are bounded per signer and in all, and a submission
// refused for it changes nothing; Ready ones are not bounded by it.
func TestFutureBounds(t *testing.T) {
	p := newPool(t, Config{MaxFuture: 5, MaxFuturePerAccount: 3})
	for n := uint64(10); n < 13; n++ {
		submit(t, p, alice, n, 0, Future)
	}
	sc, h := op(alice, 13)
	before := snap(p)
	if _, err := p.Submit(sc, h, 0); !errors.Is(err, ErrFutureFull) {
		t.Fatalf("a fourth Future operation of one signer: %v", err)
	}
	if after := snap(p); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Fatalf("a refused submission changed the pool: %v, was %v", after, before)
	}
	submit(t, p, bob, 5, 0, Future)
	submit(t, p, carol, 5, 0, Future)
	sc, h = op(acct(9), 5)
	if _, err := p.Submit(sc, h, 0); !errors.Is(err, ErrFutureFull) {
		t.Fatalf("a sixth Future operation in the pool: %v", err)
	}
	// Ready operations still enter, and filling a gap readies the Future.
	for n := uint64(0); n < 10; n++ {
		submit(t, p, alice, n, 0, Ready)
	}
	if got := p.FutureLen(); got != 2 {
		t.Errorf("Future after alice's gap closed: %d, want 2", got)
	}
	submit(t, p, acct(9), 5, 0, Future) // room again
	checkInvariants(t, p)
}

// ExpireFuture drops what stayed Future for the TTL, counted from the first
// sweep that saw it; Ready operations and those readied in time stay.
func TestExpireFuture(t *testing.T) {
	p := newPool(t, Config{FutureTTL: time.Minute})
	t0 := time.Unix(1_000_000, 0)
	h0 := submit(t, p, alice, 0, 0, Ready)
	h2 := submit(t, p, alice, 2, 0, Future)
	hb := submit(t, p, bob, 7, 0, Future)
	w2, wb := p.Subscribe(h2), p.Subscribe(hb)
	wantEvents(t, w2, Future)
	wantEvents(t, wb, Future)
	if n := p.ExpireFuture(t0); n != 0 { // the first sweep stamps them
		t.Fatalf("first sweep dropped %d", n)
	}
	if n := p.ExpireFuture(t0.Add(time.Minute)); n != 0 {
		t.Fatalf("at the TTL dropped %d", n)
	}
	submit(t, p, alice, 1, 0, Ready) // closes alice's gap: 2 is Ready now
	wantEvents(t, w2, Ready)
	if n := p.ExpireFuture(t0.Add(time.Minute + time.Second)); n != 1 {
		t.Fatalf("after the TTL dropped %d, want bob's 1", n)
	}
	if evs := wantEvents(t, wb, Dropped); !strings.Contains(evs[0].Reason, "lower nonce") {
		t.Errorf("reason %q", evs[0].Reason)
	}
	if _, ok := p.Get(hb); ok {
		t.Error("the expired operation is still pooled")
	}
	for _, h := range [][32]byte{h0, h2} {
		if _, ok := p.Get(h); !ok {
			t.Error("a Ready operation expired")
		}
	}
	if p.FutureLen() != 0 || len(p.accounts) != 1 {
		t.Errorf("future %d, accounts %d", p.FutureLen(), len(p.accounts))
	}
	checkInvariants(t, p)
}

// SubmitMany reads the signers' state nonces under the pool's lock: after a
// block executed a signer's only pooled operation (the pool forgot the
// signer), the next operation is Ready against the state as it is now. A
// nonce read earlier (Submit with 0 here) would park it as Future.
func TestSubmitManyReadsNoncesUnderTheLock(t *testing.T) {
	p := newPool(t, Config{})
	h0 := submit(t, p, alice, 0, 0, Ready)
	state := map[account.ID]uint64{alice: 1} // the block executed nonce 0
	p.MarkInBlock([][32]byte{h0}, [32]byte{9})
	var got []Status
	watch := func(ev StatusEvent) { got = append(got, ev.Status) }
	op1, h1 := op(alice, 1)
	op1b, _ := op(alice, 1)
	op1b.Call.Transfer.Amount = types.NewBalance(7) // the same nonce again, another hash
	op0, h0again := op(alice, 0)
	reads := 0
	res := p.SubmitMany([]Pending{
		{Op: op1, Hash: h1, Watch: watch},
		{Op: op1b, Hash: op1b.Hash(), Watch: watch},
		{Op: op0, Hash: h0again},
		{Op: nil},
	}, func(id account.ID) uint64 { reads++; return state[id] })
	checkInvariants(t, p)
	if res[0].Err != nil || res[0].Status != Ready || !errors.Is(res[1].Err, ErrNonceTaken) || !errors.Is(res[2].Err, ErrStaleNonce) || !errors.Is(res[3].Err, ErrMalformed) {
		t.Fatalf("results %v", res)
	}
	if want := []Status{Submitted, Ready}; !slices.Equal(got, want) {
		t.Fatalf("the watch saw %v, want %v (a refused operation's watch sees nothing)", got, want)
	}
	if reads != 3 {
		t.Fatalf("nonceOf called %d times, want once per operation", reads)
	}
	if p.FutureLen() != 0 || len(p.Ready(0)) != 1 {
		t.Fatalf("%d Future, %d Ready", p.FutureLen(), len(p.Ready(0)))
	}
	if len(p.watchers[h1]) != 1 || len(p.watchers[op1b.Hash()]) != 0 || p.nwatch != 1 {
		t.Fatalf("watchers: %d of the pooled operation, %d of the refused one, %d in all; want 1, 0, 1",
			len(p.watchers[h1]), len(p.watchers[op1b.Hash()]), p.nwatch)
	}
}
