package account

import (
	"errors"
	"testing"
)

// FuzzParseID: any string either fails with ErrBadAccount or names an
// account whose SS58 form parses back to it.
func FuzzParseID(f *testing.F) {
	alice, _ := DevPair("//Alice")
	f.Add(alice.ID().String())
	f.Add(alice.ID().Hex())
	f.Add(EncodeSS58(alice.ID(), 255))
	f.Add("0x")
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ParseID(s)
		if err != nil {
			if !errors.Is(err, ErrBadAccount) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		back, err := ParseID(id.String())
		if err != nil || back != id {
			t.Fatalf("round trip: %v", err)
		}
	})
}
