package cli

import (
	"strings"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/types"
)

// FuzzParseAmount: an AMOUNT argument either is refused, with an error
// naming the argument, or is a balance whose decimal form parses back to
// it and which is the argument's own number.
func FuzzParseAmount(f *testing.F) {
	for _, s := range []string{"0", "1", " 42 ", types.MaxBalance.String(), "340282366920938463463374607431768211456", "-1", "+1", "1e3", "0x10", "1_000", "", "007"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseAmount(s)
		if err != nil {
			if !strings.Contains(err.Error(), "amount") {
				t.Fatalf("error %q does not name the argument", err)
			}
			return
		}
		back, err := parseAmount(b.String())
		if err != nil || back != b {
			t.Fatalf("%q parses to %s, which parses to %s, %v", s, b, back, err)
		}
		digits := strings.TrimLeft(strings.TrimSpace(s), "0")
		if digits == "" {
			digits = "0"
		}
		if digits != b.String() {
			t.Fatalf("%q parses to %s", s, b)
		}
	})
}

// FuzzParseAccountArg: an account argument is refused before anything
// dials, with an error naming the argument, or names the account that
// account.ResolveID names.
func FuzzParseAccountArg(f *testing.F) {
	alice, _ := account.DevPair("//Alice")
	for _, s := range []string{"//Alice", alice.ID().String(), alice.ID().Hex(), "//", "Alice", "0x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := parseAccountArg("ACCT", s)
		want, werr := account.ResolveID(s)
		if (err == nil) != (werr == nil) || err == nil && id != want {
			t.Fatalf("%q: %s, %v; ResolveID says %s, %v", s, id, err, want, werr)
		}
		if err != nil && !strings.HasPrefix(err.Error(), "ACCT: ") {
			t.Fatalf("error %q does not name the argument", err)
		}
	})
}
