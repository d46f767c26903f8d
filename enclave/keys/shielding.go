package keys

import (
	"crypto/hpke"
	"fmt"

	"github.com/integritee-go/integritee/api/shielding"
)

// The public half of shielding is the public API's (package api/shielding).
const (
	ShieldingInfo          = shielding.Info
	ShieldingPublicKeySize = shielding.PublicKeySize
	ShieldingOverhead      = shielding.Overhead
)

// Errors of shielding encryption (package api/shielding).
var (
	ErrBadShieldingKey = shielding.ErrBadKey
	ErrBadCiphertext   = shielding.ErrBadCiphertext
)

// ShieldingEncrypt encrypts to a shielding public key (shielding.Encrypt).
var ShieldingEncrypt = shielding.Encrypt

func shieldingKEM() hpke.KEM   { return shielding.KEM() }
func shieldingKDF() hpke.KDF   { return shielding.KDF() }
func shieldingAEAD() hpke.AEAD { return shielding.AEAD() }

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
