package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/shielding"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// defaultTimeout bounds every wait of the commands that talk to a worker.
const defaultTimeout = 60 * time.Second

// shieldArgs are shield-funds' parsed arguments.
type shieldArgs struct {
	from   string // resolved later: it may need the keystore
	to     account.ID
	amount types.Balance
	shard  sidechain.ShardID
}

func parseShieldArgs(args []string) (shieldArgs, error) {
	var a shieldArgs
	if _, err := account.ResolveID(args[0]); err != nil {
		return a, fmt.Errorf("FROM: %w", err)
	}
	a.from = args[0]
	var err error
	if a.to, err = account.ResolveID(args[1]); err != nil {
		return a, fmt.Errorf("TO_INCOGNITO: %w", err)
	}
	if a.amount, err = parseAmount(args[2]); err != nil {
		return a, err
	}
	if a.amount.IsZero() {
		return a, fmt.Errorf("amount %q: shielding needs a positive amount", args[2])
	}
	if a.shard, err = sidechain.ParseShardID(args[3]); err != nil {
		return a, fmt.Errorf("SHARD: %w", err)
	}
	return a, nil
}

func checkTimeout(d time.Duration) error {
	if d <= 0 {
		return fmt.Errorf("--timeout %s: must be positive", d)
	}
	return nil
}

func shieldFundsCmd(w *workerEnv) *cobra.Command {
	timeout := defaultTimeout
	cmd := &cobra.Command{
		Use:   "shield-funds FROM TO_INCOGNITO AMOUNT SHARD",
		Short: "Move planck from a parentchain account into a shard, to an incognito account",
		Long: `shield-funds sends AMOUNT planck from FROM (a parentchain account) to the shard's
bonding account with enclavebridge.shield_funds; the beneficiary TO_INCOGNITO travels
encrypted to the shard's shielding key, which the CLI gets from the worker (-U/-P).
It waits until the transaction is in a block and then until a validateer of the shard
confirms it processed that block (at most --timeout). SHARD is base58 or 0x-hex.`,
		Args: cobra.ExactArgs(4),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := parseShieldArgs(args)
			if err != nil {
				return err
			}
			if err := checkTimeout(timeout); err != nil {
				return err
			}
			from, err := account.ResolvePair(a.from, w.keystore())
			if err != nil {
				return fmt.Errorf("FROM: %w", err)
			}
			ctx, cancel := context.WithTimeout(ctxOf(cmd), timeout)
			defer cancel()
			c, err := w.dialWorker(ctx, nil)
			if err != nil {
				return err
			}
			defer c.Close() //nolint:errcheck
			if err := requireShard(ctx, c, a.shard); err != nil {
				return err
			}
			key, err := c.ShieldingKey(ctx)
			if err != nil {
				return fmt.Errorf("author_getShieldingKey: %w", err)
			}
			beneficiary, err := shielding.Encrypt(key, a.to[:])
			if err != nil {
				return fmt.Errorf("encrypt the beneficiary: %w", err)
			}
			node, err := w.nodeClient()
			if err != nil {
				return err
			}
			call, err := types.NewCall(node.Codec(), enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{
				Shard: a.shard, EncryptedBeneficiary: beneficiary, Amount: a.amount,
			})
			if err != nil {
				return err
			}
			inc, err := node.Submit(ctx, from, call)
			if err != nil {
				if timedOut(err) {
					return fmt.Errorf("shield_funds not in a block within %s: %w", timeout, err)
				}
				return fmt.Errorf("shield_funds: %w", explainUnknownShard(err))
			}
			at, err := waitProcessed(ctx, node, a.shard, inc.Height)
			if err != nil {
				if timedOut(err) {
					return fmt.Errorf("shield_funds is in parentchain block %d (tx %s), but no validateer of shard %s confirmed processing it within %s; check the validateer's log",
						inc.Height, inc.Hash, a.shard, timeout)
				}
				return err
			}
			fmt.Fprintf(w.out, "shielded %s planck from %s into shard %s in parentchain block %d (tx %s), processed by the validateer (confirmed in block %d)\n",
				a.amount, from.ID(), a.shard, inc.Height, inc.Hash, at)
			return nil
		},
	}
	cmd.Flags().DurationVar(&timeout, "timeout", defaultTimeout, "how long to wait for the worker, the block and the validateer")
	return cmd
}
