// Package smt is the parentchain's state commitment: a compact binary sparse
// Merkle tree per module whose leaves and inner nodes hash the way package
// parentchain/proof defines, so that a leaf's proof is a CometBFT `simple:v`
// proof that CometBFT's own light client checks.
//
// Why in-house: none of the usual authenticated stores is served by the module
// proxy here (cosmos/iavl, ics23, celestiaorg/smt), and go-ethereum's trie,
// which is, needs cgo and a second pebble and proves in its own format, not
// `simple:v`. The tree is small because crypto/merkle does the proof checking:
// this package only keeps the nodes.
//
// Trees are immutable values: Update returns a new tree that shares every
// node the writes did not touch (path copying), so a node keeps old versions
// readable for the price of the nodes each block replaced. A block costs
// O(keys written × depth) hashes, and depth grows with log2 of the module's
// keys; the size of the state never enters. Trees live in memory; the node
// rebuilds them from its key/value store at start-up (Build).
package smt

import (
	"bytes"
	"slices"
	"sync"

	"github.com/integritee-go/integritee/parentchain/proof"
)

// Hash is a node hash.
type Hash = proof.Hash

// node is a leaf (key != nil) or an inner node (key == nil, at least one
// child, and never one leaf beside an empty sibling: that leaf would sit one
// level up).
type node struct {
	hash Hash
	l, r *node
	key  []byte
}

func (n *node) isLeaf() bool { return n != nil && n.key != nil }

func hashOf(n *node) Hash {
	if n == nil {
		return proof.Empty
	}
	return n.hash
}

// Tree is one module's tree. The zero Tree is empty. A Tree is immutable and
// safe for concurrent use.
type Tree struct {
	root *node
}

// Root returns the tree's root hash (proof.Empty for an empty tree).
func (t Tree) Root() Hash { return hashOf(t.root) }

// Write is one key's change: Set with its leaf hash, or a deletion.
type Write struct {
	Key []byte
	// Path is proof.KeyHash(Key).
	Path Hash
	// Leaf is the leaf hash for a set, proof.LeafHash(Key, SHA-256(value)).
	Leaf Hash
	// Delete marks a deletion.
	Delete bool
}

// NewSet returns the write that sets key to value.
func NewSet(key, value []byte) Write {
	return Write{Key: key, Path: proof.KeyHash(key), Leaf: proof.ValueLeafHash(key, value)}
}

// NewDelete returns the write that deletes key.
func NewDelete(key []byte) Write {
	return Write{Key: key, Path: proof.KeyHash(key), Delete: true}
}

// parallelMin is the number of writes below which Update does not split
// the work across goroutines.
const parallelMin = 2048

// parallelDepth is how many levels of the tree Update may split across
// goroutines (2^parallelDepth at most).
const parallelDepth = 2

// Update returns the tree with ws applied. ws need not be sorted; a key must
// not appear twice. Keys are not copied: callers must not modify them.
func (t Tree) Update(ws []Write) Tree {
	if len(ws) == 0 {
		return t
	}
	// Sorted by path; small items keep the sort's moves cheap.
	items := make([]item, len(ws))
	for i := range ws {
		items[i] = item{path: ws[i].Path, w: &ws[i]}
	}
	slices.SortFunc(items, func(a, b item) int { return bytes.Compare(a.path[:], b.path[:]) })
	return Tree{root: update(t.root, 0, items, parallelDepth)}
}

// item is a write with its path inline, for sorting.
type item struct {
	path Hash
	w    *Write
}

// Build returns the tree holding exactly the given sets (deletions are
// ignored).
func Build(ws []Write) Tree { return Tree{}.Update(ws) }

// split returns the index of the first item whose path has bit depth set;
// is is sorted by path and shares the bits above depth.
func split(is []item, depth int) int {
	i, _ := slices.BinarySearchFunc(is, byte(1), func(it item, b byte) int {
		return int(proof.Bit(it.path, depth)) - int(b)
	})
	return i
}

func update(n *node, depth int, is []item, par int) *node {
	if len(is) == 0 {
		return n
	}
	if n == nil || n.isLeaf() {
		if len(is) == 1 && (n == nil || bytes.Equal(n.key, is[0].w.Key)) {
			// The common case: one key set, replaced or deleted where it is.
			if w := is[0].w; !w.Delete {
				return &node{hash: w.Leaf, key: w.Key}
			}
			return nil
		}
		return build(depth, merge(n, is), par)
	}
	i := split(is, depth)
	var l, r *node
	if par > 0 && len(is) >= parallelMin {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); l = update(n.l, depth+1, is[:i], par-1) }()
		r = update(n.r, depth+1, is[i:], par-1)
		wg.Wait()
	} else {
		l = update(n.l, depth+1, is[:i], par)
		r = update(n.r, depth+1, is[i:], par)
	}
	if l == n.l && r == n.r {
		return n
	}
	return join(l, r)
}

// entry is a leaf to place, with its path.
type entry struct {
	path Hash
	leaf *node
}

// merge returns the leaves of a subtree that held at most the leaf old,
// after the writes is, sorted by path.
func merge(old *node, is []item) []entry {
	out := make([]entry, 0, len(is)+1)
	var oldPath Hash
	placed := old == nil
	if !placed {
		oldPath = proof.KeyHash(old.key)
	}
	for _, it := range is {
		w := it.w
		if !placed {
			switch c := bytes.Compare(oldPath[:], it.path[:]); {
			case c < 0:
				out = append(out, entry{oldPath, old})
				placed = true
			case c == 0 && bytes.Equal(old.key, w.Key):
				placed = true // overwritten or deleted by w
			}
		}
		if !w.Delete {
			out = append(out, entry{it.path, &node{hash: w.Leaf, key: w.Key}})
		}
	}
	if !placed {
		out = append(out, entry{oldPath, old})
	}
	return out
}

// build returns the subtree at depth holding exactly es (sorted by path).
func build(depth int, es []entry, par int) *node {
	switch len(es) {
	case 0:
		return nil
	case 1:
		return es[0].leaf
	}
	i, _ := slices.BinarySearchFunc(es, byte(1), func(e entry, b byte) int {
		return int(proof.Bit(e.path, depth)) - int(b)
	})
	var l, r *node
	if par > 0 && len(es) >= parallelMin {
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { defer wg.Done(); l = build(depth+1, es[:i], par-1) }()
		r = build(depth+1, es[i:], par-1)
		wg.Wait()
	} else {
		l = build(depth+1, es[:i], par)
		r = build(depth+1, es[i:], par)
	}
	return join(l, r)
}

// join returns the node over l and r in compact form: nothing for two
// empty sides, and a lone leaf moves up in place of its parent.
func join(l, r *node) *node {
	switch {
	case l == nil && r == nil:
		return nil
	case l == nil && r.isLeaf():
		return r
	case r == nil && l.isLeaf():
		return l
	}
	return &node{hash: proof.InnerHash(hashOf(l), hashOf(r)), l: l, r: r}
}

// Path is what the tree holds along a key's path.
type Path struct {
	// Aunts are the siblings from the deepest up to the root's child.
	Aunts []Hash
	// Found is set when the path ends at the key's own leaf.
	Found bool
	// OtherKey is the key of another leaf that ends the path; nil when the
	// path ends in an empty subtree (or at the key's own leaf).
	OtherKey []byte
}

// Lookup walks key's path.
func (t Tree) Lookup(key []byte) Path {
	path := proof.KeyHash(key)
	var aunts []Hash
	n := t.root
	for depth := 0; n != nil && !n.isLeaf(); depth++ {
		if proof.Bit(path, depth) == 0 {
			aunts = append(aunts, hashOf(n.r))
			n = n.l
		} else {
			aunts = append(aunts, hashOf(n.l))
			n = n.r
		}
	}
	slices.Reverse(aunts)
	p := Path{Aunts: aunts}
	switch {
	case n == nil:
	case bytes.Equal(n.key, key):
		p.Found = true
	default:
		p.OtherKey = n.key
	}
	return p
}

// Stats counts a tree's nodes.
type Stats struct {
	Leaves, Inner int
	MaxDepth      int
}

// Stats walks the whole tree.
func (t Tree) Stats() Stats {
	var s Stats
	var walk func(n *node, d int)
	walk = func(n *node, d int) {
		switch {
		case n == nil:
		case n.isLeaf():
			s.Leaves++
			s.MaxDepth = max(s.MaxDepth, d)
		default:
			s.Inner++
			walk(n.l, d+1)
			walk(n.r, d+1)
		}
	}
	walk(t.root, 0)
	return s
}
