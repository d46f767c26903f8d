package account

import (
	"errors"
	"strings"
	"testing"
)

// Public keys that Substrate's subkey prints for ed25519 dev accounts
// (`subkey inspect --scheme ed25519 //Alice`).
var substrateEd25519 = map[string]string{
	"//Alice": "0x88dc3417d5058ec4b4503e0c12ea1a0a89be200fe98922423d4334014fa6b0ee",
	"//Bob":   "0xd17c2d7823ebf260fd138f2d7e27d114c0145d968b5ff5006125f2414fadae69",
}

func TestDevPairMatchesSubstrate(t *testing.T) {
	for uri, want := range substrateEd25519 {
		p, err := DevPair(uri)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.ID().Hex(); got != want {
			t.Errorf("%s: public key %s, want %s", uri, got, want)
		}
	}
}

func TestSS58RoundTrip(t *testing.T) {
	p, _ := DevPair("//Alice")
	addr := p.ID().String()
	if addr != "5FA9nQDVg267DEd8m1ZypXLBnvN7SFxYwV7ndqSYGiN9TTpu" {
		t.Errorf("//Alice ss58 = %s", addr)
	}
	id, prefix, err := DecodeSS58(addr)
	if err != nil || id != p.ID() || prefix != DefaultSS58Prefix {
		t.Fatalf("decode: %v %v %d", err, id, prefix)
	}
	for _, pfx := range []uint16{0, 2, 13, 63, 64, 255, 16383} {
		got, gp, err := DecodeSS58(EncodeSS58(p.ID(), pfx))
		if err != nil || got != p.ID() || gp != pfx {
			t.Errorf("prefix %d: %v %d", pfx, err, gp)
		}
	}
}

func TestParseIDRejectsGarbage(t *testing.T) {
	alice, _ := DevPair("//Alice")
	addr := alice.ID().String()
	bad := []string{
		"", "0x", "0x1234", "0xzz", "not-an-address",
		addr[:len(addr)-1] + "v", // checksum broken
		addr[:10],
	}
	for _, s := range bad {
		if _, err := ParseID(s); !errors.Is(err, ErrBadAccount) {
			t.Errorf("ParseID(%q) = %v, want ErrBadAccount", s, err)
		}
	}
	if _, err := ParseID(alice.ID().Hex()); err != nil {
		t.Errorf("hex: %v", err)
	}
}

func TestPairFromURIRefusesSoftJunction(t *testing.T) {
	if _, err := PairFromURI(DevPhrase + "/soft"); err == nil || !strings.Contains(err.Error(), "hard") {
		t.Errorf("soft junction: %v", err)
	}
}

func TestKeystore(t *testing.T) {
	ks := NewKeystore(t.TempDir() + "/ks")
	if ids, err := ks.List(); err != nil || len(ids) != 0 {
		t.Fatalf("empty keystore: %v %v", ids, err)
	}
	p, err := ks.Generate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := ResolvePair(p.ID().String(), ks)
	if err != nil || got.ID() != p.ID() {
		t.Fatalf("resolve: %v", err)
	}
	ids, _ := ks.List()
	if len(ids) != 1 || ids[0] != p.ID() {
		t.Fatalf("list: %v", ids)
	}
	bob, _ := DevPair("//Bob")
	if _, err := ResolvePair(bob.ID().String(), ks); !errors.Is(err, ErrNoKey) {
		t.Fatalf("foreign account: %v", err)
	}
}
