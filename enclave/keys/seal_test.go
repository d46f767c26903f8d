package keys

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

var (
	sealKey  = sha256.Sum256([]byte("sealing key"))
	otherKey = sha256.Sum256([]byte("another sealing key"))
)

func TestSealRoundTrip(t *testing.T) {
	for _, msg := range [][]byte{nil, {}, []byte("keys"), bytes.Repeat([]byte{7}, 10000)} {
		sealed := Seal(sealKey, msg, []byte("aad"))
		if len(sealed) != len(msg)+Overhead {
			t.Fatalf("sealed %d bytes into %d, want overhead %d", len(msg), len(sealed), Overhead)
		}
		got, err := Unseal(sealKey, sealed, []byte("aad"))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, msg) {
			t.Fatalf("unsealed %q, want %q", got, msg)
		}
	}
}

func TestSealUsesAFreshNonceEachTime(t *testing.T) {
	a := Seal(sealKey, []byte("same"), nil)
	b := Seal(sealKey, []byte("same"), nil)
	if bytes.Equal(a[:NonceSize], b[:NonceSize]) || bytes.Equal(a, b) {
		t.Fatal("two seals of the same plaintext share a nonce")
	}
}

func TestUnsealFailures(t *testing.T) {
	sealed := Seal(sealKey, []byte("signing seed"), []byte("aad"))
	flip := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 1
		return c
	}
	for name, tc := range map[string]struct {
		key    [32]byte
		sealed []byte
		aad    string
	}{
		"another key":     {otherKey, sealed, "aad"},
		"another aad":     {sealKey, sealed, "other"},
		"no aad":          {sealKey, sealed, ""},
		"tampered nonce":  {sealKey, flip(0), "aad"},
		"tampered body":   {sealKey, flip(NonceSize), "aad"},
		"tampered tag":    {sealKey, flip(len(sealed) - 1), "aad"},
		"truncated":       {sealKey, sealed[:len(sealed)-1], "aad"},
		"shorter than IV": {sealKey, sealed[:5], "aad"},
		"empty":           {sealKey, nil, "aad"},
	} {
		t.Run(name, func(t *testing.T) {
			pt, err := Unseal(tc.key, tc.sealed, []byte(tc.aad))
			if !errors.Is(err, ErrUnseal) || pt != nil {
				t.Fatalf("(%q, %v), want ErrUnseal", pt, err)
			}
		})
	}
}

func TestStateCipherRoundTripAndFreshNonces(t *testing.T) {
	c := NewStateCipher(sealKey)
	a := c.Encrypt([]byte("balances"), []byte("shard/block 7"))
	b := c.Encrypt([]byte("balances"), []byte("shard/block 7"))
	if bytes.Equal(a, b) {
		t.Fatal("two state encryptions of the same plaintext are equal")
	}
	for _, ct := range [][]byte{a, b} {
		pt, err := c.Decrypt(ct, []byte("shard/block 7"))
		if err != nil || string(pt) != "balances" {
			t.Fatalf("decrypt: %q, %v", pt, err)
		}
	}
}

func TestStateCipherRejectsBadCiphertexts(t *testing.T) {
	c := NewStateCipher(sealKey)
	ct := c.Encrypt([]byte("balances"), []byte("aad"))
	tampered := bytes.Clone(ct)
	tampered[NonceSize+1] ^= 1
	for name, tc := range map[string]struct {
		c   *StateCipher
		ct  []byte
		aad string
	}{
		"another state key": {NewStateCipher(otherKey), ct, "aad"},
		"another aad":       {c, ct, "other"},
		"tampered":          {c, tampered, "aad"},
		"truncated":         {c, ct[:len(ct)-1], "aad"},
		"too short":         {c, ct[:Overhead-1], "aad"},
		"empty":             {c, nil, "aad"},
	} {
		t.Run(name, func(t *testing.T) {
			if pt, err := tc.c.Decrypt(tc.ct, []byte(tc.aad)); !errors.Is(err, ErrStateDecrypt) || pt != nil {
				t.Fatalf("(%q, %v), want ErrStateDecrypt", pt, err)
			}
		})
	}
}
