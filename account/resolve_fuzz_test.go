package account

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzResolveID: a CLI account argument (ACCT, FROM, TO, --root, -a) is a
// dev seed, an SS58 address or a 0x-hex key. Whatever the string, ResolveID
// never panics; a refused non-seed argument is ErrBadAccount; a dev seed
// names DevPair's account; and any account it names prints (SS58 and hex)
// to strings that name it again.
func FuzzResolveID(f *testing.F) {
	alice, _ := DevPair("//Alice")
	for _, s := range []string{"//Alice", "//Alice//stash", "//", "///pw", "//a/b", "//Bob//", alice.ID().String(), alice.ID().Hex(),
		EncodeSS58(alice.ID(), 2), EncodeSS58(alice.ID(), 16383), " " + alice.ID().Hex() + " ", "0x", "Alice"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		id, err := ResolveID(s)
		if IsDevSeed(s) {
			p, perr := DevPair(s)
			if (err == nil) != (perr == nil) || perr == nil && p.ID() != id {
				t.Fatalf("%q resolves to %s, %v; DevPair gives %v", s, id, err, perr)
			}
		} else if err != nil && !errors.Is(err, ErrBadAccount) {
			t.Fatalf("unnamed error %v", err)
		}
		if err != nil {
			return
		}
		for _, form := range []string{id.String(), id.Hex()} {
			if back, err := ResolveID(form); err != nil || back != id {
				t.Fatalf("%q names %s, whose form %q resolves to %s, %v", s, id.Hex(), form, back.Hex(), err)
			}
		}
	})
}

// FuzzResolvePair: an account argument that must be a key we hold (FROM,
// --xt-signer) resolves to a pair for the very account ResolveID names:
// a dev seed's, or one the keystore holds; an account not in the keystore
// is ErrNoKey.
func FuzzResolvePair(f *testing.F) {
	ks := NewKeystore(f.TempDir())
	seed := sha256.Sum256([]byte("a keystore account"))
	held, err := PairFromSeed(seed[:])
	if err != nil {
		f.Fatal(err)
	}
	if err := ks.Store(held); err != nil {
		f.Fatal(err)
	}
	bob, _ := DevPair("//Bob")
	for _, s := range []string{held.ID().String(), held.ID().Hex(), bob.ID().String(), "//Bob", "//Bob//1", "nobody"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ResolvePair(s, ks)
		id, iderr := ResolveID(s)
		if err != nil {
			switch {
			case iderr != nil || IsDevSeed(s):
			case id == held.ID():
				t.Fatalf("%q names the keystore's account, yet: %v", s, err)
			case !errors.Is(err, ErrNoKey):
				t.Fatalf("%q names %s, not in the keystore: error %v, want ErrNoKey", s, id, err)
			}
			return
		}
		if iderr != nil || p.ID() != id {
			t.Fatalf("%q resolves to the pair of %s, ResolveID says %s, %v", s, p.ID(), id, iderr)
		}
		if !IsDevSeed(s) && id != held.ID() {
			t.Fatalf("%q gave a pair the keystore does not hold", s)
		}
	})
}

// FuzzKeystoreFile: a keystore file holds anything (it is a file on
// disk). Get never panics and returns a pair only for a seed that really
// is the named account's.
func FuzzKeystoreFile(f *testing.F) {
	dir := f.TempDir()
	ks := NewKeystore(dir)
	alice, _ := DevPair("//Alice")
	bob, _ := DevPair("//Bob")
	good := []byte(`{"address":"` + alice.ID().String() + `","seed":"0x` + hex.EncodeToString(alice.Seed()) + `"}`)
	f.Add(good)
	f.Add(bytes.Replace(good, []byte(hex.EncodeToString(alice.Seed())), []byte(hex.EncodeToString(bob.Seed())), 1))
	f.Add([]byte(`{"seed":"` + hex.EncodeToString(alice.Seed()) + `"}`))
	f.Add([]byte(`{"seed":"0x12"}`))
	f.Add([]byte(`[]`))
	path := filepath.Join(dir, alice.ID().String()+".json")
	f.Fuzz(func(t *testing.T, content []byte) {
		if err := os.WriteFile(path, content, 0o600); err != nil {
			t.Fatal(err)
		}
		p, err := ks.Get(alice.ID())
		if err == nil && (p.ID() != alice.ID() || !bytes.Equal(p.Seed(), alice.Seed())) {
			t.Fatalf("the keystore gave %s's pair as %s's", p.ID(), alice.ID())
		}
		if ids, err := ks.List(); err != nil || len(ids) != 1 || ids[0] != alice.ID() {
			t.Fatalf("List: %v, %v", ids, err)
		}
	})
}
