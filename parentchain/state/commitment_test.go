package state_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	"github.com/cometbft/cometbft/crypto/merkle"

	"github.com/integritee-go/integritee/parentchain/proof"
	"github.com/integritee-go/integritee/parentchain/state"
)

// ---- helpers ----

// refAppHash computes the app hash of a key/value set straight from its
// definition (package proof's documentation), with nothing but SHA-256 and
// CometBFT's merkle.HashFromByteSlices: per module, a compact binary sparse
// Merkle tree over SHA-256(key) paths whose leaves are CometBFT ValueOp leaf
// hashes; then one ValueOp-shaped item per module, in name order.
func refAppHash(modules []string, kv map[string][]byte) []byte {
	type leaf struct{ path, hash [32]byte }
	byModule := map[string][]leaf{}
	for k, v := range kv {
		m, _, ok := strings.Cut(k, "/")
		if !ok {
			panic(fmt.Sprintf("key %q has no module", k))
		}
		vh := sha256.Sum256(v)
		buf := binary.AppendUvarint([]byte{0}, uint64(len(k)))
		buf = append(buf, k...)
		buf = append(append(buf, 32), vh[:]...)
		byModule[m] = append(byModule[m], leaf{sha256.Sum256([]byte(k)), sha256.Sum256(buf)})
	}
	bit := func(p [32]byte, i int) byte { return p[i/8] >> (7 - i%8) & 1 }
	var root func(ls []leaf, depth int) [32]byte
	root = func(ls []leaf, depth int) [32]byte {
		switch len(ls) {
		case 0:
			return [32]byte{}
		case 1:
			return ls[0].hash
		}
		var l, r []leaf
		for _, x := range ls {
			if bit(x.path, depth) == 0 {
				l = append(l, x)
			} else {
				r = append(r, x)
			}
		}
		lh, rh := root(l, depth+1), root(r, depth+1)
		return sha256.Sum256(append(append([]byte{1}, lh[:]...), rh[:]...))
	}
	names := slices.Sorted(slices.Values(modules))
	items := make([][]byte, len(names))
	for i, n := range names {
		r := root(byModule[n], 0)
		rh := sha256.Sum256(r[:])
		item := binary.AppendUvarint(nil, uint64(len(n)))
		item = append(item, n...)
		items[i] = append(append(item, 32), rh[:]...)
	}
	return merkle.HashFromByteSlices(items)
}

// fromScratch returns the app hash a fresh store with cfg commits for kv
// written in one block.
func fromScratch(t testing.TB, cfg state.Config, kv map[string][]byte) []byte {
	t.Helper()
	s, _ := openStoreWith(t, cfg)
	defer s.Close()
	return commit(t, s, 1, kv)
}

// contents reads every module key of the store.
func contents(s *state.Store) map[string][]byte {
	out := map[string][]byte{}
	for _, m := range s.Modules() {
		s.Iterate([]byte(m+"/"), func(k, v []byte) bool {
			out[string(k)] = v
			return true
		})
	}
	return out
}

func sameKV(a, b map[string][]byte) bool { return maps.EqualFunc(a, b, bytes.Equal) }

// tamper opens a closed store's directory with pebble itself and lets fn
// change it behind the store's back.
func tamper(t *testing.T, dir string, fn func(db *pebble.DB) error) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{Logger: silent{}})
	if err != nil {
		t.Fatalf("pebble.Open: %v", err)
	}
	if err := fn(db); err != nil {
		t.Fatalf("tamper: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("pebble close: %v", err)
	}
}

// silent keeps pebble's replay messages out of the test output.
type silent struct{}

func (silent) Infof(string, ...any) {}
func (silent) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// checkProof proves key at height and checks the answer against want (nil:
// absent) and the app hash of that height.
func checkProof(t testing.TB, s *state.Store, height int64, key string, want []byte) *state.Proof {
	t.Helper()
	p, err := s.Prove(height, []byte(key))
	if err != nil {
		t.Fatalf("Prove(%d, %q): %v", height, key, err)
	}
	if p.Height != height || string(p.Key) != key {
		t.Errorf("Prove(%d, %q) answered height %d key %q", height, key, p.Height, p.Key)
	}
	if (p.Value == nil) != (want == nil) || !bytes.Equal(p.Value, want) {
		t.Errorf("Prove(%d, %q).Value = %q (nil %v), want %q (nil %v)", height, key, p.Value, p.Value == nil, want, want == nil)
	}
	app, err := s.AppHashAt(height)
	if err != nil {
		t.Fatalf("AppHashAt(%d): %v", height, err)
	}
	if err := proof.Verify(p.Ops, app, []byte(key), p.Value); err != nil {
		t.Errorf("proof of %q at %d does not verify: %v", key, height, err)
	}
	return p
}

// ---- the app hash is a function of the state ----

// Four nodes reach the same key/value set by different roads: one block in
// key order; one block written in another order, through child overlays,
// with overwrites and deletions of keys that never existed; three blocks
// with a key created and removed on the way; one block per key in reverse
// order starting at another height, under a Config listing the modules in
// another order. They must agree on the app hash, and it must be the one
// the definition gives.
func TestAppHashDependsOnlyOnTheFinalState(t *testing.T) {
	final := map[string][]byte{
		"a/x":     []byte("1"),
		"m/y":     []byte("2"),
		"b/z":     []byte("3"),
		"m/w":     []byte("last"),
		"m/empty": {},
	}
	want := refAppHash(testModules, final)

	// One block, key order.
	s1, _ := openStore(t)
	h1 := commit(t, s1, 1, final)

	// One block, other order, via children, with overwrites and absent deletes.
	s2, _ := openStore(t)
	o := state.NewOverlay(s2)
	o.Set([]byte("m/w"), []byte("first"))
	o.Delete([]byte("b/never"))
	tx := o.Child()
	tx.Set([]byte("m/empty"), nil)
	tx.Set([]byte("b/z"), []byte("3"))
	tx.Set([]byte("m/w"), []byte("last"))
	tx.Apply()
	dropped := o.Child()
	dropped.Set([]byte("a/dropped"), []byte("x"))
	o.Set([]byte("m/tmp"), []byte("t"))
	o.Set([]byte("m/y"), []byte("2"))
	o.Delete([]byte("m/tmp"))
	o.Set([]byte("a/x"), []byte("1"))
	h2, err := s2.CommitOverlay(o, 1)
	if err != nil {
		t.Fatal(err)
	}

	// Three blocks.
	s3, _ := openStore(t)
	commit(t, s3, 1, map[string][]byte{"a/x": []byte("0"), "m/y": []byte("2"), "m/tmp": []byte("t")})
	commit(t, s3, 2, map[string][]byte{"m/tmp": nil, "m/w": []byte("first"), "b/z": []byte("3")})
	h3 := commit(t, s3, 3, map[string][]byte{"m/w": []byte("last"), "a/x": []byte("1"), "m/empty": {}, "a/never": nil})

	// One key per block, reverse key order, from height 10, modules listed
	// in another order.
	s4, _ := openStoreWith(t, state.Config{Modules: []string{"m", "b", "a"}})
	keys := slices.Sorted(maps.Keys(final))
	slices.Reverse(keys)
	var h4 []byte
	for i, k := range keys {
		h4 = commit(t, s4, int64(10+i), map[string][]byte{k: final[k]})
	}

	for i, got := range [][]byte{h1, h2, h3, h4} {
		if !bytes.Equal(got, want) {
			t.Errorf("road %d: app hash %X, want %X", i+1, got, want)
		}
	}
	for i, s := range []*state.Store{s1, s2, s3, s4} {
		if got := contents(s); !sameKV(got, final) {
			t.Errorf("road %d: state %q, want %q", i+1, got, final)
		}
	}
	if len(want) != sha256.Size {
		t.Errorf("app hash is %d bytes", len(want))
	}
}

// The genesis of a chain that writes nothing has the app hash of empty
// modules: every module root is 32 zero bytes.
func TestAppHashOfTheEmptyState(t *testing.T) {
	s, _ := openStore(t)

	h := commit(t, s, 1, nil)

	if want := refAppHash(testModules, nil); !bytes.Equal(h, want) {
		t.Errorf("empty state: %X, want %X", h, want)
	}
	roots := make([]proof.Hash, len(testModules))
	if want := proof.AppHash(testModules, roots); !bytes.Equal(h, want) {
		t.Errorf("empty state: %X, proof.AppHash of empty roots %X", h, want)
	}
}

// Many blocks of random inserts, updates, deletes (of present and absent
// keys, and of whole modules), rewrites of the same value, writes through
// child overlays that are applied or dropped, empty blocks, and restarts.
// At every block the incrementally maintained app hash must equal the app
// hash of a fresh store given the same key/value set in one block, and the
// one the definition gives; it must change exactly when the state did; the
// store must hold exactly the model; proofs at every provable height must
// give the value of that height. After each restart Open must succeed (the
// rebuilt trees give the committed app hash), LastCommit must be unchanged
// and only the last height provable.
func TestRandomisedIncrementalAppHashMatchesFromScratch(t *testing.T) {
	blocks := 60
	if testing.Short() {
		blocks = 20
	}
	seeds := []uint64{1, 2, 3, uint64(time.Now().UnixNano())}
	for _, seed := range seeds {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) {
			t.Parallel()
			randomisedRun(t, seed, blocks)
		})
	}
}

func randomisedRun(t *testing.T, seed uint64, blocks int) {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	cfg := state.Config{Modules: []string{"m", "a", "b", "c"}, Versions: 4}
	dir := filepath.Join(t.TempDir(), "state")
	s, err := state.Open(dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { s.Close() }()

	model := map[string][]byte{}
	history := map[int64]map[string][]byte{}
	hashes := map[int64][]byte{}
	restartedAt := int64(1)
	randomKey := func() string {
		return fmt.Sprintf("%s/k%d", cfg.Modules[rng.IntN(len(cfg.Modules))], rng.IntN(300))
	}
	randomValue := func() []byte {
		v := make([]byte, rng.IntN(20)) // empty values included
		for i := range v {
			v[i] = byte(rng.IntN(256))
		}
		return v
	}
	pick := func(m map[string][]byte) string {
		keys := slices.Sorted(maps.Keys(m))
		return keys[rng.IntN(len(keys))]
	}
	// op applies one random write to o and to its model m.
	kinds := []string{"insert", "insert many", "update", "delete", "delete absent", "same value", "empty a module", "transient"}
	counts := make([]int, len(kinds))
	op := func(o *state.Overlay, m map[string][]byte) {
		r := rng.IntN(100)
		switch {
		case r < 25:
			counts[0]++
			k, v := randomKey(), randomValue()
			o.Set([]byte(k), v)
			m[k] = v
		case r < 30:
			counts[1]++
			for range 30 {
				k, v := randomKey(), randomValue()
				o.Set([]byte(k), v)
				m[k] = v
			}
		case r < 50 && len(m) > 0:
			counts[2]++
			k, v := pick(m), randomValue()
			o.Set([]byte(k), v)
			m[k] = v
		case r < 65 && len(m) > 0:
			counts[3]++
			k := pick(m)
			o.Delete([]byte(k))
			delete(m, k)
		case r < 75:
			counts[4]++
			k := randomKey()
			if _, ok := m[k]; ok {
				k = fmt.Sprintf("%s/never%d", cfg.Modules[rng.IntN(len(cfg.Modules))], rng.IntN(50))
			}
			o.Delete([]byte(k))
		case r < 85 && len(m) > 0:
			counts[5]++
			k := pick(m)
			o.Set([]byte(k), bytes.Clone(m[k]))
		case r < 86 && rng.IntN(2) == 0:
			counts[6]++
			mod := cfg.Modules[rng.IntN(len(cfg.Modules))]
			for k := range m {
				if strings.HasPrefix(k, mod+"/") {
					o.Delete([]byte(k))
					delete(m, k)
				}
			}
		default: // a key born and dead within the block
			counts[7]++
			k := fmt.Sprintf("%s/transient%d", cfg.Modules[rng.IntN(len(cfg.Modules))], rng.IntN(5))
			o.Set([]byte(k), randomValue())
			o.Delete([]byte(k))
			delete(m, k)
		}
	}

	for h := int64(1); h <= int64(blocks); h++ {
		o := state.NewOverlay(s)
		next := maps.Clone(model)
		txs := rng.IntN(4)
		if h > 1 && rng.IntN(6) == 0 {
			txs = 0 // an empty block
		}
		for range txs {
			tx := o.Child()
			txModel := maps.Clone(next)
			for range rng.IntN(25) {
				op(tx, txModel)
			}
			if rng.IntN(8) != 0 {
				tx.Apply()
				next = txModel
			} // else: the transaction failed and its writes are dropped
		}
		hash, err := s.CommitOverlay(o, h)
		if err != nil {
			t.Fatalf("block %d: %v", h, err)
		}
		changed := !sameKV(next, model)
		model = next
		history[h], hashes[h] = maps.Clone(model), hash

		if scratch := fromScratch(t, cfg, model); !bytes.Equal(hash, scratch) {
			t.Fatalf("block %d (%d keys): incremental app hash %X, from scratch %X", h, len(model), hash, scratch)
		}
		if ref := refAppHash(cfg.Modules, model); !bytes.Equal(hash, ref) {
			t.Fatalf("block %d: app hash %X, definition gives %X", h, hash, ref)
		}
		if h > 1 && changed == bytes.Equal(hash, hashes[h-1]) {
			t.Fatalf("block %d: state changed %v, but app hash %X after %X", h, changed, hash, hashes[h-1])
		}
		if got := contents(s); !sameKV(got, model) {
			t.Fatalf("block %d: store holds %d keys, model %d", h, len(got), len(model))
		}
		lo, hi, ok := s.Provable()
		if wantLo := max(restartedAt, h-int64(cfg.Versions)+1); !ok || lo != wantLo || hi != h {
			t.Fatalf("block %d: Provable = %d, %d, %v; want %d, %d", h, lo, hi, ok, wantLo, h)
		}
		for range 6 {
			ph := lo + rng.Int64N(hi-lo+1)
			key := randomKey()
			if rng.IntN(2) == 0 && len(history[ph]) > 0 {
				key = pick(history[ph])
			}
			want, present := history[ph][key]
			if present && want == nil {
				want = []byte{}
			}
			checkProof(t, s, ph, key, want)
		}

		if h%9 == 0 {
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if s, err = state.Open(dir, cfg); err != nil {
				t.Fatalf("reopen after block %d: %v", h, err)
			}
			restartedAt = h
			if gh, gotHash := s.LastCommit(); gh != h || !bytes.Equal(gotHash, hash) {
				t.Fatalf("after restart at %d: LastCommit = %d, %X; want %X", h, gh, gotHash, hash)
			}
			if lo, hi, ok := s.Provable(); !ok || lo != h || hi != h {
				t.Fatalf("after restart at %d: Provable = %d, %d, %v", h, lo, hi, ok)
			}
			if got, err := s.AppHashAt(h); err != nil || !bytes.Equal(got, hash) {
				t.Fatalf("after restart at %d: AppHashAt = %X, %v", h, got, err)
			}
		}
	}
	t.Logf("seed %d: %d blocks, %d keys at the end; writes by kind %v %v", seed, blocks, len(model), kinds, counts)
}

// ---- what keeps the app hash, what changes it ----

// A block that writes nothing, rewrites a value with the same bytes, deletes
// a key that is not there, or creates and deletes a key within the block
// leaves the state, and so the app hash, as it was: unlike a hash chain,
// the app hash does not move with the height.
func TestBlocksThatChangeNothingKeepTheAppHash(t *testing.T) {
	s, _ := openStore(t)
	base := commit(t, s, 1, map[string][]byte{"m/k": []byte("v"), "a/x": []byte("1")})

	transient := state.NewOverlay(s)
	transient.Set([]byte("b/tmp"), []byte("t"))
	transient.Delete([]byte("b/tmp"))
	blocks := []struct {
		name string
		o    *state.Overlay
	}{
		{"empty block", state.NewOverlay(s)},
		{"same value", func() *state.Overlay {
			o := state.NewOverlay(s)
			o.Set([]byte("m/k"), []byte("v"))
			return o
		}()},
		{"delete of an absent key", func() *state.Overlay {
			o := state.NewOverlay(s)
			o.Delete([]byte("m/absent"))
			return o
		}()},
		{"key created and deleted in the block", transient},
	}
	for i, b := range blocks {
		h, err := s.CommitOverlay(b.o, int64(i+2))
		if err != nil {
			t.Fatalf("%s: %v", b.name, err)
		}
		if !bytes.Equal(h, base) {
			t.Errorf("%s at height %d: app hash %X, want unchanged %X", b.name, i+2, h, base)
		}
	}
	if h, _ := s.LastCommit(); h != int64(len(blocks)+1) {
		t.Errorf("LastCommit height %d, want %d", h, len(blocks)+1)
	}
}

// Every change of the state, however small, changes the app hash: each
// variant below differs from the base state in one way, and no two of them
// (nor any with the base) share an app hash.
func TestAnyChangeOfTheStateChangesTheAppHash(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{
		"m/k":  []byte("value"),
		"m/k2": []byte("other"),
		"a/x":  []byte("1"),
	}) // module b is empty
	variants := []struct {
		name   string
		writes func(o *state.Overlay)
	}{
		{"base", func(*state.Overlay) {}},
		{"last byte of a value", func(o *state.Overlay) { o.Set([]byte("m/k"), []byte("valuf")) }},
		{"value extended", func(o *state.Overlay) { o.Set([]byte("m/k"), []byte("value\x00")) }},
		{"value emptied", func(o *state.Overlay) { o.Set([]byte("m/k"), nil) }},
		{"key deleted", func(o *state.Overlay) { o.Delete([]byte("m/k")) }},
		{"key added", func(o *state.Overlay) { o.Set([]byte("m/k3"), []byte("value")) }},
		{"empty value added to an empty module", func(o *state.Overlay) { o.Set([]byte("b/k"), nil) }},
		{"empty value added to another module", func(o *state.Overlay) { o.Set([]byte("a/k"), nil) }},
		{"key moved to another module", func(o *state.Overlay) {
			o.Delete([]byte("m/k"))
			o.Set([]byte("a/k"), []byte("value"))
		}},
		{"key renamed", func(o *state.Overlay) {
			o.Delete([]byte("m/k"))
			o.Set([]byte("m/K"), []byte("value"))
		}},
		{"values swapped", func(o *state.Overlay) {
			o.Set([]byte("m/k"), []byte("other"))
			o.Set([]byte("m/k2"), []byte("value"))
		}},
		{"all deleted", func(o *state.Overlay) {
			o.Delete([]byte("m/k"))
			o.Delete([]byte("m/k2"))
			o.Delete([]byte("a/x"))
		}},
	}
	seen := map[string]string{}

	for _, v := range variants {
		o := state.NewOverlay(s)
		v.writes(o)
		st, err := s.Stage(o)
		if err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
		h := string(st.AppHash())
		if other, dup := seen[h]; dup {
			t.Errorf("%q and %q have the same app hash", v.name, other)
		}
		seen[h] = v.name
	}
}

// ---- Open checks the stored state against the committed app hash ----

// The app hash is committed next to the data it hashes. If the data changes
// behind the store's back, in any way, Open notices; once the data is put
// back, Open succeeds again.
func TestOpenRefusesStateThatNoLongerMatchesTheAppHash(t *testing.T) {
	cases := []struct {
		name        string
		tamper      func(db *pebble.DB) error
		restore     func(db *pebble.DB) error
		wantRefusal bool
	}{
		{"untouched", func(*pebble.DB) error { return nil }, nil, false},
		{"value rewritten with the same bytes",
			func(db *pebble.DB) error { return db.Set([]byte("m/k1"), []byte("v1"), pebble.Sync) }, nil, false},
		{"value changed",
			func(db *pebble.DB) error { return db.Set([]byte("m/k1"), []byte("forged"), pebble.Sync) },
			func(db *pebble.DB) error { return db.Set([]byte("m/k1"), []byte("v1"), pebble.Sync) }, true},
		{"value emptied",
			func(db *pebble.DB) error { return db.Set([]byte("m/k1"), nil, pebble.Sync) },
			func(db *pebble.DB) error { return db.Set([]byte("m/k1"), []byte("v1"), pebble.Sync) }, true},
		{"key added to a module",
			func(db *pebble.DB) error { return db.Set([]byte("a/new"), []byte("x"), pebble.Sync) },
			func(db *pebble.DB) error { return db.Delete([]byte("a/new"), pebble.Sync) }, true},
		{"key added to an empty module",
			func(db *pebble.DB) error { return db.Set([]byte("b/new"), []byte("x"), pebble.Sync) },
			func(db *pebble.DB) error { return db.Delete([]byte("b/new"), pebble.Sync) }, true},
		{"key deleted",
			func(db *pebble.DB) error { return db.Delete([]byte("m/k2"), pebble.Sync) },
			func(db *pebble.DB) error { return db.Set([]byte("m/k2"), []byte("v2"), pebble.Sync) }, true},
		{"key of an unknown module added",
			func(db *pebble.DB) error { return db.Set([]byte("z/new"), []byte("x"), pebble.Sync) },
			func(db *pebble.DB) error { return db.Delete([]byte("z/new"), pebble.Sync) }, true},
		{"key of no module added",
			func(db *pebble.DB) error { return db.Set([]byte("nomodule"), []byte("x"), pebble.Sync) },
			func(db *pebble.DB) error { return db.Delete([]byte("nomodule"), pebble.Sync) }, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, dir := openStore(t)
			commit(t, s, 1, map[string][]byte{"m/k1": []byte("v1"), "m/k2": []byte("v2"), "a/x": []byte("1")})
			hash := commit(t, s, 2, map[string][]byte{"a/x": []byte("2")})
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}

			tamper(t, dir, c.tamper)
			s2, err := state.Open(dir, testConfig())

			if !c.wantRefusal {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				defer s2.Close()
				if h, got := s2.LastCommit(); h != 2 || !bytes.Equal(got, hash) {
					t.Errorf("LastCommit = %d, %X; want 2, %X", h, got, hash)
				}
				return
			}
			if err == nil {
				s2.Close()
				t.Fatal("Open accepted a store whose data does not match its app hash")
			}
			if !errors.Is(err, state.ErrCommitmentMismatch) {
				t.Fatalf("Open: %v; want ErrCommitmentMismatch", err)
			}
			// The refusal released the directory and is not sticky.
			tamper(t, dir, c.restore)
			s3 := reopen(t, dir, testConfig())
			if h, got := s3.LastCommit(); h != 2 || !bytes.Equal(got, hash) {
				t.Errorf("after restore: LastCommit = %d, %X; want 2, %X", h, got, hash)
			}
		})
	}
}

// The module list is part of the chain's definition: the app hash has one
// entry per module. Reopening with the same modules in another order is
// the same chain; adding a module (even an empty one) or dropping one is
// not, and Open says so.
func TestOpenChecksTheModuleList(t *testing.T) {
	s, dir := openStore(t)
	hash := commit(t, s, 1, map[string][]byte{"a/x": []byte("1"), "b/y": []byte("2"), "m/z": []byte("3")})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := reopen(t, dir, state.Config{Modules: []string{"m", "b", "a"}})
	if _, got := s2.LastCommit(); !bytes.Equal(got, hash) {
		t.Errorf("reordered modules: LastCommit %X, want %X", got, hash)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	for _, mods := range [][]string{{"a", "b", "m", "z"}, {"a", "m"}} {
		s3, err := state.Open(dir, state.Config{Modules: mods})
		if err == nil {
			s3.Close()
			t.Errorf("modules %q: Open accepted a store committed with %q", mods, testModules)
			continue
		}
		if !errors.Is(err, state.ErrCommitmentMismatch) {
			t.Errorf("modules %q: %v; want ErrCommitmentMismatch", mods, err)
		}
	}
}

// ---- modules and configuration ----

// A key outside the configured modules has no place in the app hash: the
// block that writes it cannot be staged or committed, and nothing of it
// lands. The store's own bookkeeping keys are outside every module, so a
// block cannot overwrite them either.
func TestKeysOutsideTheModulesAreRefused(t *testing.T) {
	for _, bad := range []string{"z/k", "nomodule", "/k", "", "\x00meta/height", "M/k"} {
		t.Run(fmt.Sprintf("%q", bad), func(t *testing.T) {
			s, _ := openStore(t)
			hash := commit(t, s, 1, map[string][]byte{"m/k": []byte("v")})
			o := state.NewOverlay(s)
			o.Set([]byte("m/k"), []byte("changed"))
			o.Set([]byte(bad), []byte("x"))

			st, err := s.Stage(o)
			if !errors.Is(err, state.ErrUnknownModule) {
				t.Errorf("Stage = %v, %v; want ErrUnknownModule", st, err)
			}
			if _, err := s.CommitOverlay(o, 2); !errors.Is(err, state.ErrUnknownModule) {
				t.Errorf("CommitOverlay: %v; want ErrUnknownModule", err)
			}
			if h, got := s.LastCommit(); h != 1 || !bytes.Equal(got, hash) {
				t.Errorf("LastCommit = %d, %X; want 1, %X", h, got, hash)
			}
			wantGet(t, "store", s, "m/k", "v")
			if bad != "" {
				if _, err := s.Prove(1, []byte(bad)); err == nil {
					t.Errorf("Prove(%q) succeeded", bad)
				}
			}
		})
	}
	s, _ := openStore(t)
	commit(t, s, 1, nil)
	if _, err := s.Prove(1, []byte("z/k")); !errors.Is(err, state.ErrUnknownModule) {
		t.Errorf("Prove of an unknown module: %v; want ErrUnknownModule", err)
	}
}

func TestConfigValidateBasic(t *testing.T) {
	cases := []struct {
		name string
		cfg  state.Config
		ok   bool
	}{
		{"one module", state.Config{Modules: []string{"a"}}, true},
		{"several, unsorted, with versions", state.Config{Modules: []string{"m", "a", "b"}, Versions: 5}, true},
		{"module with 0xff", state.Config{Modules: []string{"\xff"}}, true},
		{"no modules", state.Config{}, false},
		{"empty module list", state.Config{Modules: []string{}}, false},
		{"duplicate", state.Config{Modules: []string{"a", "b", "a"}}, false},
		{"slash in a name", state.Config{Modules: []string{"a/b"}}, false},
		{"slash as a name", state.Config{Modules: []string{"/"}}, false},
		{"empty name", state.Config{Modules: []string{"a", ""}}, false},
		{"NUL in a name", state.Config{Modules: []string{"a\x00"}}, false},
		{"negative versions", state.Config{Modules: []string{"a"}, Versions: -1}, false},
	}
	for _, c := range cases {
		err := c.cfg.ValidateBasic()
		if (err == nil) != c.ok {
			t.Errorf("%s: ValidateBasic = %v, want ok %v", c.name, err, c.ok)
		}
		if c.ok {
			continue
		}
		// Open refuses it before it touches the disk.
		dir := filepath.Join(t.TempDir(), "state")
		if s, err := state.Open(dir, c.cfg); err == nil {
			s.Close()
			t.Errorf("%s: Open accepted the configuration", c.name)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: Open created %s (%v)", c.name, dir, err)
		}
	}
}

// ---- proofs ----

// A key takes a different value at each of heights 1..5; a proof at each
// height gives that height's value and verifies against that height's app
// hash, with this chain's verifier and with CometBFT's own proof runtime,
// and against no other height's.
func TestProveGivesTheValueAtTheHeightAsked(t *testing.T) {
	s, _ := openStoreWith(t, state.Config{Modules: testModules, Versions: 10})
	const key = "m/k"
	hashes := map[int64][]byte{}
	for h := int64(1); h <= 5; h++ {
		kv := map[string][]byte{key: fmt.Appendf(nil, "value at %d", h)}
		if h == 1 {
			for i := range 100 { // neighbours, so that the key's leaf has aunts
				kv[fmt.Sprintf("m/n%d", i)] = []byte{byte(i)}
			}
		}
		hashes[h] = commit(t, s, h, kv)
	}
	kp, err := proof.KeyPath([]byte(key))
	if err != nil {
		t.Fatal(err)
	}

	for h := int64(1); h <= 5; h++ {
		p := checkProof(t, s, h, key, fmt.Appendf(nil, "value at %d", h))

		if app, _ := s.AppHashAt(h); !bytes.Equal(app, hashes[h]) {
			t.Errorf("AppHashAt(%d) = %X, committed %X", h, app, hashes[h])
		}
		if err := merkle.DefaultProofRuntime().VerifyValue(p.Ops, hashes[h], kp, p.Value); err != nil {
			t.Errorf("height %d: CometBFT's runtime refuses the membership proof: %v", h, err)
		}
		for other := int64(1); other <= 5; other++ {
			if other == h {
				continue
			}
			if err := proof.Verify(p.Ops, hashes[other], []byte(key), p.Value); !errors.Is(err, proof.ErrMismatch) {
				t.Errorf("proof of height %d against the app hash of %d: %v; want ErrMismatch", h, other, err)
			}
			if err := proof.Verify(p.Ops, hashes[h], []byte(key), fmt.Appendf(nil, "value at %d", other)); !errors.Is(err, proof.ErrMismatch) {
				t.Errorf("proof of height %d with the value of height %d: %v; want ErrMismatch", h, other, err)
			}
		}
	}
}

// A proof is bound to the app hash of its height: when the key changes at
// h+1, the proof of h does not verify against h+1's app hash, while h+1's
// own proof does, with the new value only.
func TestProofDoesNotCarryOverToTheNextHeight(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/k": []byte("old"), "m/j": []byte("x"), "a/y": []byte("y")})
	commit(t, s, 2, map[string][]byte{"m/k": []byte("new")})
	app1, _ := s.AppHashAt(1)
	app2, _ := s.AppHashAt(2)

	p1 := checkProof(t, s, 1, "m/k", []byte("old"))
	p2 := checkProof(t, s, 2, "m/k", []byte("new"))

	if err := proof.Verify(p1.Ops, app2, []byte("m/k"), []byte("old")); !errors.Is(err, proof.ErrMismatch) {
		t.Errorf("old proof against the new app hash: %v; want ErrMismatch", err)
	}
	if err := proof.Verify(p2.Ops, app2, []byte("m/k"), []byte("old")); !errors.Is(err, proof.ErrMismatch) {
		t.Errorf("new proof with the old value: %v; want ErrMismatch", err)
	}
	if err := proof.Verify(p2.Ops, app1, []byte("m/k"), []byte("new")); !errors.Is(err, proof.ErrMismatch) {
		t.Errorf("new proof against the old app hash: %v; want ErrMismatch", err)
	}
	// A key the block did not touch still has a fresh proof per height: its
	// module's root moved.
	pj1 := checkProof(t, s, 1, "m/j", []byte("x"))
	if err := proof.Verify(pj1.Ops, app2, []byte("m/j"), []byte("x")); err == nil {
		t.Error("proof of an untouched key at 1 verifies against 2 although its module changed")
	}
}

// A proof proves one claim only: any other value, the absence of the key,
// another key, another app hash or a proof altered in one byte fails.
func TestProofRefusesEveryOtherClaim(t *testing.T) {
	s, _ := openStore(t)
	kv := map[string][]byte{"m/k": []byte("value")}
	for i := range 50 {
		kv[fmt.Sprintf("m/n%d", i)] = []byte("n")
	}
	app := commit(t, s, 1, kv)
	p := checkProof(t, s, 1, "m/k", []byte("value"))

	claims := []struct {
		name       string
		app        []byte
		key, value []byte
	}{
		{"wrong value", app, []byte("m/k"), []byte("valuE")},
		{"longer value", app, []byte("m/k"), []byte("value\x00")},
		{"empty value", app, []byte("m/k"), []byte{}},
		{"absence", app, []byte("m/k"), nil},
		{"another key with the same value", app, []byte("m/n0"), []byte("value")},
		{"another app hash", bytes.Repeat([]byte{1}, 32), []byte("m/k"), []byte("value")},
	}
	for _, c := range claims {
		if err := proof.Verify(p.Ops, c.app, c.key, c.value); err == nil {
			t.Errorf("%s: proof verifies", c.name)
		}
	}
	for i := range p.Ops.Ops {
		op := &p.Ops.Ops[i]
		for f, field := range [][]byte{op.Key, op.Data} {
			for j := range field {
				field[j] ^= 0x01
				if err := proof.Verify(p.Ops, app, []byte("m/k"), []byte("value")); err == nil && (f == 0 || !onlyIgnoredKeyCopy(*op)) {
					t.Errorf("op %d: byte %d of %s flipped, proof still verifies", i, j, [...]string{"key", "data"}[f])
				}
				field[j] ^= 0x01
			}
		}
	}
	if err := proof.Verify(p.Ops, app, []byte("m/k"), []byte("value")); err != nil {
		t.Fatalf("restored proof: %v", err)
	}
}

// onlyIgnoredKeyCopy reports whether a `simple:v` op's data carries a copy
// of its key that differs from op.Key: CometBFT's ValueOpDecoder ignores
// that copy (it uses op.Key), so altering it alters nothing proven.
func onlyIgnoredKeyCopy(op cmtcrypto.ProofOp) bool {
	if op.Type != merkle.ProofOpValue {
		return false
	}
	var v cmtcrypto.ValueOp
	if err := v.Unmarshal(op.Data); err != nil {
		return false
	}
	return !bytes.Equal(v.Key, op.Key)
}

// Absent keys are proven absent: a deleted key, keys never written in a
// populated module (their paths end in an empty subtree or at another key's
// leaf; both kinds occur), in a module of one key, and in an empty module.
// The answer's Value is nil; the proof verifies with value nil and with no
// value; and it stops verifying once the key exists.
func TestProveAbsentKeys(t *testing.T) {
	s, _ := openStore(t)
	kv := map[string][]byte{"a/only": []byte("1"), "m/deleted": []byte("d")}
	for i := range 200 {
		kv[fmt.Sprintf("m/k%d", i)] = []byte{byte(i)}
	}
	commit(t, s, 1, kv)
	commit(t, s, 2, map[string][]byte{"m/deleted": nil})
	app2, _ := s.AppHashAt(2)

	absent := []string{"m/deleted", "a/other", "b/anything"}
	for i := range 200 {
		absent = append(absent, fmt.Sprintf("m/absent%d", i))
	}
	kinds := map[proof.Kind]int{}
	for _, k := range absent {
		p := checkProof(t, s, 2, k, nil)
		for _, v := range [][]byte{[]byte("x"), {}} {
			if err := proof.Verify(p.Ops, app2, []byte(k), v); err == nil {
				t.Errorf("absence proof of %q verifies value %q", k, v)
			}
		}
		op, err := proof.DecodeSMTOp(p.Ops.Ops[0])
		if err != nil {
			t.Fatalf("%q: first op: %v", k, err)
		}
		kinds[op.(proof.SMTOp).Kind]++
		if k == "b/anything" && (op.(proof.SMTOp).Kind != proof.KindEmpty || len(op.(proof.SMTOp).Aunts) != 0) {
			t.Errorf("empty module: %+v, want an empty path", op)
		}
		if k == "a/other" && op.(proof.SMTOp).Kind != proof.KindOther {
			t.Errorf("module of one key: kind %d, want KindOther", op.(proof.SMTOp).Kind)
		}
	}
	if kinds[proof.KindEmpty] == 0 || kinds[proof.KindOther] == 0 || kinds[proof.KindMember] != 0 {
		t.Errorf("absence proofs by kind: %v; want both absence kinds and no membership", kinds)
	}

	// Height 1 still proves the deleted key present.
	checkProof(t, s, 1, "m/deleted", []byte("d"))
	// Once the key exists, its absence proof no longer verifies.
	p := checkProof(t, s, 2, "m/absent0", nil)
	app3 := commit(t, s, 3, map[string][]byte{"m/absent0": []byte("here")})
	if err := proof.Verify(p.Ops, app3, []byte("m/absent0"), nil); !errors.Is(err, proof.ErrMismatch) {
		t.Errorf("absence proof after the key appeared: %v; want ErrMismatch", err)
	}
}

// A key set to the empty value is present: its proof is a membership proof
// of the empty value, not an absence proof.
func TestProveKeyWithEmptyValue(t *testing.T) {
	s, _ := openStore(t)
	app := commit(t, s, 1, map[string][]byte{"m/empty": {}, "m/k": []byte("v")})

	p := checkProof(t, s, 1, "m/empty", []byte{})

	if err := proof.Verify(p.Ops, app, []byte("m/empty"), nil); err == nil {
		t.Error("a present key with an empty value is proven absent")
	}
}

// Only the last Config.Versions heights are provable; older ones are gone,
// later ones do not exist yet, and before the first commit nothing is.
func TestOnlyProvableHeightsCanBeProven(t *testing.T) {
	s, _ := openStoreWith(t, state.Config{Modules: testModules, Versions: 3})
	if _, _, ok := s.Provable(); ok {
		t.Error("Provable ok before the first commit")
	}
	if _, err := s.Prove(1, []byte("m/k")); !errors.Is(err, state.ErrHeightUnavailable) {
		t.Errorf("Prove before the first commit: %v; want ErrHeightUnavailable", err)
	}
	if _, err := s.AppHashAt(1); !errors.Is(err, state.ErrHeightUnavailable) {
		t.Errorf("AppHashAt before the first commit: %v; want ErrHeightUnavailable", err)
	}
	for h := int64(1); h <= 6; h++ {
		commit(t, s, h, map[string][]byte{"m/k": fmt.Appendf(nil, "%d", h)})
	}

	lo, hi, ok := s.Provable()

	if !ok || lo != 4 || hi != 6 {
		t.Fatalf("Provable = %d, %d, %v; want 4, 6, true", lo, hi, ok)
	}
	for _, h := range []int64{-1, 0, 1, 2, 3, 7, 100} {
		if _, err := s.Prove(h, []byte("m/k")); !errors.Is(err, state.ErrHeightUnavailable) {
			t.Errorf("Prove(%d): %v; want ErrHeightUnavailable", h, err)
		}
		if _, err := s.AppHashAt(h); !errors.Is(err, state.ErrHeightUnavailable) {
			t.Errorf("AppHashAt(%d): %v; want ErrHeightUnavailable", h, err)
		}
	}
	for h := int64(4); h <= 6; h++ {
		checkProof(t, s, h, "m/k", fmt.Appendf(nil, "%d", h))
	}
}

// The older versions live in memory: after a restart only the last
// committed height is provable, and the next commits add to it.
func TestAfterRestartOnlyTheLastHeightIsProvable(t *testing.T) {
	cfg := state.Config{Modules: testModules, Versions: 10}
	s, dir := openStoreWith(t, cfg)
	for h := int64(1); h <= 4; h++ {
		commit(t, s, h, map[string][]byte{"m/k": fmt.Appendf(nil, "%d", h)})
	}
	_, last := s.LastCommit()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := reopen(t, dir, cfg)

	if lo, hi, ok := s2.Provable(); !ok || lo != 4 || hi != 4 {
		t.Errorf("Provable after restart = %d, %d, %v; want 4, 4, true", lo, hi, ok)
	}
	if _, err := s2.Prove(3, []byte("m/k")); !errors.Is(err, state.ErrHeightUnavailable) {
		t.Errorf("Prove(3) after restart: %v; want ErrHeightUnavailable", err)
	}
	if app, _ := s2.AppHashAt(4); !bytes.Equal(app, last) {
		t.Errorf("AppHashAt(4) = %X, LastCommit %X", app, last)
	}
	checkProof(t, s2, 4, "m/k", []byte("4"))
	checkProof(t, s2, 4, "a/absent", nil)

	commit(t, s2, 5, map[string][]byte{"m/k": []byte("5")})
	if lo, hi, ok := s2.Provable(); !ok || lo != 4 || hi != 5 {
		t.Errorf("Provable after one more block = %d, %d, %v; want 4, 5, true", lo, hi, ok)
	}
	checkProof(t, s2, 4, "m/k", []byte("4"))
	checkProof(t, s2, 5, "m/k", []byte("5"))
}

// ---- Stage and Commit ----

// Stage is a dry run: it changes nothing, and staging twice gives the same
// app hash, which is the one the commit then records.
func TestStageChangesNothing(t *testing.T) {
	s, _ := openStore(t)
	base := commit(t, s, 1, map[string][]byte{"m/k": []byte("v")})
	o := state.NewOverlay(s)
	o.Set([]byte("m/k"), []byte("w"))

	st1, err := s.Stage(o)
	if err != nil {
		t.Fatal(err)
	}
	st2, err := s.Stage(o)
	if err != nil {
		t.Fatal(err)
	}

	if !bytes.Equal(st1.AppHash(), st2.AppHash()) || bytes.Equal(st1.AppHash(), base) {
		t.Fatalf("staged %X and %X over %X", st1.AppHash(), st2.AppHash(), base)
	}
	if h, got := s.LastCommit(); h != 1 || !bytes.Equal(got, base) {
		t.Errorf("LastCommit after Stage = %d, %X", h, got)
	}
	if _, hi, _ := s.Provable(); hi != 1 {
		t.Errorf("Stage made height %d provable", hi)
	}
	checkProof(t, s, 1, "m/k", []byte("v"))
	st1.AppHash()[0] ^= 0xff // AppHash hands out a copy
	if err := s.Commit(o, 2, st1); err != nil {
		t.Fatal(err)
	}
	if _, got := s.LastCommit(); !bytes.Equal(got, st2.AppHash()) {
		t.Errorf("committed %X, staged %X", got, st2.AppHash())
	}
}

// A Staged is the commitment of one block on top of one commit. Once
// another block has been committed, committing it would record an app hash
// that misses that block's writes: Commit refuses it, and nothing lands.
func TestCommitOfAStaleStagedFails(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/k": []byte("v1")})
	a := state.NewOverlay(s)
	a.Set([]byte("m/a"), []byte("a"))
	b := state.NewOverlay(s)
	b.Set([]byte("m/b"), []byte("b"))
	stA, err := s.Stage(a)
	if err != nil {
		t.Fatal(err)
	}
	stB, err := s.Stage(b)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(b, 2, stB); err != nil {
		t.Fatal(err)
	}
	_, hash2 := s.LastCommit()

	err = s.Commit(a, 3, stA)

	if !errors.Is(err, state.ErrStale) {
		t.Fatalf("Commit of a stale Staged: %v; want ErrStale", err)
	}
	if h, got := s.LastCommit(); h != 2 || !bytes.Equal(got, hash2) {
		t.Errorf("LastCommit = %d, %X; want 2, %X", h, got, hash2)
	}
	wantAbsent(t, "store", s, "m/a")
	if err := s.Commit(b, 3, stB); !errors.Is(err, state.ErrStale) {
		t.Errorf("Commit of an already committed Staged: %v; want ErrStale", err)
	}
	if err := s.Commit(a, 3, nil); !errors.Is(err, state.ErrStale) {
		t.Errorf("Commit of nothing staged: %v; want ErrStale", err)
	}
	// Staged again on top of height 2, the block commits.
	stA, err = s.Stage(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Commit(a, 3, stA); err != nil {
		t.Fatal(err)
	}
	want := refAppHash(testModules, map[string][]byte{"m/k": []byte("v1"), "m/a": []byte("a"), "m/b": []byte("b")})
	if _, got := s.LastCommit(); !bytes.Equal(got, want) {
		t.Errorf("app hash %X, want %X", got, want)
	}
}

// A Staged from before a restart belongs to a store that is gone.
func TestStagedDoesNotSurviveARestart(t *testing.T) {
	s, dir := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/k": []byte("v")})
	o := state.NewOverlay(s)
	o.Set([]byte("m/k"), []byte("w"))
	st, err := s.Stage(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := reopen(t, dir, testConfig())

	if err := s2.Commit(o, 2, st); !errors.Is(err, state.ErrStale) {
		t.Errorf("Commit of a Staged of the closed store: %v; want ErrStale", err)
	}
}

// ---- benchmarks ----

// preload returns a store whose module m holds n keys, committed at height
// 1, and the keys.
func preload(b *testing.B, n int) (*state.Store, [][]byte) {
	b.Helper()
	s, _ := openStoreWith(b, state.Config{Modules: testModules, Versions: 10})
	o := state.NewOverlay(s)
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = fmt.Appendf(nil, "m/acct/%08d", i)
		o.Set(keys[i], fmt.Appendf(nil, "balance %d", i))
	}
	if _, err := s.CommitOverlay(o, 1); err != nil {
		b.Fatal(err)
	}
	return s, keys
}

// BenchmarkStageAndCommit commits blocks of 2,000 updated keys of one module
// over 100,000 stored keys: staging (hashing and tree update), the pebble
// batch with its fsync, and the version kept for proofs.
func BenchmarkStageAndCommit(b *testing.B) {
	const stored, perBlock = 100_000, 2_000
	s, keys := preload(b, stored)
	rng := rand.New(rand.NewPCG(1, 2))
	height := int64(1)

	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		height++
		o := state.NewOverlay(s)
		start := rng.IntN(stored)
		for j := range perBlock {
			o.Set(keys[(start+j*37)%stored], fmt.Appendf(nil, "balance %d/%d", i, j))
		}
		if _, err := s.CommitOverlay(o, height); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(perBlock*b.N)/b.Elapsed().Seconds(), "keys/s")
}

// BenchmarkProve proves keys of a store of 100,000 and of 1,000,000 keys,
// present and absent, and reports the size of the proof ops (their
// protobuf encoding).
func BenchmarkProve(b *testing.B) {
	for _, stored := range []int{100_000, 1_000_000} {
		b.Run(fmt.Sprintf("keys=%d", stored), func(b *testing.B) {
			s, keys := preload(b, stored)
			for _, present := range []bool{true, false} {
				name := "absent"
				if present {
					name = "present"
				}
				b.Run(name, func(b *testing.B) {
					rng := rand.New(rand.NewPCG(3, 4))
					bytesTotal := 0
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						key := keys[rng.IntN(stored)]
						if !present {
							key = fmt.Appendf(nil, "m/nobody/%d", i)
						}
						p, err := s.Prove(1, key)
						if err != nil {
							b.Fatal(err)
						}
						if (p.Value != nil) != present {
							b.Fatalf("%q: value %q", key, p.Value)
						}
						bytesTotal += p.Ops.Size()
					}
					b.ReportMetric(float64(bytesTotal)/float64(b.N), "proof-bytes")
				})
			}
		})
	}
}

// ---- regressions: bugs found by these tests ----

// The node answers proven queries (App.Query → App.prove → Store.Prove)
// without the app's lock, while blocks commit. A proof of the oldest
// provable height must not crash the node when a commit prunes that height
// meanwhile: it may answer the proof or ErrHeightUnavailable.
func TestProveWhileCommittingDoesNotPanic(t *testing.T) {
	s, _ := openStoreWith(t, state.Config{Modules: testModules, Versions: 1})
	commit(t, s, 1, map[string][]byte{"m/k": []byte("v")})
	stop := make(chan struct{})
	panicked := make(chan any, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		defer func() {
			if r := recover(); r != nil {
				panicked <- r
			}
		}()
		for {
			select {
			case <-stop:
				return
			default:
			}
			lo, _, _ := s.Provable()
			if _, err := s.Prove(lo, []byte("m/k")); err != nil && !errors.Is(err, state.ErrHeightUnavailable) {
				panic(err)
			}
		}
	}()
	for h := int64(2); h <= 500; h++ {
		select {
		case r := <-panicked:
			close(stop)
			t.Fatalf("Prove panicked while block %d committed: %v", h, r)
		default:
		}
		commit(t, s, h, map[string][]byte{"m/k": fmt.Appendf(nil, "%d", h)})
	}
	close(stop)
	<-done
	select {
	case r := <-panicked:
		t.Fatalf("Prove panicked: %v", r)
	default:
	}
}

// Commit takes only the height after the last commit: the provable heights
// are looked up by offset.
func TestCommitOfANonConsecutiveHeight(t *testing.T) {
	s, _ := openStore(t)
	commit(t, s, 1, map[string][]byte{"m/k": []byte("1")})
	o := state.NewOverlay(s)
	o.Set([]byte("m/k"), []byte("3"))
	if _, err := s.CommitOverlay(o, 3); !errors.Is(err, state.ErrStale) {
		t.Fatalf("commit of height 3 after 1: %v, want ErrStale", err)
	}
	if h, _ := s.LastCommit(); h != 1 {
		t.Fatalf("a refused commit moved the store to height %d", h)
	}
	if v, _ := s.Get([]byte("m/k")); string(v) != "1" {
		t.Fatalf("a refused commit wrote %q", v)
	}
	checkProof(t, s, 1, "m/k", []byte("1"))
}
