// Package proof defines how the parentchain's app hash commits to its state
// and verifies proofs of single state keys against it. Wallets, the CLI and
// the enclave use it to read the chain's own answer instead of trusting a
// node; the node's state commitment (package parentchain/state/smt) builds
// the proofs it checks.
//
// The commitment. Every state key belongs to a module: the bytes before its
// first '/' ("balances/acct/<id>" belongs to "balances"). Each module's keys
// form a compact binary sparse Merkle tree: a key's path is the bits of
// SHA-256(key), most significant first, and its leaf sits at the shallowest
// depth at which no other key of the module shares its path. The leaf hash
// is CometBFT's ValueOp leaf hash, SHA-256(0x00 ‖ uvarint(len key) ‖ key ‖
// uvarint(32) ‖ SHA-256(value)); an inner node hashes to SHA-256(0x01 ‖ left
// ‖ right); an empty subtree (and an empty module) is 32 zero bytes. The app
// hash is merkle.HashFromByteSlices over one item per module in name order,
// each item being what a ValueOp with key = module name and value = module
// root hashes.
//
// The proofs. A leaf at depth d is exactly a CometBFT `simple:v` proof with
// Total = 2^d and Index = the first d bits of SHA-256(key), so membership
// proofs are two `simple:v` ops (the key in its module's tree, then the
// module in the app hash) that an unmodified CometBFT light client checks.
// Absence, and membership of a leaf deeper than 62 (where 2^d no longer fits
// CometBFT's int64 Total), use this package's own op, OpSMT, in place of the
// first one; clients register it with Runtime.
//
// Nothing here trusts its input: every decoder bounds what it reads.
package proof

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	"github.com/cometbft/cometbft/crypto/merkle"
)

// Hash is a node hash of the state commitment.
type Hash = [32]byte

// Empty is the hash of an empty subtree and of a module with no keys.
var Empty Hash

// MaxSimpleDepth is the deepest leaf a `simple:v` op can prove: its Total
// (2^depth) must fit an int64.
const MaxSimpleDepth = 62

// MaxDepth bounds the depth of an OpSMT proof: a path has 256 bits.
const MaxDepth = 256

// MaxKeyLen bounds a state key in a proof.
const MaxKeyLen = 1 << 10

// Errors. Every refusal wraps one of these.
var (
	// ErrBadKey: a state key has no module, or is too long.
	ErrBadKey = errors.New("proof: bad state key")
	// ErrBadProof: the proof does not decode or is not of the expected shape.
	ErrBadProof = errors.New("proof: malformed proof")
	// ErrMismatch: the proof is well formed but does not prove the claim
	// against the app hash.
	ErrMismatch = errors.New("proof: does not verify")
)

// Module returns the module a state key belongs to: the bytes before its
// first '/'.
func Module(key []byte) (string, error) {
	if len(key) == 0 || len(key) > MaxKeyLen {
		return "", fmt.Errorf("%w: length %d", ErrBadKey, len(key))
	}
	i := bytes.IndexByte(key, '/')
	if i <= 0 {
		return "", fmt.Errorf("%w: %q has no module prefix", ErrBadKey, key)
	}
	return string(key[:i]), nil
}

// KeyPath returns the merkle key path of a state key, module name first,
// URL-encoded as CometBFT's light client builds it from "/store/<module>/key".
func KeyPath(key []byte) (string, error) {
	m, err := Module(key)
	if err != nil {
		return "", err
	}
	return merkle.KeyPath{}.AppendKey([]byte(m), merkle.KeyEncodingURL).AppendKey(key, merkle.KeyEncodingURL).String(), nil
}

// QueryPath is the abci_query path that proves a state key:
// "/store/<module>/key".
func QueryPath(key []byte) (string, error) {
	m, err := Module(key)
	if err != nil {
		return "", err
	}
	return "/store/" + url.PathEscape(m) + "/key", nil
}

// KeyHash is the path of a key in its module's tree.
func KeyHash(key []byte) Hash { return sha256.Sum256(key) }

// LeafHash is the hash of a leaf holding key with value hash vh: CometBFT's
// ValueOp leaf hash.
func LeafHash(key []byte, vh Hash) Hash {
	var n [binary.MaxVarintLen64]byte
	h := sha256.New()
	h.Write([]byte{0})
	h.Write(n[:binary.PutUvarint(n[:], uint64(len(key)))])
	h.Write(key)
	h.Write([]byte{32})
	h.Write(vh[:])
	var out Hash
	h.Sum(out[:0])
	return out
}

// ValueLeafHash is LeafHash(key, SHA-256(value)).
func ValueLeafHash(key, value []byte) Hash { return LeafHash(key, sha256.Sum256(value)) }

// InnerHash is the hash of an inner node.
func InnerHash(l, r Hash) Hash {
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// Bit returns bit i of a path, most significant first.
func Bit(path Hash, i int) byte { return path[i/8] >> (7 - uint(i%8)) & 1 }

// pathIndex is the leaf index the first d bits of path give in a tree of
// 2^d leaves: a simple:v proof's Index.
func pathIndex(path Hash, d int) int64 {
	var index int64
	for i := 0; i < d; i++ {
		index = index<<1 | int64(Bit(path, i))
	}
	return index
}

// ModuleItem is a module's item in the app hash: the bytes a ValueOp with
// key = name and value = root hashes as its leaf.
func ModuleItem(name string, root Hash) []byte {
	vh := sha256.Sum256(root[:])
	var n [binary.MaxVarintLen64]byte
	out := append([]byte{}, n[:binary.PutUvarint(n[:], uint64(len(name)))]...)
	out = append(out, name...)
	out = append(out, 32)
	return append(out, vh[:]...)
}

// AppHash combines module roots, given in module-name order, into the app
// hash.
func AppHash(names []string, roots []Hash) []byte {
	items := make([][]byte, len(names))
	for i, n := range names {
		items[i] = ModuleItem(n, roots[i])
	}
	return merkle.HashFromByteSlices(items)
}

// ModuleOp returns the second op of every proof: module names[i], whose root
// is roots[i], in the app hash.
func ModuleOp(names []string, roots []Hash, i int) cmtcrypto.ProofOp {
	items := make([][]byte, len(names))
	for j, n := range names {
		items[j] = ModuleItem(n, roots[j])
	}
	_, proofs := merkle.ProofsFromByteSlices(items)
	return merkle.NewValueOp([]byte(names[i]), proofs[i]).ProofOp()
}

// SimpleOp returns the `simple:v` op proving that key's leaf, at depth
// len(aunts) with the given path, is in a module tree. aunts are the
// siblings from the leaf's up to the root's child. depth must not exceed
// MaxSimpleDepth.
func SimpleOp(key []byte, vh Hash, aunts []Hash) cmtcrypto.ProofOp {
	d := len(aunts)
	lh := LeafHash(key, vh)
	p := &merkle.Proof{Total: int64(1) << d, Index: pathIndex(KeyHash(key), d), LeafHash: lh[:]}
	for _, a := range aunts {
		p.Aunts = append(p.Aunts, bytes.Clone(a[:]))
	}
	return merkle.NewValueOp(key, p).ProofOp()
}

// Runtime returns CometBFT's default proof runtime (`simple:v`) with OpSMT
// registered.
func Runtime() *merkle.ProofRuntime {
	prt := merkle.DefaultProofRuntime()
	prt.RegisterOpDecoder(OpSMT, DecodeSMTOp)
	return prt
}

// Verify checks that ops prove, against appHash, that key holds value, or,
// if value is nil, that key is absent. Beyond what CometBFT's runtime
// checks, it requires the shape this chain's proofs have: exactly two ops,
// the first for key in its module's tree at the position its path gives,
// the second for the key's module.
func Verify(ops *cmtcrypto.ProofOps, appHash, key, value []byte) error {
	kp, err := KeyPath(key)
	if err != nil {
		return err
	}
	if ops == nil || len(ops.Ops) != 2 {
		return fmt.Errorf("%w: want 2 ops", ErrBadProof)
	}
	if err := checkPosition(ops.Ops[0], key, value != nil); err != nil {
		return err
	}
	if m, _ := Module(key); ops.Ops[1].Type != merkle.ProofOpValue || string(ops.Ops[1].Key) != m {
		return fmt.Errorf("%w: second op is not module %q's", ErrBadProof, m)
	}
	prt := Runtime()
	if value == nil {
		err = prt.VerifyAbsence(ops, appHash, kp)
	} else {
		err = prt.VerifyValue(ops, appHash, kp, value)
	}
	if err != nil {
		return fmt.Errorf("%w: %w", ErrMismatch, err)
	}
	return nil
}

// checkPosition checks that the first op proves key at the position its
// path gives, and proves what is claimed (membership or absence).
func checkPosition(op cmtcrypto.ProofOp, key []byte, member bool) error {
	switch op.Type {
	case merkle.ProofOpValue:
		if !member {
			return fmt.Errorf("%w: a simple:v op cannot prove absence", ErrBadProof)
		}
		dec, err := merkle.ValueOpDecoder(op)
		if err != nil {
			return fmt.Errorf("%w: %w", ErrBadProof, err)
		}
		p := dec.(merkle.ValueOp).Proof
		d := len(p.Aunts)
		if d > MaxSimpleDepth || p.Total != int64(1)<<d {
			return fmt.Errorf("%w: total %d for %d aunts", ErrBadProof, p.Total, d)
		}
		if index := pathIndex(KeyHash(key), d); p.Index != index {
			return fmt.Errorf("%w: index %d, key's path gives %d", ErrBadProof, p.Index, index)
		}
		return nil
	case OpSMT:
		o, err := DecodeSMTOp(op)
		if err != nil {
			return err
		}
		if (o.(SMTOp).Kind == KindMember) != member {
			return fmt.Errorf("%w: op proves the opposite claim", ErrBadProof)
		}
		return nil
	default:
		return fmt.Errorf("%w: unknown op type %q", ErrBadProof, op.Type)
	}
}
