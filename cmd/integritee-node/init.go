package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/parentchain/node"
)

func parseDuration(s string) (time.Duration, error) {
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("--block-time: %q is not a positive duration such as 1s or 500ms", s)
	}
	return d, nil
}

func newInitCmd() *cobra.Command {
	o := node.NetworkOptions{
		Validators:         4,
		ChainID:            "integritee-local",
		BaseRPCPort:        node.DefaultRPCPort,
		BaseP2PPort:        node.DefaultP2PPort,
		BasePrometheusPort: node.DefaultPrometheusPort,
	}
	var basePath, blockTime string
	cmd := &cobra.Command{
		Use:   "init --validators N --base-path DIR",
		Short: "Write the homes of an N-validator network sharing one genesis",
		Long: `init writes DIR/node0 ... DIR/node<N-1>, each a node home with its own keys and ports
(base port + index), all sharing one genesis with the dev accounts funded and each
knowing the others as persistent peers. Start each with
  integritee-node --base-path DIR/nodeK

CometBFT needs more than two thirds of the voting power online: a network of N
validators keeps producing blocks with up to floor((N-1)/3) of them down, so 4 is
the smallest network that survives the loss of one node.`,
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if basePath == "" {
				return fmt.Errorf("--base-path is required")
			}
			if cmd.Flags().Changed("block-time") {
				d, err := parseDuration(blockTime)
				if err != nil {
					return err
				}
				o.BlockTime = d
			}
			cfgs, err := node.Init(basePath, o)
			if err != nil {
				return err
			}
			for _, c := range cfgs {
				fmt.Fprintf(cmd.OutOrStdout(), "%s\trpc %d\tp2p %d\tprometheus %d\n", c.BasePath, c.RPCPort, c.P2PPort, c.PrometheusPort)
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
	f.BoolVar(&o.Genesis.Secure, "secure", false, "forbid unverified (skip) and simulated attestation and debug enclaves")
	return cmd
}
