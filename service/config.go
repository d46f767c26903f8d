// Package service is the validateer's untrusted host: it runs the enclave
// (package enclave) and gives it what an enclave cannot have itself:
// sockets, disk, the parentchain node's RPC and the clock. It syncs the
// parentchain into the enclave, drives sidechain slots, stores blocks, serves
// health and metrics. Nothing here holds a key or a plaintext state.
package service

import (
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/pool"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/jsonrpc"
	"github.com/integritee-go/integritee/sidechain"
)

// Default ports, as the original worker's.
const (
	DefaultTrustedPort   = 2000
	DefaultUntrustedPort = 2001
	DefaultMuRaPort      = 3443
	DefaultHTTPPort      = 4545
	DefaultMetricsPort   = 8787
	DefaultSlotDuration  = 300 * time.Millisecond
)

// DefaultFinalizationInterval is the default FinalizationInterval: 10
// blocks, 3 s at 300 ms slots. It bounds how many blocks a host can undo
// (docs/SECURITY.md), and one confirmation anchors the operations of that
// many blocks at once, whose watchers all receive Finalized then: at 50
// blocks and 10,000 transfers a second that burst held block production for
// more than a slot (docs/benchmarks.md).
const DefaultFinalizationInterval = 10

// Config configures a validateer.
type Config struct {
	// NodeURL and NodePort locate the parentchain node's RPC.
	NodeURL  string
	NodePort int
	// DataDir holds sealed keys, the encrypted state and the block store.
	DataDir string
	// Ports; TrustedPort serves the enclave's TLS JSON-RPC.
	TrustedPort, UntrustedPort, MuRaPort, HTTPPort int
	// EnableMetrics serves Prometheus on MetricsPort.
	EnableMetrics bool
	MetricsPort   int
	// Pprof also serves Go's profiles (/debug/pprof/) on MetricsPort. They
	// show the host process, enclave included in this build, to whoever
	// reaches the port: for profiling, not for production.
	Pprof bool
	// WSExternal binds the servers to all interfaces instead of 127.0.0.1.
	WSExternal bool
	// External addresses peers and clients use (registered on the
	// parentchain); default: wss://127.0.0.1:<port> etc.
	TrustedExternal, UntrustedExternal, MuRaExternal string
	// CleanReset wipes the data dir's state and blocks (not the keys) first.
	CleanReset bool
	// Dev funds the enclave's account from //Alice. (A new shard's
	// sidechain root comes from the parentchain: its sudo account on a
	// chain that allows simulated attestation; never from a host flag.)
	Dev bool
	// SkipRA registers with the unverified "skip" method.
	SkipRA bool
	// Shard to serve; zero means the enclave's mrenclave.
	Shard string
	// SlotDuration is the sidechain's slot length.
	SlotDuration time.Duration
	// FinalizationInterval is how many sidechain blocks lie between the
	// primary's confirmations on the parentchain
	// (DefaultFinalizationInterval).
	FinalizationInterval uint64
	// RequestState makes the validateer get the shard's keys and state
	// from a peer over mutual remote attestation even if the shard looks
	// new on the parentchain (the original's --request-state). Without it,
	// a validateer joins a peer when the shard has history, and starts the
	// shard itself otherwise.
	RequestState bool
	// TEE names the trusted execution environment ("sim"); the enclave
	// opens it itself (enclave.TEEConfig).
	TEE string
	// SimHostSecret is the simulation TEE's per-host secret file; empty
	// means its default.
	SimHostSecret string
	// DebugEnclave runs the enclave in debug mode.
	DebugEnclave bool
	// DevClockOffset shifts the clock the slot loop reads (Now), for
	// testing clock skew between validateers; zero outside tests.
	DevClockOffset time.Duration

	// RPCMaxConnections bounds the trusted port's open connections
	// (--rpc-max-connections); an upgrade beyond it gets HTTP 503.
	RPCMaxConnections int
	// RPCMaxInFlight bounds the messages each trusted connection has being
	// handled at once (--rpc-max-in-flight); the connection is not read
	// meanwhile.
	RPCMaxInFlight int
	// RPCMaxMessageBytes bounds one trusted-RPC message
	// (--rpc-max-message-bytes); a larger one closes its connection.
	RPCMaxMessageBytes int64
	// RPCWriteTimeout bounds every write on the trusted and untrusted ports
	// (--rpc-write-timeout); a client that does not read is disconnected.
	RPCWriteTimeout time.Duration
	// RPCIdleTimeout closes a connection of either port that sent no
	// request for this long and waits for nothing, such as a watch
	// (--rpc-idle-timeout; 0: never).
	RPCIdleTimeout time.Duration
	// UntrustedMaxConnections bounds the untrusted port's open connections
	// (--untrusted-max-connections).
	UntrustedMaxConnections int
	// FetchMaxBytes caps the blocks of a sidechain_fetchBlocksFromPeer
	// answer beyond the first, served and read (--fetch-max-bytes): this
	// validateer reads answers up to twice that and 64 KiB.
	FetchMaxBytes int
	// Pool bounds the enclave's pool of trusted operations (--pool-*).
	Pool pool.Config
}

// DefaultConfig returns the defaults.
func DefaultConfig() Config {
	rpcDefaults := rpc.DefaultLimits()
	return Config{
		NodeURL: "ws://127.0.0.1", NodePort: 9944, DataDir: ".",
		TrustedPort: DefaultTrustedPort, UntrustedPort: DefaultUntrustedPort,
		MuRaPort: DefaultMuRaPort, HTTPPort: DefaultHTTPPort, MetricsPort: DefaultMetricsPort,
		SlotDuration: DefaultSlotDuration, FinalizationInterval: DefaultFinalizationInterval, TEE: "sim",
		RPCMaxConnections: rpcDefaults.MaxConnections, RPCMaxInFlight: rpcDefaults.MaxInFlight,
		RPCMaxMessageBytes: rpcDefaults.MaxMessageBytes, RPCWriteTimeout: rpcDefaults.WriteTimeout,
		RPCIdleTimeout: rpcDefaults.IdleTimeout, UntrustedMaxConnections: DefaultUntrustedMaxConnections,
		FetchMaxBytes: MaxFetchBytes, Pool: pool.DefaultConfig(),
	}
}

// DefaultUntrustedMaxConnections is --untrusted-max-connections' default:
// peers fetch blocks there, each answer holding up to twice
// --fetch-max-bytes in memory while it is written.
const DefaultUntrustedMaxConnections = 64

// TrustedRPCLimits are the trusted port's limits.
func (c Config) TrustedRPCLimits() jsonrpc.Limits {
	return jsonrpc.Limits{
		MaxConnections: c.RPCMaxConnections, MaxInFlight: c.RPCMaxInFlight, MaxMessageBytes: c.RPCMaxMessageBytes,
		MaxBatch: rpc.DefaultLimits().MaxBatch, WriteTimeout: c.RPCWriteTimeout, IdleTimeout: c.RPCIdleTimeout,
	}
}

// UntrustedLimits are the untrusted port's limits: its own connection
// bound, the trusted port's timeouts, one small request at a time.
func (c Config) UntrustedLimits() jsonrpc.Limits {
	return jsonrpc.Limits{
		MaxConnections: c.UntrustedMaxConnections, MaxInFlight: untrustedMaxInFlight, MaxMessageBytes: untrustedMaxMessageBytes,
		MaxBatch: untrustedMaxBatch, WriteTimeout: c.RPCWriteTimeout, IdleTimeout: c.RPCIdleTimeout,
	}
}

// validateLimits checks the RPC and fetch limits.
func (c Config) validateLimits() error {
	switch {
	case c.RPCMaxConnections < 1 || c.RPCMaxConnections > 1_000_000:
		return fmt.Errorf("service: --rpc-max-connections %d out of range 1..1000000", c.RPCMaxConnections)
	case c.RPCMaxInFlight < 1 || c.RPCMaxInFlight > 4096:
		return fmt.Errorf("service: --rpc-max-in-flight %d out of range 1..4096", c.RPCMaxInFlight)
	case c.RPCMaxMessageBytes < 64<<10 || c.RPCMaxMessageBytes > 256<<20:
		return fmt.Errorf("service: --rpc-max-message-bytes %d out of range 64 KiB..256 MiB", c.RPCMaxMessageBytes)
	case c.RPCWriteTimeout < 100*time.Millisecond:
		return fmt.Errorf("service: --rpc-write-timeout %s below 100ms", c.RPCWriteTimeout)
	case c.RPCIdleTimeout != 0 && c.RPCIdleTimeout < time.Second:
		return fmt.Errorf("service: --rpc-idle-timeout %s: 0 (never) or at least 1s", c.RPCIdleTimeout)
	case c.UntrustedMaxConnections < 1 || c.UntrustedMaxConnections > 1_000_000:
		return fmt.Errorf("service: --untrusted-max-connections %d out of range 1..1000000", c.UntrustedMaxConnections)
	case c.FetchMaxBytes < 64<<10 || c.FetchMaxBytes > 64<<20:
		return fmt.Errorf("service: --fetch-max-bytes %d out of range 64 KiB..64 MiB", c.FetchMaxBytes)
	}
	return nil
}

// ValidateBasic checks the configuration.
func (c Config) ValidateBasic() error {
	if c.DataDir == "" {
		return errors.New("service: empty data dir")
	}
	if err := c.Pool.ValidateBasic(); err != nil {
		return fmt.Errorf("service: --pool-*: %w", err)
	}
	if _, err := url.Parse(c.NodeURL); err != nil {
		return fmt.Errorf("service: node url: %w", err)
	}
	ports := map[string]int{"node": c.NodePort, "trusted": c.TrustedPort, "untrusted": c.UntrustedPort, "mu-ra": c.MuRaPort, "http": c.HTTPPort}
	if c.EnableMetrics {
		ports["metrics"] = c.MetricsPort
	}
	if c.Pprof && !c.EnableMetrics {
		return errors.New("service: --pprof serves on the metrics port: it needs --enable-metrics")
	}
	seen := map[int]string{}
	for name, p := range ports {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("service: %s port %d out of range", name, p)
		}
		if other, dup := seen[p]; dup && name != "node" && other != "node" {
			return fmt.Errorf("service: %s and %s ports are both %d", name, other, p)
		}
		seen[p] = name
	}
	if c.SlotDuration < 50*time.Millisecond {
		return fmt.Errorf("service: slot duration %s below 50ms", c.SlotDuration)
	}
	if c.FinalizationInterval == 0 {
		return errors.New("service: finalization interval must be positive")
	}
	return c.validateLimits()
}

// Now is the host's clock as the slot loop reads it: the system time plus
// DevClockOffset.
func (c Config) Now() time.Time { return time.Now().Add(c.DevClockOffset) }

// TEEConfig is the enclave's TEE as the configuration names it.
func (c Config) TEEConfig() enclave.TEEConfig {
	return enclave.TEEConfig{Name: c.TEE, SimHostSecret: c.SimHostSecret, Debug: c.DebugEnclave}
}

func (c Config) bindHost() string {
	if c.WSExternal {
		return "0.0.0.0"
	}
	return "127.0.0.1"
}

// TrustedURL is the trusted RPC's address as clients use it.
func (c Config) TrustedURL() string {
	if c.TrustedExternal != "" {
		return c.TrustedExternal
	}
	return fmt.Sprintf("wss://127.0.0.1:%d", c.TrustedPort)
}

// UntrustedURL is the untrusted RPC's address as peers use it.
func (c Config) UntrustedURL() string {
	if c.UntrustedExternal != "" {
		return c.UntrustedExternal
	}
	return fmt.Sprintf("ws://127.0.0.1:%d", c.UntrustedPort)
}

// MuRaURL is the mutual remote attestation address as peers use it.
func (c Config) MuRaURL() string {
	if c.MuRaExternal != "" {
		return c.MuRaExternal
	}
	return fmt.Sprintf("127.0.0.1:%d", c.MuRaPort)
}

func parseShard(s string) ([32]byte, error) {
	id, err := sidechain.ParseShardID(s)
	if err != nil {
		return [32]byte{}, fmt.Errorf("service: shard: %w", err)
	}
	return id, nil
}
