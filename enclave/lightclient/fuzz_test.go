package lightclient

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtproto "github.com/cometbft/cometbft/api/cometbft/types/v1"
	cmtjson "github.com/cometbft/cometbft/libs/json"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"
)

// fuzzHeights is how far the fuzz chain goes: the targets verify heights
// 1..fuzzHeights-1 (each needs the next header).
const fuzzHeights = 4

// rpcFixture is a chain, the client's sealed state before each height,
// the node's RPC answers for each height as JSON, and what verifying them
// yields. Everything is deterministic, so the committed corpus matches.
type rpcFixture struct {
	c        *chain
	clients  map[int64]*Client // a client before h, replaced once it verified h
	states   map[int64][]byte  // the client's state before verifying h
	answers  map[int64][6][]byte
	verified map[int64]*Verified
	after    map[int64][]byte // the client's state after verifying h
}

func newRPCFixture(tb testing.TB) *rpcFixture {
	tb.Helper()
	c := newChain(tb, fuzzHeights, chainOpts{})
	x := &rpcFixture{c: c, clients: map[int64]*Client{}, states: map[int64][]byte{}, answers: map[int64][6][]byte{}, verified: map[int64]*Verified{}, after: map[int64][]byte{}}
	lc, err := New(c.chainID, c.vals[1], Config{})
	if err != nil {
		tb.Fatal(err)
	}
	for h := int64(1); h < fuzzHeights; h++ {
		if x.states[h], err = lc.State(); err != nil {
			tb.Fatal(err)
		}
		x.answers[h] = x.rpcJSON(tb, h)
		if x.verified[h], err = lc.Verify(c.input(h), testNow); err != nil {
			tb.Fatalf("height %d: %v", h, err)
		}
		if x.after[h], err = lc.State(); err != nil {
			tb.Fatal(err)
		}
	}
	return x
}

// rpcJSON is the node's answers for h as the host's RPC client receives
// them: /block, /commit, /validators, /block_results at h, /commit and
// /validators at h+1.
func (x *rpcFixture) rpcJSON(tb testing.TB, h int64) [6][]byte {
	tb.Helper()
	c := x.c
	vals := func(h int64) *ctypes.ResultValidators {
		vs := c.vals[h].Copy()
		return &ctypes.ResultValidators{BlockHeight: h, Validators: vs.Validators, Count: vs.Size(), Total: vs.Size()}
	}
	res := make([]any, 0, 6)
	res = append(res,
		&ctypes.ResultBlock{BlockID: c.ids[h], Block: c.copyBlock(h)},
		ctypes.NewResultCommit(&c.copyBlock(h).Header, c.copyCommit(h), true),
		vals(h),
		&ctypes.ResultBlockResults{Height: h, TxResults: c.input(h).Results, AppHash: []byte{1}},
		ctypes.NewResultCommit(&c.copyBlock(h+1).Header, c.copyCommit(h+1), false),
		vals(h+1),
	)
	var out [6][]byte
	for i, v := range res {
		b, err := cmtjson.Marshal(v)
		if err != nil {
			tb.Fatal(err)
		}
		out[i] = b
	}
	return out
}

// client returns a client in the state before height h. Verify leaves a
// client unchanged when it refuses (the targets check that), so one client
// serves until it accepts a block.
func (x *rpcFixture) client(t *testing.T, h int64) *Client {
	if lc := x.clients[h]; lc != nil {
		return lc
	}
	lc, err := Restore(x.states[h], Config{})
	if err != nil {
		t.Fatal(err)
	}
	x.clients[h] = lc
	return lc
}

// verify runs the client before h on in and checks the verdict: a refusal
// is named and moves nothing; an acceptance yields exactly the chain's
// block.
func (x *rpcFixture) verify(t *testing.T, h int64, in Input) {
	lc := x.client(t, h)
	v, err := lc.Verify(in, testNow)
	if err != nil {
		if v != nil {
			t.Fatal("Verify returned a result with its error")
		}
		if !isVerifyError(err) {
			t.Fatalf("Verify: unnamed error %v", err)
		}
		if st, _ := lc.State(); !bytes.Equal(st, x.states[h]) {
			t.Fatalf("a refused input (%v) moved the client", err)
		}
		return
	}
	delete(x.clients, h)
	if !reflect.DeepEqual(v, x.verified[h]) {
		t.Fatalf("verified block %d as %+v, the chain's is %+v", h, v, x.verified[h])
	}
	if st, _ := lc.State(); !bytes.Equal(st, x.after[h]) {
		t.Fatal("the client's state after an accepted block is not the chain's")
	}
}

// FuzzVerifyRPCAnswers: the node's six JSON answers for one height go
// through the host (cmtjson, InputFromRPC) into the enclave's light client.
// Whatever they hold, nothing panics, every refusal wraps one of the
// client's named errors and leaves it as it was, and what the client
// accepts is exactly the chain's block: the same hash, time, app hash and
// transactions, with the same results, as the genuine answers give.
func FuzzVerifyRPCAnswers(f *testing.F) {
	x := newRPCFixture(f)
	for h := int64(1); h < fuzzHeights; h++ {
		a := x.answers[h]
		f.Add(uint8(h), a[0], a[1], a[2], a[3], a[4], a[5])
	}
	// The next height's answers at this height: every part off by one.
	a, b := x.answers[1], x.answers[2]
	f.Add(uint8(1), a[0], b[1], a[2], a[3], a[4], a[5])
	f.Add(uint8(1), a[0], a[1], a[2], a[3], b[4], b[5])
	f.Fuzz(func(t *testing.T, which uint8, block, commit, vals, results, next, nextVals []byte) {
		h := 1 + int64(which)%(fuzzHeights-1)
		var (
			rb  ctypes.ResultBlock
			rc  ctypes.ResultCommit
			rv  ctypes.ResultValidators
			rr  ctypes.ResultBlockResults
			rn  ctypes.ResultCommit
			rnv ctypes.ResultValidators
		)
		for _, p := range []struct {
			raw []byte
			v   any
		}{{block, &rb}, {commit, &rc}, {vals, &rv}, {results, &rr}, {next, &rn}, {nextVals, &rnv}} {
			if err := cmtjson.Unmarshal(p.raw, p.v); err != nil {
				return // the host's RPC client refuses the answer
			}
		}
		in, err := InputFromRPC(&rb, &rc, &rv, &rr, &rn, &rnv)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("InputFromRPC: unnamed error %v", err)
			}
			return
		}
		x.verify(t, h, in)
	})
}

func isVerifyError(err error) bool {
	for _, e := range []error{ErrInvalidInput, ErrWrongChain, ErrHeightGap, ErrExpired, ErrHeaderFromFuture, ErrInvalidHeader,
		ErrInvalidBlock, ErrValidatorsMismatch, ErrNotLinked, ErrBadCommit, ErrDataHashMismatch, ErrResultsMismatch, ErrUndecodableTx} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// FuzzRestore: the light client's sealed state (its trust root) decodes
// without panicking, fails only with ErrBadState, and a restored client
// encodes its state in one normal form: restoring that again gives the same
// client, and a genuine state restores to itself.
func FuzzRestore(f *testing.F) {
	x := newRPCFixture(f)
	genuine := map[string]bool{}
	for h := int64(1); h < fuzzHeights; h++ {
		genuine[string(x.states[h])] = true
		f.Add(x.states[h])
	}
	f.Add(x.after[fuzzHeights-1])
	f.Add([]byte("ILC\x02\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		lc, err := Restore(b, Config{})
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		st, err := lc.State()
		if err != nil {
			t.Fatalf("a restored client cannot encode its state: %v", err)
		}
		if genuine[string(b)] && !bytes.Equal(st, b) {
			t.Fatal("a genuine state does not restore to itself")
		}
		again, err := Restore(st, Config{})
		if err != nil {
			t.Fatalf("a restored client's own state does not restore: %v", err)
		}
		st2, _ := again.State()
		if !bytes.Equal(st, st2) || again.Height() != lc.Height() || again.LastBlockHash() != lc.LastBlockHash() || again.ChainID() != lc.ChainID() {
			t.Fatal("restoring a restored client's state gives another client")
		}
	})
}

// protoInput is the input for h as protobuf: block, commit, validators,
// results (a FinalizeBlockResponse's), next signed header, next
// validators.
func (x *rpcFixture) protoInput(tb testing.TB, h int64) [6][]byte {
	tb.Helper()
	in := x.c.input(h)
	pb, err := in.Block.ToProto()
	if err != nil {
		tb.Fatal(err)
	}
	vals, err := in.Validators.ToProto()
	if err != nil {
		tb.Fatal(err)
	}
	nextVals, err := in.NextValidators.ToProto()
	if err != nil {
		tb.Fatal(err)
	}
	parts := []interface{ Marshal() ([]byte, error) }{
		pb, in.Commit.ToProto(), vals, &abci.FinalizeBlockResponse{TxResults: in.Results}, in.Next.ToProto(), nextVals,
	}
	var out [6][]byte
	for i, p := range parts {
		if out[i], err = p.Marshal(); err != nil {
			tb.Fatal(err)
		}
	}
	return out
}

// inputFromProto decodes protoInput's parts. The conversions are
// CometBFT's and only the harness uses them (the host hands the enclave
// Go values it built from JSON), so a panic in them is not the enclave's:
// it counts as input that does not decode.
func inputFromProto(parts [6][]byte) (in Input, ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	var (
		pb      cmtproto.Block
		pc      cmtproto.Commit
		pv, pnv cmtproto.ValidatorSet
		res     abci.FinalizeBlockResponse
		psh     cmtproto.SignedHeader
	)
	for i, m := range []interface{ Unmarshal([]byte) error }{&pb, &pc, &pv, &res, &psh, &pnv} {
		if m.Unmarshal(parts[i]) != nil {
			return Input{}, false
		}
	}
	var err error
	if in.Block, err = cmttypes.BlockFromProto(&pb); err != nil {
		return Input{}, false
	}
	if in.Commit, err = cmttypes.CommitFromProto(&pc); err != nil {
		return Input{}, false
	}
	if in.Validators, err = cmttypes.ValidatorSetFromProto(&pv); err != nil {
		return Input{}, false
	}
	if in.Next, err = cmttypes.SignedHeaderFromProto(&psh); err != nil {
		return Input{}, false
	}
	if in.NextValidators, err = cmttypes.ValidatorSetFromProto(&pnv); err != nil {
		return Input{}, false
	}
	in.Results = res.TxResults
	return in, true
}

// FuzzVerifyInput: the headers, commits, validator sets and results the
// host hands the light client, mutated below the JSON layer (faster than
// FuzzVerifyRPCAnswers, so the fuzzer reaches further into Verify). The
// property is the same: named refusals that move nothing, and acceptance
// of the chain's own block only.
func FuzzVerifyInput(f *testing.F) {
	x := newRPCFixture(f)
	for h := int64(1); h < fuzzHeights; h++ {
		p := x.protoInput(f, h)
		f.Add(uint8(h), p[0], p[1], p[2], p[3], p[4], p[5])
	}
	p1, p2 := x.protoInput(f, 1), x.protoInput(f, 2)
	f.Add(uint8(1), p1[0], p1[1], p1[2], p1[3], p2[4], p2[5])
	f.Fuzz(func(t *testing.T, which uint8, block, commit, vals, results, next, nextVals []byte) {
		h := 1 + int64(which)%(fuzzHeights-1)
		in, ok := inputFromProto([6][]byte{block, commit, vals, results, next, nextVals})
		if !ok {
			return
		}
		x.verify(t, h, in)
	})
}

// TestRestoreRefusesAValidatorWithoutAKey is FuzzRestore's first crasher
// (testdata/fuzz/FuzzRestore/872e65a5cb604a92): a sealed state whose
// validator names no key type made CometBFT's ValidatorSetFromProto
// dereference a nil public key; Restore now refuses it with ErrBadState.
func TestRestoreRefusesAValidatorWithoutAKey(t *testing.T) {
	x := newRPCFixture(t)
	st := x.states[2]
	body := st[len(stateMagic)+1+len(x.c.chainID)+32:]
	var lb cmtproto.LightBlock
	if err := lb.Unmarshal(body); err != nil {
		t.Fatal(err)
	}
	lb.ValidatorSet.Validators[0].PubKeyType = ""
	lb.ValidatorSet.Validators[0].PubKey = nil
	bad, err := lb.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	bad = append(bytes.Clone(st[:len(st)-len(body)]), bad...)
	if _, err := Restore(bad, Config{}); !errors.Is(err, ErrBadState) {
		t.Fatalf("Restore: %v, want ErrBadState", err)
	}
}
