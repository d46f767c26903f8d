package sealedstore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestDirStoreReadsWhatItWrote(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "sealed")
	s := New(dir)

	if _, err := s.ReadSealed("enclave-keys"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("absent blob: error %v, want os.ErrNotExist", err)
	}
	if err := s.WriteSealed("enclave-keys", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := s.WriteSealed("enclave-keys", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadSealed("enclave-keys")
	if err != nil || string(got) != "v2" {
		t.Fatalf("read (%q, %v), want the last write", got, err)
	}

	fi, err := os.Stat(filepath.Join(dir, "enclave-keys.sealed"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("blob mode %v, want 0600", fi.Mode().Perm())
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("directory mode %v, want 0700", di.Mode().Perm())
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries, want only the blob (no temporary files)", len(entries))
	}
	if s.Dir() != dir {
		t.Fatalf("Dir() = %q", s.Dir())
	}
}

func TestDirStoreRejectsNamesThatAreNotPlainFiles(t *testing.T) {
	dir := t.TempDir()
	s := New(filepath.Join(dir, "store"))
	for _, name := range []string{"", ".", "..", "../escape", "a/b", `a\b`, ".hidden", "a b", "nul\x00", string(make([]byte, 65))} {
		if err := s.WriteSealed(name, []byte("x")); !errors.Is(err, ErrBadName) {
			t.Fatalf("write %q: error %v, want ErrBadName", name, err)
		}
		if _, err := s.ReadSealed(name); !errors.Is(err, ErrBadName) {
			t.Fatalf("read %q: error %v, want ErrBadName", name, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "escape.sealed")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a name escaped the store's directory")
	}
}
