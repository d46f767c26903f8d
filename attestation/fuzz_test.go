package attestation

import (
	"crypto/sha256"
	"errors"
	"testing"
)

// FuzzParseMrEnclave: a measurement argument (CLI --mrenclave, RPC
// answers) either fails with ErrBadMrEnclave or names a measurement whose
// base58 and hex forms both parse back to it.
func FuzzParseMrEnclave(f *testing.F) {
	m := MrEnclave(sha256.Sum256([]byte("enclave")))
	for _, s := range []string{m.String(), m.Hex(), " " + m.String() + "\n", "0X" + m.Hex()[2:], MrEnclave{}.String(), "0x", "0OIl"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := ParseMrEnclave(s)
		if err != nil {
			if !errors.Is(err, ErrBadMrEnclave) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		for _, form := range []string{got.String(), got.Hex()} {
			if back, err := ParseMrEnclave(form); err != nil || back != got {
				t.Fatalf("%q parses to %s, whose form %q parses to %s, %v", s, got.Hex(), form, back.Hex(), err)
			}
		}
		var viaText MrEnclave
		if err := viaText.UnmarshalText([]byte(s)); err != nil || viaText != got {
			t.Fatalf("UnmarshalText disagrees with ParseMrEnclave: %v", err)
		}
	})
}
