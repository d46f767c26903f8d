// Package keys holds the enclave's keys and keeps them sealed at rest:
//
//   - the signing key (ed25519), one per enclave instance: the enclave's
//     identity and its account on the parentchain; it never leaves the
//     enclave;
//   - the shielding key (HPKE, ML-KEM-768+X25519), shared by the validateers
//     of a shard: clients encrypt trusted operations to it;
//   - the state key (AES-256-GCM), shared by the validateers of a shard: it
//     encrypts the state at rest and the state diffs in sidechain blocks.
//
// The keys are stored as one blob sealed with the TEE backend's sealing key
// for the label SealingLabel, so only the same enclave build on the same
// platform can open it. The host stores the blob (SealedStore) and never
// sees a key. Nothing in this package hands a private key to anything but
// the enclave's own packages; the shard secrets leave it only through
// ExportShardSecrets, for the attested handover between validateers.
package keys

import (
	"crypto/ed25519"
	"crypto/hpke"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/tee"
	"github.com/integritee-go/integritee/parentchain/types"
)

// SealingLabel is the label of the backend sealing key the keys are sealed
// with.
const SealingLabel = "keys"

// StoreName is the name of the sealed keys blob in the SealedStore.
const StoreName = "enclave-keys"

// sealAAD binds the sealed blob to its purpose, so that no other sealed
// blob of the enclave can pass for its keys.
const sealAAD = "integritee enclave keys v1"

const (
	keyFileVersion      uint8 = 1
	shardSecretsVersion uint8 = 1
	stateKeyLen               = 32
)

// Errors of the keys package. Others wrap these with detail.
var (
	// ErrCorruptKeys is returned when the sealed keys open but do not
	// decode: the blob was written by an incompatible version.
	ErrCorruptKeys = errors.New("keys: sealed keys do not decode")
	// ErrBadShardSecrets is returned by ImportShardSecrets for a blob that
	// is not exported shard secrets.
	ErrBadShardSecrets = errors.New("keys: malformed shard secrets")
)

var codec = types.NewCodec()

// keyFile is the plaintext of the sealed blob, in canonical CBOR.
type keyFile struct {
	Version     uint8        `cbor:"1,keyasint"`
	SigningSeed []byte       `cbor:"2,keyasint"`
	Shard       shardSecrets `cbor:"3,keyasint"`
}

// shardSecrets is what the validateers of a shard share, in canonical CBOR;
// it is also the format of ExportShardSecrets.
type shardSecrets struct {
	Version uint8 `cbor:"1,keyasint"`
	// KEM is the HPKE KEM identifier of the shielding key.
	KEM uint16 `cbor:"2,keyasint"`
	// Shielding is the shielding private key, serialized by the KEM.
	Shielding []byte `cbor:"3,keyasint"`
	// State is the 32-byte state key.
	State []byte `cbor:"4,keyasint"`
}

// Keys are the enclave's keys. They are safe for concurrent use.
type Keys struct {
	signer     *account.Pair
	store      SealedStore
	sealingKey [32]byte

	mu           sync.RWMutex
	shard        shardSecrets
	shielding    hpke.PrivateKey
	shieldingPub []byte
	state        *StateCipher
}

// LoadOrCreate unseals the keys from s or, if s holds none, creates fresh
// ones and seals them to s; created tells which. Keys that are present but
// do not unseal (another enclave build or another host sealed them) are an
// error wrapping ErrUnseal, and s is left untouched.
func LoadOrCreate(b tee.Backend, s SealedStore) (k *Keys, created bool, err error) {
	sealingKey, err := b.SealingKey(SealingLabel)
	if err != nil {
		return nil, false, fmt.Errorf("keys: sealing key: %w", err)
	}
	sealed, err := s.ReadSealed(StoreName)
	switch {
	case isNotExist(err):
		k, err := create(sealingKey, s)
		return k, err == nil, err
	case err != nil:
		return nil, false, fmt.Errorf("keys: load: %w", err)
	}
	plain, err := Unseal(sealingKey, sealed, []byte(sealAAD))
	if err != nil {
		return nil, false, fmt.Errorf("keys: load %q (mrenclave %s): %w", StoreName, b.MrEnclave(), err)
	}
	var f keyFile
	if err := codec.Unmarshal(plain, &f); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrCorruptKeys, err)
	}
	if f.Version != keyFileVersion {
		return nil, false, fmt.Errorf("%w: version %d, want %d", ErrCorruptKeys, f.Version, keyFileVersion)
	}
	signer, err := account.PairFromSeed(f.SigningSeed)
	if err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrCorruptKeys, err)
	}
	k = &Keys{signer: signer, store: s, sealingKey: sealingKey}
	if err := k.setShard(f.Shard); err != nil {
		return nil, false, fmt.Errorf("%w: %v", ErrCorruptKeys, err)
	}
	return k, false, nil
}

func create(sealingKey [32]byte, s SealedStore) (*Keys, error) {
	seed := make([]byte, ed25519.SeedSize)
	rand.Read(seed)
	signer, err := account.PairFromSeed(seed)
	if err != nil {
		return nil, fmt.Errorf("keys: create signing key: %w", err)
	}
	shielding, err := shieldingKEM().GenerateKey()
	if err != nil {
		return nil, fmt.Errorf("keys: create shielding key: %w", err)
	}
	shieldingBytes, err := shielding.Bytes()
	if err != nil {
		return nil, fmt.Errorf("keys: create shielding key: %w", err)
	}
	state := make([]byte, stateKeyLen)
	rand.Read(state)

	k := &Keys{signer: signer, store: s, sealingKey: sealingKey}
	shard := shardSecrets{Version: shardSecretsVersion, KEM: shieldingKEM().ID(), Shielding: shieldingBytes, State: state}
	if err := k.persist(shard); err != nil {
		return nil, err
	}
	if err := k.setShard(shard); err != nil {
		return nil, fmt.Errorf("keys: create: %w", err)
	}
	return k, nil
}

// persist seals the signing key with shard and writes them to the store.
func (k *Keys) persist(shard shardSecrets) error {
	plain, err := codec.Marshal(keyFile{Version: keyFileVersion, SigningSeed: k.signer.Seed(), Shard: shard})
	if err != nil {
		return fmt.Errorf("keys: encode: %w", err)
	}
	if err := k.store.WriteSealed(StoreName, Seal(k.sealingKey, plain, []byte(sealAAD))); err != nil {
		return fmt.Errorf("keys: store: %w", err)
	}
	return nil
}

// parseShard checks shard secrets and instantiates their keys.
func parseShard(s shardSecrets) (hpke.PrivateKey, *StateCipher, error) {
	if s.Version != shardSecretsVersion {
		return nil, nil, fmt.Errorf("shard secrets version %d, want %d", s.Version, shardSecretsVersion)
	}
	if s.KEM != shieldingKEM().ID() {
		return nil, nil, fmt.Errorf("shielding KEM %#04x, want %#04x", s.KEM, shieldingKEM().ID())
	}
	priv, err := shieldingKEM().NewPrivateKey(s.Shielding)
	if err != nil {
		return nil, nil, fmt.Errorf("shielding key: %v", err)
	}
	if len(s.State) != stateKeyLen {
		return nil, nil, fmt.Errorf("state key of %d bytes, want %d", len(s.State), stateKeyLen)
	}
	return priv, NewStateCipher([32]byte(s.State)), nil
}

// setShard makes s the current shard secrets.
func (k *Keys) setShard(s shardSecrets) error {
	priv, state, err := parseShard(s)
	if err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	k.setShardLocked(s, priv, state)
	return nil
}

func (k *Keys) setShardLocked(s shardSecrets, priv hpke.PrivateKey, state *StateCipher) {
	k.shard = s
	k.shielding = priv
	k.shieldingPub = priv.PublicKey().Bytes()
	k.state = state
}

// Signer returns the enclave's signing key: its identity and its account on
// the parentchain.
func (k *Keys) Signer() *account.Pair { return k.signer }

// ShieldingPublicKey returns the serialized shielding public key, for
// clients to encrypt to with ShieldingEncrypt.
func (k *Keys) ShieldingPublicKey() []byte {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return append([]byte(nil), k.shieldingPub...)
}

// State returns the cipher of the current state key. After
// ImportShardSecrets, call State again for the imported key.
func (k *Keys) State() *StateCipher {
	k.mu.RLock()
	defer k.mu.RUnlock()
	return k.state
}

// ExportShardSecrets returns the shard-shared secrets (shielding private key
// and state key) as one blob, for ImportShardSecrets in another validateer
// of the shard. The blob is SECRET and unencrypted: send it only over a
// channel that attests the receiver runs the same mrenclave (mutual remote
// attestation).
func (k *Keys) ExportShardSecrets() ([]byte, error) {
	k.mu.RLock()
	defer k.mu.RUnlock()
	b, err := codec.Marshal(k.shard)
	if err != nil {
		return nil, fmt.Errorf("keys: export shard secrets: %w", err)
	}
	return b, nil
}

// ImportShardSecrets replaces the shard-shared secrets with those exported
// by another validateer of the shard, and re-seals the keys. The signing key
// stays. On any error the keys, in memory and sealed, are unchanged.
func (k *Keys) ImportShardSecrets(b []byte) error {
	var s shardSecrets
	if err := codec.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("%w: %v", ErrBadShardSecrets, err)
	}
	priv, state, err := parseShard(s)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadShardSecrets, err)
	}
	// Hold the write lock across the store write, so that concurrent
	// imports cannot leave memory and disk disagreeing.
	k.mu.Lock()
	defer k.mu.Unlock()
	if err := k.persist(s); err != nil {
		return fmt.Errorf("keys: import shard secrets: %w", err)
	}
	k.setShardLocked(s, priv, state)
	return nil
}
