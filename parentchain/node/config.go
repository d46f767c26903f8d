// Package node runs the parentchain node: CometBFT embedded in-process with
// the application of package app, its configuration, development genesis and
// the layout of a node's base path.
package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"
)

// Default ports, as Substrate nodes use them.
const (
	DefaultRPCPort        = 9944
	DefaultP2PPort        = 30333
	DefaultPrometheusPort = 9615
	DefaultBlockTime      = time.Second
)

// ConfigFile is the node's own settings file in its base path.
const ConfigFile = "node.json"

// Config is a node's configuration. It is read from <base path>/node.json
// and command-line flags override it.
type Config struct {
	// BasePath holds the node's keys, genesis, chain data and state.
	BasePath string `json:"-"`
	// Moniker names the node to its peers.
	Moniker string `json:"moniker"`
	// RPCPort serves CometBFT's JSON-RPC over HTTP and websocket (/websocket).
	RPCPort int `json:"rpc_port"`
	// RPCExternal binds RPC to all interfaces instead of 127.0.0.1.
	RPCExternal bool `json:"rpc_external"`
	// P2PPort is the peer-to-peer port; it listens on all interfaces.
	P2PPort int `json:"p2p_port"`
	// PrometheusPort serves /metrics; 0 disables it.
	PrometheusPort int `json:"prometheus_port"`
	// PrometheusExternal binds Prometheus to all interfaces.
	PrometheusExternal bool `json:"prometheus_external"`
	// BlockTime is the pause after each block before the next height.
	BlockTime Duration `json:"block_time"`
	// PersistentPeers are "nodeid@host:port" peers to keep connected.
	PersistentPeers []string `json:"persistent_peers,omitempty"`
	// MempoolSize bounds the transactions waiting for a block.
	MempoolSize int `json:"mempool_size"`
	// StateVersions is how many committed heights stay provable through
	// /store queries (state.DefaultVersions when 0).
	StateVersions int `json:"state_versions,omitempty"`
	// PprofAddr, host:port, serves Go's net/http/pprof profiles (CometBFT's
	// pprof_laddr); empty disables it. Opt-in, for profiling: bind it to
	// 127.0.0.1.
	PprofAddr string `json:"pprof_addr,omitempty"`
}

// Duration is a time.Duration that reads and writes as "1s" in JSON.
type Duration time.Duration

// MarshalJSON implements json.Marshaler.
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

// UnmarshalJSON implements json.Unmarshaler.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// DefaultConfig returns the defaults for a node at basePath.
func DefaultConfig(basePath string) Config {
	return Config{
		BasePath:       basePath,
		Moniker:        "integritee-node",
		RPCPort:        DefaultRPCPort,
		P2PPort:        DefaultP2PPort,
		PrometheusPort: DefaultPrometheusPort,
		BlockTime:      Duration(DefaultBlockTime),
		MempoolSize:    50000,
	}
}

// ValidateBasic checks the configuration for obvious errors.
func (c Config) ValidateBasic() error {
	if c.BasePath == "" {
		return errors.New("node: base path is empty")
	}
	for name, p := range map[string]int{"rpc": c.RPCPort, "p2p": c.P2PPort} {
		if p <= 0 || p > 65535 {
			return fmt.Errorf("node: %s port %d out of range", name, p)
		}
	}
	if c.PrometheusPort < 0 || c.PrometheusPort > 65535 {
		return fmt.Errorf("node: prometheus port %d out of range", c.PrometheusPort)
	}
	if c.BlockTime <= 0 {
		return fmt.Errorf("node: block time must be positive, got %s", time.Duration(c.BlockTime))
	}
	if c.MempoolSize <= 0 {
		return fmt.Errorf("node: mempool size must be positive, got %d", c.MempoolSize)
	}
	if c.PprofAddr != "" {
		if _, port, err := net.SplitHostPort(c.PprofAddr); err != nil || port == "" {
			return fmt.Errorf("node: pprof address %q is not host:port", c.PprofAddr)
		}
	}
	if c.StateVersions < 0 || c.StateVersions == 1 {
		// Height 0 answers the height before the last committed one, and
		// validateers read one or two heights behind the tip.
		return fmt.Errorf("node: state versions must be at least 2 (0: the default), got %d", c.StateVersions)
	}
	return nil
}

// LoadConfig reads <basePath>/node.json over the defaults; a missing file
// gives the defaults.
func LoadConfig(basePath string) (Config, error) {
	c := DefaultConfig(basePath)
	b, err := os.ReadFile(filepath.Join(basePath, ConfigFile))
	if errors.Is(err, os.ErrNotExist) {
		return c, nil
	}
	if err != nil {
		return c, fmt.Errorf("node: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("node: %s: %w", filepath.Join(basePath, ConfigFile), err)
	}
	c.BasePath = basePath
	return c, nil
}

// Save writes the configuration to <base path>/node.json.
func (c Config) Save() error {
	b, _ := json.MarshalIndent(c, "", "  ")
	if err := os.MkdirAll(c.BasePath, 0o700); err != nil {
		return fmt.Errorf("node: %w", err)
	}
	return os.WriteFile(filepath.Join(c.BasePath, ConfigFile), append(b, '\n'), 0o600)
}

func (c Config) cometDir() string    { return filepath.Join(c.BasePath, "comet") }
func (c Config) genesisFile() string { return filepath.Join(c.cometDir(), "config", "genesis.json") }
func (c Config) appStateDir() string { return filepath.Join(c.BasePath, "app-state") }
func (c Config) hasGenesis() bool    { _, err := os.Stat(c.genesisFile()); return err == nil }
func (c Config) nodeKeyFile() string { return filepath.Join(c.cometDir(), "config", "node_key.json") }
func (c Config) privValKeyFile() string {
	return filepath.Join(c.cometDir(), "config", "priv_validator_key.json")
}
func (c Config) privValStateFile() string {
	return filepath.Join(c.cometDir(), "data", "priv_validator_state.json")
}
