package state_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/parentchain/state"
)

// openStore opens a fresh store in a temporary directory and closes it when
// the test ends.
func openStore(t *testing.T) (*state.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	s, err := state.Open(dir)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// commit commits kv (a nil value means delete) as block height, chaining the
// app hash from the last commit, and returns the new app hash.
func commit(t *testing.T, s *state.Store, height int64, kv map[string][]byte) []byte {
	t.Helper()
	_, prev := s.LastCommit()
	o := state.NewOverlay(s)
	for k, v := range kv {
		if v == nil {
			o.Delete([]byte(k))
		} else {
			o.Set([]byte(k), v)
		}
	}
	hash := o.AppHash(prev, height)
	if err := s.Commit(o, height, hash); err != nil {
		t.Fatalf("Commit height %d: %v", height, err)
	}
	return hash
}

func wantGet(t *testing.T, name string, g interface{ Get([]byte) ([]byte, bool) }, key, want string) {
	t.Helper()
	got, ok := g.Get([]byte(key))
	if !ok {
		t.Errorf("%s: Get(%q) absent, want %q", name, key, want)
		return
	}
	if string(got) != want {
		t.Errorf("%s: Get(%q) = %q, want %q", name, key, got, want)
	}
}

func wantAbsent(t *testing.T, name string, g interface{ Get([]byte) ([]byte, bool) }, key string) {
	t.Helper()
	if got, ok := g.Get([]byte(key)); ok {
		t.Errorf("%s: Get(%q) = %q, want absent", name, key, got)
	}
}

// ---- Overlay ----

func TestOverlayReadsThroughToCommittedState(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"k": []byte("committed")})

	o := state.NewOverlay(s)

	wantGet(t, "overlay", o, "k", "committed")
	wantAbsent(t, "overlay", o, "missing")
	if o.Len() != 0 {
		t.Errorf("reads buffered %d writes", o.Len())
	}
}

func TestOverlaySetShadowsParentWithoutTouchingIt(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"k": []byte("old")})
	o := state.NewOverlay(s)

	o.Set([]byte("k"), []byte("new"))
	o.Set([]byte("fresh"), []byte("v"))

	wantGet(t, "overlay", o, "k", "new")
	wantGet(t, "overlay", o, "fresh", "v")
	wantGet(t, "store", s, "k", "old")
	wantAbsent(t, "store", s, "fresh")
	if o.Len() != 2 {
		t.Errorf("Len = %d, want 2", o.Len())
	}
}

func TestOverlayDeleteShadowsParentAndSetRevives(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"k": []byte("old")})
	o := state.NewOverlay(s)

	o.Delete([]byte("k"))

	wantAbsent(t, "overlay after delete", o, "k")
	wantGet(t, "store", s, "k", "old")

	o.Set([]byte("k"), []byte("again"))
	wantGet(t, "overlay after re-set", o, "k", "again")
	if o.Len() != 1 {
		t.Errorf("Len = %d, want 1 (one key written)", o.Len())
	}
}

func TestOverlaySetCopiesTheValue(t *testing.T) {
	s, _ := openStore(t)
	o := state.NewOverlay(s)
	v := []byte("value")

	o.Set([]byte("k"), v)
	v[0] = 'X'

	wantGet(t, "overlay", o, "k", "value")
}

func TestOverlayEmptyValueIsPresent(t *testing.T) {
	s, _ := openStore(t)
	o := state.NewOverlay(s)

	o.Set([]byte("k"), nil)

	if _, ok := o.Get([]byte("k")); !ok {
		t.Fatal("key set to an empty value reads as absent in the overlay")
	}
	if err := s.Commit(o, 1, nil); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Get([]byte("k")); !ok || len(v) != 0 {
		t.Errorf("store: Get = %q, %v; want empty, present", v, ok)
	}
}

func TestOverlayChainReadsThroughEveryParent(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{
		"store-only": []byte("s"),
		"shadowed":   []byte("from store"),
		"deleted":    []byte("from store"),
	})
	block := state.NewOverlay(s)
	block.Set([]byte("block-only"), []byte("b"))
	block.Set([]byte("shadowed"), []byte("from block"))
	tx := block.Child()
	tx.Delete([]byte("deleted"))
	tx.Set([]byte("tx-only"), []byte("t"))

	call := tx.Child()

	wantGet(t, "call", call, "store-only", "s")
	wantGet(t, "call", call, "block-only", "b")
	wantGet(t, "call", call, "tx-only", "t")
	wantGet(t, "call", call, "shadowed", "from block")
	wantAbsent(t, "call", call, "deleted")
	wantAbsent(t, "call", call, "nowhere")
	wantGet(t, "block", block, "deleted", "from store")
	wantAbsent(t, "block", block, "tx-only")
}

func TestChildWritesReachParentOnlyOnApply(t *testing.T) {
	s, _ := openStore(t)
	parent := state.NewOverlay(s)
	parent.Set([]byte("doomed"), []byte("p"))
	parent.Set([]byte("overwritten"), []byte("p"))
	child := parent.Child()
	child.Set([]byte("new"), []byte("c"))
	child.Set([]byte("overwritten"), []byte("c"))
	child.Delete([]byte("doomed"))

	wantAbsent(t, "parent before Apply", parent, "new")
	wantGet(t, "parent before Apply", parent, "overwritten", "p")
	wantGet(t, "parent before Apply", parent, "doomed", "p")

	child.Apply()

	wantGet(t, "parent after Apply", parent, "new", "c")
	wantGet(t, "parent after Apply", parent, "overwritten", "c")
	wantAbsent(t, "parent after Apply", parent, "doomed")
	if parent.Len() != 3 {
		t.Errorf("parent Len = %d, want 3", parent.Len())
	}
	wantAbsent(t, "store", s, "new")
}

func TestAppliedDeleteOfCommittedKeyReachesTheStore(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"k": []byte("v")})
	block := state.NewOverlay(s)
	tx := block.Child()
	tx.Delete([]byte("k"))

	tx.Apply()

	wantAbsent(t, "block", block, "k")
	if err := s.Commit(block, 2, nil); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, "store", s, "k")
}

func TestDiscardedChildLeavesParentUntouched(t *testing.T) {
	s, _ := openStore(t)
	parent := state.NewOverlay(s)
	parent.Set([]byte("k"), []byte("p"))
	child := parent.Child()

	child.Set([]byte("k"), []byte("c"))
	child.Set([]byte("other"), []byte("c"))
	// no Apply: the child is dropped

	wantGet(t, "parent", parent, "k", "p")
	wantAbsent(t, "parent", parent, "other")
	if parent.Len() != 1 {
		t.Errorf("parent Len = %d, want 1", parent.Len())
	}
}

func TestApplyOnStoreBackedOverlayPanics(t *testing.T) {
	s, _ := openStore(t)
	o := state.NewOverlay(s)
	o.Set([]byte("k"), []byte("v"))

	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Apply on an overlay over the store did not panic")
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, "Store.Commit") {
			t.Errorf("panic %q does not point to Store.Commit", msg)
		}
		wantAbsent(t, "store", s, "k")
	}()
	o.Apply()
}

// ---- Store ----

func TestFreshStoreHasNoLastCommit(t *testing.T) {
	s, _ := openStore(t)

	h, hash := s.LastCommit()

	if h != 0 || hash != nil {
		t.Errorf("LastCommit = %d, %x; want 0, nil", h, hash)
	}
}

func TestCommitIsDurableAcrossCloseAndOpen(t *testing.T) {
	s, dir := openStore(t)
	commit(t, s, 1, map[string][]byte{"gone": []byte("x"), "kept": []byte("x")})
	o := state.NewOverlay(s)
	o.Set([]byte("a"), []byte("1"))
	o.Set([]byte("b"), []byte("2"))
	o.Set([]byte("kept"), []byte("y"))
	o.Delete([]byte("gone"))
	hash := bytes.Repeat([]byte{0xab}, 32)

	if err := s.Commit(o, 2, hash); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	wantGet(t, "reopened", s2, "a", "1")
	wantGet(t, "reopened", s2, "b", "2")
	wantGet(t, "reopened", s2, "kept", "y")
	wantAbsent(t, "reopened", s2, "gone")
	h, got := s2.LastCommit()
	if h != 2 || !bytes.Equal(got, hash) {
		t.Errorf("LastCommit after reopen = %d, %x; want 2, %x", h, got, hash)
	}
}

func TestUncommittedOverlayLeavesNoTraceAfterReopen(t *testing.T) {
	s, dir := openStore(t)
	hash1 := commit(t, s, 1, map[string][]byte{"k": []byte("v1")})
	o := state.NewOverlay(s)
	o.Set([]byte("k"), []byte("v2"))
	o.Set([]byte("new"), []byte("x"))

	// The node stops before committing block 2.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, err := state.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()

	wantGet(t, "reopened", s2, "k", "v1")
	wantAbsent(t, "reopened", s2, "new")
	if h, got := s2.LastCommit(); h != 1 || !bytes.Equal(got, hash1) {
		t.Errorf("LastCommit = %d, %x; want 1, %x", h, got, hash1)
	}
}

func TestCommitLandsWritesAndHeightTogether(t *testing.T) {
	s, _ := openStore(t)
	hash1 := commit(t, s, 1, nil)
	o := state.NewOverlay(s)
	keys := make([]string, 200)
	for i := range keys {
		keys[i] = fmt.Sprintf("key/%03d", i)
		o.Set([]byte(keys[i]), []byte(keys[i]))
	}
	hash2 := o.AppHash(hash1, 2)

	// Before Commit the store shows none of the block and the old height.
	for _, k := range keys {
		wantAbsent(t, "store before Commit", s, k)
	}
	if h, got := s.LastCommit(); h != 1 || !bytes.Equal(got, hash1) {
		t.Fatalf("LastCommit before Commit = %d, %x", h, got)
	}

	if err := s.Commit(o, 2, hash2); err != nil {
		t.Fatal(err)
	}

	for _, k := range keys {
		wantGet(t, "store after Commit", s, k, k)
	}
	if h, got := s.LastCommit(); h != 2 || !bytes.Equal(got, hash2) {
		t.Errorf("LastCommit after Commit = %d, %x; want 2, %x", h, got, hash2)
	}
}

func TestLastCommitTracksTheLatestBlock(t *testing.T) {
	s, _ := openStore(t)
	var last []byte
	for h := int64(1); h <= 3; h++ {
		last = commit(t, s, h, map[string][]byte{fmt.Sprint(h): []byte("x")})
	}

	h, hash := s.LastCommit()

	if h != 3 || !bytes.Equal(hash, last) {
		t.Errorf("LastCommit = %d, %x; want 3, %x", h, hash, last)
	}
}

func TestStoreGetReturnsACopy(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"k": []byte("value")})

	v, _ := s.Get([]byte("k"))
	v[0] = 'X'

	wantGet(t, "store", s, "k", "value")
}

func TestCloseTwiceIsFine(t *testing.T) {
	s, _ := openStore(t)

	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

func TestOpenFailsOnAFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(path, []byte("not a db"), 0o600); err != nil {
		t.Fatal(err)
	}

	s, err := state.Open(path)

	if err == nil {
		s.Close()
		t.Fatal("Open on a regular file succeeded")
	}
}

// ---- Iterate ----

type kv struct{ k, v string }

func collect(s *state.Store, prefix []byte) []kv {
	var out []kv
	s.Iterate(prefix, func(k, v []byte) bool {
		out = append(out, kv{string(k), string(v)})
		return true
	})
	return out
}

func wantKVs(t *testing.T, name string, got, want []kv) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s:\n got %q\nwant %q", name, got, want)
	}
}

func TestIterateVisitsPrefixInKeyOrder(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{
		"acct/c":  []byte("3"),
		"acct/a":  []byte("1"),
		"acct/b":  []byte("2"),
		"acct":    []byte("no slash"),
		"acct0":   []byte("sibling"),
		"accs/z":  []byte("before"),
		"other/a": []byte("x"),
	})
	o := state.NewOverlay(s)
	o.Set([]byte("acct/uncommitted"), []byte("x"))

	got := collect(s, []byte("acct/"))

	wantKVs(t, "acct/", got, []kv{{"acct/a", "1"}, {"acct/b", "2"}, {"acct/c", "3"}})
}

func TestIterateSeesCommittedDeletes(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"p/a": []byte("1"), "p/b": []byte("2")})
	commit(t, s, 2, map[string][]byte{"p/a": nil})

	got := collect(s, []byte("p/"))

	wantKVs(t, "p/", got, []kv{{"p/b", "2"}})
}

func TestIterateStopsWhenFnReturnsFalse(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"p/1": []byte("a"), "p/2": []byte("b"), "p/3": []byte("c")})
	var seen []string

	s.Iterate([]byte("p/"), func(k, _ []byte) bool {
		seen = append(seen, string(k))
		return len(seen) < 2
	})

	if fmt.Sprint(seen) != "[p/1 p/2]" {
		t.Errorf("visited %q, want [p/1 p/2]", seen)
	}
}

func TestIteratePrefixEndingIn0xff(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{
		"p\xfe":     []byte("below"),
		"p\xfe\xff": []byte("below"),
		"p\xff":     []byte("1"),
		"p\xff\x00": []byte("2"),
		"p\xff\xff": []byte("3"),
		"q":         []byte("above"),
		"q\x00":     []byte("above"),
	})

	got := collect(s, []byte("p\xff"))

	wantKVs(t, "p\\xff", got, []kv{{"p\xff", "1"}, {"p\xff\x00", "2"}, {"p\xff\xff", "3"}})
}

func TestIteratePrefixOfOnly0xff(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{
		"\xfe\xff\xff": []byte("below"),
		"\xff\xfe":     []byte("below"),
		"\xff\xff":     []byte("1"),
		"\xff\xff\x01": []byte("2"),
		"\xff\xff\xff": []byte("3"),
	})

	got := collect(s, []byte("\xff\xff"))

	wantKVs(t, "\\xff\\xff", got, []kv{{"\xff\xff", "1"}, {"\xff\xff\x01", "2"}, {"\xff\xff\xff", "3"}})
}

func TestIterateEmptyPrefixVisitsEverything(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"b": []byte("2"), "a": []byte("1"), "\xff": []byte("3")})
	var keys []string

	s.Iterate(nil, func(k, _ []byte) bool {
		keys = append(keys, string(k))
		return true
	})

	for _, want := range []string{"a", "b", "\xff"} {
		found := false
		for _, k := range keys {
			found = found || k == want
		}
		if !found {
			t.Errorf("empty prefix did not visit %q (visited %q)", want, keys)
		}
	}
	for i := 1; i < len(keys); i++ {
		if keys[i-1] >= keys[i] {
			t.Errorf("keys out of order: %q then %q", keys[i-1], keys[i])
		}
	}
}

func TestIterateHandsOutCopies(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"p/a": []byte("1")})

	s.Iterate([]byte("p/"), func(k, v []byte) bool {
		k[0], v[0] = 'X', 'X'
		return true
	})

	wantGet(t, "store", s, "p/a", "1")
}

// ---- AppHash ----

func TestAppHashIsIndependentOfWriteOrder(t *testing.T) {
	s, _ := openStore(t)
	prev := bytes.Repeat([]byte{7}, 32)
	a := state.NewOverlay(s)
	a.Set([]byte("x"), []byte("1"))
	a.Set([]byte("y"), []byte("2"))
	a.Delete([]byte("z"))
	a.Set([]byte("w"), []byte("first"))
	a.Set([]byte("w"), []byte("last"))
	b := state.NewOverlay(s)
	b.Set([]byte("w"), []byte("last"))
	b.Delete([]byte("z"))
	b.Set([]byte("y"), []byte("2"))
	b.Set([]byte("x"), []byte("1"))
	// c gets the same writes through a child overlay.
	c := state.NewOverlay(s)
	cc := c.Child()
	cc.Delete([]byte("z"))
	cc.Set([]byte("x"), []byte("1"))
	cc.Apply()
	c.Set([]byte("y"), []byte("2"))
	c.Set([]byte("w"), []byte("last"))

	want := a.AppHash(prev, 5)

	for i := 0; i < 20; i++ { // map order varies between calls
		if got := a.AppHash(prev, 5); !bytes.Equal(got, want) {
			t.Fatalf("AppHash not stable across calls: %x vs %x", got, want)
		}
	}
	if got := b.AppHash(prev, 5); !bytes.Equal(got, want) {
		t.Errorf("reordered writes: %x, want %x", got, want)
	}
	if got := c.AppHash(prev, 5); !bytes.Equal(got, want) {
		t.Errorf("writes via a child: %x, want %x", got, want)
	}
	if len(want) != sha256.Size {
		t.Errorf("AppHash is %d bytes, want %d", len(want), sha256.Size)
	}
}

func TestAppHashDependsOnlyOnTheBlocksWrites(t *testing.T) {
	s1, _ := openStore(t)
	s2, _ := openStore(t)
	commit(t, s2, 1, map[string][]byte{"unrelated": []byte("state"), "x": []byte("old")})
	o1 := state.NewOverlay(s1)
	o2 := state.NewOverlay(s2)
	for _, o := range []*state.Overlay{o1, o2} {
		o.Set([]byte("x"), []byte("1"))
	}

	h1 := o1.AppHash(nil, 2)
	h2 := o2.AppHash(nil, 2)

	if !bytes.Equal(h1, h2) {
		t.Errorf("same writes over different parents hash differently: %x vs %x", h1, h2)
	}
}

func TestAppHashChangesWithEveryInput(t *testing.T) {
	s, _ := openStore(t)
	prev := bytes.Repeat([]byte{1}, 32)
	base := func(o *state.Overlay) {
		o.Set([]byte("k1"), []byte("v1"))
		o.Set([]byte("k2"), []byte("v2"))
		o.Delete([]byte("k3"))
	}
	type variant struct {
		name   string
		writes func(o *state.Overlay)
		prev   []byte
		height int64
	}
	variants := []variant{
		{name: "base", writes: base},
		{name: "other key", writes: func(o *state.Overlay) {
			o.Set([]byte("k1"), []byte("v1"))
			o.Set([]byte("k2x"), []byte("v2"))
			o.Delete([]byte("k3"))
		}},
		{name: "other value", writes: func(o *state.Overlay) {
			o.Set([]byte("k1"), []byte("v1"))
			o.Set([]byte("k2"), []byte("v2x"))
			o.Delete([]byte("k3"))
		}},
		{name: "extra write", writes: func(o *state.Overlay) { base(o); o.Set([]byte("k4"), []byte("v4")) }},
		{name: "extra delete", writes: func(o *state.Overlay) { base(o); o.Delete([]byte("k4")) }},
		{name: "delete dropped", writes: func(o *state.Overlay) {
			o.Set([]byte("k1"), []byte("v1"))
			o.Set([]byte("k2"), []byte("v2"))
		}},
		{name: "delete turned into empty set", writes: func(o *state.Overlay) {
			o.Set([]byte("k1"), []byte("v1"))
			o.Set([]byte("k2"), []byte("v2"))
			o.Set([]byte("k3"), nil)
		}},
		{name: "set turned into delete", writes: func(o *state.Overlay) {
			o.Set([]byte("k1"), []byte("v1"))
			o.Delete([]byte("k2"))
			o.Delete([]byte("k3"))
		}},
		{name: "key/value boundary moved", writes: func(o *state.Overlay) {
			o.Set([]byte("k1v"), []byte("1"))
			o.Set([]byte("k2"), []byte("v2"))
			o.Delete([]byte("k3"))
		}},
		{name: "height", writes: base, height: 8},
		{name: "previous hash", writes: base, prev: bytes.Repeat([]byte{2}, 32)},
		{name: "no previous hash", writes: base, prev: []byte{}},
		{name: "no writes", writes: func(*state.Overlay) {}},
	}
	seen := map[string]string{}

	for _, v := range variants {
		o := state.NewOverlay(s)
		v.writes(o)
		p, h := prev, int64(7)
		if v.prev != nil {
			p = v.prev
		}
		if v.height != 0 {
			h = v.height
		}
		hash := string(o.AppHash(p, h))
		if other, dup := seen[hash]; dup {
			t.Errorf("%q and %q have the same app hash", v.name, other)
		}
		seen[hash] = v.name
	}
}

func TestEmptyBlockStillChains(t *testing.T) {
	s, _ := openStore(t)
	prev := bytes.Repeat([]byte{9}, 32)
	empty := state.NewOverlay(s)

	h := empty.AppHash(prev, 4)

	if bytes.Equal(h, prev) {
		t.Error("empty block repeats the previous app hash")
	}
	if bytes.Equal(h, empty.AppHash(prev, 5)) {
		t.Error("empty blocks at different heights hash alike")
	}
	if bytes.Equal(h, empty.AppHash(bytes.Repeat([]byte{8}, 32), 4)) {
		t.Error("empty block does not commit to the previous app hash")
	}
	// The documented construction: SHA-256(prev || height || SHA-256(writes)),
	// with no writes and the height as 8 big-endian bytes.
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], 4)
	noWrites := sha256.Sum256(nil)
	want := sha256.Sum256(append(append(append([]byte{}, prev...), hb[:]...), noWrites[:]...))
	if !bytes.Equal(h, want[:]) {
		t.Errorf("empty block hash %x, want %x", h, want)
	}
}

func TestChainedCommitsReproduceFromTheSameBlocks(t *testing.T) {
	blocks := []map[string][]byte{
		{"a": []byte("1"), "b": []byte("2")},
		{},
		{"a": nil, "c": []byte("3")},
	}
	run := func() []byte {
		s, _ := openStore(t)
		for i, b := range blocks {
			commit(t, s, int64(i+1), b)
		}
		_, h := s.LastCommit()
		return h
	}

	h1, h2 := run(), run()

	if !bytes.Equal(h1, h2) {
		t.Errorf("two nodes replaying the same blocks disagree: %x vs %x", h1, h2)
	}
}

// Pairs of blocks whose writes would serialise to the same bytes if any of
// the key length, the set/delete tag or the value length were left out of
// the hash: their app hashes must differ.
func TestAppHashEncodingIsUnambiguous(t *testing.T) {
	s, _ := openStore(t)
	type op struct {
		k, v string
		del  bool
	}
	pairs := []struct {
		name string
		a, b []op
	}{
		{"set/delete tag", []op{{k: "a", v: "b"}, {k: "x", del: true}}, []op{{k: "a", del: true}, {k: "b", v: "x"}}},
		{"key length", []op{{k: "a", v: ""}}, []op{{k: "a\x01\x00\x00\x00\x00\x00\x00\x00", del: true}}},
		{"value length", []op{{k: "a", v: "bc"}}, []op{{k: "ab", v: "c"}}},
	}
	for _, p := range pairs {
		hash := func(ops []op) []byte {
			o := state.NewOverlay(s)
			for _, w := range ops {
				if w.del {
					o.Delete([]byte(w.k))
				} else {
					o.Set([]byte(w.k), []byte(w.v))
				}
			}
			return o.AppHash(nil, 1)
		}

		if bytes.Equal(hash(p.a), hash(p.b)) {
			t.Errorf("%s: %+v and %+v hash alike", p.name, p.a, p.b)
		}
	}
}

// The app hash is consensus-critical: every node must compute it byte for
// byte alike. This pins the encoding of the writes: in key order, each
// 8-byte big-endian key length, key, then 0 for a deletion or 1, 8-byte
// value length and value.
func TestAppHashEncodingOfWrites(t *testing.T) {
	s, _ := openStore(t)
	prev := bytes.Repeat([]byte{3}, 32)
	o := state.NewOverlay(s)
	o.Set([]byte("zz"), []byte("last"))
	o.Delete([]byte("m"))
	o.Set([]byte("a"), []byte("first"))

	got := o.AppHash(prev, 12)

	u64 := func(n int) []byte {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], uint64(n))
		return b[:]
	}
	var w []byte
	w = append(append(append(w, u64(1)...), "a"...), 1)
	w = append(append(w, u64(5)...), "first"...)
	w = append(append(append(w, u64(1)...), "m"...), 0)
	w = append(append(append(w, u64(2)...), "zz"...), 1)
	w = append(append(w, u64(4)...), "last"...)
	writes := sha256.Sum256(w)
	want := sha256.Sum256(append(append(append([]byte{}, prev...), u64(12)...), writes[:]...))
	if !bytes.Equal(got, want[:]) {
		t.Errorf("AppHash = %x, want %x", got, want)
	}
}
