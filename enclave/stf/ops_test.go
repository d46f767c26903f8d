package stf

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/types"
)

func sampleOps(t *testing.T) []*Operation {
	alice, bob := dev(t, "Alice"), dev(t, "Bob")
	a, b := alice.ID(), bob.ID()
	calls := []Call{
		transferCall(a, b, teer(1)),
		{Unshield: &Unshield{From: a, To: b, Amount: teer(2), Shard: testShard}},
		{SetBalance: &SetBalance{Who: b, Free: types.MaxBalance}},
	}
	getters := []Getter{{FreeBalance: &a}, {Nonce: &a}, {TotalIssuance: &TotalIssuanceQuery{}}}
	var ops []*Operation
	for i, c := range calls {
		ops = append(ops, &Operation{Call: SignCall(alice, c, uint64(i)<<40, testMr, testShard)})
	}
	for _, g := range getters {
		ops = append(ops, &Operation{Getter: SignGetter(alice, g, testShard)})
	}
	return ops
}

func TestOperationRoundTrip(t *testing.T) {
	seen := map[[32]byte]bool{}
	for _, op := range sampleOps(t) {
		raw, err := op.Encode()
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeOperation(raw)
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		again, _ := got.Encode()
		if !bytes.Equal(raw, again) {
			t.Error("re-encoding differs")
		}
		h := op.Hash()
		if h != sha256.Sum256(raw) || got.Hash() != h {
			t.Error("hash is not SHA-256 of the encoding")
		}
		if op.Call != nil && op.Call.Hash() != h {
			t.Error("SignedCall.Hash differs from Operation.Hash")
		}
		if seen[h] {
			t.Error("two operations share a hash")
		}
		seen[h] = true
		if got.Call != nil {
			if err := got.Call.Verify(testMr, testShard); err != nil {
				t.Errorf("decoded call does not verify: %v", err)
			}
		} else if err := got.Getter.Verify(testShard); err != nil {
			t.Errorf("decoded getter does not verify: %v", err)
		}
	}
}

func TestCallNames(t *testing.T) {
	names := map[string]bool{}
	for _, op := range sampleOps(t)[:3] {
		names[op.Call.Call.Name()] = true
	}
	for _, n := range []string{"transfer", "unshield_funds", "set_balance"} {
		if !names[n] {
			t.Errorf("no call named %q", n)
		}
	}
	if (&Call{}).Name() != "" {
		t.Error("empty call has a name")
	}
}

// TestSigningBytesLayout checks the signed payloads against the layout the
// brief fixes, built independently as integer-keyed CBOR maps.
func TestSigningBytesLayout(t *testing.T) {
	alice := dev(t, "Alice")
	a := alice.ID()
	call := transferCall(a, a, teer(3))
	want := append([]byte("integritee-trusted-call:v1:"), canonical.MustMarshal(map[int]any{
		1: map[int]any{1: map[int]any{1: a, 2: a, 3: teer(3)}},
		2: uint64(7), 3: testMr, 4: testShard,
	})...)
	if got := CallSigningBytes(call, 7, testMr, testShard); !bytes.Equal(got, want) {
		t.Errorf("call signing bytes:\n got %x\nwant %x", got, want)
	}
	g := Getter{Nonce: &a}
	want = append([]byte("integritee-trusted-getter:v1:"), canonical.MustMarshal(map[int]any{
		1: map[int]any{2: a}, 2: testShard,
	})...)
	if got := GetterSigningBytes(g, testShard); !bytes.Equal(got, want) {
		t.Errorf("getter signing bytes:\n got %x\nwant %x", got, want)
	}
	sc := SignCall(alice, call, 7, testMr, testShard)
	if !account.Verify(a, CallSigningBytes(call, 7, testMr, testShard), sc.Signature) {
		t.Error("SignCall's signature does not verify over CallSigningBytes")
	}
}

func mustEncode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := canonical.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeOperationErrors(t *testing.T) {
	ops := sampleOps(t)
	good, _ := ops[0].Encode()
	sc := ops[0].Call
	sig := sc.Signature
	rawCall := func(c map[int]any, sig []byte) []byte {
		return mustEncode(t, map[int]any{1: map[int]any{1: c, 2: sc.Signer, 3: sc.Nonce, 4: sig}})
	}
	transfer := map[int]any{1: map[int]any{1: sc.Signer, 2: sc.Signer, 3: teer(1)}}
	if !bytes.Equal(rawCall(transfer, sig)[:4], good[:4]) {
		t.Fatal("hand-built encoding does not match the layout")
	}
	cases := []struct {
		name string
		raw  []byte
		want error
	}{
		{"empty", nil, ErrMalformed},
		{"garbage", []byte{0xff, 0x00}, ErrMalformed},
		{"trailing bytes", append(append([]byte{}, good...), 0), ErrMalformed},
		{"too large", make([]byte, MaxOperationBytes+1), ErrTooLarge},
		{"indefinite length", append([]byte{0xbf}, append(append([]byte{}, good[1:]...), 0xff)...), ErrMalformed},
		{"unknown field", mustEncode(t, map[int]any{3: 1}), ErrMalformed},
		{"unknown call field", rawCall(map[int]any{4: 1}, sig), ErrMalformed},
		{"no variant", mustEncode(t, map[int]any{}), ErrInvalidVariant},
		{"explicit null variant", mustEncode(t, map[int]any{1: nil}), ErrMalformed},
		{"two variants", mustEncode(t, map[int]any{1: ops[0].Call, 2: ops[3].Getter}), ErrInvalidVariant},
		{"call without variant", rawCall(map[int]any{}, sig), ErrInvalidVariant},
		{"call with two variants", rawCall(map[int]any{1: transfer[1], 3: map[int]any{1: sc.Signer, 2: teer(1)}}, sig), ErrInvalidVariant},
		{"getter without variant", mustEncode(t, map[int]any{2: map[int]any{1: map[int]any{}, 2: sc.Signer, 3: sig}}), ErrInvalidVariant},
		{"short signature", rawCall(transfer, sig[:63]), ErrMalformed},
		{"no signature", rawCall(transfer, nil), ErrMalformed},
		{"short account id", rawCall(map[int]any{1: map[int]any{1: sc.Signer[:31], 2: sc.Signer, 3: teer(1)}}, sig), ErrMalformed},
		{"balance of 15 bytes", rawCall(map[int]any{1: map[int]any{1: sc.Signer, 2: sc.Signer, 3: make([]byte, 15)}}, sig), ErrMalformed},
		{"string key", mustEncode(t, map[string]any{"1": ops[0].Call}), ErrMalformed},
		{"tagged", append([]byte{0xc0}, good...), ErrMalformed},
	}
	for _, c := range cases {
		_, err := DecodeOperation(c.raw)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, err, c.want)
		}
		if types.AsError(err) == nil {
			t.Errorf("%s: %v is not a named error", c.name, err)
		}
	}
	// Non-canonical integer width: nonce 0 written as a 2-byte uint.
	nc := bytes.Replace(rawCall(transfer, sig), []byte{0x03, 0x00, 0x04}, []byte{0x03, 0x19, 0x00, 0x00, 0x04}, 1)
	if bytes.Equal(nc, rawCall(transfer, sig)) {
		t.Fatal("did not build the non-canonical form")
	}
	if _, err := DecodeOperation(nc); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "canonical") {
		t.Errorf("non-canonical: %v", err)
	}
}

func TestEncodeRefusesInvalid(t *testing.T) {
	ops := sampleOps(t)
	bad := []*Operation{
		{},
		{Call: ops[0].Call, Getter: ops[3].Getter},
		{Call: &SignedCall{Signature: make([]byte, 64)}},
		{Getter: &SignedGetter{Signature: make([]byte, 64)}},
	}
	for i, op := range bad {
		if _, err := op.Encode(); !errors.Is(err, ErrInvalidVariant) {
			t.Errorf("%d: %v", i, err)
		}
	}
	short := *ops[0].Call
	short.Signature = nil
	if _, err := (&Operation{Call: &short}).Encode(); !errors.Is(err, ErrMalformed) {
		t.Errorf("unsigned: %v", err)
	}
}

func FuzzDecodeOperation(f *testing.F) {
	alice, _ := account.DevPair("//Alice")
	a := alice.ID()
	for _, op := range []*Operation{
		{Call: SignCall(alice, transferCall(a, a, teer(1)), 1, testMr, testShard)},
		{Getter: SignGetter(alice, Getter{Nonce: &a}, testShard)},
	} {
		b, _ := op.Encode()
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		op, err := DecodeOperation(b)
		if err != nil {
			if types.AsError(err) == nil {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		again, err := op.Encode()
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted input does not re-encode to itself: %v", err)
		}
	})
}
