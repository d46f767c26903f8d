package app_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/app"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/types"
)

const chainID = "test-chain"

// testChain is the chain the harness runs: InitChain without validators.
var testChain = types.Chain{ID: chainID, Genesis: types.GenesisHash(chainID, nil)}

var genesisTime = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

type harness struct {
	t     *testing.T
	dir   string
	store *state.Store
	app   *app.App
	codec *types.Codec
}

func newHarness(t *testing.T) *harness {
	h := &harness{t: t, dir: t.TempDir(), codec: types.NewCodec()}
	h.open()
	st, err := node.AppState(node.GenesisOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: chainID, Time: genesisTime, AppStateBytes: st}); err != nil {
		t.Fatal(err)
	}
	return h
}

func (h *harness) open() {
	s, err := state.Open(h.dir, app.StateConfig(0))
	if err != nil {
		h.t.Fatal(err)
	}
	h.store = s
	h.app = app.New(s, slog.New(slog.NewTextHandler(io.Discard, nil)), app.NewMetrics(prometheus.NewRegistry()))
	h.t.Cleanup(func() { s.Close() })
}

func (h *harness) reopen() {
	h.store.Close()
	h.open()
}

func (h *harness) info() *abci.InfoResponse {
	r, err := h.app.Info(context.Background(), &abci.InfoRequest{})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// block finalizes and commits a block of txs and returns its results.
func (h *harness) block(txs ...[]byte) *abci.FinalizeBlockResponse {
	h.t.Helper()
	height := h.info().LastBlockHeight + 1
	r, err := h.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: height, Time: genesisTime.Add(time.Duration(height) * time.Second), Txs: txs})
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) check(tx []byte) *abci.CheckTxResponse {
	r, err := h.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx, Type: abci.CHECK_TX_TYPE_CHECK})
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

func (h *harness) account(uri string) balances.AccountInfo {
	h.t.Helper()
	p, _ := account.DevPair(uri)
	r, err := h.app.Query(context.Background(), &abci.QueryRequest{Path: "/balances/account/" + p.ID().Hex()})
	if err != nil || r.Code != 0 {
		h.t.Fatalf("query: %v %s", err, r.Log)
	}
	var a balances.AccountInfo
	if err := jsonUnmarshal(r.Value, &a); err != nil {
		h.t.Fatal(err)
	}
	return a
}

func (h *harness) transfer(from, to string, nonce uint64, amount types.Balance) []byte {
	p, _ := account.DevPair(from)
	q, _ := account.DevPair(to)
	call, err := types.NewCall(h.codec, "balances", "transfer", balances.TransferArgs{Dest: q.ID(), Amount: amount})
	if err != nil {
		h.t.Fatal(err)
	}
	return h.codec.Sign(p, testChain, nonce, call)
}

func TestTransferChargesFeeAndEmitsEvents(t *testing.T) {
	h := newHarness(t)
	r := h.block(h.transfer("//Alice", "//Ferdie", 0, types.NewBalance(500)))
	if r.TxResults[0].Code != 0 {
		t.Fatalf("transfer failed: %s", r.TxResults[0].Log)
	}
	var types_ []string
	for _, e := range r.TxResults[0].Events {
		types_ = append(types_, e.Type)
	}
	want := []string{"tx", "balances.TransactionFeePaid", "balances.NewAccount", "balances.Transfer"}
	if len(types_) != len(want) {
		t.Fatalf("events %v, want %v", types_, want)
	}
	for i := range want {
		if types_[i] != want[i] {
			t.Fatalf("events %v, want %v", types_, want)
		}
	}
	alice := h.account("//Alice")
	wantAlice, _ := node.DevEndowment.Sub(types.NewBalance(500))
	wantAlice, _ = wantAlice.Sub(node.DevTxFee)
	if alice.Free != wantAlice || alice.Nonce != 1 {
		t.Errorf("alice = %s nonce %d, want %s nonce 1", alice.Free, alice.Nonce, wantAlice)
	}
	if f := h.account("//Ferdie"); f.Free != types.NewBalance(500) {
		t.Errorf("ferdie = %s", f.Free)
	}
}

func TestFailedCallKeepsFeeAndNonceOnly(t *testing.T) {
	h := newHarness(t)
	// Two transfers in one block: the second overdraws after the first.
	r := h.block(
		h.transfer("//Alice", "//Bob", 0, types.TEER(600)),
		h.transfer("//Alice", "//Bob", 1, types.TEER(600)),
	)
	if r.TxResults[0].Code != 0 {
		t.Fatalf("first: %s", r.TxResults[0].Log)
	}
	if r.TxResults[1].Code != balances.ErrInsufficientBalance.Code || r.TxResults[1].Codespace != "balances" {
		t.Fatalf("second: code %d %s %q", r.TxResults[1].Code, r.TxResults[1].Codespace, r.TxResults[1].Log)
	}
	alice := h.account("//Alice")
	want := types.TEER(400)
	want, _ = want.Sub(node.DevTxFee)
	want, _ = want.Sub(node.DevTxFee)
	if alice.Free != want || alice.Nonce != 2 {
		t.Errorf("alice = %s nonce %d, want %s nonce 2", alice.Free, alice.Nonce, want)
	}
	if b := h.account("//Bob"); b.Free != types.TEER(1600) {
		t.Errorf("bob = %s, want 1600 TEER", b.Free)
	}
}

func TestCheckTxTracksPendingNonces(t *testing.T) {
	h := newHarness(t)
	for n := uint64(0); n < 3; n++ {
		if r := h.check(h.transfer("//Alice", "//Bob", n, types.NewBalance(1))); r.Code != 0 {
			t.Fatalf("nonce %d: %s", n, r.Log)
		}
	}
	if r := h.check(h.transfer("//Alice", "//Bob", 1, types.NewBalance(1))); r.Codespace != "tx" || r.Code != types.ErrTxStaleNonce.Code {
		t.Errorf("reused pending nonce: %d %s", r.Code, r.Log)
	}
	if r := h.check(h.transfer("//Alice", "//Bob", 5, types.NewBalance(1))); r.Code != types.ErrTxFutureNonce.Code {
		t.Errorf("gap: %d %s", r.Code, r.Log)
	}
	if r := h.check(h.transfer("//Alice", "//Bob", 3, types.TEER(5000))); r.Code != balances.ErrInsufficientBalance.Code {
		t.Errorf("overdraft: %d %s", r.Code, r.Log)
	}
	// Check state is not committed state.
	if a := h.account("//Alice"); a.Nonce != 0 {
		t.Errorf("CheckTx changed committed nonce to %d", a.Nonce)
	}
}

func TestStateAndAppHashSurviveRestart(t *testing.T) {
	h := newHarness(t)
	h.block(h.transfer("//Alice", "//Bob", 0, types.NewBalance(7)))
	h.block()
	info := h.info()
	h.reopen()
	again := h.info()
	if again.LastBlockHeight != info.LastBlockHeight || !bytes.Equal(again.LastBlockAppHash, info.LastBlockAppHash) {
		t.Fatalf("after reopen: height %d hash %X, want %d %X", again.LastBlockHeight, again.LastBlockAppHash, info.LastBlockHeight, info.LastBlockAppHash)
	}
	if b := h.account("//Bob"); b.Free.String() != "1000000000000007" {
		t.Errorf("bob = %s", b.Free)
	}
	// InitChain again (CometBFT does so if it crashed before block 1 was
	// saved) must not apply genesis twice.
	st, _ := node.AppState(node.GenesisOptions{})
	if _, err := h.app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: chainID, Time: genesisTime, AppStateBytes: st}); err != nil {
		t.Fatal(err)
	}
	if b := h.account("//Bob"); b.Free.String() != "1000000000000007" {
		t.Errorf("bob after second InitChain = %s", b.Free)
	}
}

func TestAppHashIsDeterministic(t *testing.T) {
	a, b := newHarness(t), newHarness(t)
	txs := [][]byte{
		a.transfer("//Alice", "//Bob", 0, types.NewBalance(1)),
		a.transfer("//Charlie", "//Dave", 0, types.NewBalance(2)),
		[]byte("garbage"),
	}
	ra, rb := a.block(txs...), b.block(txs...)
	if !bytes.Equal(ra.AppHash, rb.AppHash) {
		t.Fatalf("same block, different app hashes %X %X", ra.AppHash, rb.AppHash)
	}
	rc := a.block(a.transfer("//Alice", "//Bob", 1, types.NewBalance(1)))
	rd := b.block(b.transfer("//Alice", "//Bob", 1, types.NewBalance(2)))
	if bytes.Equal(rc.AppHash, rd.AppHash) {
		t.Fatal("different state, same app hash")
	}
}

func TestQueryErrors(t *testing.T) {
	h := newHarness(t)
	for path, want := range map[string]string{
		"/nope/x":               "query.UnknownPath",
		"/balances/account/zzz": "query.BadArgument",
		"/balances/what":        "query.UnknownPath",
		"":                      "query.UnknownPath",
	} {
		r, err := h.app.Query(context.Background(), &abci.QueryRequest{Path: path})
		if err != nil || r.Code == 0 || !bytes.Contains([]byte(r.Log), []byte(want)) {
			t.Errorf("query %q: code %d log %q, want %s", path, r.Code, r.Log, want)
		}
	}
}

// The next nonce counts the mempool's transactions (the check state); the
// account query shows only committed state. The validateer relies on this
// to send several transactions per block.
func TestNextNonceCountsTheMempool(t *testing.T) {
	h := newHarness(t)
	if r := h.check(h.transfer("//Alice", "//Bob", 0, types.NewBalance(1))); r.Code != 0 {
		t.Fatal(r.Log)
	}
	alice, _ := account.DevPair("//Alice")
	r, err := h.app.Query(context.Background(), &abci.QueryRequest{Path: "/system/next_nonce/" + alice.ID().String()})
	if err != nil || r.Code != 0 {
		t.Fatalf("query: %v %s", err, r.Log)
	}
	var n app.NextNonce
	if err := jsonUnmarshal(r.Value, &n); err != nil || n.Nonce != 1 {
		t.Fatalf("next nonce %d (%v), want 1", n.Nonce, err)
	}
	if a := h.account("//Alice"); a.Nonce != 0 {
		t.Fatalf("committed nonce %d, want 0", a.Nonce)
	}
}
