package lightclient

import (
	"errors"
	"testing"

	cmtjson "github.com/cometbft/cometbft/libs/json"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"
)

// rpcAnswers are a node's RPC answers for height h, passed through JSON the
// way the host's RPC client receives them.
type rpcAnswers struct {
	block    *ctypes.ResultBlock
	commit   *ctypes.ResultCommit
	vals     *ctypes.ResultValidators
	results  *ctypes.ResultBlockResults
	next     *ctypes.ResultCommit
	nextVals *ctypes.ResultValidators
}

func viaJSON[T any](t *testing.T, v *T) *T {
	t.Helper()
	bz, err := cmtjson.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	out := new(T)
	if err := cmtjson.Unmarshal(bz, out); err != nil {
		t.Fatalf("%s: %v", bz, err)
	}
	return out
}

func (c *chain) rpc(t *testing.T, h int64) rpcAnswers {
	t.Helper()
	vals := func(h int64) *ctypes.ResultValidators {
		vs := c.vals[h].Copy()
		return viaJSON(t, &ctypes.ResultValidators{BlockHeight: h, Validators: vs.Validators, Count: vs.Size(), Total: vs.Size()})
	}
	return rpcAnswers{
		block:    viaJSON(t, &ctypes.ResultBlock{BlockID: c.ids[h], Block: c.copyBlock(h)}),
		commit:   viaJSON(t, ctypes.NewResultCommit(&c.copyBlock(h).Header, c.copyCommit(h), true)),
		vals:     vals(h),
		results:  viaJSON(t, &ctypes.ResultBlockResults{Height: h, TxResults: c.input(h).Results, AppHash: []byte{1}}),
		next:     viaJSON(t, ctypes.NewResultCommit(&c.copyBlock(h+1).Header, c.copyCommit(h+1), false)),
		nextVals: vals(h + 1),
	}
}

func (a rpcAnswers) input() (Input, error) {
	return InputFromRPC(a.block, a.commit, a.vals, a.results, a.next, a.nextVals)
}

func TestInputFromRPC(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	lc := newClient(t, c, Config{})
	for h := int64(1); h <= 5; h++ {
		in, err := c.rpc(t, h).input()
		if err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
		v, err := lc.Verify(in, testNow)
		if err != nil {
			t.Fatalf("verify %d from RPC answers: %v", h, err)
		}
		if h%4 != 0 {
			checkDefaultTxs(t, c, h, v.Txs)
		}
	}
}

func TestInputFromRPCRefuses(t *testing.T) {
	c := newChain(t, 6, chainOpts{})
	cases := map[string]func(a *rpcAnswers){
		"no block":          func(a *rpcAnswers) { a.block = nil },
		"nil block":         func(a *rpcAnswers) { a.block.Block = nil },
		"no commit":         func(a *rpcAnswers) { a.commit = nil },
		"nil commit":        func(a *rpcAnswers) { a.commit.Commit = nil },
		"no results":        func(a *rpcAnswers) { a.results = nil },
		"no next":           func(a *rpcAnswers) { a.next = nil },
		"no next header":    func(a *rpcAnswers) { a.next.Header = nil },
		"no validators":     func(a *rpcAnswers) { a.vals = nil },
		"no next vals":      func(a *rpcAnswers) { a.nextVals = nil },
		"commit height":     func(a *rpcAnswers) { a.commit = c.rpc(t, 3).commit },
		"commit header":     func(a *rpcAnswers) { a.commit.Header = &c.copyBlock(3).Header; a.commit.Header.Height = 2 },
		"results height":    func(a *rpcAnswers) { a.results.Height = 3 },
		"next height":       func(a *rpcAnswers) { a.next = c.rpc(t, 3).next },
		"validators height": func(a *rpcAnswers) { a.vals.BlockHeight = 3 },
		"next vals height":  func(a *rpcAnswers) { a.nextVals.BlockHeight = 2 },
		"one page of two":   func(a *rpcAnswers) { a.vals.Validators = a.vals.Validators[:2]; a.vals.Count = 2 },
		"empty validators":  func(a *rpcAnswers) { a.nextVals.Validators = nil; a.nextVals.Total = 0 },
		"bad validator": func(a *rpcAnswers) {
			a.vals.Validators[0] = &cmttypes.Validator{Address: a.vals.Validators[1].Address, PubKey: a.vals.Validators[0].PubKey, VotingPower: 10}
		},
	}
	for name, tamper := range cases {
		t.Run(name, func(t *testing.T) {
			a := c.rpc(t, 2)
			tamper(&a)
			if _, err := a.input(); !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v, want ErrInvalidInput", err)
			}
		})
	}
}
