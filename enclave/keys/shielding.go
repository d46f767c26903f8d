package keys

import (
	"crypto/hpke"
	"errors"
	"fmt"
)

// ShieldingInfo is the HPKE info string of shielding encryption: it binds
// every ciphertext to this use.
const ShieldingInfo = "integritee shielding v1"

// ShieldingPublicKeySize is the length of a serialized shielding public key
// (ML-KEM-768 encapsulation key and X25519 public key).
const ShieldingPublicKeySize = 1216

// ShieldingOverhead is how much longer than its plaintext a shielding
// ciphertext is: the 1120-byte encapsulated key and the 16-byte AEAD tag.
const ShieldingOverhead = 1120 + 16

// Errors of shielding encryption.
var (
	// ErrBadShieldingKey is returned by ShieldingEncrypt for bytes that are
	// not a shielding public key.
	ErrBadShieldingKey = errors.New("keys: not a shielding public key")
	// ErrBadCiphertext is returned by ShieldingDecrypt for a ciphertext that
	// does not decrypt: tampered, truncated, or encrypted to another key.
	ErrBadCiphertext = errors.New("keys: shielding ciphertext does not decrypt")
)

// The shielding ciphersuite: HPKE (RFC 9180) with the hybrid post-quantum
// KEM ML-KEM-768+X25519 (X-Wing), HKDF-SHA256 and AES-256-GCM.
func shieldingKEM() hpke.KEM   { return hpke.MLKEM768X25519() }
func shieldingKDF() hpke.KDF   { return hpke.HKDFSHA256() }
func shieldingAEAD() hpke.AEAD { return hpke.AES256GCM() }

// ShieldingEncrypt encrypts plaintext to a shielding public key, as returned
// by Keys.ShieldingPublicKey (a client gets it with author_getShieldingKey).
// It is client-side code: the CLI calls it. Each call encapsulates a fresh
// key, so two encryptions of the same plaintext differ.
func ShieldingEncrypt(pub []byte, plaintext []byte) ([]byte, error) {
	pk, err := shieldingKEM().NewPublicKey(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %d bytes: %v", ErrBadShieldingKey, len(pub), err)
	}
	ct, err := hpke.Seal(pk, shieldingKDF(), shieldingAEAD(), []byte(ShieldingInfo), plaintext)
	if err != nil {
		return nil, fmt.Errorf("keys: shielding encrypt: %w", err)
	}
	return ct, nil
}

// ShieldingDecrypt decrypts a ciphertext made by ShieldingEncrypt with the
// enclave's shielding key. Any failure is ErrBadCiphertext.
func (k *Keys) ShieldingDecrypt(ct []byte) ([]byte, error) {
	k.mu.RLock()
	priv := k.shielding
	k.mu.RUnlock()
	if len(ct) < ShieldingOverhead {
		return nil, fmt.Errorf("%w: %d bytes, shorter than the %d-byte overhead", ErrBadCiphertext, len(ct), ShieldingOverhead)
	}
	pt, err := hpke.Open(priv, shieldingKDF(), shieldingAEAD(), []byte(ShieldingInfo), ct)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCiphertext, err)
	}
	return pt, nil
}
