package state_test

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/parentchain/state"
)

// testModules are the modules of the stores these tests open: every key a
// test writes starts with one of them and a '/'.
var testModules = []string{"a", "b", "m"}

func testConfig() state.Config { return state.Config{Modules: testModules} }

// openStore opens a fresh store in a temporary directory and closes it when
// the test ends.
func openStore(t testing.TB) (*state.Store, string) {
	t.Helper()
	return openStoreWith(t, testConfig())
}

// openStoreWith opens a fresh store with cfg in a temporary directory and
// closes it when the test ends.
func openStoreWith(t testing.TB, cfg state.Config) (*state.Store, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "state")
	s, err := state.Open(dir, cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s, dir
}

// reopen opens dir again with cfg and closes it when the test ends.
func reopen(t testing.TB, dir string, cfg state.Config) *state.Store {
	t.Helper()
	s, err := state.Open(dir, cfg)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// commit commits kv (a nil value means delete) as block height and returns
// the new app hash.
func commit(t testing.TB, s *state.Store, height int64, kv map[string][]byte) []byte {
	t.Helper()
	o := state.NewOverlay(s)
	for k, v := range kv {
		if v == nil {
			o.Delete([]byte(k))
		} else {
			o.Set([]byte(k), v)
		}
	}
	hash, err := s.CommitOverlay(o, height)
	if err != nil {
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
	commit(t, s, 1, map[string][]byte{"m/k": []byte("committed")})

	o := state.NewOverlay(s)

	wantGet(t, "overlay", o, "m/k", "committed")
	wantAbsent(t, "overlay", o, "m/missing")
	if o.Len() != 0 {
		t.Errorf("reads buffered %d writes", o.Len())
	}
}

func TestOverlaySetShadowsParentWithoutTouchingIt(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/k": []byte("old")})
	o := state.NewOverlay(s)

	o.Set([]byte("m/k"), []byte("new"))
	o.Set([]byte("m/fresh"), []byte("v"))

	wantGet(t, "overlay", o, "m/k", "new")
	wantGet(t, "overlay", o, "m/fresh", "v")
	wantGet(t, "store", s, "m/k", "old")
	wantAbsent(t, "store", s, "m/fresh")
	if o.Len() != 2 {
		t.Errorf("Len = %d, want 2", o.Len())
	}
}

func TestOverlayDeleteShadowsParentAndSetRevives(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/k": []byte("old")})
	o := state.NewOverlay(s)

	o.Delete([]byte("m/k"))

	wantAbsent(t, "overlay after delete", o, "m/k")
	wantGet(t, "store", s, "m/k", "old")

	o.Set([]byte("m/k"), []byte("again"))
	wantGet(t, "overlay after re-set", o, "m/k", "again")
	if o.Len() != 1 {
		t.Errorf("Len = %d, want 1 (one key written)", o.Len())
	}
}

func TestOverlaySetCopiesTheValue(t *testing.T) {
	s, _ := openStore(t)
	o := state.NewOverlay(s)
	v := []byte("value")

	o.Set([]byte("m/k"), v)
	v[0] = 'X'

	wantGet(t, "overlay", o, "m/k", "value")
}

func TestOverlayEmptyValueIsPresent(t *testing.T) {
	s, _ := openStore(t)
	o := state.NewOverlay(s)

	o.Set([]byte("m/k"), nil)

	if _, ok := o.Get([]byte("m/k")); !ok {
		t.Fatal("key set to an empty value reads as absent in the overlay")
	}
	if _, err := s.CommitOverlay(o, 1); err != nil {
		t.Fatal(err)
	}
	if v, ok := s.Get([]byte("m/k")); !ok || len(v) != 0 {
		t.Errorf("store: Get = %q, %v; want empty, present", v, ok)
	}
}

func TestOverlayChainReadsThroughEveryParent(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{
		"m/store-only": []byte("s"),
		"m/shadowed":   []byte("from store"),
		"m/deleted":    []byte("from store"),
	})
	block := state.NewOverlay(s)
	block.Set([]byte("m/block-only"), []byte("b"))
	block.Set([]byte("m/shadowed"), []byte("from block"))
	tx := block.Child()
	tx.Delete([]byte("m/deleted"))
	tx.Set([]byte("m/tx-only"), []byte("t"))

	call := tx.Child()

	wantGet(t, "call", call, "m/store-only", "s")
	wantGet(t, "call", call, "m/block-only", "b")
	wantGet(t, "call", call, "m/tx-only", "t")
	wantGet(t, "call", call, "m/shadowed", "from block")
	wantAbsent(t, "call", call, "m/deleted")
	wantAbsent(t, "call", call, "m/nowhere")
	wantGet(t, "block", block, "m/deleted", "from store")
	wantAbsent(t, "block", block, "m/tx-only")
}

func TestChildWritesReachParentOnlyOnApply(t *testing.T) {
	s, _ := openStore(t)
	parent := state.NewOverlay(s)
	parent.Set([]byte("m/doomed"), []byte("p"))
	parent.Set([]byte("m/overwritten"), []byte("p"))
	child := parent.Child()
	child.Set([]byte("m/new"), []byte("c"))
	child.Set([]byte("m/overwritten"), []byte("c"))
	child.Delete([]byte("m/doomed"))

	wantAbsent(t, "parent before Apply", parent, "m/new")
	wantGet(t, "parent before Apply", parent, "m/overwritten", "p")
	wantGet(t, "parent before Apply", parent, "m/doomed", "p")

	child.Apply()

	wantGet(t, "parent after Apply", parent, "m/new", "c")
	wantGet(t, "parent after Apply", parent, "m/overwritten", "c")
	wantAbsent(t, "parent after Apply", parent, "m/doomed")
	if parent.Len() != 3 {
		t.Errorf("parent Len = %d, want 3", parent.Len())
	}
	wantAbsent(t, "store", s, "m/new")
}

func TestAppliedDeleteOfCommittedKeyReachesTheStore(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/k": []byte("v")})
	block := state.NewOverlay(s)
	tx := block.Child()
	tx.Delete([]byte("m/k"))

	tx.Apply()

	wantAbsent(t, "block", block, "m/k")
	if _, err := s.CommitOverlay(block, 2); err != nil {
		t.Fatal(err)
	}
	wantAbsent(t, "store", s, "m/k")
}

func TestDiscardedChildLeavesParentUntouched(t *testing.T) {
	s, _ := openStore(t)
	parent := state.NewOverlay(s)
	parent.Set([]byte("m/k"), []byte("p"))
	child := parent.Child()

	child.Set([]byte("m/k"), []byte("c"))
	child.Set([]byte("m/other"), []byte("c"))
	// no Apply: the child is dropped

	wantGet(t, "parent", parent, "m/k", "p")
	wantAbsent(t, "parent", parent, "m/other")
	if parent.Len() != 1 {
		t.Errorf("parent Len = %d, want 1", parent.Len())
	}
}

func TestApplyOnStoreBackedOverlayPanics(t *testing.T) {
	s, _ := openStore(t)
	o := state.NewOverlay(s)
	o.Set([]byte("m/k"), []byte("v"))

	defer func() {
		r := recover()
		if r == nil {
			t.Fatal("Apply on an overlay over the store did not panic")
		}
		if msg := fmt.Sprint(r); !strings.Contains(msg, "Store.Commit") {
			t.Errorf("panic %q does not point to Store.Commit", msg)
		}
		wantAbsent(t, "store", s, "m/k")
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
	commit(t, s, 1, map[string][]byte{"m/gone": []byte("x"), "m/kept": []byte("x")})
	o := state.NewOverlay(s)
	o.Set([]byte("a/1"), []byte("1"))
	o.Set([]byte("b/2"), []byte("2"))
	o.Set([]byte("m/kept"), []byte("y"))
	o.Delete([]byte("m/gone"))

	hash, err := s.CommitOverlay(o, 2)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := reopen(t, dir, testConfig())

	wantGet(t, "reopened", s2, "a/1", "1")
	wantGet(t, "reopened", s2, "b/2", "2")
	wantGet(t, "reopened", s2, "m/kept", "y")
	wantAbsent(t, "reopened", s2, "m/gone")
	h, got := s2.LastCommit()
	if h != 2 || !bytes.Equal(got, hash) {
		t.Errorf("LastCommit after reopen = %d, %x; want 2, %x", h, got, hash)
	}
}

func TestUncommittedOverlayLeavesNoTraceAfterReopen(t *testing.T) {
	s, dir := openStore(t)
	hash1 := commit(t, s, 1, map[string][]byte{"m/k": []byte("v1")})
	o := state.NewOverlay(s)
	o.Set([]byte("m/k"), []byte("v2"))
	o.Set([]byte("m/new"), []byte("x"))
	if _, err := s.Stage(o); err != nil { // staged, never committed
		t.Fatal(err)
	}

	// The node stops before committing block 2.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := reopen(t, dir, testConfig())

	wantGet(t, "reopened", s2, "m/k", "v1")
	wantAbsent(t, "reopened", s2, "m/new")
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
		keys[i] = fmt.Sprintf("%s/key/%03d", testModules[i%len(testModules)], i)
		o.Set([]byte(keys[i]), []byte(keys[i]))
	}
	staged, err := s.Stage(o)
	if err != nil {
		t.Fatal(err)
	}
	hash2 := staged.AppHash()

	// Before Commit the store shows none of the block and the old height.
	for _, k := range keys {
		wantAbsent(t, "store before Commit", s, k)
	}
	if h, got := s.LastCommit(); h != 1 || !bytes.Equal(got, hash1) {
		t.Fatalf("LastCommit before Commit = %d, %x", h, got)
	}

	if err := s.Commit(o, 2, staged); err != nil {
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
		last = commit(t, s, h, map[string][]byte{fmt.Sprintf("m/%d", h): []byte("x")})
	}

	h, hash := s.LastCommit()

	if h != 3 || !bytes.Equal(hash, last) {
		t.Errorf("LastCommit = %d, %x; want 3, %x", h, hash, last)
	}
}

func TestStoreGetReturnsACopy(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/k": []byte("value")})

	v, _ := s.Get([]byte("m/k"))
	v[0] = 'X'

	wantGet(t, "store", s, "m/k", "value")
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

	s, err := state.Open(path, testConfig())

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
		"m/acct/c":  []byte("3"),
		"m/acct/a":  []byte("1"),
		"m/acct/b":  []byte("2"),
		"m/acct":    []byte("no slash"),
		"m/acct0":   []byte("sibling"),
		"m/accs/z":  []byte("before"),
		"m/other/a": []byte("x"),
		"a/acct/a":  []byte("other module"),
	})
	o := state.NewOverlay(s)
	o.Set([]byte("m/acct/uncommitted"), []byte("x"))

	got := collect(s, []byte("m/acct/"))

	wantKVs(t, "m/acct/", got, []kv{{"m/acct/a", "1"}, {"m/acct/b", "2"}, {"m/acct/c", "3"}})
}

func TestIterateSeesCommittedDeletes(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/p/a": []byte("1"), "m/p/b": []byte("2")})
	commit(t, s, 2, map[string][]byte{"m/p/a": nil})

	got := collect(s, []byte("m/p/"))

	wantKVs(t, "m/p/", got, []kv{{"m/p/b", "2"}})
}

func TestIterateStopsWhenFnReturnsFalse(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/p/1": []byte("a"), "m/p/2": []byte("b"), "m/p/3": []byte("c")})
	var seen []string

	s.Iterate([]byte("m/p/"), func(k, _ []byte) bool {
		seen = append(seen, string(k))
		return len(seen) < 2
	})

	if fmt.Sprint(seen) != "[m/p/1 m/p/2]" {
		t.Errorf("visited %q, want [m/p/1 m/p/2]", seen)
	}
}

func TestIteratePrefixEndingIn0xff(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{
		"m/p\xfe":     []byte("below"),
		"m/p\xfe\xff": []byte("below"),
		"m/p\xff":     []byte("1"),
		"m/p\xff\x00": []byte("2"),
		"m/p\xff\xff": []byte("3"),
		"m/q":         []byte("above"),
		"m/q\x00":     []byte("above"),
	})

	got := collect(s, []byte("m/p\xff"))

	wantKVs(t, "m/p\\xff", got, []kv{{"m/p\xff", "1"}, {"m/p\xff\x00", "2"}, {"m/p\xff\xff", "3"}})
}

// A prefix of only 0xff bytes has no upper bound: the iteration runs to the
// end of the key space. Module names may hold 0xff bytes, so the keys here
// are in such modules.
func TestIteratePrefixOfOnly0xff(t *testing.T) {
	s, _ := openStoreWith(t, state.Config{Modules: []string{
		"\xfe\xff\xff", "\xff\xfe", "\xff\xff", "\xff\xff\x01", "\xff\xff\xff",
	}})
	commit(t, s, 1, map[string][]byte{
		"\xfe\xff\xff/\xff":     []byte("below"),
		"\xff\xfe/\xff":         []byte("below"),
		"\xff\xff/1":            []byte("1"),
		"\xff\xff\x01/2":        []byte("2"),
		"\xff\xff\xff/\xff":     []byte("3"),
		"\xff\xff\xff/\xff\xff": []byte("4"),
	})

	got := collect(s, []byte("\xff\xff"))

	wantKVs(t, "\\xff\\xff", got, []kv{
		{"\xff\xff\x01/2", "2"}, {"\xff\xff/1", "1"}, {"\xff\xff\xff/\xff", "3"}, {"\xff\xff\xff/\xff\xff", "4"},
	})
}

func TestIterateEmptyPrefixVisitsEverything(t *testing.T) {
	s, _ := openStoreWith(t, state.Config{Modules: []string{"a", "b", "\xff"}})
	commit(t, s, 1, map[string][]byte{"b/2": []byte("2"), "a/1": []byte("1"), "\xff/3": []byte("3")})
	var keys []string

	s.Iterate(nil, func(k, _ []byte) bool {
		keys = append(keys, string(k))
		return true
	})

	for _, want := range []string{"a/1", "b/2", "\xff/3"} {
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
	commit(t, s, 1, map[string][]byte{"m/p/a": []byte("1")})

	s.Iterate([]byte("m/p/"), func(k, v []byte) bool {
		k[0], v[0] = 'X', 'X'
		return true
	})

	wantGet(t, "store", s, "m/p/a", "1")
}
