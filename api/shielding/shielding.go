// Package shielding is the public half of a shard's shielding encryption:
// clients encrypt trusted operations and shielding beneficiaries to the
// shard's shielding public key (author_getShieldingKey) with Encrypt; only
// the shard's enclaves hold the private key (enclave/keys) and decrypt.
package shielding

import (
	"crypto/hpke"
	"errors"
	"fmt"
)

// Info is the HPKE info string of shielding encryption: it binds
// every ciphertext to this use.
const Info = "integritee shielding v1"

// PublicKeySize is the length of a serialized shielding public key
// (ML-KEM-768 encapsulation key and X25519 public key).
const PublicKeySize = 1216

// Overhead is how much longer than its plaintext a shielding
// ciphertext is: the 1120-byte encapsulated key and the 16-byte AEAD tag.
const Overhead = 1120 + 16

// Errors of shielding encryption.
var (
	// ErrBadKey is returned by Encrypt for bytes that are not a shielding
	// public key.
	ErrBadKey = errors.New("keys: not a shielding public key")
	// ErrBadCiphertext is what the enclave returns for a ciphertext that
	// does not decrypt: tampered, truncated, or encrypted to another key.
	ErrBadCiphertext = errors.New("keys: shielding ciphertext does not decrypt")
)

// The shielding ciphersuite: HPKE (RFC 9180) with the hybrid post-quantum
// KEM ML-KEM-768+X25519 (X-Wing), HKDF-SHA256 and AES-256-GCM.
// KEM, KDF and AEAD return the suite's parts.
func KEM() hpke.KEM   { return hpke.MLKEM768X25519() }
func KDF() hpke.KDF   { return hpke.HKDFSHA256() }
func AEAD() hpke.AEAD { return hpke.AES256GCM() }

// Encrypt encrypts plaintext to a shielding public key (a client gets it
// with author_getShieldingKey). Each call encapsulates a fresh key, so two
// encryptions of the same plaintext differ.
func Encrypt(pub []byte, plaintext []byte) ([]byte, error) {
	pk, err := KEM().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %d bytes: %v", ErrBadKey, len(pub), err)
	}
	ct, err := hpke.Seal(pk, KDF(), AEAD(), []byte(Info), plaintext)
	if err != nil {
		return nil, fmt.Errorf("keys: shielding encrypt: %w", err)
	}
	return ct, nil
}
