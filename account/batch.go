package account

import (
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519/extra/cache"
)

// zip215 are the verification rules of VerifyZIP215 and BatchVerifier:
// ZIP-215, the rules CometBFT's ed25519 uses, under which a batch and its
// signatures one by one always agree (crypto/ed25519's rules are
// cofactorless and cannot be batched).
var zip215 = &voi.Options{Verify: voi.VerifyOptionsZIP_215}

// VerifyZIP215 reports whether sig is id's signature over msg under the
// ZIP-215 rules. Every signature crypto/ed25519 accepts passes; it also
// accepts the few non-canonical encodings ZIP-215 allows. Trusted
// operations are checked with it, alone or in a BatchVerifier.
func VerifyZIP215(id ID, msg, sig []byte) bool {
	return len(sig) == voi.SignatureSize && voi.VerifyWithOptions(voi.PublicKey(id[:]), msg, sig, zip215)
}

// KeyCache keeps the decompressed form of recently seen public keys (an
// LRU of a fixed size), so that a signer's next signature skips the
// decompression: about a quarter of a verification. Safe for concurrent
// use; CometBFT keeps one the same way.
type KeyCache struct{ v *cache.Verifier }

// NewKeyCache returns a cache of up to n keys (about 200 bytes each).
func NewKeyCache(n int) *KeyCache {
	return &KeyCache{v: cache.NewVerifier(cache.NewLRUCache(n))}
}

// Verify is VerifyZIP215 through the cache.
func (c *KeyCache) Verify(id ID, msg, sig []byte) bool {
	return len(sig) == voi.SignatureSize && c.v.VerifyWithOptions(voi.PublicKey(id[:]), msg, sig, zip215)
}

// BatchVerifier checks many signatures at once, under the rules of
// VerifyZIP215: about twice as fast per signature as one by one when they
// are valid (github.com/oasisprotocol/curve25519-voi, which CometBFT uses).
// It is not safe for concurrent use.
type BatchVerifier struct {
	bv    *voi.BatchVerifier
	cache *KeyCache
	n     int
}

// NewBatchVerifier returns an empty batch with room for n signatures. keys,
// if not nil, supplies and keeps the signers' decompressed keys.
func NewBatchVerifier(n int, keys *KeyCache) *BatchVerifier {
	return &BatchVerifier{bv: voi.NewBatchVerifierWithCapacity(n), cache: keys}
}

// Add adds id's signature sig over msg to the batch. A malformed signature
// (wrong length, non-canonical scalar) is an entry that fails.
func (b *BatchVerifier) Add(id ID, msg, sig []byte) {
	if b.cache != nil {
		b.cache.v.AddWithOptions(b.bv, voi.PublicKey(id[:]), msg, sig, zip215)
	} else {
		b.bv.AddWithOptions(voi.PublicKey(id[:]), msg, sig, zip215)
	}
	b.n++
}

// Len returns the number of signatures added.
func (b *BatchVerifier) Len() int { return b.n }

// Verify checks every signature added and reports each one's validity, in
// the order added. One bad signature makes the batch fall back to checking
// each on its own.
func (b *BatchVerifier) Verify() []bool {
	if b.n == 0 {
		return nil
	}
	_, valid := b.bv.Verify(nil)
	return valid
}
