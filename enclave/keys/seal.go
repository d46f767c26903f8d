package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
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

// ErrBadName is returned by DirStore for a name that is not a plain file
// name.
var ErrBadName = errors.New("keys: bad sealed blob name")

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

// DirStore is a SealedStore over a directory: one file per name, called
// name + ".sealed", readable by its owner only.
type DirStore struct {
	dir string
}

var _ SealedStore = (*DirStore)(nil)

// NewDirStore returns a store in dir. The directory is created (mode 0700)
// on the first write.
func NewDirStore(dir string) *DirStore { return &DirStore{dir: dir} }

// Dir returns the store's directory.
func (d *DirStore) Dir() string { return d.dir }

// checkName accepts 1 to 64 letters, digits, '-', '_' and '.', not starting
// with '.', so that a name is always one plain file in the directory.
func checkName(name string) error {
	if name == "" || len(name) > 64 || name[0] == '.' {
		return fmt.Errorf("%w: %q", ErrBadName, name)
	}
	for _, c := range []byte(name) {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.'
		if !ok {
			return fmt.Errorf("%w: %q", ErrBadName, name)
		}
	}
	return nil
}

func (d *DirStore) path(name string) string { return filepath.Join(d.dir, name+".sealed") }

// ReadSealed reads the blob stored under name.
func (d *DirStore) ReadSealed(name string) ([]byte, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	b, err := os.ReadFile(d.path(name))
	if err != nil {
		return nil, fmt.Errorf("keys: read sealed %q: %w", name, err)
	}
	return b, nil
}

// WriteSealed writes data to a temporary file, syncs it and renames it over
// the blob's file.
func (d *DirStore) WriteSealed(name string, data []byte) (err error) {
	if err := checkName(name); err != nil {
		return err
	}
	defer func() {
		if err != nil {
			err = fmt.Errorf("keys: write sealed %q: %w", name, err)
		}
	}()
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(d.dir, "."+name+".tmp-*") // mode 0600
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			os.Remove(tmp.Name())
		}
	}()
	_, err = tmp.Write(data)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), d.path(name)); err != nil {
		return err
	}
	if dir, err := os.Open(d.dir); err == nil {
		dir.Sync() // make the rename durable; best effort where unsupported
		dir.Close()
	}
	return nil
}

// isNotExist reports whether err says a blob is absent.
func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
