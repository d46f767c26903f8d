package node

import (
	"context"
	"testing"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
)

// reentrantApp's CheckTx calls CheckTx again through the mempool client,
// from inside the first call: possible only if that client does not
// serialize CheckTx calls.
type reentrantApp struct {
	abci.BaseApplication
	mempool abcicli.Client
	calls   int
}

func (r *reentrantApp) CheckTx(ctx context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	r.calls++
	if r.calls == 1 {
		if _, err := r.mempool.CheckTxAsync(ctx, req); err != nil {
			return nil, err
		}
	}
	return &abci.CheckTxResponse{}, nil
}

// The mempool connection does not serialize CheckTx: the RPC's concurrent
// broadcasts decode and verify on all cores (app.App serializes only the
// execution against its check state). With CometBFT's connection-synchronized
// client (before), the nested call waited for the outer one and this test
// deadlocked (failing at go test's -timeout).
func TestMempoolConnectionIsNotSerialized(t *testing.T) {
	app := &reentrantApp{}
	c, err := clientCreator{app}.NewABCIMempoolClient()
	if err != nil {
		t.Fatal(err)
	}
	app.mempool = c
	if _, err := c.CheckTxAsync(context.Background(), &abci.CheckTxRequest{Tx: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	if app.calls != 2 {
		t.Fatalf("%d CheckTx calls, want 2", app.calls)
	}
}

func TestCometConfigLimits(t *testing.T) {
	c := DefaultConfig(t.TempDir())
	cc := cometConfig(c)
	if cc.RPC.PprofListenAddress != "" {
		t.Errorf("pprof on by default: %q", cc.RPC.PprofListenAddress)
	}
	if cc.RPC.MaxRequestBatchSize != MaxRequestBatchSize {
		t.Errorf("max request batch size %d, want %d", cc.RPC.MaxRequestBatchSize, MaxRequestBatchSize)
	}
	for name, c := range map[string][2]int64{
		"max_open_connections":         {int64(cc.RPC.MaxOpenConnections), MaxRPCConnections},
		"max_body_bytes":               {cc.RPC.MaxBodyBytes, MaxRPCBodyBytes},
		"max_header_bytes":             {int64(cc.RPC.MaxHeaderBytes), MaxRPCHeaderBytes},
		"max_subscription_clients":     {int64(cc.RPC.MaxSubscriptionClients), MaxSubscriptionClients},
		"max_subscriptions_per_client": {int64(cc.RPC.MaxSubscriptionsPerClient), MaxSubscriptionsPerClient},
		"mempool max_tx_bytes":         {int64(cc.Mempool.MaxTxBytes), MaxTxBytes},
		"mempool max_txs_bytes":        {cc.Mempool.MaxTxsBytes, MaxMempoolBytes},
	} {
		if c[0] != c[1] {
			t.Errorf("%s = %d, want %d", name, c[0], c[1])
		}
	}
	if !cc.RPC.CloseOnSlowClient {
		t.Error("a slow websocket subscriber is buffered, not disconnected")
	}
	if err := cc.ValidateBasic(); err != nil {
		t.Errorf("CometBFT refuses the configuration: %v", err)
	}
	c.PprofAddr = "127.0.0.1:6060"
	if got := cometConfig(c).RPC.PprofListenAddress; got != c.PprofAddr {
		t.Errorf("pprof address %q, want %q", got, c.PprofAddr)
	}
}
