package cli

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"strconv"
	"strings"
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
	var senders, perSender, workers, batch int
	var cpuProfile string
	cmd := &cobra.Command{
		Use:   "benchmark-transfers",
		Short: "Measure parentchain transfers per second through RPC (dev chain: funds senders from //Alice)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if senders < 1 || perSender < 1 || workers < 1 || batch < 1 {
				return fmt.Errorf("--senders, --transfers-per-sender, --workers and --batch must be positive")
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
			fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
			if _, err := c.WaitTx(fctx, last); err != nil {
				return fmt.Errorf("funding: %w", err)
			}

			// 2. Sign every transfer before the clock starts (on all cores).
			dest := alice.ID()
			call, _ := types.NewCall(codec, balances.ModuleName, "transfer", balances.TransferArgs{Dest: dest, Amount: amount})
			txs := make([][][]byte, senders)
			var sign sync.WaitGroup
			for g := range runtime.GOMAXPROCS(0) {
				sign.Add(1)
				go func() {
					defer sign.Done()
					for i := g; i < senders; i += runtime.GOMAXPROCS(0) {
						txs[i] = make([][]byte, perSender)
						for n := range txs[i] {
							txs[i][n] = codec.Sign(pairs[i], chain, uint64(n), call)
						}
					}
				}()
			}
			sign.Wait()
			total := senders * perSender

			// 3. The machine's ceiling: ed25519 verifications per second on
			// all cores, measured here, before the load.
			ceiling := verifyCeiling(runtime.GOMAXPROCS(0), 2*time.Second)
			fmt.Fprintf(e.out, "ceiling: %.0f ed25519 verifications/s on %d goroutines (crypto/ed25519, 2 s)\n", ceiling, runtime.GOMAXPROCS(0))

			stopProfile, err := startCPUProfile(cpuProfile)
			if err != nil {
				return err
			}
			defer func() { _ = stopProfile() }()
			fmt.Fprintf(e.out, "sending %d transfers from %d senders over %d connections, %d a request (client GOMAXPROCS %d)\n", total, senders, workers, batch, runtime.GOMAXPROCS(0))

			// 4. Send: worker w owns senders w, w+workers, ..., and sends their
			// n-th transfers before any (n+1)-th, batch transfers a request
			// (a JSON-RPC batch, which the node checks in order, each
			// element's answer read; see client.BroadcastBatch).
			var sent, failed atomic.Int64
			var firstErr atomic.Value
			refused := func(err error) {
				failed.Add(1)
				firstErr.CompareAndSwap(nil, err.Error())
			}
			cpu0, _ := processCPU()
			start := time.Now()
			var wg sync.WaitGroup
			for w := 0; w < workers; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					var mine [][]byte
					for n := 0; n < perSender; n++ {
						for i := w; i < senders; i += workers {
							mine = append(mine, txs[i][n])
						}
					}
					for len(mine) > 0 {
						k := min(batch, len(mine))
						part := mine[:k]
						mine = mine[k:]
						if batch == 1 {
							if err := c.Broadcast(ctx, part[0]); err != nil {
								refused(err)
							} else {
								sent.Add(1)
							}
							continue
						}
						errs, err := c.BroadcastBatch(ctx, part)
						if err != nil {
							for range part {
								refused(err)
							}
							continue
						}
						for _, err := range errs {
							if err != nil {
								refused(err)
							} else {
								sent.Add(1)
							}
						}
					}
				}(w)
			}
			waitWithProgress(&wg, e.out, func() string { return fmt.Sprintf("  %d/%d accepted", sent.Load(), total) })
			accepted := time.Since(start)
			if f := failed.Load(); f > 0 {
				return fmt.Errorf("%d transfers refused; first: %v", f, firstErr.Load())
			}

			// 5. Wait until every sender's nonce shows all its transfers.
			wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
			defer cancel()
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
					case <-time.After(20 * time.Millisecond):
					}
				}
			}
			committed := time.Since(start)
			if err := stopProfile(); err != nil {
				return err
			}
			if cpu1, ok := processCPU(); ok {
				cpu := cpu1 - cpu0
				fmt.Fprintf(e.out, "client CPU while sending and waiting: %s (%.0f µs a transfer)\n", cpu.Round(time.Millisecond), float64(cpu.Microseconds())/float64(total))
			}
			printBenchResult(e.out, total, accepted, committed, ceiling)
			return nil
		},
	}
	cmd.Flags().IntVar(&senders, "senders", 100, "sending accounts, created and funded for the run")
	cmd.Flags().IntVar(&perSender, "transfers-per-sender", 500, "transfers each sender makes (the default run of 50,000 lasts several blocks, so that it measures throughput more than the last block's latency)")
	cmd.Flags().IntVar(&workers, "workers", 32, "concurrent RPC connections")
	cmd.Flags().IntVar(&batch, "batch", 100, "transfers a request: more than 1 sends JSON-RPC batches of broadcast_tx_sync (integritee-node accepts up to 100); 1 sends each alone")
	cmd.Flags().StringVar(&cpuProfile, "cpuprofile", "", "write the client's CPU profile of the sending and waiting to this file")
	return cmd
}

// printBenchResult prints the human-readable figures and, last, the
// machine-readable line: committed_per_s=N accepted_per_s=N ceiling_per_s=N
// ratio=R, where ratio is committed/ceiling.
func printBenchResult(out io.Writer, total int, accepted, committed time.Duration, ceiling float64) {
	acc := float64(total) / accepted.Seconds()
	com := float64(total) / committed.Seconds()
	fmt.Fprintf(out, "accepted:  %d transfers in %s: %.0f/s\n", total, accepted.Round(time.Millisecond), acc)
	fmt.Fprintf(out, "committed: %d transfers in %s: %.0f/s\n", total, committed.Round(time.Millisecond), com)
	ratio := 0.0
	if ceiling > 0 {
		ratio = com / ceiling
	}
	fmt.Fprintf(out, "committed_per_s=%.0f accepted_per_s=%.0f ceiling_per_s=%.0f ratio=%.4f\n", com, acc, ceiling, ratio)
}

// processCPU returns the CPU time (user and system, all threads) this
// process used so far, from /proc/self/stat (Linux; clock ticks of 10 ms),
// and false where that is not available.
func processCPU() (time.Duration, bool) {
	b, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0, false
	}
	// Fields after the command's closing parenthesis: state is the 3rd
	// field of the line, utime and stime the 14th and 15th.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, false
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, false
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return 0, false
	}
	return time.Duration(utime+stime) * 10 * time.Millisecond, true
}

// startCPUProfile starts this process's CPU profile into file (nothing if
// file is empty) and returns the function that stops it and closes the
// file; calls after the first do nothing.
func startCPUProfile(file string) (stop func() error, err error) {
	if file == "" {
		return func() error { return nil }, nil
	}
	f, err := os.Create(file)
	if err != nil {
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("--cpuprofile: %w", err)
	}
	var once sync.Once
	return func() error {
		err = nil
		once.Do(func() {
			pprof.StopCPUProfile()
			err = f.Close()
		})
		return err
	}, nil
}

// verifyCeiling measures ed25519 verifications per second (crypto/ed25519,
// what the node uses) on goroutines goroutines for about d: the machine's
// ceiling for signed transactions.
func verifyCeiling(goroutines int, d time.Duration) float64 {
	pub, priv, _ := ed25519.GenerateKey(nil)
	msg := make([]byte, 160) // about a transfer's signing bytes
	sig := ed25519.Sign(priv, msg)
	var stop atomic.Bool
	var count atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := int64(0)
			for !stop.Load() {
				if !ed25519.Verify(pub, msg, sig) {
					panic("ed25519: a valid signature failed")
				}
				n++
			}
			count.Add(n)
		}()
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds()
}
