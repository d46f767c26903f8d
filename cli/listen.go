package cli

import (
	"fmt"
	"strings"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/parentchain/client"
)

func listenCmd(e *env) *cobra.Command {
	var events, blocks int
	cmd := &cobra.Command{
		Use:   "listen [-e N] [-b N]",
		Short: "Print blocks and events as they come; stop after N events or N blocks",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if events < 0 || blocks < 0 {
				return fmt.Errorf("-e and -b take a non-negative count")
			}
			c, err := e.nodeClient()
			if err != nil {
				return err
			}
			rpc := c.RPC()
			if err := rpc.Start(); err != nil {
				return fmt.Errorf("websocket: %w", err)
			}
			defer rpc.Stop() //nolint:errcheck
			ctx := ctxOf(cmd)
			blockCh, err := rpc.Subscribe(ctx, "integritee-cli", cmttypes.EventQueryNewBlock.String(), 100)
			if err != nil {
				return fmt.Errorf("subscribe blocks: %w", err)
			}
			txCh, err := rpc.Subscribe(ctx, "integritee-cli", cmttypes.EventQueryTx.String(), 1000)
			if err != nil {
				return fmt.Errorf("subscribe events: %w", err)
			}
			fmt.Fprintln(cmd.ErrOrStderr(), "subscribed to new blocks and transaction events")
			var nEvents, nBlocks int
			for {
				select {
				case <-ctx.Done():
					return ctx.Err()
				case ev := <-blockCh:
					b, ok := ev.Data.(cmttypes.EventDataNewBlock)
					if !ok {
						continue
					}
					fmt.Fprintf(e.out, "block #%d %X txs=%d\n", b.Block.Height, b.Block.Hash(), len(b.Block.Txs))
					nBlocks++
					if blocks > 0 && nBlocks >= blocks {
						return nil
					}
				case ev := <-txCh:
					t, ok := ev.Data.(cmttypes.EventDataTx)
					if !ok {
						continue
					}
					for _, abciEv := range t.Result.Events {
						x := client.FromABCI(abciEv.Type, abciEv.Attributes)
						var attrs []string
						for _, a := range x.Attrs {
							attrs = append(attrs, a.Key+"="+a.Value)
						}
						fmt.Fprintf(e.out, "event #%d %s %s\n", t.Height, abciEv.Type, strings.Join(attrs, " "))
						nEvents++
						if events > 0 && nEvents >= events {
							return nil
						}
					}
				}
			}
		},
	}
	cmd.Flags().IntVarP(&events, "events", "e", 0, "stop after N events (0: never)")
	cmd.Flags().IntVarP(&blocks, "blocks", "b", 0, "stop after N blocks (0: never)")
	return cmd
}
