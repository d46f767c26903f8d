package types

import (
	"bytes"
	"testing"

	"github.com/integritee-go/integritee/account"
)

// FuzzDecodeTx: any input either fails with a named tx error or decodes to
// a transaction that re-encodes to the very same bytes.
func FuzzDecodeTx(f *testing.F) {
	c := NewCodec()
	alice, _ := account.DevPair("//Alice")
	call, _ := NewCall(c, "balances", "transfer", map[int]any{1: alice.ID(), 2: NewBalance(5)})
	f.Add(c.Sign(alice, Chain{ID: "integritee-dev"}, 3, call))
	f.Add([]byte{0xa0})
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, b []byte) {
		tx, err := c.DecodeTx(b)
		if err != nil {
			if AsError(err) == nil {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		again := c.MustMarshal(tx)
		if !bytes.Equal(again, b) {
			t.Fatalf("accepted a non-canonical encoding")
		}
		_ = c.VerifySignature(tx, [32]byte{})
	})
}

// FuzzBalanceCBOR: decoding never panics and round-trips.
func FuzzBalanceCBOR(f *testing.F) {
	c := NewCodec()
	f.Add(c.MustMarshal(MaxBalance))
	f.Add(c.MustMarshal(NewBalance(0)))
	f.Fuzz(func(t *testing.T, b []byte) {
		var v Balance
		if err := c.Unmarshal(b, &v); err != nil {
			return
		}
		if !bytes.Equal(c.MustMarshal(v), b) {
			t.Fatal("round trip changed the encoding")
		}
	})
}
