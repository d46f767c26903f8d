package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io/fs"
)

// NonceSize is the length of the random nonce that Seal and
// StateCipher.Encrypt put in front of each ciphertext.
const NonceSize = 12

// Overhead is how much longer than its plaintext a sealed blob or a state
// ciphertext is: the nonce and the GCM tag.
const Overhead = NonceSize + 16

// ErrUnseal is returned when sealed data does not open: it was sealed with
// another key (another enclave build, another host), under another aad, or
// it was corrupted.
var ErrUnseal = errors.New("keys: cannot unseal: sealed by another enclave or host, or corrupted")

// newAEAD returns AES-256-GCM that draws a fresh random 12-byte nonce on
// every Seal and puts it in front of the ciphertext.
func newAEAD(key [32]byte) cipher.AEAD {
	block, err := aes.NewCipher(key[:])
	if err != nil {
		panic(err) // unreachable: the key is 32 bytes
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		panic(err) // unreachable: standard nonce and tag sizes
	}
	return aead
}

// Seal encrypts plaintext under a sealing key with AES-256-GCM and a fresh
// random 12-byte nonce, authenticating aad too. The result is nonce ||
// ciphertext || tag. Random nonces are safe for up to 2^32 seals under one
// key.
func Seal(key [32]byte, plaintext, aad []byte) []byte {
	return newAEAD(key).Seal(nil, nil, plaintext, aad)
}

// Unseal reverses Seal. Any failure is ErrUnseal.
func Unseal(key [32]byte, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte overhead", ErrUnseal, len(sealed), Overhead)
	}
	pt, err := newAEAD(key).Open(nil, nil, sealed, aad)
	if err != nil {
		return nil, ErrUnseal
	}
	return pt, nil
}

// SealedStore keeps the enclave's sealed blobs at rest. The host provides
// it: it only ever sees ciphertext.
type SealedStore interface {
	// ReadSealed returns the blob stored under name. If there is none, the
	// error wraps os.ErrNotExist.
	ReadSealed(name string) ([]byte, error)
	// WriteSealed stores data under name, replacing any earlier blob
	// atomically: a reader sees the old blob or the new one, never a mix.
	WriteSealed(name string, data []byte) error
}

// isNotExist reports whether err says a blob is absent.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
