package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/types"
)

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--block-time: %q is not a positive duration such as 1s or 500ms", s)
	}
	return d, nil
}

// parseAccount parses an SS58 address or a 0x-hex public key. Dev seeds
// (//Alice) name a secret, not an account, and are refused.
func parseAccount(flag, s string) (account.ID, error) {
	id, err := account.ParseID(s)
	if err != nil {
		return account.ID{}, fmt.Errorf("%s: %q is not an account: want an SS58 address or a 0x-hex public key of 32 bytes (%v)", flag, s, err)
	}
	return id, nil
}

// parseEndowment parses --endow ACCOUNT=AMOUNT, the amount in planck.
func parseEndowment(s string) (balances.Endowment, error) {
	acct, amount, ok := strings.Cut(s, "=")
	if !ok {
		return balances.Endowment{}, fmt.Errorf("--endow: %q: want ACCOUNT=AMOUNT (amount in planck, 1 TEER = 10^12)", s)
	}
	id, err := parseAccount("--endow", acct)
	if err != nil {
		return balances.Endowment{}, err
	}
	b, err := types.ParseBalance(amount)
	if err != nil {
		return balances.Endowment{}, fmt.Errorf("--endow: %q: amount %q is not a whole number of planck (1 TEER = 10^12 planck): %v", s, amount, err)
	}
	if b.IsZero() {
		return balances.Endowment{}, fmt.Errorf("--endow: %q: amount is zero", s)
	}
	return balances.Endowment{Account: id, Amount: b}, nil
}

// genesisOptions turns init's flags into the genesis options: secure unless
// dev, with the sudo key and endowments the operator names.
func genesisOptions(dev bool, sudo string, endow []string) (node.GenesisOptions, error) {
	o := node.GenesisOptions{Secure: !dev}
	if sudo != "" {
		id, err := parseAccount("--sudo", sudo)
		if err != nil {
			return o, err
		}
		o.Sudo = &id
	}
	for _, e := range endow {
		en, err := parseEndowment(e)
		if err != nil {
			return o, err
		}
		o.Endowments = append(o.Endowments, en)
	}
	if !dev {
		if o.Sudo == nil {
			return o, fmt.Errorf("--sudo ACCOUNT is required: the genesis of init is secure (skip and simulated attestation and debug enclaves forbidden, no dev account funded) and its sudo key, the account with the root origin (security flags, shard creation), must be one whose key you hold; --dev writes the permissive dev genesis instead")
		}
		if len(o.Endowments) == 0 {
			return o, fmt.Errorf("--endow ACCOUNT=AMOUNT is required at least once: the secure genesis funds no dev account and every transaction pays a fee, so name the accounts to fund (amounts in planck, 1 TEER = 10^12); --dev writes the permissive dev genesis instead")
		}
	}
	if err := o.Validate(); err != nil {
		return o, fmt.Errorf("%s", strings.TrimPrefix(err.Error(), "node: "))
	}
	return o, nil
}

func newInitCmd() *cobra.Command {
	o := node.NetworkOptions{
		Validators:         4,
		ChainID:            "integritee-local",
		BaseRPCPort:        node.DefaultRPCPort,
		BaseP2PPort:        node.DefaultP2PPort,
		BasePrometheusPort: node.DefaultPrometheusPort,
	}
	var (
		basePath, blockTime, sudo string
		endow                     []string
		dev, secure               bool
	)
	cmd := &cobra.Command{
		Use:   "init --validators N --base-path DIR (--sudo ACCOUNT --endow ACCOUNT=AMOUNT... | --dev)",
		Short: "Write the homes of an N-validator network sharing one genesis",
		Long: `init writes DIR/node0 ... DIR/node<N-1>, each a node home with its own keys and ports
(base port + index), all sharing one genesis and each knowing the others as
persistent peers. Start each with
  integritee-node --base-path DIR/nodeK

The genesis is secure by default: unverified (skip) and simulated attestation and
debug enclaves are forbidden, no dev account is funded, the sudo key is the account
--sudo names and the funded accounts are those --endow names (amounts in planck,
1 TEER = 10^12 planck). Accounts are SS58 addresses or 0x-hex public keys; the dev
accounts //Alice ... //Ferdie are refused, since anyone can derive their keys.
  integritee-node init --base-path net --sudo 5F... --endow 5F...=1000000000000000

--dev writes the permissive dev genesis of integritee-node --dev instead (//Alice ...
//Eve funded, //Alice sudo, skip and sim attestation and debug enclaves allowed),
for local test networks only; --sudo and --endow still apply on top.

CometBFT needs more than two thirds of the voting power online: a network of N
validators keeps producing blocks with up to floor((N-1)/3) of them down, so 4 is
the smallest network that survives the loss of one node.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if basePath == "" {
				return fmt.Errorf("--base-path is required")
			}
			if dev && secure {
				return fmt.Errorf("--secure (deprecated: init is secure by default) contradicts --dev")
			}
			if cmd.Flags().Changed("block-time") {
				d, err := parseDuration(blockTime)
				if err != nil {
					return err
				}
				o.BlockTime = d
			}
			g, err := genesisOptions(dev, sudo, endow)
			if err != nil {
				return err
			}
			o.Genesis = g
			cfgs, err := node.Init(basePath, o)
			if err != nil {
				return err
			}
			for _, c := range cfgs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\trpc %d\tp2p %d\tprometheus %d\n", c.BasePath, c.RPCPort, c.P2PPort, c.PrometheusPort)
			}
			w := cmd.ErrOrStderr()
			if dev {
				fmt.Fprintln(w, "init: DEV genesis: //Alice ... //Eve funded, skip and simulated attestation and debug enclaves allowed; for local testing only")
				return nil
			}
			fmt.Fprintf(w, "init: secure genesis: skip and simulated attestation and debug enclaves forbidden; sudo %s; %d endowed account(s)\n", g.Sudo, len(g.Endowments))
			funded := false
			for _, e := range g.Endowments {
				funded = funded || e.Account == *g.Sudo
			}
			if !funded {
				fmt.Fprintf(w, "init: note: the sudo account %s has no endowment; it needs a balance to pay the fee of its calls\n", g.Sudo)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.Validators, "validators", o.Validators, "number of validator nodes")
	f.StringVarP(&basePath, "base-path", "d", "", "directory to write the node homes into")
	f.StringVar(&o.ChainID, "chain-id", o.ChainID, "chain id")
	f.IntVar(&o.BaseRPCPort, "base-rpc-port", o.BaseRPCPort, "RPC port of node0; nodeK gets base+K")
	f.IntVar(&o.BaseP2PPort, "base-port", o.BaseP2PPort, "p2p port of node0; nodeK gets base+K")
	f.IntVar(&o.BasePrometheusPort, "base-prometheus-port", o.BasePrometheusPort, "Prometheus port of node0; nodeK gets base+K; 0 disables")
	f.StringVar(&blockTime, "block-time", "1s", "pause between blocks")
	f.StringVar(&sudo, "sudo", "", "sudo key (root origin): an SS58 address or 0x-hex public key; required unless --dev")
	f.StringArrayVar(&endow, "endow", nil, "fund ACCOUNT=AMOUNT at genesis (SS58 or 0x-hex, amount in planck); repeatable; at least one unless --dev")
	f.BoolVar(&dev, "dev", false, "write the permissive dev genesis (dev accounts funded, //Alice sudo, skip/sim attestation and debug enclaves allowed) for local test networks")
	f.BoolVar(&secure, "secure", false, "deprecated no-op: init is secure by default")
	_ = f.MarkDeprecated("secure", "init is secure by default; --dev writes the permissive genesis")
	return cmd
}
