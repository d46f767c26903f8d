package stf

import (
	"bytes"
	"errors"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

var (
	testMr    = attestation.MrEnclave{1, 2, 3}
	testShard = sidechain.ShardID{9, 8, 7}
	otherMr   = attestation.MrEnclave{1, 2, 4}
	otherShrd = sidechain.ShardID{9, 8, 6}
)

func dev(t testing.TB, name string) *account.Pair {
	t.Helper()
	p, err := account.DevPair("//" + name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

type fixture struct {
	t                    testing.TB
	f                    *STF
	st                   *State
	alice, bob, charlie  *account.Pair
	aliceID, bobID, chID account.ID
}

// newFixture returns a shard rooted at //Alice with Alice holding 100 TEER
// and Bob 50 TEER (shielded).
func newFixture(t testing.TB) *fixture {
	t.Helper()
	x := &fixture{t: t, alice: dev(t, "Alice"), bob: dev(t, "Bob"), charlie: dev(t, "Charlie")}
	x.aliceID, x.bobID, x.chID = x.alice.ID(), x.bob.ID(), x.charlie.ID()
	x.f = New(testMr, testShard, x.aliceID)
	x.st = x.f.Genesis()
	if _, err := x.f.ShieldFunds(x.st, x.aliceID, types.TEER(100)); err != nil {
		t.Fatal(err)
	}
	if _, err := x.f.ShieldFunds(x.st, x.bobID, types.TEER(50)); err != nil {
		t.Fatal(err)
	}
	return x
}

func (x *fixture) sign(p *account.Pair, c Call) *SignedCall {
	return SignCall(p, c, x.st.Account(p.ID()).Nonce, testMr, testShard)
}

func (x *fixture) exec(op *SignedCall) Result {
	x.t.Helper()
	res, err := x.f.ExecuteCall(x.st, op)
	if err != nil {
		x.t.Fatalf("%s: %v", op.Call.Name(), err)
	}
	return res
}

// mustFail executes op, expects want, and checks the state did not change
// at all.
func (x *fixture) mustFail(op *SignedCall, want error) {
	x.t.Helper()
	before := x.st.Snapshot()
	res, err := x.f.ExecuteCall(x.st, op)
	if !errors.Is(err, want) {
		x.t.Fatalf("got %v, want %v", err, want)
	}
	if types.AsError(err) == nil {
		x.t.Errorf("%v is not a named error", err)
	}
	if res.Diff != nil || res.Unshielding != nil {
		x.t.Errorf("failed call returned a result: %+v", res)
	}
	if !bytes.Equal(before, x.st.Snapshot()) {
		x.t.Fatalf("failed call (%v) changed the state", err)
	}
}

func (x *fixture) wantBalance(id account.ID, want types.Balance) {
	x.t.Helper()
	if got := x.st.Account(id).Free; got != want {
		x.t.Errorf("balance of %s = %s, want %s", id, got, want)
	}
}

func (x *fixture) wantNonce(id account.ID, want uint64) {
	x.t.Helper()
	if got := x.st.Account(id).Nonce; got != want {
		x.t.Errorf("nonce of %s = %d, want %d", id, got, want)
	}
}

func (x *fixture) wantIssuance(want types.Balance) {
	x.t.Helper()
	if got := x.st.TotalIssuance(); got != want {
		x.t.Errorf("total issuance = %s, want %s", got, want)
	}
}

func teer(n uint64) types.Balance { return types.TEER(n) }

func planck(n uint64) types.Balance { return types.NewBalance(n) }

func transferCall(from, to account.ID, amount types.Balance) Call {
	return Call{Transfer: &Transfer{From: from, To: to, Amount: amount}}
}

func TestShieldFunds(t *testing.T) {
	x := newFixture(t)
	x.wantBalance(x.aliceID, teer(100))
	x.wantBalance(x.bobID, teer(50))
	x.wantIssuance(teer(150))
	x.wantNonce(x.aliceID, 0)

	d, err := x.f.ShieldFunds(x.st, x.chID, planck(1))
	if err != nil {
		t.Fatal(err)
	}
	x.wantBalance(x.chID, planck(1))
	want, _ := teer(150).Add(planck(1))
	x.wantIssuance(want)
	if len(d) != 2 || d[0].Key != accountKey(x.chID) || d[1].Key != keyIssuance {
		t.Errorf("shield diff = %v", d)
	}

	before := x.st.Snapshot()
	if _, err := x.f.ShieldFunds(x.st, x.chID, types.Balance{}); !errors.Is(err, ErrZeroAmount) {
		t.Errorf("zero shield: %v", err)
	}
	// Issuance overflow: the state is unchanged.
	if _, err := x.f.ShieldFunds(x.st, x.chID, types.MaxBalance); !errors.Is(err, ErrOverflow) {
		t.Errorf("overflowing shield: %v", err)
	}
	if !bytes.Equal(before, x.st.Snapshot()) {
		t.Error("failed shield changed the state")
	}
}

func TestTransfer(t *testing.T) {
	x := newFixture(t)
	op := x.sign(x.alice, transferCall(x.aliceID, x.bobID, teer(30)))
	res := x.exec(op)
	x.wantBalance(x.aliceID, teer(70))
	x.wantBalance(x.bobID, teer(80))
	x.wantIssuance(teer(150)) // no fee on the sidechain
	x.wantNonce(x.aliceID, 1)
	x.wantNonce(x.bobID, 0)
	if res.Hash != op.Hash() || res.Hash != (&Operation{Call: op}).Hash() {
		t.Error("result hash is not the operation hash")
	}
	if res.Unshielding != nil {
		t.Error("transfer made an unshielding")
	}
	if len(res.Diff) != 2 || res.Diff[0].Key >= res.Diff[1].Key {
		t.Errorf("transfer diff = %v", res.Diff)
	}
	for _, c := range res.Diff {
		if v, _ := x.st.get(c.Key); !bytes.Equal(v, c.Value) {
			t.Errorf("diff change %q does not match the state", c.Key)
		}
	}

	// The whole balance, to a new account.
	x.exec(x.sign(x.bob, transferCall(x.bobID, x.chID, teer(80))))
	x.wantBalance(x.bobID, types.Balance{})
	x.wantBalance(x.chID, teer(80))
	x.wantNonce(x.bobID, 1) // the empty record with nonce 1 is kept
	x.wantIssuance(teer(150))

	// To oneself: only the nonce changes.
	res = x.exec(x.sign(x.alice, transferCall(x.aliceID, x.aliceID, teer(70))))
	x.wantBalance(x.aliceID, teer(70))
	x.wantNonce(x.aliceID, 2)
	if len(res.Diff) != 1 {
		t.Errorf("self transfer diff = %v", res.Diff)
	}

	// A zero transfer is allowed and bumps the nonce.
	x.exec(x.sign(x.charlie, transferCall(x.chID, x.bobID, types.Balance{})))
	x.wantNonce(x.chID, 1)
	x.wantIssuance(teer(150))
}

func TestCallErrorsChangeNothing(t *testing.T) {
	x := newFixture(t)
	// Use one nonce first, so stale nonces exist.
	first := x.sign(x.alice, transferCall(x.aliceID, x.bobID, teer(1)))
	x.exec(first)

	t.Run("nil", func(t *testing.T) { x.t = t; x.mustFail(nil, ErrMalformed) })
	t.Run("no variant", func(t *testing.T) {
		x.t = t
		x.mustFail(x.sign(x.alice, Call{}), ErrInvalidVariant)
	})
	t.Run("two variants", func(t *testing.T) {
		x.t = t
		c := transferCall(x.aliceID, x.bobID, teer(1))
		c.SetBalance = &SetBalance{Who: x.aliceID, Free: teer(1)}
		x.mustFail(x.sign(x.alice, c), ErrInvalidVariant)
	})
	t.Run("signer mismatch transfer", func(t *testing.T) {
		x.t = t
		x.mustFail(x.sign(x.bob, transferCall(x.aliceID, x.bobID, teer(1))), ErrSignerMismatch)
	})
	t.Run("signer mismatch unshield", func(t *testing.T) {
		x.t = t
		c := Call{Unshield: &Unshield{From: x.aliceID, To: x.bobID, Amount: teer(1), Shard: testShard}}
		x.mustFail(x.sign(x.bob, c), ErrSignerMismatch)
	})
	t.Run("bad signature", func(t *testing.T) {
		x.t = t
		op := x.sign(x.alice, transferCall(x.aliceID, x.bobID, teer(1)))
		op.Call.Transfer.Amount = teer(2)
		x.mustFail(op, ErrBadSignature)
		op = x.sign(x.alice, transferCall(x.aliceID, x.bobID, teer(1)))
		op.Signature = op.Signature[:63]
		x.mustFail(op, ErrBadSignature)
	})
	t.Run("stale nonce (replay)", func(t *testing.T) {
		x.t = t
		x.mustFail(first, ErrStaleNonce)
	})
	t.Run("future nonce", func(t *testing.T) {
		x.t = t
		op := SignCall(x.alice, transferCall(x.aliceID, x.bobID, teer(1)), 5, testMr, testShard)
		x.mustFail(op, ErrFutureNonce)
	})
	t.Run("insufficient balance", func(t *testing.T) {
		x.t = t
		x.mustFail(x.sign(x.alice, transferCall(x.aliceID, x.bobID, teer(100))), ErrInsufficientBalance)
		x.mustFail(x.sign(x.charlie, transferCall(x.chID, x.bobID, planck(1))), ErrInsufficientBalance)
		c := Call{Unshield: &Unshield{From: x.bobID, To: x.bobID, Amount: teer(52), Shard: testShard}}
		x.mustFail(x.sign(x.bob, c), ErrInsufficientBalance)
	})
	t.Run("wrong shard", func(t *testing.T) {
		x.t = t
		c := Call{Unshield: &Unshield{From: x.aliceID, To: x.aliceID, Amount: teer(1), Shard: otherShrd}}
		x.mustFail(x.sign(x.alice, c), ErrWrongShard)
	})
	t.Run("zero unshield", func(t *testing.T) {
		x.t = t
		c := Call{Unshield: &Unshield{From: x.aliceID, To: x.aliceID, Shard: testShard}}
		x.mustFail(x.sign(x.alice, c), ErrZeroAmount)
	})
	t.Run("not root", func(t *testing.T) {
		x.t = t
		x.mustFail(x.sign(x.bob, Call{SetBalance: &SetBalance{Who: x.bobID, Free: teer(1000)}}), ErrNotRoot)
	})
	t.Run("set balance overflows issuance", func(t *testing.T) {
		x.t = t
		x.mustFail(x.sign(x.alice, Call{SetBalance: &SetBalance{Who: x.chID, Free: types.MaxBalance}}), ErrOverflow)
	})
	x.t = t
	// Nothing above moved a nonce or a balance.
	x.wantNonce(x.aliceID, 1)
	x.wantNonce(x.bobID, 0)
	x.wantBalance(x.aliceID, teer(99))
	x.wantBalance(x.bobID, teer(51))
	x.wantIssuance(teer(150))
	if len(x.st.Outbox()) != 0 {
		t.Error("failed unshield left an outbox entry")
	}
	// The failed calls' nonces are still free: a corrected call succeeds.
	x.exec(x.sign(x.alice, transferCall(x.aliceID, x.bobID, teer(2))))
	x.wantNonce(x.aliceID, 2)
}

func TestTransferOverflow(t *testing.T) {
	// Balances are bounded by the total issuance, so only a state built
	// around the invariant reaches the recipient's overflow check.
	x := newFixture(t)
	tx := x.st.Begin()
	tx.SetAccount(x.chID, Account{Free: types.MaxBalance})
	if _, err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	x.mustFail(x.sign(x.alice, transferCall(x.aliceID, x.chID, planck(1))), ErrOverflow)
}

func TestReplayAcrossNonceShardEnclave(t *testing.T) {
	x := newFixture(t)
	call := transferCall(x.aliceID, x.bobID, teer(1))
	// Signed for another shard, another enclave version: refused.
	x.mustFail(SignCall(x.alice, call, 0, testMr, otherShrd), ErrBadSignature)
	x.mustFail(SignCall(x.alice, call, 0, otherMr, testShard), ErrBadSignature)
	// The same call, signed for nonce 0, replayed as nonce 1 after execution.
	op := SignCall(x.alice, call, 0, testMr, testShard)
	x.exec(op)
	x.mustFail(op, ErrStaleNonce)
	moved := *op
	moved.Nonce = 1
	x.mustFail(&moved, ErrBadSignature)
	// The same operation executes on the shard it was signed for only.
	other := New(testMr, otherShrd, x.aliceID)
	st2 := other.Genesis()
	if _, err := other.ShieldFunds(st2, x.aliceID, teer(10)); err != nil {
		t.Fatal(err)
	}
	fresh := SignCall(x.alice, call, 0, testMr, testShard)
	if _, err := other.ExecuteCall(st2, fresh); !errors.Is(err, ErrBadSignature) {
		t.Errorf("call for shard A executed on shard B: %v", err)
	}
	// A getter's signature is not a call's signature (domain separation).
	g := SignGetter(x.alice, Getter{TotalIssuance: &TotalIssuanceQuery{}}, testShard)
	forged := &SignedCall{Call: call, Signer: x.aliceID, Nonce: 1, Signature: g.Signature}
	x.mustFail(forged, ErrBadSignature)
}

func TestUnshield(t *testing.T) {
	x := newFixture(t)
	c := Call{Unshield: &Unshield{From: x.bobID, To: x.chID, Amount: teer(20), Shard: testShard}}
	op := x.sign(x.bob, c)
	res := x.exec(op)
	x.wantBalance(x.bobID, teer(30))
	x.wantBalance(x.chID, types.Balance{}) // paid on the parentchain, not here
	x.wantIssuance(teer(130))
	x.wantNonce(x.bobID, 1)
	want := Unshielding{CallHash: op.Hash(), Beneficiary: x.chID, Amount: teer(20), Shard: testShard}
	if res.Unshielding == nil || *res.Unshielding != want {
		t.Fatalf("result unshielding = %+v, want %+v", res.Unshielding, want)
	}
	if out := x.st.Outbox(); len(out) != 1 || out[0] != withSeq(want, 1) || x.st.OutboxSeq() != 1 {
		t.Fatalf("outbox = %+v, seq %d", out, x.st.OutboxSeq())
	}

	// Two more, from Alice; the outbox keeps the order they were made in.
	var hashes [][32]byte
	hashes = append(hashes, op.Hash())
	for _, amt := range []uint64{5, 7} {
		op := x.sign(x.alice, Call{Unshield: &Unshield{From: x.aliceID, To: x.aliceID, Amount: teer(amt), Shard: testShard}})
		x.exec(op)
		hashes = append(hashes, op.Hash())
	}
	x.wantIssuance(teer(118))
	out := x.st.Outbox()
	if len(out) != 3 {
		t.Fatalf("outbox has %d entries", len(out))
	}
	for i, u := range out {
		if u.CallHash != hashes[i] {
			t.Errorf("outbox[%d] is not the %d-th unshielding", i, i)
		}
	}

	// Removing, once the parentchain paid.
	d, err := x.st.RemoveFromOutbox(hashes[1])
	if err != nil {
		t.Fatal(err)
	}
	if len(d) != 1 || !d[0].Deleted() || d[0].Key != outboxKey(hashes[1]) {
		t.Errorf("removal diff = %v", d)
	}
	out = x.st.Outbox()
	if len(out) != 2 || out[0].CallHash != hashes[0] || out[1].CallHash != hashes[2] {
		t.Errorf("outbox after removal = %+v", out)
	}
	before := x.st.Snapshot()
	if _, err := x.st.RemoveFromOutbox(hashes[1]); !errors.Is(err, ErrNotInOutbox) {
		t.Errorf("second removal: %v", err)
	}
	if !bytes.Equal(before, x.st.Snapshot()) {
		t.Error("failed removal changed the state")
	}
	x.wantIssuance(teer(118)) // removal pays nothing out on the sidechain
}

func TestSetBalance(t *testing.T) {
	x := newFixture(t)
	// Root raises Bob's balance: issuance rises by the difference.
	x.exec(x.sign(x.alice, Call{SetBalance: &SetBalance{Who: x.bobID, Free: teer(80)}}))
	x.wantBalance(x.bobID, teer(80))
	x.wantIssuance(teer(180))
	x.wantNonce(x.aliceID, 1)
	x.wantNonce(x.bobID, 0)
	// And lowers it.
	x.exec(x.sign(x.alice, Call{SetBalance: &SetBalance{Who: x.bobID, Free: teer(10)}}))
	x.wantBalance(x.bobID, teer(10))
	x.wantIssuance(teer(110))
	// Root sets its own balance; its nonce still advances.
	x.exec(x.sign(x.alice, Call{SetBalance: &SetBalance{Who: x.aliceID, Free: teer(1)}}))
	x.wantBalance(x.aliceID, teer(1))
	x.wantNonce(x.aliceID, 3)
	x.wantIssuance(teer(11))
	// Setting an untouched account to zero stores nothing for it.
	res := x.exec(x.sign(x.alice, Call{SetBalance: &SetBalance{Who: x.chID}}))
	if _, ok := x.st.get(accountKey(x.chID)); ok {
		t.Error("empty account stored")
	}
	if len(res.Diff) != 1 {
		t.Errorf("no-op set_balance diff = %v", res.Diff)
	}
	// Bob to zero: his record is removed, issuance is Alice's 1 TEER.
	x.exec(x.sign(x.alice, Call{SetBalance: &SetBalance{Who: x.bobID}}))
	if _, ok := x.st.get(accountKey(x.bobID)); ok {
		t.Error("empty record kept")
	}
	x.wantIssuance(teer(1))
	// Everything to zero: the issuance key disappears, reads stay zero.
	x.exec(x.sign(x.alice, Call{SetBalance: &SetBalance{Who: x.aliceID}}))
	x.wantIssuance(types.Balance{})
	if _, ok := x.st.get(keyIssuance); ok {
		t.Error("zero issuance stored")
	}
}

func TestRootComesFromState(t *testing.T) {
	x := newFixture(t)
	// A validateer configured with another root still follows the state's.
	f2 := New(testMr, testShard, x.bobID)
	op := SignCall(x.bob, Call{SetBalance: &SetBalance{Who: x.bobID, Free: teer(1)}}, 0, testMr, testShard)
	if _, err := f2.ExecuteCall(x.st, op); !errors.Is(err, ErrNotRoot) {
		t.Errorf("configured root overrode the state's: %v", err)
	}
	op = SignCall(x.alice, Call{SetBalance: &SetBalance{Who: x.bobID, Free: teer(1)}}, 0, testMr, testShard)
	if _, err := f2.ExecuteCall(x.st, op); err != nil {
		t.Errorf("state's root refused: %v", err)
	}

	// A shard without root: nobody may set balances.
	f3 := New(testMr, testShard, account.ID{})
	st := f3.Genesis()
	if !st.Root().IsZero() {
		t.Fatal("zero root stored")
	}
	var zero account.ID
	op = &SignedCall{Call: Call{SetBalance: &SetBalance{Who: zero, Free: teer(1)}}, Signer: zero, Signature: make([]byte, 64)}
	if _, err := f3.ExecuteCall(st, op); !errors.Is(err, ErrBadSignature) && !errors.Is(err, ErrNotRoot) {
		t.Errorf("rootless set_balance: %v", err)
	}
	op = SignCall(x.alice, Call{SetBalance: &SetBalance{Who: x.aliceID, Free: teer(1)}}, 0, testMr, testShard)
	if _, err := f3.ExecuteCall(st, op); !errors.Is(err, ErrNotRoot) {
		t.Errorf("rootless set_balance: %v", err)
	}
	if DevRoot() != dev(t, "Alice").ID() {
		t.Error("DevRoot is not //Alice")
	}
	if x.f.Root() != x.aliceID || x.f.Shard() != testShard || x.f.MrEnclave() != testMr {
		t.Error("accessors")
	}
}

func TestGetters(t *testing.T) {
	x := newFixture(t)
	x.exec(x.sign(x.alice, transferCall(x.aliceID, x.bobID, planck(1))))
	get := func(p *account.Pair, g Getter) (string, error) {
		out, err := x.f.ExecuteGetter(x.st, SignGetter(p, g, testShard))
		return string(out), err
	}
	a, b := x.aliceID, x.bobID
	cases := []struct {
		p    *account.Pair
		g    Getter
		want string
	}{
		{x.alice, Getter{FreeBalance: &a}, "99999999999999"},
		{x.bob, Getter{FreeBalance: &b}, "50000000000001"},
		{x.alice, Getter{Nonce: &a}, "1"},
		{x.bob, Getter{Nonce: &b}, "0"},
		{x.charlie, Getter{TotalIssuance: &TotalIssuanceQuery{}}, "150000000000000"},
	}
	for _, c := range cases {
		got, err := get(c.p, c.g)
		if err != nil || got != c.want {
			t.Errorf("%+v: got %q, %v; want %q", c.g, got, err, c.want)
		}
	}
	// Someone else's balance or nonce: refused.
	for _, g := range []Getter{{FreeBalance: &a}, {Nonce: &a}} {
		if _, err := get(x.bob, g); !errors.Is(err, ErrGetterNotOwner) {
			t.Errorf("bob reads alice: %v", err)
		}
	}
	// Signed for another shard, tampered, or no/two variants.
	if _, err := x.f.ExecuteGetter(x.st, SignGetter(x.alice, Getter{FreeBalance: &a}, otherShrd)); !errors.Is(err, ErrBadSignature) {
		t.Errorf("other shard: %v", err)
	}
	sg := SignGetter(x.alice, Getter{FreeBalance: &a}, testShard)
	sg.Getter = Getter{FreeBalance: &b}
	if _, err := x.f.ExecuteGetter(x.st, sg); !errors.Is(err, ErrBadSignature) {
		t.Errorf("tampered: %v", err)
	}
	sg = SignGetter(x.alice, Getter{FreeBalance: &a}, testShard)
	sg.Signer = b
	if _, err := x.f.ExecuteGetter(x.st, sg); !errors.Is(err, ErrBadSignature) {
		t.Errorf("claimed signer: %v", err)
	}
	if _, err := get(x.alice, Getter{}); !errors.Is(err, ErrInvalidVariant) {
		t.Errorf("empty getter: %v", err)
	}
	if _, err := get(x.alice, Getter{FreeBalance: &a, Nonce: &a}); !errors.Is(err, ErrInvalidVariant) {
		t.Errorf("two variants: %v", err)
	}
	if _, err := x.f.ExecuteGetter(x.st, nil); !errors.Is(err, ErrMalformed) {
		t.Errorf("nil getter: %v", err)
	}
	// A call's signature is not a getter's.
	op := x.sign(x.alice, transferCall(a, b, planck(1)))
	if _, err := x.f.ExecuteGetter(x.st, &SignedGetter{Getter: Getter{FreeBalance: &a}, Signer: a, Signature: op.Signature}); !errors.Is(err, ErrBadSignature) {
		t.Errorf("call signature as getter: %v", err)
	}
	// Large balances print in full.
	tx := x.st.Begin()
	tx.SetAccount(a, Account{Free: types.MaxBalance, Nonce: 1})
	if _, err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if got, _ := get(x.alice, Getter{FreeBalance: &a}); got != "340282366920938463463374607431768211455" {
		t.Errorf("max balance reads %q", got)
	}
}

// ExecuteInTx runs calls without touching the state: each sees the ones
// before it, a failing one leaves the transaction as it was, and it skips
// only the signature check (the pool's calls were verified on submission).
func TestExecuteInTx(t *testing.T) {
	x := newFixture(t)
	before := x.st.Snapshot()
	tx := x.st.Begin()
	op := x.sign(x.alice, Call{Transfer: &Transfer{From: x.aliceID, To: x.bobID, Amount: teer(1)}})
	op.Signature = bytes.Repeat([]byte{7}, 64)
	if _, err := x.f.ExecuteCall(x.st, op); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("ExecuteCall: %v, want ErrBadSignature", err)
	}
	if _, err := x.f.ExecuteInTx(tx, op, op.Hash()); err != nil {
		t.Fatalf("first call: %v", err)
	}
	second := SignCall(x.alice, Call{Transfer: &Transfer{From: x.aliceID, To: x.chID, Amount: teer(2)}}, 1, testMr, testShard)
	if _, err := x.f.ExecuteInTx(tx, second, second.Hash()); err != nil {
		t.Fatalf("second call (nonce 1, after the first): %v", err)
	}
	withTwo := tx.Diff()
	if _, err := x.f.ExecuteInTx(tx, op, op.Hash()); !errors.Is(err, ErrStaleNonce) {
		t.Fatalf("replay: %v, want ErrStaleNonce", err)
	}
	big := SignCall(x.alice, Call{Unshield: &Unshield{From: x.aliceID, To: x.bobID, Amount: teer(1000), Shard: testShard}}, 2, testMr, testShard)
	if _, err := x.f.ExecuteInTx(tx, big, big.Hash()); !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("overdraft: %v", err)
	}
	if !bytes.Equal(withTwo.Encode(), tx.Diff().Encode()) {
		t.Fatal("failing calls changed the transaction")
	}
	if !bytes.Equal(before, x.st.Snapshot()) {
		t.Fatal("the state changed before anything was committed")
	}
	tx.Discard()
	if err := x.st.Apply(withTwo); err != nil {
		t.Fatal(err)
	}
	if x.st.Account(x.bobID).Free != teer(51) || x.st.Account(x.chID).Free != teer(2) || x.st.Account(x.aliceID).Nonce != 2 {
		t.Fatalf("after applying the diff: bob %s charlie %s alice nonce %d", x.st.Account(x.bobID).Free, x.st.Account(x.chID).Free, x.st.Account(x.aliceID).Nonce)
	}
}
