package app

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/types"
)

func hashOf(i int) [32]byte { return types.TxHash([]byte(fmt.Sprint(i))) }

func TestCheckedCacheIsBoundedByEntries(t *testing.T) {
	c := newCheckedCache(4, 1<<20)
	txs := make([]*types.Tx, 6)
	for i := range txs {
		txs[i] = &types.Tx{Body: types.Body{Nonce: uint64(i)}}
		c.add(hashOf(i), txs[i], 10)
	}
	if n, b := c.len(); n != 4 || b != 40 {
		t.Fatalf("holds %d transactions, %d bytes; want 4, 40", n, b)
	}
	for i := range txs {
		tx, ok := c.get(hashOf(i))
		if want := i >= 2; ok != want || (ok && tx != txs[i]) {
			t.Errorf("transaction %d: found %v (%v), want found %v", i, ok, tx, want)
		}
	}
}

func TestCheckedCacheIsBoundedByBytes(t *testing.T) {
	c := newCheckedCache(100, 100)
	for i := range 5 {
		c.add(hashOf(i), &types.Tx{}, 30)
	}
	if n, b := c.len(); n != 3 || b != 90 {
		t.Fatalf("holds %d transactions, %d bytes; want 3, 90", n, b)
	}
	c.add(hashOf(99), &types.Tx{}, 101) // larger than the bound: not kept
	if _, ok := c.get(hashOf(99)); ok {
		t.Error("kept a transaction larger than the byte bound")
	}
	if _, ok := c.get(hashOf(1)); ok {
		t.Error("the oldest transaction was not forgotten")
	}
}

func TestCheckedCacheTakeAndStaleSlots(t *testing.T) {
	c := newCheckedCache(3, 1<<20)
	a := &types.Tx{Body: types.Body{Nonce: 1}}
	c.add(hashOf(1), a, 10)
	if tx, ok := c.take(hashOf(1)); !ok || tx != a {
		t.Fatal("take did not return the transaction")
	}
	if _, ok := c.get(hashOf(1)); ok {
		t.Fatal("a taken transaction is still there")
	}
	if n, b := c.len(); n != 0 || b != 0 {
		t.Fatalf("after take: %d transactions, %d bytes", n, b)
	}
	// Added again after the take: the first insertion's ring slot, evicted
	// first, must not forget the second insertion.
	c.add(hashOf(1), a, 10)
	c.add(hashOf(2), &types.Tx{}, 10)
	c.add(hashOf(3), &types.Tx{}, 10) // the ring is full: evicts the stale slot
	if _, ok := c.get(hashOf(1)); !ok {
		t.Fatal("a stale ring slot evicted a newer entry")
	}
	c.add(hashOf(4), &types.Tx{}, 10) // evicts the second insertion of 1
	if _, ok := c.get(hashOf(1)); ok {
		t.Fatal("the oldest entry was not evicted")
	}
	if n, b := c.len(); n != 3 || b != 30 {
		t.Fatalf("%d transactions, %d bytes; want 3, 30", n, b)
	}
	c.reset()
	if n, b := c.len(); n != 0 || b != 0 {
		t.Fatalf("after reset: %d transactions, %d bytes", n, b)
	}
}

// testApp is an application with //Alice and //Bob funded, and its
// metrics' registry.
func testApp(t *testing.T) (*App, *types.Codec) {
	t.Helper()
	store, err := state.Open(t.TempDir(), StateConfig(0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	a := New(store, slog.New(slog.NewTextHandler(io.Discard, nil)), NewMetrics(prometheus.NewRegistry()))
	var endow []balances.Endowment
	for _, uri := range []string{"//Alice", "//Bob"} {
		p, _ := account.DevPair(uri)
		endow = append(endow, balances.Endowment{Account: p.ID(), Amount: types.TEER(1000)})
	}
	bal, _ := json.Marshal(balances.Genesis{TxFee: types.NewBalance(10), Balances: endow})
	st, _ := json.Marshal(map[string]json.RawMessage{balances.ModuleName: bal})
	if _, err := a.InitChain(context.Background(), &abci.InitChainRequest{ChainId: "test", Time: time.Unix(0, 0), AppStateBytes: st}); err != nil {
		t.Fatal(err)
	}
	return a, a.codec
}

func transfer(t *testing.T, a *App, from string, nonce uint64) []byte {
	t.Helper()
	p, _ := account.DevPair(from)
	ferdie, _ := account.DevPair("//Ferdie")
	call, err := types.NewCall(a.codec, balances.ModuleName, "transfer", balances.TransferArgs{Dest: ferdie.ID(), Amount: types.NewBalance(1000)})
	if err != nil {
		t.Fatal(err)
	}
	return a.codec.Sign(p, types.Chain{ID: "test", Genesis: a.genesis}, nonce, call)
}

func checkTx(t *testing.T, a *App, tx []byte, typ abci.CheckTxType) *abci.CheckTxResponse {
	t.Helper()
	r, err := a.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx, Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func finalizeAndCommit(t *testing.T, a *App, txs ...[]byte) *abci.FinalizeBlockResponse {
	t.Helper()
	r, err := a.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: a.height + 1, Time: time.Unix(a.height+1, 0), Txs: txs})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		t.Fatal(err)
	}
	return r
}

// A transaction's signature is verified once, in CheckTx: the recheck after
// a block and the block that executes it take it from the cache.
func TestSignatureVerifiedOnceFromCheckTxToBlock(t *testing.T) {
	a, _ := testApp(t)
	verified := func() int {
		var m dto.Metric
		if err := a.metrics.verifications.Write(&m); err != nil {
			t.Fatal(err)
		}
		return int(m.GetCounter().GetValue())
	}
	tx0, tx1 := transfer(t, a, "//Alice", 0), transfer(t, a, "//Alice", 1)
	for _, tx := range [][]byte{tx0, tx1} {
		if r := checkTx(t, a, tx, abci.CHECK_TX_TYPE_CHECK); r.Code != 0 {
			t.Fatal(r.Log)
		}
	}
	if v := verified(); v != 2 {
		t.Fatalf("CheckTx of 2 transactions verified %d signatures", v)
	}
	// A block with tx0; CometBFT then rechecks tx1 against the new state.
	if r := finalizeAndCommit(t, a, tx0); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	if r := checkTx(t, a, tx1, abci.CHECK_TX_TYPE_RECHECK); r.Code != 0 {
		t.Fatal(r.Log)
	}
	if r := finalizeAndCommit(t, a, tx1); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	if v := verified(); v != 2 {
		t.Fatalf("block, recheck and block verified %d more signatures, want 0", v-2)
	}
	if n, _ := a.checked.len(); n != 0 {
		t.Fatalf("the cache still holds %d executed transactions", n)
	}
	// A transaction no CheckTx accepted (another node's proposal) is
	// verified in the block, and a forged one fails there.
	tx2 := transfer(t, a, "//Alice", 2)
	forged := transfer(t, a, "//Bob", 0)
	forged[len(forged)-1] ^= 1 // the signature is the encoding's last field
	r := finalizeAndCommit(t, a, tx2, forged)
	if r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	if r.TxResults[1].Code != types.ErrTxBadSignature.Code || r.TxResults[1].Codespace != types.ErrTxBadSignature.Module {
		t.Fatalf("forged transaction: code %d %s: %s", r.TxResults[1].Code, r.TxResults[1].Codespace, r.TxResults[1].Log)
	}
	if v := verified(); v != 4 {
		t.Fatalf("a block of 2 unchecked transactions verified %d signatures, want 2", v-2)
	}
}

// The cache skips decoding and the signature only: a recheck still refuses
// a cached transaction whose nonce a block spent, and forgets it.
func TestRecheckOfCachedTransactionChecksNonce(t *testing.T) {
	a, _ := testApp(t)
	tx := transfer(t, a, "//Alice", 0)
	if r := checkTx(t, a, tx, abci.CHECK_TX_TYPE_CHECK); r.Code != 0 {
		t.Fatal(r.Log)
	}
	// Another transaction with the same nonce, say from another node's
	// mempool, is committed first.
	p, _ := account.DevPair("//Alice")
	bob, _ := account.DevPair("//Bob")
	call, _ := types.NewCall(a.codec, balances.ModuleName, "transfer", balances.TransferArgs{Dest: bob.ID(), Amount: types.NewBalance(1)})
	other := a.codec.Sign(p, types.Chain{ID: "test", Genesis: a.genesis}, 0, call)
	if r := finalizeAndCommit(t, a, other); r.TxResults[0].Code != 0 {
		t.Fatal(r.TxResults[0].Log)
	}
	r := checkTx(t, a, tx, abci.CHECK_TX_TYPE_RECHECK)
	if r.Code != types.ErrTxStaleNonce.Code || r.Codespace != types.ErrTxStaleNonce.Module {
		t.Fatalf("recheck of a spent nonce: code %d %s %s", r.Code, r.Codespace, r.Log)
	}
	if n, _ := a.checked.len(); n != 0 {
		t.Fatal("a transaction the recheck refused is still cached")
	}
}

// A bad signature is never cached: CheckTx refuses it every time.
func TestBadSignatureNeverCached(t *testing.T) {
	a, _ := testApp(t)
	tx := transfer(t, a, "//Alice", 0)
	tx[len(tx)-1] ^= 1
	for range 2 {
		if r := checkTx(t, a, tx, abci.CHECK_TX_TYPE_CHECK); r.Code != types.ErrTxBadSignature.Code {
			t.Fatalf("forged transaction: code %d %s", r.Code, r.Log)
		}
	}
	if n, _ := a.checked.len(); n != 0 {
		t.Fatal("a forged transaction is cached")
	}
}

// CheckTx does not wait for a block being finalized: it has its own lock
// (checkMu). Before, CheckTx took a.mu, which FinalizeBlock holds for the
// whole block, and this test deadlocked (failing at go test's -timeout).
func TestCheckTxRunsWhileABlockIsFinalized(t *testing.T) {
	a, _ := testApp(t)
	tx := transfer(t, a, "//Alice", 0)
	var during *abci.CheckTxResponse
	a.finalizeHook = func() { during = checkTx(t, a, tx, abci.CHECK_TX_TYPE_CHECK) }
	finalizeAndCommit(t, a)
	if during == nil || during.Code != 0 {
		t.Fatalf("CheckTx during FinalizeBlock: %+v", during)
	}
}
