// Package sealedstore is the host's store of the enclave's sealed blobs:
// one file per name in a directory, written atomically, readable by its
// owner only. It holds ciphertext only; the enclave seals and unseals
// (it implements the enclave's keys.SealedStore, an OCALL).
package sealedstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// ErrBadName is returned by DirStore for a name that is not a plain file
// name.
var ErrBadName = errors.New("sealedstore: bad sealed blob name")

// DirStore is a SealedStore over a directory: one file per name, called
// name + ".sealed", readable by its owner only.
type DirStore struct {
	dir string
}

// New returns a store in dir. The directory is created (mode 0700)
// on the first write.
func New(dir string) *DirStore { return &DirStore{dir: dir} }

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
		return nil, fmt.Errorf("sealedstore: read sealed %q: %w", name, err)
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
			err = fmt.Errorf("sealedstore: write sealed %q: %w", name, err)
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
