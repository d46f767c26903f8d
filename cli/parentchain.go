package cli

import (
	"encoding/json"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/types"
)

func newAccountCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "new-account",
		Short: "Create an account, keep its key in the keystore and print its SS58 address",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := e.keystore().Generate()
			if err != nil {
				return err
			}
			fmt.Fprintln(e.out, p.ID())
			return nil
		},
	}
}

func listAccountsCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list-accounts",
		Short: "Print the SS58 addresses of the keystore's accounts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ids, err := e.keystore().List()
			if err != nil {
				return err
			}
			for _, id := range ids {
				fmt.Fprintln(e.out, id)
			}
			return nil
		},
	}
}

func balanceCmd(e *env) *cobra.Command {
	var vo verifyOpts
	cmd := &cobra.Command{
		Use:   "balance ACCT",
		Short: "Print an account's free balance in planck",
		Long: `Print an account's free balance in planck.

With --verify the balance is read with a Merkle proof, and printed only if
CometBFT's light client verifies the header that commits to it back to a
trust root (--trust-height/--trust-hash, else the root stored in the keystore
directory, else block 1 on first use, with a warning) and the proof verifies
against that header's app hash. stdout is the same as without --verify; the
height verified is reported on stderr.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := vo.check(cmd); err != nil {
				return err
			}
			id, err := account.ResolveID(args[0])
			if err != nil {
				return err
			}
			c, err := e.nodeClient()
			if err != nil {
				return err
			}
			if vo.Verify {
				return e.verifiedBalance(cmd, c, vo, id)
			}
			a, err := c.Account(ctxOf(cmd), id)
			if err != nil {
				return err
			}
			fmt.Fprintln(e.out, a.Free)
			return nil
		},
	}
	vo.addFlags(cmd)
	return cmd
}

// verifiedBalance prints id's free balance as balance does, from a verified
// read of its state key; a key proven absent is a zero balance, as the
// unverified query answers for an unknown account.
func (e *env) verifiedBalance(cmd *cobra.Command, c *client.Client, vo verifyOpts, id account.ID) error {
	value, h, err := e.verifiedRead(cmd, c, vo, accountStateKey(id))
	if err != nil {
		return err
	}
	var a balances.Account
	if value != nil {
		if err := c.Codec().Unmarshal(value, &a); err != nil {
			return fmt.Errorf("account %s at height %d: proven value does not decode: %w", id, h, err)
		}
	}
	fmt.Fprintln(e.out, a.Free)
	return nil
}

func transferCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "transfer FROM TO AMOUNT",
		Short: "Transfer planck and wait until the transfer is in a block",
		Args:  cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, err := account.ResolvePair(args[0], e.keystore())
			if err != nil {
				return fmt.Errorf("FROM: %w", err)
			}
			to, err := account.ResolveID(args[1])
			if err != nil {
				return fmt.Errorf("TO: %w", err)
			}
			amount, err := parseAmount(args[2])
			if err != nil {
				return err
			}
			return e.transfer(cmd, from, to, amount)
		},
	}
}

func (e *env) transfer(cmd *cobra.Command, from *account.Pair, to account.ID, amount types.Balance) error {
	c, err := e.nodeClient()
	if err != nil {
		return err
	}
	call, err := types.NewCall(c.Codec(), balances.ModuleName, "transfer", balances.TransferArgs{Dest: to, Amount: amount})
	if err != nil {
		return err
	}
	inc, err := c.Submit(ctxOf(cmd), from, call)
	if err != nil {
		return err
	}
	fmt.Fprintf(e.out, "transferred %s from %s to %s in block %d (tx %s)\n", amount, from.ID(), to, inc.Height, inc.Hash)
	return nil
}

func faucetCmd(e *env) *cobra.Command {
	var amountStr string
	cmd := &cobra.Command{
		Use:   "faucet ACCT...",
		Short: "Fund accounts from //Alice",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			amount, err := parseAmount(amountStr)
			if err != nil {
				return err
			}
			ids := make([]account.ID, len(args))
			for i, a := range args {
				if ids[i], err = account.ResolveID(a); err != nil {
					return err
				}
			}
			alice, _ := account.DevPair("//Alice")
			for _, id := range ids {
				if err := e.transfer(cmd, alice, id, amount); err != nil {
					return fmt.Errorf("faucet to %s: %w", id, err)
				}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&amountStr, "amount", types.TEER(100).String(), "planck to give each account")
	return cmd
}

func listWorkersCmd(e *env) *cobra.Command {
	return &cobra.Command{
		Use:   "list-workers",
		Short: "List the enclaves registered on the parentchain",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.nodeClient()
			if err != nil {
				return err
			}
			var enclaves []json.RawMessage
			if err := c.Query(ctxOf(cmd), "/teerex/enclaves", &enclaves); err != nil {
				return err
			}
			fmt.Fprintf(e.out, "number of workers registered: %d\n", len(enclaves))
			for i, raw := range enclaves {
				fmt.Fprintf(e.out, "Enclave %d: %s\n", i+1, raw)
			}
			return nil
		},
	}
}
