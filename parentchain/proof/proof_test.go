package proof_test

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"testing"

	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"

	"github.com/integritee-go/integritee/parentchain/proof"
	"github.com/integritee-go/integritee/parentchain/state/smt"
)

// fixture is a two-module state with its app hash, and proofs made the way
// the node makes them.
type fixture struct {
	names   []string
	trees   []smt.Tree
	kv      map[string][]byte
	appHash []byte
}

func newFixture() *fixture {
	f := &fixture{names: []string{"a", "m"}, kv: map[string][]byte{}}
	var ws [2][]smt.Write
	for i := 0; i < 40; i++ {
		k, v := fmt.Sprintf("m/key%d", i), fmt.Appendf(nil, "value %d", i)
		f.kv[k] = []byte(v)
		ws[1] = append(ws[1], smt.NewSet([]byte(k), v))
	}
	f.kv["a/only"] = []byte("alone")
	ws[0] = append(ws[0], smt.NewSet([]byte("a/only"), []byte("alone")))
	f.trees = []smt.Tree{smt.Build(ws[0]), smt.Build(ws[1])}
	f.appHash = proof.AppHash(f.names, f.roots())
	return f
}

func (f *fixture) roots() []proof.Hash {
	return []proof.Hash{f.trees[0].Root(), f.trees[1].Root()}
}

// prove builds key's proof ops and its value (nil when absent).
func (f *fixture) prove(key string) (*cmtcrypto.ProofOps, []byte) {
	i := 0
	if key[0] == 'm' {
		i = 1
	}
	p := f.trees[i].Lookup([]byte(key))
	var first cmtcrypto.ProofOp
	var value []byte
	switch {
	case p.Found:
		value = f.kv[key]
		first = proof.SimpleOp([]byte(key), sha256.Sum256(value), p.Aunts)
	case p.OtherKey != nil:
		first = proof.SMTOp{Key: []byte(key), Kind: proof.KindOther, Aunts: p.Aunts, OtherKey: p.OtherKey, OtherValueHash: sha256.Sum256(f.kv[string(p.OtherKey)])}.ProofOp()
	default:
		first = proof.SMTOp{Key: []byte(key), Kind: proof.KindEmpty, Aunts: p.Aunts}.ProofOp()
	}
	return &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{first, proof.ModuleOp(f.names, f.roots(), i)}}, value
}

func TestModuleAndPaths(t *testing.T) {
	for _, c := range []struct{ key, module, path string }{
		{"balances/acct/x", "balances", "/store/balances/key"},
		{"system/chain_id", "system", "/store/system/key"},
	} {
		m, err := proof.Module([]byte(c.key))
		if err != nil || m != c.module {
			t.Errorf("Module(%q) = %q, %v", c.key, m, err)
		}
		if p, _ := proof.QueryPath([]byte(c.key)); p != c.path {
			t.Errorf("QueryPath(%q) = %q", c.key, p)
		}
	}
	for _, bad := range []string{"", "nomodule", "/leading", string(make([]byte, proof.MaxKeyLen+1))} {
		if _, err := proof.Module([]byte(bad)); !errors.Is(err, proof.ErrBadKey) {
			t.Errorf("Module(%.20q) = %v, want ErrBadKey", bad, err)
		}
	}
}

func TestEveryKeyAndSomeAbsentOnesVerify(t *testing.T) {
	f := newFixture()
	keys := []string{"a/only", "a/absent", "m/absent", "m/key999"}
	for k := range f.kv {
		keys = append(keys, k)
	}
	for _, k := range keys {
		ops, v := f.prove(k)
		if err := proof.Verify(ops, f.appHash, []byte(k), v); err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
}

// TestVerifyRefusesEveryFalseClaim: a proof shows exactly one claim about
// one key against one app hash.
func TestVerifyRefusesEveryFalseClaim(t *testing.T) {
	f := newFixture()
	present, _ := f.prove("m/key1")
	absent, _ := f.prove("m/key999")
	other := f.trees[1].Lookup([]byte("m/key999"))
	for _, c := range []struct {
		name  string
		ops   *cmtcrypto.ProofOps
		hash  []byte
		key   string
		value []byte
		want  error
	}{
		{"wrong value", present, f.appHash, "m/key1", []byte("value 2"), proof.ErrMismatch},
		{"present claimed absent", present, f.appHash, "m/key1", nil, proof.ErrBadProof},
		{"absent claimed present", absent, f.appHash, "m/key999", []byte("x"), proof.ErrBadProof},
		{"another key's proof", present, f.appHash, "m/key2", []byte("value 1"), proof.ErrBadProof},
		{"another key's absence", absent, f.appHash, "m/key998", nil, proof.ErrMismatch},
		{"another app hash", present, bytes.Repeat([]byte{1}, 32), "m/key1", []byte("value 1"), proof.ErrMismatch},
		{"no ops", &cmtcrypto.ProofOps{}, f.appHash, "m/key1", []byte("value 1"), proof.ErrBadProof},
		{"only the key's op", &cmtcrypto.ProofOps{Ops: present.Ops[:1]}, f.appHash, "m/key1", []byte("value 1"), proof.ErrBadProof},
		{"module op of another module", &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{present.Ops[0], proof.ModuleOp(f.names, f.roots(), 0)}}, f.appHash, "m/key1", []byte("value 1"), proof.ErrBadProof},
		{"the other leaf is the key itself", &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{
			proof.SMTOp{Key: []byte("m/key1"), Kind: proof.KindOther, Aunts: other.Aunts, OtherKey: []byte("m/key1"), OtherValueHash: sha256.Sum256([]byte("value 1"))}.ProofOp(),
			proof.ModuleOp(f.names, f.roots(), 1)}}, f.appHash, "m/key1", nil, proof.ErrMismatch},
		{"key with no module", present, f.appHash, "nomodule", []byte("value 1"), proof.ErrBadKey},
	} {
		err := proof.Verify(c.ops, c.hash, []byte(c.key), c.value)
		if !errors.Is(err, c.want) {
			t.Errorf("%s: %v, want %v", c.name, err, c.want)
		}
	}
}

// TestSimpleOpAtTheWrongIndexIsRefused: CometBFT's runtime does not tie a
// simple:v proof's index to the key; Verify does.
func TestSimpleOpAtTheWrongIndexIsRefused(t *testing.T) {
	f := newFixture()
	ops, v := f.prove("m/key1")
	// A proof with an index the key's path does not give.
	p := f.trees[1].Lookup([]byte("m/key1"))
	aunts := append([]proof.Hash{}, p.Aunts...)
	aunts = append(aunts, proof.Empty) // one level deeper: total and index change
	ops2 := &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{proof.SimpleOp([]byte("m/key1"), sha256.Sum256(v), aunts), ops.Ops[1]}}
	if err := proof.Verify(ops2, f.appHash, []byte("m/key1"), v); err == nil {
		t.Fatal("a proof one level too deep verified")
	}
}

func TestSMTOpRoundTrip(t *testing.T) {
	o := proof.SMTOp{Key: []byte("m/k"), Kind: proof.KindOther, Aunts: []proof.Hash{{1}, {2}}, OtherKey: []byte("m/o"), OtherValueHash: proof.Hash{3}}
	got, err := proof.DecodeSMTOp(o.ProofOp())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(o) {
		t.Fatalf("round trip %+v, want %+v", got, o)
	}
	good := o.ProofOp()
	for name, mut := range map[string]func(op *cmtcrypto.ProofOp){
		"other type":      func(op *cmtcrypto.ProofOp) { op.Type = "simple:v" },
		"no key":          func(op *cmtcrypto.ProofOp) { op.Key = nil },
		"other version":   func(op *cmtcrypto.ProofOp) { op.Data[0] = 2 },
		"unknown kind":    func(op *cmtcrypto.ProofOp) { op.Data[1] = 9 },
		"truncated":       func(op *cmtcrypto.ProofOp) { op.Data = op.Data[:len(op.Data)-1] },
		"trailing byte":   func(op *cmtcrypto.ProofOp) { op.Data = append(op.Data, 0) },
		"huge depth":      func(op *cmtcrypto.ProofOp) { op.Data = append([]byte{1, 0, 0xff, 0xff, 0x03}, op.Data[3:]...) },
		"header only":     func(op *cmtcrypto.ProofOp) { op.Data = op.Data[:1] },
		"empty other key": func(op *cmtcrypto.ProofOp) { op.Data = append(op.Data[:3+64], 0) },
	} {
		op := good
		op.Data = bytes.Clone(good.Data)
		mut(&op)
		if _, err := proof.DecodeSMTOp(op); !errors.Is(err, proof.ErrBadProof) {
			t.Errorf("%s: %v, want ErrBadProof", name, err)
		}
	}
}

// FuzzDecodeSMTOp: any op data either is refused or decodes to an op that
// encodes back to the same bytes and runs without panicking.
func FuzzDecodeSMTOp(f *testing.F) {
	fx := newFixture()
	for _, k := range []string{"m/key999", "a/absent", "m/absent"} {
		ops, _ := fx.prove(k)
		f.Add([]byte(k), ops.Ops[0].Data)
	}
	f.Add([]byte("m/k"), []byte{1, 2, 0})
	f.Fuzz(func(t *testing.T, key, data []byte) {
		op, err := proof.DecodeSMTOp(cmtcrypto.ProofOp{Type: proof.OpSMT, Key: key, Data: data})
		if err != nil {
			return
		}
		if again := op.ProofOp(); !bytes.Equal(again.Data, data) || !bytes.Equal(again.Key, key) {
			t.Fatalf("decoded op encodes to %x, was %x", again.Data, data)
		}
		_, _ = op.Run(nil)
		_, _ = op.Run([][]byte{[]byte("v")})
	})
}

// FuzzVerify: whatever ops a node sends, Verify never accepts a false
// claim about the fixture's state.
func FuzzVerify(f *testing.F) {
	fx := newFixture()
	for _, k := range []string{"m/key1", "a/only", "m/key999", "a/absent"} {
		ops, v := fx.prove(k)
		b, err := ops.Marshal()
		if err != nil {
			f.Fatal(err)
		}
		f.Add([]byte(k), v, b)
	}
	f.Fuzz(func(t *testing.T, key, value, raw []byte) {
		var ops cmtcrypto.ProofOps
		if ops.Unmarshal(raw) != nil {
			return
		}
		if len(value) == 0 {
			value = nil
		}
		if proof.Verify(&ops, fx.appHash, key, value) != nil {
			return
		}
		want, ok := fx.kv[string(key)]
		if !ok {
			want = nil
		}
		if !bytes.Equal(value, want) || (value == nil) != (want == nil) {
			t.Fatalf("accepted %q = %q; the state holds %q", key, value, want)
		}
	})
}
