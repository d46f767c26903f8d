package proof

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"
	"github.com/cometbft/cometbft/crypto/merkle"
)

// OpSMT is the type of this chain's own proof op: a key's absence from its
// module's tree, or its membership at any depth.
const OpSMT = "integritee:smt"

// smtOpVersion is the first byte of an OpSMT op's data.
const smtOpVersion = 1

// Kind is what an SMTOp proves.
type Kind byte

// Kinds of SMTOp.
const (
	// KindEmpty: the key is absent; its path ends in an empty subtree.
	KindEmpty Kind = 0
	// KindOther: the key is absent; its path ends at another key's leaf,
	// which, in a compact tree, is the only key below that point.
	KindOther Kind = 1
	// KindMember: the key is present; its leaf ends the path.
	KindMember Kind = 2
)

// SMTOp proves a key's absence from, or membership in, its module's tree.
// Run takes no argument for absence and the value for membership, and
// returns the module root.
type SMTOp struct {
	// Key is the state key proven.
	Key []byte
	// Kind is what the op proves.
	Kind Kind
	// Aunts are the siblings along the key's path, from the deepest up to
	// the root's child; their number is the depth at which the path ends.
	Aunts []Hash
	// OtherKey and OtherValueHash are the leaf that ends the path (KindOther).
	OtherKey       []byte
	OtherValueHash Hash
}

var _ merkle.ProofOperator = SMTOp{}

// GetKey implements merkle.ProofOperator.
func (o SMTOp) GetKey() []byte { return o.Key }

// Run implements merkle.ProofOperator: it recomputes the module root.
func (o SMTOp) Run(args [][]byte) ([][]byte, error) {
	path := KeyHash(o.Key)
	d := len(o.Aunts)
	var h Hash
	switch o.Kind {
	case KindMember:
		if len(args) != 1 || args[0] == nil {
			return nil, fmt.Errorf("%w: membership needs the value", ErrBadProof)
		}
		h = LeafHash(o.Key, sha256.Sum256(args[0]))
	case KindEmpty:
		if len(args) != 0 {
			return nil, fmt.Errorf("%w: an absence proof takes no value", ErrBadProof)
		}
		h = Empty
	case KindOther:
		if len(args) != 0 {
			return nil, fmt.Errorf("%w: an absence proof takes no value", ErrBadProof)
		}
		if bytes.Equal(o.OtherKey, o.Key) {
			return nil, fmt.Errorf("%w: the other leaf is the key itself", ErrMismatch)
		}
		other := KeyHash(o.OtherKey)
		for i := 0; i < d; i++ {
			if Bit(other, i) != Bit(path, i) {
				return nil, fmt.Errorf("%w: the other leaf is not on the key's path", ErrMismatch)
			}
		}
		h = LeafHash(o.OtherKey, o.OtherValueHash)
	default:
		return nil, fmt.Errorf("%w: unknown kind %d", ErrBadProof, o.Kind)
	}
	for i := d - 1; i >= 0; i-- {
		a := o.Aunts[d-1-i]
		if Bit(path, i) == 0 {
			h = InnerHash(h, a)
		} else {
			h = InnerHash(a, h)
		}
	}
	return [][]byte{bytes.Clone(h[:])}, nil
}

// ProofOp implements merkle.ProofOperator.
func (o SMTOp) ProofOp() cmtcrypto.ProofOp {
	var n [binary.MaxVarintLen64]byte
	data := []byte{smtOpVersion, byte(o.Kind)}
	data = append(data, n[:binary.PutUvarint(n[:], uint64(len(o.Aunts)))]...)
	for _, a := range o.Aunts {
		data = append(data, a[:]...)
	}
	if o.Kind == KindOther {
		data = append(data, n[:binary.PutUvarint(n[:], uint64(len(o.OtherKey)))]...)
		data = append(data, o.OtherKey...)
		data = append(data, o.OtherValueHash[:]...)
	}
	return cmtcrypto.ProofOp{Type: OpSMT, Key: bytes.Clone(o.Key), Data: data}
}

// DecodeSMTOp decodes an OpSMT op; it is a merkle.OpDecoder.
func DecodeSMTOp(op cmtcrypto.ProofOp) (merkle.ProofOperator, error) {
	if op.Type != OpSMT {
		return nil, fmt.Errorf("%w: op type %q, want %q", ErrBadProof, op.Type, OpSMT)
	}
	if len(op.Key) == 0 || len(op.Key) > MaxKeyLen {
		return nil, fmt.Errorf("%w: key length %d", ErrBadProof, len(op.Key))
	}
	d := op.Data
	if len(d) < 2 || d[0] != smtOpVersion {
		return nil, fmt.Errorf("%w: bad header", ErrBadProof)
	}
	o := SMTOp{Key: bytes.Clone(op.Key), Kind: Kind(d[1])}
	if o.Kind > KindMember {
		return nil, fmt.Errorf("%w: unknown kind %d", ErrBadProof, o.Kind)
	}
	d = d[2:]
	depth, n := uvarint(d)
	if n <= 0 || depth > MaxDepth || uint64(len(d)-n) < depth*32 {
		return nil, fmt.Errorf("%w: bad depth", ErrBadProof)
	}
	d = d[n:]
	o.Aunts = make([]Hash, depth)
	for i := range o.Aunts {
		copy(o.Aunts[i][:], d[:32])
		d = d[32:]
	}
	if o.Kind == KindOther {
		l, n := uvarint(d)
		if n <= 0 || l == 0 || l > MaxKeyLen || uint64(len(d)-n) != l+32 {
			return nil, fmt.Errorf("%w: bad other leaf", ErrBadProof)
		}
		d = d[n:]
		o.OtherKey = bytes.Clone(d[:l])
		copy(o.OtherValueHash[:], d[l:])
		d = d[l+32:]
	}
	if len(d) != 0 {
		return nil, fmt.Errorf("%w: %d trailing bytes", ErrBadProof, len(d))
	}
	return o, nil
}

// uvarint decodes a minimally encoded uvarint (n <= 0 for none), so that an
// op has exactly one encoding.
func uvarint(b []byte) (uint64, int) {
	v, n := binary.Uvarint(b)
	var buf [binary.MaxVarintLen64]byte
	if n > 0 && binary.PutUvarint(buf[:], v) != n {
		return 0, -1
	}
	return v, n
}
