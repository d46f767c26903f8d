package sealedstore

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzSealedBlob: whatever name the store is asked for and whatever blob
// it keeps, a name is either refused with ErrBadName or is one plain file
// inside the store's directory, and a blob reads back byte for byte.
func FuzzSealedBlob(f *testing.F) {
	f.Add("enclave-keys", []byte("sealed"))
	f.Add("../escape", []byte{})
	f.Add(".hidden", []byte{0})
	f.Add("a/b", []byte{1})
	f.Add("", []byte{2})
	dir := filepath.Join(f.TempDir(), "sealed")
	d := New(dir)
	f.Fuzz(func(t *testing.T, name string, blob []byte) {
		err := d.WriteSealed(name, blob)
		if err != nil {
			if !errors.Is(err, ErrBadName) {
				t.Fatalf("write %q: %v", name, err)
			}
			if _, rerr := d.ReadSealed(name); !errors.Is(rerr, ErrBadName) {
				t.Fatalf("read of refused name %q: %v", name, rerr)
			}
			return
		}
		p := d.path(name)
		if filepath.Dir(p) != filepath.Clean(dir) || filepath.Base(p) != name+".sealed" {
			t.Fatalf("name %q is stored at %s, outside %s", name, p, dir)
		}
		got, err := d.ReadSealed(name)
		if err != nil || !bytes.Equal(got, blob) {
			t.Fatalf("read back %x, %v; wrote %x", got, err, blob)
		}
		if err := os.Remove(p); err != nil {
			t.Fatal(err)
		}
	})
}
