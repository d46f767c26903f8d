package app_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/app"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/proof"
	"github.com/integritee-go/integritee/parentchain/state/statetest"
	"github.com/integritee-go/integritee/parentchain/types"
)

func TestStateModulesAreTheTestKits(t *testing.T) {
	got := slices.Sorted(slices.Values(app.StateConfig(0).Modules))
	if !slices.Equal(got, statetest.Modules) {
		t.Fatalf("app's state modules %v, statetest.Modules %v", got, statetest.Modules)
	}
}

func (h *harness) prove(key []byte, height int64) *abci.QueryResponse {
	h.t.Helper()
	path, err := proof.QueryPath(key)
	if err != nil {
		h.t.Fatal(err)
	}
	r, err := h.app.Query(context.Background(), &abci.QueryRequest{Path: path, Data: key, Height: height, Prove: true})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func accountKey(uri string) []byte {
	p, _ := account.DevPair(uri)
	return balances.AccountKey(p.ID())
}

// TestProvenBalanceVerifiesAgainstItsBlocksAppHash reads //Ferdie's account
// after a transfer by proof, at each height, and checks it against the app
// hash that block's FinalizeBlock returned (header h+1's AppHash).
func TestProvenBalanceVerifiesAgainstItsBlocksAppHash(t *testing.T) {
	h := newHarness(t)
	hashes := map[int64][]byte{0: h.info().LastBlockAppHash}
	hashes[1] = h.block(h.transfer("//Alice", "//Ferdie", 0, types.NewBalance(500))).AppHash
	hashes[2] = h.block(h.transfer("//Alice", "//Ferdie", 1, types.NewBalance(700))).AppHash
	hashes[3] = h.block().AppHash
	key := accountKey("//Ferdie")

	// Height 0: the latest height whose next header exists, 2.
	r := h.prove(key, 0)
	if r.Code != 0 || r.Height != 2 {
		t.Fatalf("latest proven query: code %d height %d (%s), want height 2", r.Code, r.Height, r.Log)
	}
	want := map[int64]uint64{1: 500, 2: 1200, 3: 1200}
	for height, free := range want {
		r := h.prove(key, height)
		if r.Code != 0 {
			t.Fatalf("height %d: %s", height, r.Log)
		}
		if err := proof.Verify(r.ProofOps, hashes[height], key, r.Value); err != nil {
			t.Fatalf("height %d: proof does not verify against its app hash: %v", height, err)
		}
		var a balances.Account
		if err := h.codec.Unmarshal(r.Value, &a); err != nil {
			t.Fatal(err)
		}
		if a.Free != types.NewBalance(free) {
			t.Fatalf("height %d: proven free %s, want %d", height, a.Free, free)
		}
	}
	// Header h+1 of another height does not carry this answer.
	r = h.prove(key, 1)
	if err := proof.Verify(r.ProofOps, hashes[2], key, r.Value); err == nil {
		t.Fatal("height 1's proof verified against height 2's app hash")
	}
	r = h.prove(accountKey("//Nobody"), 3)
	if r.Code != 0 || r.Value != nil {
		t.Fatalf("absent account: code %d value %x", r.Code, r.Value)
	}
	if err := proof.Verify(r.ProofOps, hashes[3], accountKey("//Nobody"), nil); err != nil {
		t.Fatalf("absence proof: %v", err)
	}
	if err := proof.Verify(r.ProofOps, hashes[3], accountKey("//Ferdie"), nil); err == nil {
		t.Fatal("//Nobody's absence proof shows //Ferdie absent")
	}
}

func TestProvenQueryKeepsWorkingAfterRestart(t *testing.T) {
	h := newHarness(t)
	h.block(h.transfer("//Alice", "//Ferdie", 0, types.NewBalance(500)))
	appHash := h.block().AppHash
	h.reopen()
	if got := h.info().LastBlockAppHash; string(got) != string(appHash) {
		t.Fatalf("app hash after restart %X, before %X", got, appHash)
	}
	key := accountKey("//Ferdie")
	r := h.prove(key, 0)
	if r.Code != 0 || r.Height != 2 {
		t.Fatalf("after restart: code %d height %d: %s", r.Code, r.Height, r.Log)
	}
	if err := proof.Verify(r.ProofOps, appHash, key, r.Value); err != nil {
		t.Fatal(err)
	}
	next := h.block(h.transfer("//Alice", "//Ferdie", 1, types.NewBalance(1))).AppHash
	if r := h.prove(key, 3); proof.Verify(r.ProofOps, next, key, r.Value) != nil {
		t.Fatal("block after restart is not provable")
	}
}

func TestProvenQueryRefusals(t *testing.T) {
	h := newHarness(t)
	h.block()
	key := accountKey("//Alice")
	for _, c := range []struct {
		name   string
		req    abci.QueryRequest
		errSub string
	}{
		{"path without /key", abci.QueryRequest{Path: "/store/balances", Data: key}, "query.UnknownPath"},
		{"key of another module", abci.QueryRequest{Path: "/store/teerex/key", Data: key}, "query.BadArgument"},
		{"unknown module", abci.QueryRequest{Path: "/store/nomodule/key", Data: []byte("nomodule/x")}, "query.UnknownPath"},
		{"key without module", abci.QueryRequest{Path: "/store/balances/key", Data: []byte("balances")}, "query.BadArgument"},
		{"empty key", abci.QueryRequest{Path: "/store/balances/key"}, "query.BadArgument"},
		{"future height", abci.QueryRequest{Path: "/store/balances/key", Data: key, Height: 99}, "query.HeightUnavailable"},
		{"negative height", abci.QueryRequest{Path: "/store/balances/key", Data: key, Height: -1}, "query.BadArgument"},
	} {
		r, err := h.app.Query(context.Background(), &c.req)
		if err != nil {
			t.Fatal(err)
		}
		if r.Code == 0 {
			t.Errorf("%s: answered", c.name)
			continue
		}
		if !strings.HasPrefix(r.Log, c.errSub+":") || !strings.HasPrefix(c.errSub, r.Codespace+".") {
			t.Errorf("%s: %s: %s, want %s", c.name, r.Codespace, r.Log, c.errSub)
		}
		if r.ProofOps != nil || r.Value != nil {
			t.Errorf("%s: refusal carries a value or proof", c.name)
		}
	}
}
