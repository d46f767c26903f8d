package cli

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/types"
)

// benchTransfersCmd measures parentchain transfers per second through the
// node's RPC: many senders, each sending signed transfers in nonce order
// with broadcast_tx_sync, until every transfer is in a committed block.
func benchTransfersCmd(e *env) *cobra.Command {
	var senders, perSender, workers int
	cmd := &cobra.Command{
		Use:   "benchmark-transfers",
		Short: "Measure parentchain transfers per second through RPC (dev chain: funds senders from //Alice)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if senders < 1 || perSender < 1 || workers < 1 {
				return fmt.Errorf("--senders, --transfers-per-sender and --workers must be positive")
			}
			ctx := ctxOf(cmd)
			c, err := e.nodeClient()
			if err != nil {
				return err
			}
			chain, err := c.Chain(ctx)
			if err != nil {
				return err
			}
			sum, err := c.Summary(ctx)
			if err != nil {
				return err
			}
			codec := c.Codec()
			// Fresh senders for each run, so that nonces start at zero.
			run := time.Now().UnixNano()
			pairs := make([]*account.Pair, senders)
			for i := range pairs {
				if pairs[i], err = account.DevPair(fmt.Sprintf("//Bench%d//%d", run, i)); err != nil {
					return err
				}
			}
			amount := types.NewBalance(1000)
			perFee, _ := sum.TxFee.Add(amount)
			need, err := perFee.MulU64(uint64(perSender))
			if err != nil {
				return err
			}

			// 1. Fund the senders from //Alice, nonces in order.
			alice, _ := account.DevPair("//Alice")
			aliceAcct, err := c.Account(ctx, alice.ID())
			if err != nil {
				return err
			}
			fmt.Fprintf(e.out, "funding %d senders from //Alice\n", senders)
			var last [32]byte
			for i, p := range pairs {
				call, _ := types.NewCall(codec, balances.ModuleName, "transfer", balances.TransferArgs{Dest: p.ID(), Amount: need})
				tx := codec.Sign(alice, chain, aliceAcct.Nonce+uint64(i), call)
				if err := c.Broadcast(ctx, tx); err != nil {
					return fmt.Errorf("fund sender %d: %w", i, err)
				}
				last = types.TxHash(tx)
			}
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if _, err := c.WaitTx(wctx, last); err != nil {
				return fmt.Errorf("funding: %w", err)
			}

			// 2. Sign every transfer before the clock starts.
			dest := alice.ID()
			txs := make([][][]byte, senders)
			for i, p := range pairs {
				txs[i] = make([][]byte, perSender)
				call, _ := types.NewCall(codec, balances.ModuleName, "transfer", balances.TransferArgs{Dest: dest, Amount: amount})
				for n := range txs[i] {
					txs[i][n] = codec.Sign(p, chain, uint64(n), call)
				}
			}
			total := senders * perSender
			fmt.Fprintf(e.out, "sending %d transfers from %d senders over %d connections (client GOMAXPROCS %d)\n", total, senders, workers, runtime.GOMAXPROCS(0))

			// 3. Send: worker w owns senders w, w+workers, ..., and sends their
			// n-th transfers before any (n+1)-th. (No JSON-RPC batches:
			// CometBFT's client drops the errors of a batch's elements.)
			var sent, failed atomic.Int64
			var firstErr atomic.Value
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					for n := 0; n < perSender; n++ {
						for i := w; i < senders; i += workers {
							if err := c.Broadcast(ctx, txs[i][n]); err != nil {
								failed.Add(1)
								firstErr.CompareAndSwap(nil, err.Error())
								continue
							}
							sent.Add(1)
						}
					}
				}(w)
			}
			waitWithProgress(&wg, e.out, func() string { return fmt.Sprintf("  %d/%d accepted", sent.Load(), total) })
			accepted := time.Since(start)
			if f := failed.Load(); f > 0 {
				return fmt.Errorf("%d transfers refused; first: %v", f, firstErr.Load())
			}

			// 4. Wait until every sender's nonce shows all its transfers.
			for i, p := range pairs {
				for {
					a, err := c.Account(wctx, p.ID())
					if err != nil {
						return err
					}
					if a.Nonce >= uint64(perSender) {
						break
					}
					select {
					case <-wctx.Done():
						return fmt.Errorf("sender %d: %d of %d transfers committed: %w", i, a.Nonce, perSender, wctx.Err())
					case <-time.After(50 * time.Millisecond):
					}
				}
			}
			committed := time.Since(start)
			fmt.Fprintf(e.out, "accepted:  %d transfers in %s: %.0f/s\n", total, accepted.Round(time.Millisecond), float64(total)/accepted.Seconds())
			fmt.Fprintf(e.out, "committed: %d transfers in %s: %.0f/s\n", total, committed.Round(time.Millisecond), float64(total)/committed.Seconds())
			return nil
		},
	}
	cmd.Flags().IntVar(&senders, "senders", 100, "sending accounts, created and funded for the run")
	cmd.Flags().IntVar(&perSender, "transfers-per-sender", 100, "transfers each sender makes")
	cmd.Flags().IntVar(&workers, "workers", 32, "concurrent RPC connections")
	return cmd
}
