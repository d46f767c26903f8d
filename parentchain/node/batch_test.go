package node_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/types"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startDevNode runs a dev node on free ports until the test ends and
// returns a client of its RPC, its chain and its RPC address.
func startDevNode(t *testing.T) (*client.Client, types.Chain, string) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a node (not in -short)")
	}
	cfg := node.DefaultConfig(t.TempDir())
	cfg.RPCPort, cfg.P2PPort, cfg.PrometheusPort = freePort(t), freePort(t), 0
	cfg.BlockTime = node.Duration(100 * time.Millisecond)
	if err := node.EnsureDev(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	addr := "http://127.0.0.1:" + strconv.Itoa(cfg.RPCPort)
	c, err := client.Dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		chain, err := c.Chain(ctx)
		if err == nil {
			return c, chain, addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node did not serve its RPC within a minute: %v", err)
		}
		time.Sleep(50 * time.Millisecond) // polling, with the deadline above
	}
}

// A dev node answers a JSON-RPC batch of broadcasts element by element, in
// order, and the client reads each element's refusal (CometBFT's own client
// drops them); a batch over MaxRequestBatchSize is refused as a whole.
func TestDevNodeAnswersBatchedBroadcasts(t *testing.T) {
	c, chain, _ := startDevNode(t)
	ctx := context.Background()
	alice, _ := account.DevPair("//Alice")
	call, _ := types.NewCall(c.Codec(), balances.ModuleName, "transfer", balances.TransferArgs{Dest: alice.ID(), Amount: types.NewBalance(1)})
	bob, _ := account.DevPair("//Bob")
	ferdie, _ := account.DevPair("//Ferdie") // no funds: cannot pay the fee
	txs := [][]byte{
		c.Codec().Sign(bob, chain, 0, call),
		c.Codec().Sign(bob, chain, 1, call),
		c.Codec().Sign(bob, chain, 1, call), // the same transaction again
		c.Codec().Sign(bob, chain, 5, call), // a future nonce
		c.Codec().Sign(ferdie, chain, 0, call),
		c.Codec().Sign(bob, chain, 2, call),
	}
	errs, err := c.BroadcastBatch(ctx, txs)
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []error{nil, nil, errors.New("in cache"), types.ErrTxFutureNonce, types.ErrTxCannotPayFee, nil} {
		switch {
		case want == nil && errs[i] != nil:
			t.Errorf("transaction %d refused: %v", i, errs[i])
		case want != nil && errs[i] == nil:
			t.Errorf("transaction %d accepted, want %v", i, want)
		case want != nil && types.AsError(want) != nil && !errors.Is(errs[i], want):
			t.Errorf("transaction %d: %v, want %v", i, errs[i], want)
		}
	}
	big := make([][]byte, node.MaxRequestBatchSize+1)
	for i := range big {
		big[i] = c.Codec().Sign(bob, chain, uint64(3+i), call)
	}
	if _, err := c.BroadcastBatch(ctx, big); err == nil {
		t.Errorf("a batch of %d accepted", len(big))
	}
	if errs, err := c.BroadcastBatch(ctx, big[:node.MaxRequestBatchSize]); err != nil || errors.Join(errs...) != nil {
		t.Errorf("a batch of %d: %v %v", node.MaxRequestBatchSize, err, errors.Join(errs...))
	}
}
