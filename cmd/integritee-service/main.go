// Command integritee-service is the validateer: it hosts the enclave,
// registers it on the parentchain, syncs the parentchain into it and
// produces the shard's sidechain blocks.
package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/service"
	"github.com/integritee-go/integritee/service/sealedstore"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "Error:", err)
		os.Exit(1)
	}
}

type options struct {
	cfg       service.Config
	logLevel  string
	simSecret string
	debug     bool
}

// tee is the enclave's TEE as the flags name it; the enclave opens it.
func (o *options) tee() enclave.TEEConfig {
	o.cfg.SimHostSecret, o.cfg.DebugEnclave = o.simSecret, o.debug
	return o.cfg.TEEConfig()
}

func (o *options) logger() (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(o.logLevel)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", o.logLevel)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

func newRootCmd() *cobra.Command {
	o := &options{cfg: service.DefaultConfig()}
	root := &cobra.Command{
		Use:   "integritee-service",
		Short: "The Integritee validateer: hosts the enclave and produces sidechain blocks",
		Long: `integritee-service hosts an enclave (the simulation TEE here), registers it on the
parentchain, verifies parentchain blocks inside it, and produces the shard's sidechain
blocks. Direct invocation is served on the trusted port (JSON-RPC over a TLS websocket
whose certificate carries the enclave's attestation).

  integritee-service run --dev              first validateer of a dev shard (shard = mrenclave)
  integritee-service mrenclave              print the enclave's measurement (base58)`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	pf := root.PersistentFlags()
	c := &o.cfg
	// -h is the untrusted HTTP port, as in the original; help is --help only.
	pf.Bool("help", false, "help for integritee-service")
	pf.StringVarP(&c.NodeURL, "integritee-rpc-url", "u", c.NodeURL, "parentchain node URL (ws, wss, http, https), without port")
	pf.IntVarP(&c.NodePort, "integritee-rpc-port", "p", c.NodePort, "parentchain node RPC port")
	pf.StringVarP(&c.DataDir, "data-dir", "d", c.DataDir, "directory of sealed keys, encrypted state and blocks")
	pf.IntVarP(&c.TrustedPort, "trusted-worker-port", "P", c.TrustedPort, "trusted JSON-RPC (TLS websocket) port")
	pf.IntVarP(&c.UntrustedPort, "untrusted-worker-port", "w", c.UntrustedPort, "untrusted websocket port (block fetching by peers)")
	pf.IntVarP(&c.MuRaPort, "mu-ra-port", "r", c.MuRaPort, "mutual remote attestation port")
	pf.IntVarP(&c.HTTPPort, "untrusted-http-port", "h", c.HTTPPort, "HTTP port of /is_initialized")
	pf.BoolVar(&c.EnableMetrics, "enable-metrics", false, "serve Prometheus /metrics on --metrics-port")
	pf.IntVarP(&c.MetricsPort, "metrics-port", "i", c.MetricsPort, "Prometheus port")
	pf.BoolVar(&c.Pprof, "pprof", false, "also serve Go's profiles (/debug/pprof/) on the metrics port (needs --enable-metrics; for profiling only)")
	pf.BoolVar(&c.WSExternal, "ws-external", false, "listen on all interfaces instead of 127.0.0.1")
	pf.StringVarP(&c.TrustedExternal, "trusted-external-address", "T", "", "trusted RPC address to register (default wss://127.0.0.1:<trusted port>)")
	pf.StringVarP(&c.UntrustedExternal, "untrusted-external-address", "U", "", "untrusted address peers use (default ws://127.0.0.1:<untrusted port>)")
	pf.StringVarP(&c.MuRaExternal, "mu-ra-external-address", "M", "", "mutual remote attestation address peers use (default 127.0.0.1:<mu-ra port>)")
	pf.BoolVarP(&c.CleanReset, "clean-reset", "c", false, "delete the state and blocks (not the keys) before starting")
	pf.StringVar(&o.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	pf.StringVar(&o.simSecret, "sim-host-secret", "", "simulation TEE's per-host secret file (default $INTEGRITEE_SIM_HOST_SECRET or ~/.local/state/integritee/sim-host-secret)")
	pf.StringVar(&o.cfg.TEE, "tee", o.cfg.TEE, "trusted execution environment the enclave opens: sim (the simulation TEE; the one built)")
	pf.BoolVar(&o.debug, "debug-enclave", false, "run the enclave in debug mode (its quotes say so; chains may refuse it)")
	root.AddCommand(runCmd(o), mrenclaveCmd(o), shieldingKeyCmd(o), signingKeyCmd(o), dumpRACmd(o))
	return root
}

func runCmd(o *options) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "run [--dev] [--skip-ra] [SHARD]",
		Short: "Run the validateer for SHARD (default: the enclave's mrenclave)",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 1 {
				o.cfg.Shard = args[0]
			}
			log, err := o.logger()
			if err != nil {
				return err
			}
			o.tee()
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			s, err := service.New(ctx, o.cfg, log)
			if err != nil {
				return err
			}
			return s.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.BoolVar(&o.cfg.Dev, "dev", false, "fund the enclave's account from //Alice (a dev chain's sudo account, //Alice, becomes a new shard's sidechain root by the chain's rule, not by this flag)")
	f.BoolVar(&o.cfg.SkipRA, "skip-ra", false, "register without attestation (method skip; dev chains only)")
	f.BoolVar(&o.cfg.RequestState, "request-state", false, "get the shard's keys and state from a peer validateer (mutual remote attestation) even if the shard looks new")
	f.DurationVar(&o.cfg.SlotDuration, "slot-duration", o.cfg.SlotDuration, "sidechain slot duration")
	f.Uint64Var(&o.cfg.FinalizationInterval, "finalization-interval", o.cfg.FinalizationInterval, "sidechain blocks between confirmations on the parentchain")
	f.DurationVar(&o.cfg.DevClockOffset, "dev-clock-offset", 0, "testing only: shift the slot loop's clock by this much (e.g. 300ms, a slot ahead), to exercise clock skew between validateers")
	rpcLimitFlags(cmd, &o.cfg)
	poolLimitFlags(cmd, &o.cfg)
	return cmd
}

// rpcLimitFlags are the bounds of the trusted and untrusted ports.
func rpcLimitFlags(cmd *cobra.Command, c *service.Config) {
	f := cmd.Flags()
	f.IntVar(&c.RPCMaxConnections, "rpc-max-connections", c.RPCMaxConnections, "trusted RPC: open connections at most; more are refused with HTTP 503")
	f.IntVar(&c.RPCMaxInFlight, "rpc-max-in-flight", c.RPCMaxInFlight, "trusted RPC: messages (a request, a notification or a batch) one connection has handled at once; the connection is not read meanwhile")
	f.Int64Var(&c.RPCMaxMessageBytes, "rpc-max-message-bytes", c.RPCMaxMessageBytes, "trusted RPC: largest message read; a larger one closes its connection (websocket close 1009)")
	f.DurationVar(&c.RPCWriteTimeout, "rpc-write-timeout", c.RPCWriteTimeout, "trusted and untrusted ports: time one write may take; a client that does not read what it is sent is disconnected")
	f.DurationVar(&c.RPCIdleTimeout, "rpc-idle-timeout", c.RPCIdleTimeout, "trusted and untrusted ports: close a connection without a request for this long and without an open watch (0: never)")
	f.IntVar(&c.UntrustedMaxConnections, "untrusted-max-connections", c.UntrustedMaxConnections, "untrusted port: open connections at most; more are refused with HTTP 503")
	f.IntVar(&c.FetchMaxBytes, "fetch-max-bytes", c.FetchMaxBytes, "sidechain_fetchBlocksFromPeer: bytes of blocks beyond the first in one answer served; answers from peers are read up to twice this and 64 KiB")
}

// poolLimitFlags are the bounds of the enclave's pool of operations.
func poolLimitFlags(cmd *cobra.Command, c *service.Config) {
	f := cmd.Flags()
	f.IntVar(&c.Pool.MaxSize, "pool-max-size", c.Pool.MaxSize, "pool: pooled trusted operations at most; more are refused (pool.PoolFull)")
	f.IntVar(&c.Pool.MaxPerAccount, "pool-max-per-account", c.Pool.MaxPerAccount, "pool: pooled operations of one signer at most (pool.TooManyForAccount)")
	f.IntVar(&c.Pool.MaxFuture, "pool-max-future", c.Pool.MaxFuture, "pool: operations waiting for a lower nonce (Future), of all signers, at most (pool.TooManyFuture)")
	f.IntVar(&c.Pool.MaxFuturePerAccount, "pool-max-future-per-account", c.Pool.MaxFuturePerAccount, "pool: Future operations of one signer at most (pool.TooManyFuture)")
	f.DurationVar(&c.Pool.FutureTTL, "pool-future-ttl", c.Pool.FutureTTL, "pool: a Future operation is dropped after waiting this long for its lower nonces")
}

func mrenclaveCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "mrenclave",
		Short: "Print the enclave's mrenclave (base58)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mr, err := enclave.MeasurementOf(o.tee())
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), mr)
			return nil
		},
	}
}

// identity returns the enclave's public identity; its keys are unsealed
// (or made) inside the enclave.
func identity(o *options) (enclave.Identity, error) {
	return enclave.Inspect(o.tee(), sealedstore.New(filepath.Join(o.cfg.DataDir, "sealed")))
}

func shieldingKeyCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "shielding-key",
		Short: "Print the shard's shielding public key (HPKE ML-KEM-768+X25519, hex)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			id, err := identity(o)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "0x%s\n", hex.EncodeToString(id.ShieldingKey))
			return nil
		},
	}
}

func signingKeyCmd(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "signing-key",
		Short: "Print the enclave's signing key: its parentchain account (SS58 and hex)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ident, err := identity(o)
			if err != nil {
				return err
			}
			id := ident.Signer
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n%s\n", id, id.Hex())
			return nil
		},
	}
}

func dumpRACmd(o *options) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "dump-ra",
		Short: "Write an RA-TLS certificate (DER) with a fresh attestation and print its report",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			der, r, err := enclave.DumpRA(o.tee(), time.Now())
			if err != nil {
				return err
			}
			if err := os.WriteFile(out, der, 0o644); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %s\nmethod %s\nmrenclave %s\ndebug %v\ntimestamp %s\n", out, r.Method, r.MrEnclave, r.Debug, r.Timestamp.UTC().Format(time.RFC3339))
			return nil
		},
	}
	cmd.Flags().StringVar(&out, "out", "ra_dump_cert.der", "file to write the certificate to")
	return cmd
}
