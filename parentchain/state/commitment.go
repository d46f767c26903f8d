package state

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"github.com/cockroachdb/pebble"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"

	"github.com/integritee-go/integritee/parentchain/proof"
	"github.com/integritee-go/integritee/parentchain/state/smt"
)

// DefaultVersions is how many committed heights stay provable by default.
const DefaultVersions = 100

// Config configures a Store.
type Config struct {
	// Modules names every module whose keys the state may hold (a key's
	// module is the bytes before its first '/'); the app hash has one entry
	// per module, so the list is part of the chain's definition.
	Modules []string
	// Versions is how many committed heights stay provable (0: the
	// default). Each costs the tree nodes its block replaced, and a pebble
	// snapshot that keeps that height's values.
	Versions int
}

// ValidateBasic reports an unusable configuration.
func (c Config) ValidateBasic() error {
	if len(c.Modules) == 0 {
		return errors.New("state: no modules")
	}
	seen := map[string]bool{}
	for _, m := range c.Modules {
		if m == "" || bytes.ContainsAny([]byte(m), "/\x00") || seen[m] {
			return fmt.Errorf("state: bad or repeated module name %q", m)
		}
		seen[m] = true
	}
	if c.Versions < 0 {
		return fmt.Errorf("state: negative versions %d", c.Versions)
	}
	return nil
}

func (c Config) versions() int {
	if c.Versions == 0 {
		return DefaultVersions
	}
	return c.Versions
}

// Errors of the commitment.
var (
	// ErrCommitmentMismatch: the stored state does not hash to the
	// committed app hash (a data dir of an older format, or corruption).
	ErrCommitmentMismatch = errors.New("state: stored state does not match the committed app hash")
	// ErrUnknownModule: a key's module is not one of the store's.
	ErrUnknownModule = errors.New("state: key of an unknown module")
	// ErrHeightUnavailable: the height asked for is not (or no longer)
	// provable.
	ErrHeightUnavailable = errors.New("state: height not available")
	// ErrStale: a Staged was computed on top of another height than the
	// last committed one.
	ErrStale = errors.New("state: staged commitment is not on top of the last commit")
)

// version is one provable height: its module trees and its values.
type version struct {
	height  int64
	trees   []smt.Tree
	appHash []byte
	snap    *pebble.Snapshot // nil for a version loaded at Open before any snapshot
}

// commitment keeps the provable versions. Its lock guards the version list
// only; proofs and staging work on immutable trees outside it.
type commitment struct {
	modules []string // sorted
	index   map[string]int
	keep    int

	mu       sync.RWMutex
	versions []*version // ascending height
}

func newCommitment(modules []string, keep int) *commitment {
	c := &commitment{modules: modules, index: map[string]int{}, keep: keep}
	for i, m := range modules {
		c.index[m] = i
	}
	return c
}

func (c *commitment) latest() *version {
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.versions) == 0 {
		return nil
	}
	return c.versions[len(c.versions)-1]
}

func (c *commitment) close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, v := range c.versions {
		if v.snap != nil {
			v.snap.Close()
		}
	}
	c.versions = nil
}

// Staged is a block's commitment, computed but not yet committed.
type Staged struct {
	base    *version // the version it was computed on; nil for genesis
	trees   []smt.Tree
	appHash []byte
}

// AppHash returns the app hash of the staged state.
func (st *Staged) AppHash() []byte { return bytes.Clone(st.appHash) }

func (c *commitment) roots(trees []smt.Tree) []proof.Hash {
	out := make([]proof.Hash, len(trees))
	for i, t := range trees {
		out[i] = t.Root()
	}
	return out
}

// stage applies writes, grouped by module, to the latest version's trees.
func (c *commitment) stage(writes []smt.Write) (*Staged, error) {
	base := c.latest()
	trees := make([]smt.Tree, len(c.modules))
	if base != nil {
		copy(trees, base.trees)
	}
	groups := make([][]smt.Write, len(c.modules))
	for _, w := range writes {
		m, err := proof.Module(w.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrUnknownModule, err)
		}
		i, ok := c.index[m]
		if !ok {
			return nil, fmt.Errorf("%w: %q", ErrUnknownModule, w.Key)
		}
		groups[i] = append(groups[i], w)
	}
	for i, g := range groups {
		trees[i] = trees[i].Update(g)
	}
	return &Staged{base: base, trees: trees, appHash: proof.AppHash(c.modules, c.roots(trees))}, nil
}

func (c *commitment) check(st *Staged, height int64) error {
	if st == nil {
		return fmt.Errorf("%w: nothing staged", ErrStale)
	}
	last := c.latest()
	if st.base != last {
		return ErrStale
	}
	if last != nil && height != last.height+1 {
		return fmt.Errorf("%w: height %d does not follow the last commit %d", ErrStale, height, last.height)
	}
	return nil
}

// install makes a committed height provable and drops the oldest beyond
// the number kept.
func (c *commitment) install(height int64, st *Staged, snap *pebble.Snapshot) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.versions = append(c.versions, &version{height: height, trees: st.trees, appHash: st.appHash, snap: snap})
	for len(c.versions) > c.keep {
		if s := c.versions[0].snap; s != nil {
			s.Close()
		}
		c.versions[0] = nil
		c.versions = c.versions[1:]
	}
}

// at returns the version of height; the caller holds c.mu (read), and
// keeps holding it while it reads the version's snapshot, which install
// closes once the version is dropped.
func (c *commitment) at(height int64) (*version, error) {
	if len(c.versions) == 0 {
		return nil, fmt.Errorf("%w: nothing committed", ErrHeightUnavailable)
	}
	lo, hi := c.versions[0].height, c.versions[len(c.versions)-1].height
	if height < lo || height > hi {
		return nil, fmt.Errorf("%w: %d is outside the provable heights %d..%d", ErrHeightUnavailable, height, lo, hi)
	}
	return c.versions[height-lo], nil
}

// writesOf turns an overlay's buffered writes into tree writes, hashing on
// all cores.
func writesOf(o *Overlay) []smt.Write {
	ws := make([]smt.Write, 0, len(o.writes))
	vals := make([][]byte, 0, len(o.writes))
	for k, w := range o.writes {
		ws = append(ws, smt.Write{Key: []byte(k), Delete: w.del})
		vals = append(vals, w.val)
	}
	hashWrites(ws, vals)
	return ws
}

// hashWrites fills in each write's path and, for sets, its leaf hash of
// vals[i], on all cores.
func hashWrites(ws []smt.Write, vals [][]byte) {
	parallel(len(ws), func(i int) {
		w := &ws[i]
		w.Path = proof.KeyHash(w.Key)
		if !w.Delete {
			w.Leaf = proof.ValueLeafHash(w.Key, vals[i])
		}
	})
}

// parallel runs fn(0..n-1) on all cores when n is large enough to pay.
func parallel(n int, fn func(i int)) {
	workers := min(runtime.GOMAXPROCS(0), n/256)
	if workers < 2 {
		for i := 0; i < n; i++ {
			fn(i)
		}
		return
	}
	var wg sync.WaitGroup
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := w; i < n; i += workers {
				fn(i)
			}
		}(w)
	}
	wg.Wait()
}

// Stage computes the commitment of the last committed state with o's
// writes: the app hash the block would commit.
func (s *Store) Stage(o *Overlay) (*Staged, error) {
	return s.commit.stage(writesOf(o))
}

// CommitOverlay stages o and commits it as height, returning its app hash.
func (s *Store) CommitOverlay(o *Overlay, height int64) ([]byte, error) {
	st, err := s.Stage(o)
	if err != nil {
		return nil, err
	}
	if err := s.Commit(o, height, st); err != nil {
		return nil, err
	}
	return st.AppHash(), nil
}

// load rebuilds the commitment of the stored state and checks it against
// the committed app hash.
func (s *Store) load() error {
	height, appHash := s.LastCommit()
	if appHash == nil {
		return nil // nothing committed yet
	}
	var ws []smt.Write
	var vals [][]byte
	var err error
	s.Iterate(nil, func(k, v []byte) bool {
		if bytes.HasPrefix(k, metaPrefix) {
			return true
		}
		if _, e := proof.Module(k); e != nil {
			err = fmt.Errorf("%w: stored key %q: %w", ErrCommitmentMismatch, k, e)
			return false
		}
		ws = append(ws, smt.Write{Key: k})
		vals = append(vals, v)
		return true
	})
	if err != nil {
		return err
	}
	hashWrites(ws, vals)
	vals = nil
	st, err := s.commit.stage(ws)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrCommitmentMismatch, err)
	}
	if !bytes.Equal(st.appHash, appHash) {
		return fmt.Errorf("%w at height %d: stored state hashes to %X, committed app hash is %X (a data dir of another format needs a new genesis)", ErrCommitmentMismatch, height, st.appHash, appHash)
	}
	s.commit.install(height, st, s.db.NewSnapshot())
	return nil
}

// Proof is a state key's value at a height, with the proof ops that show it
// against the app hash of that height (found in header height+1).
type Proof struct {
	Height int64
	Key    []byte
	// Value is the stored value; nil when the key is absent.
	Value []byte
	Ops   *cmtcrypto.ProofOps
}

// Provable returns the lowest and highest provable heights; ok is false
// before the first commit.
func (s *Store) Provable() (lo, hi int64, ok bool) {
	c := s.commit
	c.mu.RLock()
	defer c.mu.RUnlock()
	if len(c.versions) == 0 {
		return 0, 0, false
	}
	return c.versions[0].height, c.versions[len(c.versions)-1].height, true
}

// AppHashAt returns the app hash committed at a provable height.
func (s *Store) AppHashAt(height int64) ([]byte, error) {
	s.commit.mu.RLock()
	defer s.commit.mu.RUnlock()
	v, err := s.commit.at(height)
	if err != nil {
		return nil, err
	}
	return bytes.Clone(v.appHash), nil
}

// Prove returns key's value at height and its proof.
func (s *Store) Prove(height int64, key []byte) (*Proof, error) {
	m, err := proof.Module(key)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnknownModule, err)
	}
	i, ok := s.commit.index[m]
	if !ok {
		return nil, fmt.Errorf("%w: %q", ErrUnknownModule, m)
	}
	// Held until the snapshot is read: a commit may drop the version.
	s.commit.mu.RLock()
	defer s.commit.mu.RUnlock()
	v, err := s.commit.at(height)
	if err != nil {
		return nil, err
	}
	get := func(k []byte) []byte {
		val, closer, err := v.snap.Get(k)
		if err != nil {
			panic(fmt.Sprintf("state: read %q at height %d: %v", k, height, err))
		}
		defer closer.Close()
		return bytes.Clone(val)
	}
	p := v.trees[i].Lookup(key)
	out := &Proof{Height: height, Key: bytes.Clone(key)}
	var first cmtcrypto.ProofOp
	switch {
	case p.Found:
		out.Value = get(key)
		if len(p.Aunts) <= proof.MaxSimpleDepth {
			first = proof.SimpleOp(key, sha256.Sum256(out.Value), p.Aunts)
		} else {
			first = proof.SMTOp{Key: key, Kind: proof.KindMember, Aunts: p.Aunts}.ProofOp()
		}
	case p.OtherKey != nil:
		first = proof.SMTOp{Key: key, Kind: proof.KindOther, Aunts: p.Aunts, OtherKey: p.OtherKey, OtherValueHash: sha256.Sum256(get(p.OtherKey))}.ProofOp()
	default:
		first = proof.SMTOp{Key: key, Kind: proof.KindEmpty, Aunts: p.Aunts}.ProofOp()
	}
	out.Ops = &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{first, proof.ModuleOp(s.commit.modules, s.commit.roots(v.trees), i)}}
	return out, nil
}

// Modules returns the store's modules in app-hash order.
func (s *Store) Modules() []string { return slices.Clone(s.commit.modules) }
