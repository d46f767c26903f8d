package keys

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"testing"
)

// fixedShard returns shard secrets derived from name: the same keys on
// every run, so that ciphertexts in the committed corpus still decrypt.
func fixedShard(name string) shardSecrets {
	shielding := sha256.Sum256([]byte("shielding seed " + name))
	state := sha256.Sum256([]byte("state key " + name))
	return shardSecrets{Version: shardSecretsVersion, KEM: shieldingKEM().ID(), Shielding: shielding[:], State: state[:]}
}

// fixedKeys returns keys of enclaveV1 holding fixedShard("fuzz").
func fixedKeys(tb testing.TB) (*Keys, *memStore) {
	tb.Helper()
	store := newMemStore()
	k, _, err := LoadOrCreate(enclaveV1, store)
	if err != nil {
		tb.Fatal(err)
	}
	if err := k.ImportShardSecrets(codec.MustMarshal(fixedShard("fuzz"))); err != nil {
		tb.Fatal(err)
	}
	return k, store
}

// plaintexts are what the seeds encrypt: a beneficiary account, an
// operation-sized blob, and nothing.
var plaintexts = [][]byte{bytes.Repeat([]byte{0xbe}, 32), bytes.Repeat([]byte("trusted operation "), 20), {}}

func isPlaintext(b []byte) bool {
	for _, p := range plaintexts {
		if bytes.Equal(p, b) {
			return true
		}
	}
	return false
}

// FuzzShieldingDecrypt: whatever ciphertext a client, the host or a
// parentchain transaction hands the enclave, ShieldingDecrypt never panics,
// fails only with ErrBadCiphertext, and opens only a genuine encryption to
// the shard's key: a changed byte anywhere never decrypts, least of all to
// another plaintext.
func FuzzShieldingDecrypt(f *testing.F) {
	k, _ := fixedKeys(f)
	for _, p := range plaintexts {
		ct, err := ShieldingEncrypt(k.ShieldingPublicKey(), p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(ct)
	}
	other, _, _ := LoadOrCreate(enclaveV1, newMemStore())
	toOther, _ := ShieldingEncrypt(other.ShieldingPublicKey(), plaintexts[0])
	f.Add(toOther)
	f.Add(make([]byte, ShieldingOverhead))
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := k.ShieldingDecrypt(ct)
		if err != nil {
			if pt != nil || !errors.Is(err, ErrBadCiphertext) {
				t.Fatalf("error %v (plaintext %x), want ErrBadCiphertext alone", err, pt)
			}
			return
		}
		if !isPlaintext(pt) || len(ct) != len(pt)+ShieldingOverhead {
			t.Fatalf("a %d-byte ciphertext decrypts to %x, which no genuine encryption holds", len(ct), pt)
		}
	})
}

// FuzzStateDecrypt: sealed records and block state diffs come back from
// the host; StateCipher.Decrypt never panics, fails only with
// ErrStateDecrypt, and opens only a genuine encryption under the same
// additional data.
func FuzzStateDecrypt(f *testing.F) {
	k, _ := fixedKeys(f)
	aad := []byte("shard/diff/7")
	for _, p := range plaintexts {
		f.Add(k.State().Encrypt(p, aad))
	}
	f.Add(k.State().Encrypt(plaintexts[0], []byte("shard/diff/8")))
	f.Add(make([]byte, Overhead))
	f.Fuzz(func(t *testing.T, ct []byte) {
		pt, err := k.State().Decrypt(ct, aad)
		if err != nil {
			if pt != nil || !errors.Is(err, ErrStateDecrypt) {
				t.Fatalf("error %v (plaintext %x), want ErrStateDecrypt alone", err, pt)
			}
			return
		}
		if !isPlaintext(pt) || len(ct) != len(pt)+Overhead {
			t.Fatalf("a %d-byte ciphertext decrypts to %x, which no genuine encryption holds", len(ct), pt)
		}
	})
}

// FuzzUnsealKeys: the host holds the sealed keys blob and may hand back
// any bytes. LoadOrCreate then never panics, never creates or overwrites
// keys, and fails with ErrUnseal unless the blob is one this enclave
// sealed.
func FuzzUnsealKeys(f *testing.F) {
	sealingKey, _ := enclaveV1.SealingKey(SealingLabel)
	genuine := keyFile{Version: keyFileVersion, SigningSeed: bytes.Repeat([]byte{1}, 32), Shard: fixedShard("fuzz")}
	f.Add(Seal(sealingKey, codec.MustMarshal(genuine), []byte(sealAAD)))
	other, _ := fakeBackend{name: "v2"}.SealingKey(SealingLabel)
	f.Add(Seal(other, codec.MustMarshal(genuine), []byte(sealAAD)))
	f.Add(make([]byte, Overhead))
	f.Fuzz(func(t *testing.T, blob []byte) {
		store := newMemStore()
		store.blobs[StoreName] = bytes.Clone(blob)
		k, created, err := LoadOrCreate(enclaveV1, store)
		if created || !bytes.Equal(store.blob(StoreName), blob) {
			t.Fatal("LoadOrCreate replaced keys the host handed back")
		}
		if err != nil {
			if k != nil || !errors.Is(err, ErrUnseal) && !errors.Is(err, ErrCorruptKeys) {
				t.Fatalf("error %v, want ErrUnseal or ErrCorruptKeys", err)
			}
			if _, uerr := Unseal(sealingKey, blob, []byte(sealAAD)); uerr == nil && errors.Is(err, ErrUnseal) {
				t.Fatal("a blob that unseals is reported as not unsealing")
			}
			return
		}
		if _, uerr := Unseal(sealingKey, blob, []byte(sealAAD)); uerr != nil {
			t.Fatalf("keys loaded from a blob that does not unseal: %v", uerr)
		}
		if !bytes.Equal(k.Signer().Seed(), genuine.SigningSeed) {
			t.Fatal("keys loaded that this enclave never sealed")
		}
	})
}

// FuzzSealedKeyFile: the plaintext inside the sealed blob (which only a
// build of this enclave writes, but an older or newer one may) either
// decodes to keys, all of them checked, or fails with ErrCorruptKeys.
func FuzzSealedKeyFile(f *testing.F) {
	sealingKey, _ := enclaveV1.SealingKey(SealingLabel)
	f.Add(codec.MustMarshal(keyFile{Version: keyFileVersion, SigningSeed: bytes.Repeat([]byte{1}, 32), Shard: fixedShard("fuzz")}))
	f.Add(codec.MustMarshal(keyFile{Version: 2, SigningSeed: bytes.Repeat([]byte{1}, 32), Shard: fixedShard("fuzz")}))
	f.Add(codec.MustMarshal(keyFile{Version: keyFileVersion, SigningSeed: bytes.Repeat([]byte{1}, 31), Shard: fixedShard("fuzz")}))
	f.Fuzz(func(t *testing.T, plain []byte) {
		store := newMemStore()
		blob := Seal(sealingKey, plain, []byte(sealAAD))
		store.blobs[StoreName] = blob
		k, created, err := LoadOrCreate(enclaveV1, store)
		if created || !bytes.Equal(store.blob(StoreName), blob) {
			t.Fatal("LoadOrCreate replaced the sealed keys")
		}
		if err != nil {
			if !errors.Is(err, ErrCorruptKeys) {
				t.Fatalf("error %v, want ErrCorruptKeys", err)
			}
			return
		}
		var kf keyFile
		if err := codec.Unmarshal(plain, &kf); err != nil {
			t.Fatalf("keys loaded from a key file that does not decode: %v", err)
		}
		if exported, err := k.ExportShardSecrets(); err != nil || !bytes.Equal(exported, codec.MustMarshal(kf.Shard)) {
			t.Fatalf("exported shard secrets are not the sealed ones: %v", err)
		}
		if !bytes.Equal(k.Signer().Seed(), kf.SigningSeed) {
			t.Fatal("the signing key is not the sealed one")
		}
	})
}

// FuzzImportShardSecrets: the shard secrets a MU-RA peer sends either
// import (and then are exactly what the keys export and seal) or fail
// with ErrBadShardSecrets, leaving the keys, in memory and sealed, as they
// were.
func FuzzImportShardSecrets(f *testing.F) {
	k, store := fixedKeys(f)
	f.Add(codec.MustMarshal(fixedShard("fuzz")))
	f.Add(codec.MustMarshal(fixedShard("other")))
	bad := fixedShard("fuzz")
	bad.State = bad.State[:31]
	f.Add(codec.MustMarshal(bad))
	f.Fuzz(func(t *testing.T, b []byte) {
		pub, sealed := k.ShieldingPublicKey(), store.blob(StoreName)
		before, _ := k.ExportShardSecrets()
		err := k.ImportShardSecrets(b)
		after, _ := k.ExportShardSecrets()
		if err != nil {
			if !errors.Is(err, ErrBadShardSecrets) {
				t.Fatalf("error %v, want ErrBadShardSecrets", err)
			}
			if !bytes.Equal(k.ShieldingPublicKey(), pub) || !bytes.Equal(store.blob(StoreName), sealed) || !bytes.Equal(after, before) {
				t.Fatal("a refused import changed the keys")
			}
			return
		}
		if !bytes.Equal(after, b) {
			t.Fatalf("imported %x, the keys export %x", b, after)
		}
		reloaded, _, err := LoadOrCreate(enclaveV1, store)
		if err != nil {
			t.Fatal(err)
		}
		if sealedNow, _ := reloaded.ExportShardSecrets(); !bytes.Equal(sealedNow, b) {
			t.Fatal("the imported secrets were not sealed")
		}
	})
}
