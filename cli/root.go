// Package cli implements integritee-cli: the command-line client of the
// parentchain node and, later, of the validateers' trusted RPC.
package cli

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/types"
)

// Options are the global flags.
type Options struct {
	NodeURL  string
	NodePort int
	Keystore string
}

// env is what every command gets: its options, output and lazily dialled
// clients.
type env struct {
	opts Options
	out  io.Writer
	node *client.Client
}

func (e *env) nodeClient() (*client.Client, error) {
	if e.node != nil {
		return e.node, nil
	}
	u := strings.TrimRight(e.opts.NodeURL, "/")
	c, err := client.Dial(u + ":" + strconv.Itoa(e.opts.NodePort))
	if err != nil {
		return nil, err
	}
	e.node = c
	return c, nil
}

func (e *env) keystore() *account.Keystore { return account.NewKeystore(e.opts.Keystore) }

// NewRootCmd returns the integritee-cli command tree writing to out.
func NewRootCmd(out io.Writer) *cobra.Command {
	e := &env{out: out}
	root := &cobra.Command{
		Use:   "integritee-cli",
		Short: "Client of the Integritee parentchain node and validateers",
		Long: `integritee-cli talks to an integritee-node (-u/-p) for parentchain accounts,
transfers and events.

Accounts (ACCT) are given as a dev seed (//Alice, //Bob, ... derived as Substrate
derives ed25519 dev keys), an SS58 address, or a 0x-hex public key. FROM must be a
dev seed or an account whose key is in the keystore (./my_keystore).
Amounts are integers of planck: 1 TEER = 1000000000000 planck.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(out)
	pf := root.PersistentFlags()
	pf.StringVarP(&e.opts.NodeURL, "node-url", "u", "ws://127.0.0.1", "node URL (ws, wss, http or https), without port")
	pf.IntVarP(&e.opts.NodePort, "node-port", "p", 9944, "node RPC port")
	pf.StringVar(&e.opts.Keystore, "keystore", "my_keystore", "directory of the parentchain keystore")
	w := &workerEnv{env: e}
	pf.StringVarP(&w.worker.URL, "worker-url", "U", "wss://127.0.0.1", "worker (validateer) URL, wss, without port")
	pf.IntVarP(&w.worker.Port, "trusted-worker-port", "P", 2000, "worker's trusted RPC port")
	pf.BoolVar(&w.worker.Insecure, "insecure", false, "skip checking the worker's attestation against the parentchain (development only)")
	root.AddCommand(
		newAccountCmd(e),
		listAccountsCmd(e),
		balanceCmd(e),
		transferCmd(e),
		faucetCmd(e),
		listWorkersCmd(e),
		listenCmd(e),
		benchTransfersCmd(e),
		shieldFundsCmd(w),
		trustedCmd(w),
		checkInvariantsCmd(w),
	)
	return root
}

func parseAmount(s string) (types.Balance, error) {
	b, err := types.ParseBalance(s)
	if err != nil {
		return b, fmt.Errorf("amount %q: must be a non-negative integer of planck below 2^128", s)
	}
	return b, nil
}

func ctxOf(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}
