package stf

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/integritee-go/integritee/parentchain/types"
)

// operationSeeds are genuine signed operations for the fixture's shard:
// each getter variant, read by its owner and by someone else, and calls
// that execute, fail on the state, or carry a stale nonce.
func (x *fixture) operationSeeds() [][]byte {
	a, b := x.aliceID, x.bobID
	ops := []*Operation{
		{Getter: SignGetter(x.alice, Getter{FreeBalance: &a}, testShard)},
		{Getter: SignGetter(x.bob, Getter{Nonce: &b}, testShard)},
		{Getter: SignGetter(x.charlie, Getter{TotalIssuance: &TotalIssuanceQuery{}}, testShard)},
		{Getter: SignGetter(x.bob, Getter{FreeBalance: &a}, testShard)},
		{Getter: SignGetter(x.alice, Getter{FreeBalance: &a}, otherShrd)},
		{Call: SignCall(x.alice, transferCall(a, b, teer(1)), 0, testMr, testShard)},
		{Call: SignCall(x.bob, Call{Unshield: &Unshield{From: b, To: a, Amount: teer(2), Shard: testShard}}, 0, testMr, testShard)},
		{Call: SignCall(x.alice, Call{SetBalance: &SetBalance{Who: b, Free: teer(7)}}, 0, testMr, testShard)},
		{Call: SignCall(x.bob, Call{SetBalance: &SetBalance{Who: b, Free: teer(7)}}, 0, testMr, testShard)},
		{Call: SignCall(x.alice, transferCall(a, b, teer(1000)), 0, testMr, testShard)},
		{Call: SignCall(x.alice, transferCall(a, b, teer(1)), 5, testMr, testShard)},
	}
	out := make([][]byte, len(ops))
	for i, op := range ops {
		var err error
		if out[i], err = op.Encode(); err != nil {
			x.t.Fatal(err)
		}
	}
	return out
}

// FuzzExecuteOperation: an operation as the enclave receives it after
// decryption (or over RA-TLS) is decoded, then executed: a getter against
// a small state, a call against a copy of it. Whatever the bytes, nothing
// panics, every refusal is a named error, a refused call changes nothing,
// and only genuinely signed operations run at all: the answer a getter
// gives is the state's own, and a call moves its signer's nonce by one.
func FuzzExecuteOperation(f *testing.F) {
	x := newFixture(f)
	seeds := x.operationSeeds()
	genuine := map[string]bool{}
	for _, s := range seeds {
		genuine[string(s)] = true
		f.Add(s)
	}
	snap := x.st.Snapshot()
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeOperation(b)
		if err != nil {
			return // FuzzDecodeOperation checks the decoder's errors
		}
		if op.Getter != nil {
			v, err := x.f.ExecuteGetter(x.st, op.Getter)
			if err != nil {
				if v != nil || types.AsError(err) == nil {
					t.Fatalf("getter refused with %v (answer %q)", err, v)
				}
				return
			}
			if !genuine[string(b)] {
				t.Fatalf("a getter nobody signed ran: %x", b)
			}
			g := op.Getter.Getter
			var want string
			switch {
			case g.FreeBalance != nil:
				want = x.st.Account(*g.FreeBalance).Free.String()
			case g.Nonce != nil:
				want = strconv.FormatUint(x.st.Account(*g.Nonce).Nonce, 10)
			default:
				want = x.st.TotalIssuance().String()
			}
			if string(v) != want {
				t.Fatalf("getter answered %q, the state holds %q", v, want)
			}
			return
		}
		st, err := StateFromSnapshot(snap)
		if err != nil {
			t.Fatal(err)
		}
		nonce := st.Account(op.Call.Signer).Nonce
		res, err := x.f.ExecuteCall(st, op.Call)
		if err != nil {
			if types.AsError(err) == nil {
				t.Fatalf("call refused with unnamed error %v", err)
			}
			if !bytes.Equal(st.Snapshot(), snap) {
				t.Fatalf("a refused call (%v) changed the state", err)
			}
			return
		}
		if !genuine[string(b)] {
			t.Fatalf("a call nobody signed ran: %x", b)
		}
		if got := st.Account(op.Call.Signer).Nonce; got != nonce+1 {
			t.Fatalf("nonce %d after the call, was %d", got, nonce)
		}
		if res.Hash != op.Hash() {
			t.Fatal("the result names another operation")
		}
	})
}
