package app_test

import (
	"context"
	"fmt"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/types"
)

// BenchmarkCheckTx measures CheckTx of a transfer: decode, signature,
// nonce, fee and execution against the check state.
func BenchmarkCheckTx(b *testing.B) {
	h := newHarness(&testing.T{})
	alice, _ := account.DevPair("//Alice")
	bob, _ := account.DevPair("//Bob")
	call, _ := types.NewCall(h.codec, "balances", "transfer", balances.TransferArgs{Dest: bob.ID(), Amount: types.NewBalance(1)})
	txs := make([][]byte, b.N)
	for i := range txs {
		txs[i] = h.codec.Sign(alice, chainID, uint64(i), call)
	}
	b.ResetTimer()
	for i := range txs {
		r, _ := h.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: txs[i], Type: abci.CHECK_TX_TYPE_CHECK})
		if r.Code != 0 {
			b.Fatal(r.Log)
		}
	}
}

// BenchmarkFinalizeBlock measures a block of 2,000 transfers from 100
// senders, signatures verified in parallel.
func BenchmarkFinalizeBlock(b *testing.B) {
	const senders, per = 100, 20
	h := newHarness(&testing.T{})
	codec := h.codec
	alice, _ := account.DevPair("//Alice")
	pairs := make([]*account.Pair, senders)
	var fund [][]byte
	for i := range pairs {
		pairs[i], _ = account.DevPair(fmt.Sprintf("//Sender%d", i))
		call, _ := types.NewCall(codec, "balances", "transfer", balances.TransferArgs{Dest: pairs[i].ID(), Amount: types.TEER(1)})
		fund = append(fund, codec.Sign(alice, chainID, uint64(i), call))
	}
	h.block(fund...)
	call, _ := types.NewCall(codec, "balances", "transfer", balances.TransferArgs{Dest: alice.ID(), Amount: types.NewBalance(1)})
	nonce := uint64(0)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		var txs [][]byte
		for k := 0; k < per; k++ {
			for _, p := range pairs {
				txs = append(txs, codec.Sign(p, chainID, nonce+uint64(k), call))
			}
		}
		nonce += per
		b.StartTimer()
		h.block(txs...)
	}
	b.ReportMetric(float64(senders*per*b.N)/b.Elapsed().Seconds(), "tx/s")
}
