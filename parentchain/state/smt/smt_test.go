package smt_test

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"testing"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"

	"github.com/integritee-go/integritee/parentchain/proof"
	"github.com/integritee-go/integritee/parentchain/state/smt"
)

// fromScratch builds the tree of a key/value set in one go.
func fromScratch(kv map[string][]byte) smt.Tree {
	var ws []smt.Write
	for k, v := range kv {
		ws = append(ws, smt.NewSet([]byte(k), v))
	}
	return smt.Build(ws)
}

// reference computes the root of a compact sparse Merkle tree directly from
// its definition, without the package's node structure: the leaves below a
// path prefix, one leaf moves up, none is empty.
func reference(kv map[string][]byte) smt.Hash {
	type leaf struct {
		path smt.Hash
		hash smt.Hash
	}
	var ls []leaf
	for k, v := range kv {
		ls = append(ls, leaf{proof.KeyHash([]byte(k)), proof.ValueLeafHash([]byte(k), v)})
	}
	var root func(ls []leaf, depth int) smt.Hash
	root = func(ls []leaf, depth int) smt.Hash {
		switch len(ls) {
		case 0:
			return proof.Empty
		case 1:
			return ls[0].hash
		}
		var l, r []leaf
		for _, x := range ls {
			if proof.Bit(x.path, depth) == 0 {
				l = append(l, x)
			} else {
				r = append(r, x)
			}
		}
		return proof.InnerHash(root(l, depth+1), root(r, depth+1))
	}
	return root(ls, 0)
}

func TestEmptyTreeRootIsZero(t *testing.T) {
	if (smt.Tree{}).Root() != proof.Empty {
		t.Fatal("empty tree root is not zero")
	}
	if got := fromScratch(nil).Root(); got != proof.Empty {
		t.Fatalf("built empty tree root %x", got)
	}
}

func TestSingleKeyRootIsItsLeaf(t *testing.T) {
	got := fromScratch(map[string][]byte{"m/a": []byte("1")}).Root()
	if want := proof.ValueLeafHash([]byte("m/a"), []byte("1")); got != want {
		t.Fatalf("root %x, want leaf %x", got, want)
	}
}

// TestIncrementalRootEqualsFromScratch applies random blocks of inserts,
// updates and deletes (with deletes of absent keys) and compares the
// incremental root with a tree built from scratch over the same set, and
// with the definition, after every block; every old version must keep its
// root.
func TestIncrementalRootEqualsFromScratch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	kv := map[string][]byte{}
	var tree smt.Tree
	type version struct {
		tree smt.Tree
		root smt.Hash
	}
	var versions []version
	for block := 0; block < 200; block++ {
		var ws []smt.Write
		touched := map[string]bool{}
		n := rng.IntN(40)
		if block%50 == 0 {
			n = 3000 // a big block: exercises the parallel paths
		}
		for i := 0; i < n; i++ {
			k := fmt.Sprintf("m/%d", rng.IntN(5000))
			if touched[k] {
				continue
			}
			touched[k] = true
			if rng.IntN(3) == 0 {
				ws = append(ws, smt.NewDelete([]byte(k)))
				delete(kv, k)
				continue
			}
			v := fmt.Appendf(nil, "v%d", rng.Int())
			ws = append(ws, smt.NewSet([]byte(k), v))
			kv[k] = v
		}
		tree = tree.Update(ws)
		if got, want := tree.Root(), fromScratch(kv).Root(); got != want {
			t.Fatalf("block %d: incremental root %x, from scratch %x", block, got, want)
		}
		if block%20 == 0 {
			if got, want := tree.Root(), reference(kv); got != want {
				t.Fatalf("block %d: root %x, definition %x", block, got, want)
			}
		}
		versions = append(versions, version{tree, tree.Root()})
	}
	for i, v := range versions {
		if v.tree.Root() != v.root {
			t.Fatalf("version %d changed its root", i)
		}
	}
	// Deleting everything empties the tree.
	var ws []smt.Write
	for _, k := range slices.Sorted(maps.Keys(kv)) {
		ws = append(ws, smt.NewDelete([]byte(k)))
	}
	if got := tree.Update(ws).Root(); got != proof.Empty {
		t.Fatalf("tree with every key deleted has root %x", got)
	}
}

// TestLookupProvesMembershipAndAbsence checks every key's membership proof
// and absence proofs of random other keys against a one-module app hash,
// through proof.Verify.
func TestLookupProvesMembershipAndAbsence(t *testing.T) {
	kv := map[string][]byte{}
	for i := 0; i < 500; i++ {
		kv[fmt.Sprintf("m/%d", i)] = fmt.Appendf(nil, "value %d", i)
	}
	tree := fromScratch(kv)
	names := []string{"m"}
	roots := []smt.Hash{tree.Root()}
	appHash := proof.AppHash(names, roots)
	prove := func(key []byte) []byte {
		p := tree.Lookup(key)
		return mustVerify(t, p, key, kv, names, roots, appHash)
	}
	for k, v := range kv {
		got := prove([]byte(k))
		if string(got) != string(v) {
			t.Fatalf("%s proven as %q, want %q", k, got, v)
		}
	}
	for i := 500; i < 700; i++ {
		if got := prove(fmt.Appendf(nil, "m/%d", i)); got != nil {
			t.Fatalf("absent key proven present: %q", got)
		}
	}
}

// mustVerify turns a lookup into proof ops the way the node does and
// verifies them; it returns the proven value (nil for absence).
func mustVerify(t *testing.T, p smt.Path, key []byte, kv map[string][]byte, names []string, roots []smt.Hash, appHash []byte) []byte {
	t.Helper()
	opsFor := func(first proof.SMTOp) []byte {
		ops := proofOps(first.ProofOp(), proof.ModuleOp(names, roots, 0))
		var value []byte
		if first.Kind == proof.KindMember {
			value = kv[string(key)]
		}
		if err := proof.Verify(ops, appHash, key, value); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return value
	}
	switch {
	case p.Found:
		v := kv[string(key)]
		ops := proofOps(proof.SimpleOp(key, sha256.Sum256(v), p.Aunts), proof.ModuleOp(names, roots, 0))
		if err := proof.Verify(ops, appHash, key, v); err != nil {
			t.Fatalf("%s: simple:v: %v", key, err)
		}
		// The same leaf through the own op.
		return opsFor(proof.SMTOp{Key: key, Kind: proof.KindMember, Aunts: p.Aunts})
	case p.OtherKey != nil:
		return opsFor(proof.SMTOp{Key: key, Kind: proof.KindOther, Aunts: p.Aunts, OtherKey: p.OtherKey, OtherValueHash: sha256.Sum256(kv[string(p.OtherKey)])})
	default:
		return opsFor(proof.SMTOp{Key: key, Kind: proof.KindEmpty, Aunts: p.Aunts})
	}
}

func proofOps(ops ...cmtcrypto.ProofOp) *cmtcrypto.ProofOps { return &cmtcrypto.ProofOps{Ops: ops} }
