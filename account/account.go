// Package account holds ed25519 accounts as both chains know them: the 32-byte
// public key that identifies an account, SS58 addresses, Substrate-compatible
// development seeds (//Alice) and the file keystore the CLI keeps.
package account

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// IDLen is the length of an account identifier: an ed25519 public key.
const IDLen = ed25519.PublicKeySize

// ID identifies an account: its ed25519 public key.
type ID [IDLen]byte

// ErrBadAccount is returned when a string names no account.
var ErrBadAccount = errors.New("account: not an account")

// Hex returns the 0x-prefixed hex form of the public key.
func (id ID) Hex() string { return "0x" + hex.EncodeToString(id[:]) }

// String returns the SS58 address with the default prefix.
func (id ID) String() string { return EncodeSS58(id, DefaultSS58Prefix) }

// PublicKey returns the account's ed25519 public key.
func (id ID) PublicKey() ed25519.PublicKey { return ed25519.PublicKey(id[:]) }

// IsZero reports whether id is all zeros.
func (id ID) IsZero() bool { return id == ID{} }

// MarshalText encodes the account as an SS58 address.
func (id ID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText accepts an SS58 address or a 0x-hex public key.
func (id *ID) UnmarshalText(b []byte) error {
	v, err := ParseID(string(b))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

var _ json.Marshaler = (*ID)(nil)

// MarshalJSON encodes the account as a JSON string holding its SS58 address.
func (id ID) MarshalJSON() ([]byte, error) { return json.Marshal(id.String()) }

// UnmarshalJSON decodes an SS58 or 0x-hex string.
func (id *ID) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %v", ErrBadAccount, err)
	}
	return id.UnmarshalText([]byte(s))
}

// ParseID parses an SS58 address or a 0x-prefixed hex public key. It does not
// accept dev seeds, which name a secret rather than an account; see Resolve.
func ParseID(s string) (ID, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		b, err := hex.DecodeString(s[2:])
		if err != nil {
			return ID{}, fmt.Errorf("%w: %q: bad hex: %v", ErrBadAccount, s, err)
		}
		if len(b) != IDLen {
			return ID{}, fmt.Errorf("%w: %q: public key is %d bytes, want %d", ErrBadAccount, s, len(b), IDLen)
		}
		var id ID
		copy(id[:], b)
		return id, nil
	}
	id, _, err := DecodeSS58(s)
	return id, err
}

// IDFromPublicKey converts an ed25519 public key to an ID.
func IDFromPublicKey(pk ed25519.PublicKey) ID {
	var id ID
	copy(id[:], pk)
	return id
}

// Pair is an account with its private key.
type Pair struct {
	seed [ed25519.SeedSize]byte
	priv ed25519.PrivateKey
	id   ID
}

// PairFromSeed builds a key pair from a 32-byte ed25519 seed.
func PairFromSeed(seed []byte) (*Pair, error) {
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("account: seed is %d bytes, want %d", len(seed), ed25519.SeedSize)
	}
	p := &Pair{priv: ed25519.NewKeyFromSeed(seed)}
	copy(p.seed[:], seed)
	copy(p.id[:], p.priv.Public().(ed25519.PublicKey))
	return p, nil
}

// ID returns the pair's account.
func (p *Pair) ID() ID { return p.id }

// Seed returns the 32-byte secret seed.
func (p *Pair) Seed() []byte { return append([]byte(nil), p.seed[:]...) }

// Sign signs msg with the pair's private key.
func (p *Pair) Sign(msg []byte) []byte { return ed25519.Sign(p.priv, msg) }

// PrivateKey returns the ed25519 private key.
func (p *Pair) PrivateKey() ed25519.PrivateKey { return p.priv }

// Verify reports whether sig is id's signature over msg.
func Verify(id ID, msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(id[:], msg, sig)
}
