// Command integritee-node runs the parentchain node: CometBFT with the
// Integritee application (balances, sudo, teerex, enclave-bridge, sidechain).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/state"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return l, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", s)
	}
	return l, nil
}

func newRootCmd() *cobra.Command {
	var (
		dev, tmp    bool
		basePath    string
		logLevel    string
		c           = node.DefaultConfig("")
		blockTime   = time.Duration(c.BlockTime).String()
		rpcExternal bool
	)
	cmd := &cobra.Command{
		Use:   "integritee-node",
		Short: "The Integritee parentchain node (CometBFT embedded)",
		Long: `integritee-node runs the layer-1 chain of an Integritee network: CometBFT consensus
with the balances, sudo, teerex, enclave-bridge and sidechain modules.

  integritee-node --dev                     a throw-away single-validator dev chain
  integritee-node --dev --base-path DIR     the same, kept in DIR across restarts
  integritee-node init --validators 4 --base-path net --sudo ACCT --endow ACCT=AMOUNT
                                            a secure network (init --dev: a permissive one)
  integritee-node --base-path net/node0     one node of a network written by init`,
		SilenceUsage:  true,
		SilenceErrors: true, // main prints the error once
		Args:          cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			lvl, err := parseLevel(logLevel)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl}))
			if basePath == "" {
				if !dev && !tmp {
					return fmt.Errorf("no --base-path: give one, or --dev / --tmp for a throw-away chain")
				}
				tmp = true
			}
			if tmp {
				if basePath, err = os.MkdirTemp("", "integritee-node-"); err != nil {
					return err
				}
				defer os.RemoveAll(basePath)
			}
			cfg, err := node.LoadConfig(basePath)
			if err != nil {
				return err
			}
			f := cmd.Flags()
			if f.Changed("rpc-port") {
				cfg.RPCPort = c.RPCPort
			}
			if f.Changed("port") {
				cfg.P2PPort = c.P2PPort
			}
			if f.Changed("prometheus-port") {
				cfg.PrometheusPort = c.PrometheusPort
			}
			if f.Changed("rpc-external") {
				cfg.RPCExternal = rpcExternal
			}
			if f.Changed("prometheus-external") {
				cfg.PrometheusExternal = c.PrometheusExternal
			}
			if f.Changed("state-versions") {
				cfg.StateVersions = c.StateVersions
			}
			if f.Changed("pprof-addr") {
				cfg.PprofAddr = c.PprofAddr
			}
			if f.Changed("name") {
				cfg.Moniker = c.Moniker
			}
			if f.Changed("block-time") {
				d, err := parseDuration(blockTime)
				if err != nil {
					return err
				}
				cfg.BlockTime = node.Duration(d)
			}
			if err := cfg.ValidateBasic(); err != nil {
				return err
			}
			if dev {
				if err := node.EnsureDev(cfg); err != nil {
					return err
				}
			}
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			n, err := node.New(ctx, cfg, log)
			if err != nil {
				return err
			}
			return n.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&dev, "dev", false, "run a single-validator development chain: dev genesis (funded //Alice..//Eve, //Alice sudo, simulated attestation allowed), 1 s blocks; implies --tmp without --base-path")
	f.StringVarP(&basePath, "base-path", "d", "", "directory of the node's keys, genesis, chain data and state")
	f.BoolVar(&tmp, "tmp", false, "keep everything in a temporary directory removed at exit")
	f.IntVar(&c.RPCPort, "rpc-port", c.RPCPort, "JSON-RPC port, HTTP and websocket (/websocket)")
	f.BoolVar(&rpcExternal, "rpc-external", false, "listen for RPC on all interfaces, not only 127.0.0.1")
	f.IntVar(&c.P2PPort, "port", c.P2PPort, "peer-to-peer port (all interfaces)")
	f.IntVar(&c.PrometheusPort, "prometheus-port", c.PrometheusPort, "Prometheus /metrics port; 0 disables")
	f.BoolVar(&c.PrometheusExternal, "prometheus-external", false, "listen for Prometheus on all interfaces")
	f.StringVar(&blockTime, "block-time", blockTime, "pause between blocks (e.g. 1s, 500ms)")
	f.StringVar(&c.Moniker, "name", c.Moniker, "the node's name, as its peers see it")
	f.IntVar(&c.StateVersions, "state-versions", state.DefaultVersions, "how many recent heights /store queries can prove (memory: the tree nodes each block replaced)")
	f.StringVar(&c.PprofAddr, "pprof-addr", "", "serve Go's pprof profiles (/debug/pprof/) at HOST:PORT, e.g. 127.0.0.1:6060; off when empty")
	f.StringVar(&logLevel, "log-level", "info", "log level: debug, info, warn or error")
	cmd.AddCommand(newInitCmd())
	return cmd
}
