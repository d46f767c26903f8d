package keys

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sync"
	"testing"

	"github.com/integritee-go/integritee/attestation"
	attsim "github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave/tee"
)

// fakeBackend is a TEE whose sealing key is derived from its name: two fake
// backends with different names are two enclave builds.
type fakeBackend struct {
	name       string
	sealingErr error
}

var _ tee.Backend = fakeBackend{}

func (fakeBackend) Name() string { return "fake" }
func (b fakeBackend) MrEnclave() attestation.MrEnclave {
	return sha256.Sum256([]byte("mrenclave " + b.name))
}
func (fakeBackend) Debug() bool                       { return true }
func (fakeBackend) Quote(rd [64]byte) ([]byte, error) { return nil, errors.New("fake: no quotes") }
func (fakeBackend) Verifier() attestation.Verifier    { return attsim.NewVerifier() }
func (b fakeBackend) SealingKey(label string) ([32]byte, error) {
	if b.sealingErr != nil {
		return [32]byte{}, b.sealingErr
	}
	return sha256.Sum256([]byte("sealing " + b.name + " " + label)), nil
}

// memStore is an in-memory SealedStore; failWrites makes writes fail.
type memStore struct {
	mu         sync.Mutex
	blobs      map[string][]byte
	failWrites bool
	readErr    error
}

func newMemStore() *memStore { return &memStore{blobs: map[string][]byte{}} }

func (s *memStore) ReadSealed(name string) ([]byte, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.readErr != nil {
		return nil, s.readErr
	}
	b, ok := s.blobs[name]
	if !ok {
		return nil, fmt.Errorf("mem: %s: %w", name, os.ErrNotExist)
	}
	return append([]byte(nil), b...), nil
}

func (s *memStore) WriteSealed(name string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.failWrites {
		return errors.New("mem: disk full")
	}
	s.blobs[name] = append([]byte(nil), data...)
	return nil
}

func (s *memStore) blob(name string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.blobs[name]...)
}

var enclaveV1 = fakeBackend{name: "v1"}

func mustLoad(t *testing.T, b tee.Backend, s SealedStore) (*Keys, bool) {
	t.Helper()
	k, created, err := LoadOrCreate(b, s)
	if err != nil {
		t.Fatal(err)
	}
	return k, created
}

func TestRestartReusesTheSameKeys(t *testing.T) {
	store := newMemStore()
	first, created := mustLoad(t, enclaveV1, store)
	if !created {
		t.Fatal("first start over an empty store did not create keys")
	}
	shielded, err := ShieldingEncrypt(first.ShieldingPublicKey(), []byte("trusted call"))
	if err != nil {
		t.Fatal(err)
	}
	stateCT := first.State().Encrypt([]byte("state"), []byte("shard"))

	restarted, created := mustLoad(t, enclaveV1, store)

	if created {
		t.Fatal("restart created new keys")
	}
	if restarted.Signer().ID() != first.Signer().ID() {
		t.Fatal("restart changed the signing key")
	}
	if !bytes.Equal(restarted.ShieldingPublicKey(), first.ShieldingPublicKey()) {
		t.Fatal("restart changed the shielding key")
	}
	if pt, err := restarted.ShieldingDecrypt(shielded); err != nil || string(pt) != "trusted call" {
		t.Fatalf("restart cannot decrypt what was shielded before: %q, %v", pt, err)
	}
	if pt, err := restarted.State().Decrypt(stateCT, []byte("shard")); err != nil || string(pt) != "state" {
		t.Fatalf("restart cannot decrypt the state: %q, %v", pt, err)
	}
}

func TestAnotherMrEnclaveCannotUnsealTheKeys(t *testing.T) {
	store := newMemStore()
	mustLoad(t, enclaveV1, store)
	sealed := store.blob(StoreName)

	_, created, err := LoadOrCreate(fakeBackend{name: "v2"}, store)

	if !errors.Is(err, ErrUnseal) {
		t.Fatalf("error %v, want ErrUnseal", err)
	}
	if created {
		t.Fatal("created reported on failure")
	}
	if !bytes.Equal(store.blob(StoreName), sealed) {
		t.Fatal("a failed unseal overwrote the sealed keys")
	}
}

func TestEachInstanceGetsItsOwnKeys(t *testing.T) {
	a, _ := mustLoad(t, enclaveV1, newMemStore())
	b, _ := mustLoad(t, enclaveV1, newMemStore())

	if a.Signer().ID() == b.Signer().ID() {
		t.Fatal("two instances share a signing key")
	}
	if bytes.Equal(a.ShieldingPublicKey(), b.ShieldingPublicKey()) {
		t.Fatal("two fresh instances share a shielding key")
	}
	if _, err := b.State().Decrypt(a.State().Encrypt([]byte("x"), nil), nil); !errors.Is(err, ErrStateDecrypt) {
		t.Fatalf("two fresh instances share a state key: %v", err)
	}
}

func TestSealedBlobRevealsNoKey(t *testing.T) {
	store := newMemStore()
	k, _ := mustLoad(t, enclaveV1, store)
	sealed := store.blob(StoreName)
	secrets, err := k.ExportShardSecrets()
	if err != nil {
		t.Fatal(err)
	}
	var s shardSecrets
	if err := codec.Unmarshal(secrets, &s); err != nil {
		t.Fatal(err)
	}

	for name, secret := range map[string][]byte{
		"signing seed":   k.Signer().Seed(),
		"shielding key":  s.Shielding,
		"state key":      s.State,
		"signing pubkey": k.Signer().ID().PublicKey(),
	} {
		if bytes.Contains(sealed, secret) {
			t.Fatalf("the sealed blob contains the %s in the clear", name)
		}
	}
}

func TestCorruptedSealedKeysFailToUnseal(t *testing.T) {
	store := newMemStore()
	mustLoad(t, enclaveV1, store)
	sealed := store.blob(StoreName)
	sealed[len(sealed)/2] ^= 1
	store.WriteSealed(StoreName, sealed)

	if _, _, err := LoadOrCreate(enclaveV1, store); !errors.Is(err, ErrUnseal) {
		t.Fatalf("error %v, want ErrUnseal", err)
	}
}

func TestSealedKeysThatDoNotDecodeAreCorrupt(t *testing.T) {
	store := newMemStore()
	key, _ := enclaveV1.SealingKey(SealingLabel)
	store.WriteSealed(StoreName, Seal(key, []byte("not cbor"), []byte(sealAAD)))

	if _, _, err := LoadOrCreate(enclaveV1, store); !errors.Is(err, ErrCorruptKeys) {
		t.Fatalf("error %v, want ErrCorruptKeys", err)
	}
}

func TestLoadOrCreateDoesNotCreateOnReadErrors(t *testing.T) {
	store := newMemStore()
	store.readErr = errors.New("mem: I/O error")

	_, _, err := LoadOrCreate(enclaveV1, store)

	if err == nil || errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v, want the read error", err)
	}
	if len(store.blobs) != 0 {
		t.Fatal("keys were created although the store could not be read")
	}
}

func TestLoadOrCreateFailsWhenItCannotSeal(t *testing.T) {
	store := newMemStore()
	store.failWrites = true
	if _, created, err := LoadOrCreate(enclaveV1, store); err == nil || created {
		t.Fatalf("created=%v err=%v; want a failure: unsealed keys must not be used", created, err)
	}

	sealingErr := errors.New("fake: no sealing key")
	if _, _, err := LoadOrCreate(fakeBackend{name: "v1", sealingErr: sealingErr}, newMemStore()); !errors.Is(err, sealingErr) {
		t.Fatalf("error %v, want the backend's sealing error", err)
	}
}

func TestShieldingRoundTrip(t *testing.T) {
	k, _ := mustLoad(t, enclaveV1, newMemStore())
	if n := len(k.ShieldingPublicKey()); n != ShieldingPublicKeySize {
		t.Fatalf("shielding public key of %d bytes, want %d", n, ShieldingPublicKeySize)
	}
	for _, msg := range [][]byte{nil, []byte("x"), bytes.Repeat([]byte("trusted call "), 1000)} {
		ct, err := ShieldingEncrypt(k.ShieldingPublicKey(), msg)
		if err != nil {
			t.Fatal(err)
		}
		if len(ct) != len(msg)+ShieldingOverhead {
			t.Fatalf("ciphertext of %d bytes for %d of plaintext, want overhead %d", len(ct), len(msg), ShieldingOverhead)
		}
		pt, err := k.ShieldingDecrypt(ct)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(pt, msg) {
			t.Fatalf("decrypted %q, want %q", pt, msg)
		}
	}
}

func TestShieldingEncryptionsOfOnePlaintextDiffer(t *testing.T) {
	k, _ := mustLoad(t, enclaveV1, newMemStore())
	a, _ := ShieldingEncrypt(k.ShieldingPublicKey(), []byte("same"))
	b, _ := ShieldingEncrypt(k.ShieldingPublicKey(), []byte("same"))
	if bytes.Equal(a, b) {
		t.Fatal("two shielding encryptions of the same plaintext are equal")
	}
}

func TestShieldingRejectsBadCiphertexts(t *testing.T) {
	k, _ := mustLoad(t, enclaveV1, newMemStore())
	other, _ := mustLoad(t, enclaveV1, newMemStore())
	msg := []byte("transfer 10 to bob")
	ct, err := ShieldingEncrypt(k.ShieldingPublicKey(), msg)
	if err != nil {
		t.Fatal(err)
	}
	toOther, err := ShieldingEncrypt(other.ShieldingPublicKey(), msg)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(i int) []byte {
		c := bytes.Clone(ct)
		c[i] ^= 0x01
		return c
	}

	for name, bad := range map[string][]byte{
		"encrypted to another key":       toOther,
		"tampered encapsulated ML-KEM":   flip(0),
		"tampered encapsulated X25519":   flip(1100),
		"tampered ciphertext":            flip(1120),
		"tampered tag":                   flip(len(ct) - 1),
		"truncated by one byte":          ct[:len(ct)-1],
		"truncated to the overhead":      ct[:ShieldingOverhead-1],
		"truncated to the encapsulation": ct[:1120],
		"truncated to 10 bytes":          ct[:10],
		"empty":                          nil,
		"extended":                       append(bytes.Clone(ct), 0),
	} {
		t.Run(name, func(t *testing.T) {
			pt, err := k.ShieldingDecrypt(bad)
			if !errors.Is(err, ErrBadCiphertext) {
				t.Fatalf("error %v, want ErrBadCiphertext", err)
			}
			if pt != nil {
				t.Fatal("plaintext returned with an error")
			}
		})
	}
}

func TestShieldingEncryptRejectsBadPublicKeys(t *testing.T) {
	k, _ := mustLoad(t, enclaveV1, newMemStore())
	pub := k.ShieldingPublicKey()
	for name, bad := range map[string][]byte{
		"empty":     nil,
		"truncated": pub[:len(pub)-1],
		"extended":  append(bytes.Clone(pub), 0),
		"x25519":    pub[len(pub)-32:],
	} {
		if _, err := ShieldingEncrypt(bad, []byte("x")); !errors.Is(err, ErrBadShieldingKey) {
			t.Fatalf("%s: error %v, want ErrBadShieldingKey", name, err)
		}
	}
}

func TestShieldingPublicKeyIsACopy(t *testing.T) {
	k, _ := mustLoad(t, enclaveV1, newMemStore())
	pub := k.ShieldingPublicKey()
	pub[0] ^= 0xff
	if bytes.Equal(pub, k.ShieldingPublicKey()) {
		t.Fatal("ShieldingPublicKey exposes internal state")
	}
}

func TestShardSecretsHandOverToAnotherValidateer(t *testing.T) {
	first, _ := mustLoad(t, enclaveV1, newMemStore())
	joinerStore := newMemStore()
	joiner, _ := mustLoad(t, enclaveV1, joinerStore)
	joinerID := joiner.Signer().ID()
	shielded, _ := ShieldingEncrypt(first.ShieldingPublicKey(), []byte("call"))
	state := first.State().Encrypt([]byte("state"), []byte("shard"))

	secrets, err := first.ExportShardSecrets()
	if err != nil {
		t.Fatal(err)
	}
	if err := joiner.ImportShardSecrets(secrets); err != nil {
		t.Fatal(err)
	}

	check := func(k *Keys, when string) {
		t.Helper()
		if !bytes.Equal(k.ShieldingPublicKey(), first.ShieldingPublicKey()) {
			t.Fatalf("%s: the joiner's shielding key is not the shard's", when)
		}
		if pt, err := k.ShieldingDecrypt(shielded); err != nil || string(pt) != "call" {
			t.Fatalf("%s: the joiner cannot decrypt a shielded call: %q, %v", when, pt, err)
		}
		if pt, err := k.State().Decrypt(state, []byte("shard")); err != nil || string(pt) != "state" {
			t.Fatalf("%s: the joiner cannot decrypt the shard's state: %q, %v", when, pt, err)
		}
		if k.Signer().ID() != joinerID {
			t.Fatalf("%s: the import changed the joiner's signing key", when)
		}
	}
	check(joiner, "after import")
	restarted, _ := mustLoad(t, enclaveV1, joinerStore)
	check(restarted, "after restart")
}

func TestImportRejectsMalformedShardSecrets(t *testing.T) {
	k, _ := mustLoad(t, enclaveV1, newMemStore())
	good, _ := k.ExportShardSecrets()
	var s shardSecrets
	if err := codec.Unmarshal(good, &s); err != nil {
		t.Fatal(err)
	}
	encode := func(edit func(*shardSecrets)) []byte {
		c := s
		edit(&c)
		return codec.MustMarshal(c)
	}
	joiner, _ := mustLoad(t, enclaveV1, newMemStore())
	before := joiner.ShieldingPublicKey()

	for name, bad := range map[string][]byte{
		"empty":             nil,
		"not cbor":          []byte("secret"),
		"truncated":         good[:len(good)-1],
		"trailing byte":     append(bytes.Clone(good), 0),
		"version 2":         encode(func(c *shardSecrets) { c.Version = 2 }),
		"another KEM":       encode(func(c *shardSecrets) { c.KEM = 0x0020 }),
		"short shielding":   encode(func(c *shardSecrets) { c.Shielding = c.Shielding[:16] }),
		"short state key":   encode(func(c *shardSecrets) { c.State = c.State[:31] }),
		"missing state key": encode(func(c *shardSecrets) { c.State = nil }),
	} {
		if err := joiner.ImportShardSecrets(bad); !errors.Is(err, ErrBadShardSecrets) {
			t.Fatalf("%s: error %v, want ErrBadShardSecrets", name, err)
		}
	}
	if !bytes.Equal(joiner.ShieldingPublicKey(), before) {
		t.Fatal("a rejected import changed the keys")
	}
}

func TestImportThatCannotBeSealedChangesNothing(t *testing.T) {
	first, _ := mustLoad(t, enclaveV1, newMemStore())
	secrets, _ := first.ExportShardSecrets()
	store := newMemStore()
	joiner, _ := mustLoad(t, enclaveV1, store)
	before := joiner.ShieldingPublicKey()
	sealed := store.blob(StoreName)
	store.failWrites = true

	if err := joiner.ImportShardSecrets(secrets); err == nil {
		t.Fatal("import succeeded although it could not be sealed")
	}
	if !bytes.Equal(joiner.ShieldingPublicKey(), before) || !bytes.Equal(store.blob(StoreName), sealed) {
		t.Fatal("a failed import changed the keys")
	}
}

func TestKeysAreSafeForConcurrentUse(t *testing.T) {
	k, _ := mustLoad(t, enclaveV1, newMemStore())
	a, _ := mustLoad(t, enclaveV1, newMemStore())
	b, _ := mustLoad(t, enclaveV1, newMemStore())
	sa, _ := a.ExportShardSecrets()
	sb, _ := b.ExportShardSecrets()

	var wg sync.WaitGroup
	for i := range 4 {
		wg.Go(func() {
			secrets := sa
			if i%2 == 1 {
				secrets = sb
			}
			if err := k.ImportShardSecrets(secrets); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			ct, err := ShieldingEncrypt(k.ShieldingPublicKey(), []byte("x"))
			if err != nil {
				t.Error(err)
				return
			}
			k.ShieldingDecrypt(ct) // may race with an import: only the race detector judges
			k.State().Encrypt([]byte("x"), nil)
		})
	}
	wg.Wait()
}
