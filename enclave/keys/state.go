package keys

import (
	"crypto/cipher"
	"errors"
	"fmt"
)

// ErrStateDecrypt is returned by StateCipher.Decrypt for a ciphertext that
// does not decrypt: another state key, another aad, or corrupted.
var ErrStateDecrypt = errors.New("keys: state ciphertext does not decrypt")

// StateCipher is authenticated encryption under a shard's state key
// (AES-256-GCM with a fresh random nonce per encryption): of the state at
// rest and of the state diffs in sidechain blocks. It is safe for
// concurrent use. Random nonces are safe for up to 2^32 encryptions under
// one key.
type StateCipher struct {
	aead cipher.AEAD
}

// NewStateCipher returns the cipher of a state key. The enclave gets its
// own from Keys.State; this constructor is for tests and tools.
func NewStateCipher(key [32]byte) *StateCipher { return &StateCipher{aead: newAEAD(key)} }

// Encrypt encrypts plaintext and authenticates aad (which the caller must
// present again to Decrypt, e.g. the shard and block it belongs to). The
// result is nonce || ciphertext || tag, Overhead bytes longer than
// plaintext; the nonce is fresh on every call.
func (c *StateCipher) Encrypt(plaintext, aad []byte) []byte {
	return c.aead.Seal(nil, nil, plaintext, aad)
}

// Decrypt reverses Encrypt. Any failure is ErrStateDecrypt.
func (c *StateCipher) Decrypt(ct, aad []byte) ([]byte, error) {
	if len(ct) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte overhead", ErrStateDecrypt, len(ct), Overhead)
	}
	pt, err := c.aead.Open(nil, nil, ct, aad)
	if err != nil {
		return nil, ErrStateDecrypt
	}
	return pt, nil
}
