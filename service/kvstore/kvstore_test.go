package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"testing"
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustGet(t *testing.T, s *Store, key string) []byte {
	t.Helper()
	v, err := s.Get([]byte(key))
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	return v
}

func TestGetOfAnAbsentKeyIsErrNotFound(t *testing.T) {
	s := open(t, t.TempDir())
	if _, err := s.Get([]byte("nothing here")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of an absent key: %v, want ErrNotFound", err)
	}
	if err := s.Set([]byte("a"), []byte("1")); err != nil {
		t.Fatal(err)
	}
	// A key that is a prefix or an extension of a stored one is still absent.
	for _, k := range []string{"", "a\x00", "ab", "A"} {
		if _, err := s.Get([]byte(k)); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", k, err)
		}
	}
}

func TestSetThenGetReturnsTheValueAndTheLastWriteWins(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.Set([]byte("k"), []byte("first")); err != nil {
		t.Fatal(err)
	}
	if err := s.Set([]byte("k"), []byte("second")); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "k"); string(got) != "second" {
		t.Fatalf("Get = %q, want %q", got, "second")
	}
	// An empty value is a value, not an absence.
	if err := s.Set([]byte("empty"), nil); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "empty"); len(got) != 0 {
		t.Fatalf("empty value came back as %q", got)
	}
}

func TestGetReturnsACopy(t *testing.T) {
	s := open(t, t.TempDir())
	if err := s.Set([]byte("k"), []byte("value")); err != nil {
		t.Fatal(err)
	}
	v := mustGet(t, s, "k")
	copy(v, "XXXXX")
	if got := mustGet(t, s, "k"); string(got) != "value" {
		t.Fatalf("mutating a returned value changed the store: %q", got)
	}
}

func TestBatchAppliesSetsDeletesAndRangeDeletesTogether(t *testing.T) {
	s := open(t, t.TempDir())
	for _, k := range []string{"a", "b1", "b2", "b3", "c"} {
		if err := s.Set([]byte(k), []byte("v"+k)); err != nil {
			t.Fatal(err)
		}
	}
	b := s.NewBatch()
	b.Set([]byte("d"), []byte("vd"))
	b.Delete([]byte("a"))
	b.DeleteRange([]byte("b1"), []byte("b3")) // [b1, b3): b3 survives
	// Nothing is visible before Commit.
	if _, err := s.Get([]byte("d")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("uncommitted batch write visible: %v", err)
	}
	if got := mustGet(t, s, "a"); string(got) != "va" {
		t.Fatalf("uncommitted delete visible: %q", got)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"b3": "vb3", "c": "vc", "d": "vd"}
	for _, k := range []string{"a", "b1", "b2"} {
		if _, err := s.Get([]byte(k)); !errors.Is(err, ErrNotFound) {
			t.Errorf("%q survived its deletion: %v", k, err)
		}
	}
	for k, v := range want {
		if got := mustGet(t, s, k); string(got) != v {
			t.Errorf("%q = %q, want %q", k, got, v)
		}
	}
}

func fill(t *testing.T, s *Store, keys ...string) {
	t.Helper()
	b := s.NewBatch()
	for _, k := range keys {
		b.Set([]byte(k), []byte("v:"+k))
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
}

func collect(t *testing.T, s *Store, from, to string, limit int) []string {
	t.Helper()
	var got []string
	err := s.Iterate([]byte(from), []byte(to), func(k, v []byte) bool {
		if string(v) != "v:"+string(k) {
			t.Errorf("key %q has value %q", k, v)
		}
		got = append(got, string(k))
		return limit <= 0 || len(got) < limit
	})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

func TestIterateVisitsTheHalfOpenRangeInOrder(t *testing.T) {
	s := open(t, t.TempDir())
	fill(t, s, "p/3", "p/1", "q/0", "p/2", "o/9", "p/")
	got := collect(t, s, "p/", "p0", 0) // '0' follows '/': every key with prefix p/
	if fmt.Sprint(got) != "[p/ p/1 p/2 p/3]" {
		t.Fatalf("Iterate(p/, p0) = %v", got)
	}
	// The upper bound is exclusive, the lower inclusive.
	got = collect(t, s, "p/1", "p/3", 0)
	if fmt.Sprint(got) != "[p/1 p/2]" {
		t.Fatalf("Iterate(p/1, p/3) = %v", got)
	}
	// An empty range visits nothing.
	if got := collect(t, s, "x", "y", 0); len(got) != 0 {
		t.Fatalf("Iterate over an empty range visited %v", got)
	}
}

func TestIterateStopsWhenTheCallbackSaysSo(t *testing.T) {
	s := open(t, t.TempDir())
	fill(t, s, "a", "b", "c", "d")
	if got := collect(t, s, "a", "z", 2); fmt.Sprint(got) != "[a b]" {
		t.Fatalf("Iterate stopped after %v, want [a b]", got)
	}
}

func TestLastReturnsTheGreatestKeyOfTheRange(t *testing.T) {
	s := open(t, t.TempDir())
	fill(t, s, "n/1", "n/5", "n/3", "o/0")
	k, v, err := s.Last([]byte("n/"), []byte("n0"))
	if err != nil {
		t.Fatal(err)
	}
	if string(k) != "n/5" || string(v) != "v:n/5" {
		t.Fatalf("Last = %q, %q; want n/5", k, v)
	}
	// The upper bound is exclusive.
	k, _, err = s.Last([]byte("n/"), []byte("n/5"))
	if err != nil || string(k) != "n/3" {
		t.Fatalf("Last(n/, n/5) = %q, %v; want n/3", k, err)
	}
	if _, _, err := s.Last([]byte("m/"), []byte("m0")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Last of an empty range: %v, want ErrNotFound", err)
	}
}

func TestWritesSurviveCloseAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	fill(t, s, "a", "b", "c")
	b := s.NewBatch()
	b.Delete([]byte("b"))
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}

	s2 := open(t, dir)
	if got := mustGet(t, s2, "a"); string(got) != "v:a" {
		t.Fatalf("after reopen a = %q", got)
	}
	if _, err := s2.Get([]byte("b")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("after reopen the deleted key is back: %v", err)
	}
	if got := collect(t, s2, "", "\xff", 0); fmt.Sprint(got) != "[a c]" {
		t.Fatalf("after reopen the store holds %v", got)
	}
}

func TestOpenFailsOnADirectoryInUse(t *testing.T) {
	dir := t.TempDir()
	open(t, dir)
	// pebble locks its directory: a second store over it must not open
	// (two writers would corrupt it).
	s, err := Open(dir)
	if err == nil {
		s.Close()
		t.Fatal("a second Open of a directory in use succeeded")
	}
}

func TestLargeValuesRoundTrip(t *testing.T) {
	s := open(t, t.TempDir())
	big := bytes.Repeat([]byte{0xAB, 0x00, 0xCD}, 1<<20)
	if err := s.Set([]byte("big"), big); err != nil {
		t.Fatal(err)
	}
	if got := mustGet(t, s, "big"); !bytes.Equal(got, big) {
		t.Fatal("large value changed in the store")
	}
}
