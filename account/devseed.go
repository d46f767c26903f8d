package account

import (
	"crypto/pbkdf2"
	"crypto/sha512"
	"fmt"
	"strings"

	"github.com/tyler-smith/go-bip39"
	"golang.org/x/crypto/blake2b"
)

// DevPhrase is Substrate's well-known development mnemonic. Keys derived from
// it are public knowledge and must never hold real value.
const DevPhrase = "bottom drive obey lake curtain smoke basket hold race lonely fit walk"

// DevNames are the development accounts every dev chain knows.
var DevNames = []string{"Alice", "Bob", "Charlie", "Dave", "Eve", "Ferdie"}

// IsDevSeed reports whether s has the form of a dev seed URI such as //Alice.
func IsDevSeed(s string) bool { return strings.HasPrefix(s, "//") && len(s) > 2 }

// DevPair derives the ed25519 key for a secret URI of the form
// "//Name[//Junction...]" from the development phrase, exactly as Substrate's
// sp-core derives ed25519 keys: the mini-secret of substrate-bip39 (PBKDF2 over
// the mnemonic's entropy) followed by one hard derivation per junction.
func DevPair(uri string) (*Pair, error) {
	return PairFromURI(DevPhrase + uri)
}

// PairFromURI derives an ed25519 pair from "<mnemonic>//hard//junctions".
// Soft junctions (/x) and passwords (///pw) are not supported by ed25519 and
// are refused.
func PairFromURI(uri string) (*Pair, error) {
	phrase, path, _ := strings.Cut(uri, "//")
	if strings.Contains(phrase, "/") {
		return nil, fmt.Errorf("account: %q: ed25519 supports only hard derivation (//)", uri)
	}
	entropy, err := bip39.EntropyFromMnemonic(strings.TrimSpace(phrase))
	if err != nil {
		return nil, fmt.Errorf("account: bad mnemonic: %w", err)
	}
	salt := "mnemonic" // substrate-bip39: "mnemonic" + password; no password here
	key, err := pbkdf2.Key(sha512.New, string(entropy), []byte(salt), 2048, 64)
	if err != nil {
		return nil, fmt.Errorf("account: pbkdf2: %w", err)
	}
	seed := key[:32]
	if strings.Contains(uri, "//") {
		for _, j := range strings.Split(path, "//") {
			if j == "" || strings.Contains(j, "/") {
				return nil, fmt.Errorf("account: %q: bad junction %q", uri, j)
			}
			seed = hardDerive(seed, junctionChainCode(j))
		}
	}
	return PairFromSeed(seed)
}

// junctionChainCode computes the 32-byte chain code of a text junction: the
// SCALE encoding of the string, zero-padded, or its BLAKE2b-256 if longer.
func junctionChainCode(j string) [32]byte {
	enc := append(scaleCompact(uint64(len(j))), j...)
	var cc [32]byte
	if len(enc) > 32 {
		cc = blake2b.Sum256(enc)
	} else {
		copy(cc[:], enc)
	}
	return cc
}

// hardDerive is sp-core's ed25519 hard derivation:
// blake2_256(SCALE(("Ed25519HDKD", seed, chain_code))).
func hardDerive(seed []byte, cc [32]byte) []byte {
	const tag = "Ed25519HDKD"
	msg := append(scaleCompact(uint64(len(tag))), tag...)
	msg = append(msg, seed...)
	msg = append(msg, cc[:]...)
	out := blake2b.Sum256(msg)
	return out[:]
}

// scaleCompact encodes n in SCALE's compact form (only the sizes a junction
// or tag can need: below 2^30).
func scaleCompact(n uint64) []byte {
	switch {
	case n < 1<<6:
		return []byte{byte(n << 2)}
	case n < 1<<14:
		v := uint16(n<<2) | 1
		return []byte{byte(v), byte(v >> 8)}
	default:
		v := uint32(n<<2) | 2
		return []byte{byte(v), byte(v >> 8), byte(v >> 16), byte(v >> 24)}
	}
}
