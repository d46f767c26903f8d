// Package localnet starts a local Integritee network from a JSON
// configuration: parentchain nodes (integritee-node) and validateers
// (integritee-service), each validateer beside its own node, and optionally
// Prometheus scraping all of them. It is the logic of integritee-localnet,
// after Integritee's own local-setup/launch.py.
package localnet

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"
)

// Chain kinds.
const (
	// ChainDev is a single `integritee-node --dev` node: dev genesis, one
	// validator.
	ChainDev = "dev"
	// ChainInit is a network written once by `integritee-node init --dev`
	// (one dev genesis shared by all nodes, each node a validator), then
	// started node by node.
	ChainInit = "init"
)

// DefaultChainID is the chain id of ChainInit networks unless the
// configuration names one (the default of `integritee-node init`).
const DefaultChainID = "integritee-local"

// Port steps: the K-th node (counting from 0) gets each node base port + K,
// as `integritee-node init` numbers them; the K-th validateer gets each
// validateer base port + 10·K (a validateer's default trusted and untrusted
// ports are adjacent, so a step of 1 would collide).
const (
	NodePortStep       = 1
	ValidateerPortStep = 10
)

// DefaultPrometheusPort is the port of the Prometheus server the launcher
// starts when the configuration enables it.
const DefaultPrometheusPort = 9090

// maxNodes is the largest network `integritee-node init` writes.
const maxNodes = 100

// NodePorts are the ports of one integritee-node. A zero port means "the
// default": the base port plus the node's index times NodePortStep.
type NodePorts struct {
	RPC        int `json:"rpc,omitempty"`
	P2P        int `json:"p2p,omitempty"`
	Prometheus int `json:"prometheus,omitempty"`
}

// ValidateerPorts are the ports of one integritee-service. A zero port
// means "the default": the base port plus the validateer's index times
// ValidateerPortStep.
type ValidateerPorts struct {
	Trusted   int `json:"trusted,omitempty"`
	Untrusted int `json:"untrusted,omitempty"`
	MuRA      int `json:"mu_ra,omitempty"`
	Health    int `json:"health,omitempty"`
	Metrics   int `json:"metrics,omitempty"`
}

// BasePorts are the ports of node0 and validateer0; later ones count up
// from them. Zero fields take the programs' own defaults.
type BasePorts struct {
	Node       NodePorts       `json:"node"`
	Validateer ValidateerPorts `json:"validateer"`
}

// DefaultBasePorts are the programs' own default ports, so that node0 and
// validateer0 answer where integritee-cli looks by default.
var DefaultBasePorts = BasePorts{
	Node:       NodePorts{RPC: 9944, P2P: 30333, Prometheus: 9615},
	Validateer: ValidateerPorts{Trusted: 2000, Untrusted: 2001, MuRA: 3443, Health: 4545, Metrics: 8787},
}

// NodeSpec configures one parentchain node.
type NodeSpec struct {
	// Name names the node's data directory and log file; default nodeK.
	Name string `json:"name,omitempty"`
	// Ports override the base ports + index.
	Ports NodePorts `json:"ports"`
	// Flags are extra integritee-node flags (e.g. "--log-level", "debug").
	// The launcher sets the base path, ports, --dev and --name itself.
	Flags []string `json:"flags,omitempty"`
}

// NodeList is the "nodes" entry: either a count (`"nodes": 2`, all
// defaults) or a list of NodeSpec.
type NodeList []NodeSpec

// UnmarshalJSON accepts a non-negative count or a list of node objects.
func (l *NodeList) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	if len(b) > 0 && b[0] == '[' {
		var specs []NodeSpec
		if err := strictUnmarshal(b, &specs); err != nil {
			return err
		}
		*l = specs
		return nil
	}
	var n int
	if err := json.Unmarshal(b, &n); err != nil {
		return fmt.Errorf("nodes: want a count or a list of nodes, got %s", b)
	}
	if n < 0 {
		return fmt.Errorf("nodes: count %d is negative", n)
	}
	*l = make(NodeList, n)
	return nil
}

// ValidateerSpec configures one validateer.
type ValidateerSpec struct {
	// Name names the validateer's data directory and log file; default
	// validateerK.
	Name string `json:"name,omitempty"`
	// Node is the name of the node it sits beside (its --integritee-rpc-port
	// points there); default the first node.
	Node string `json:"node,omitempty"`
	// Ports override the base ports + index.
	Ports ValidateerPorts `json:"ports"`
	// Flags are extra integritee-service flags, before the `run`
	// subcommand (e.g. "--log-level", "debug"). The launcher sets the node
	// URL and port, data dir, ports, --enable-metrics and --sim-host-secret.
	Flags []string `json:"flags,omitempty"`
	// RunFlags follow `run` (e.g. "--dev", "--skip-ra", a shard).
	RunFlags []string `json:"run_flags,omitempty"`
}

// PrometheusSpec configures the optional Prometheus server.
type PrometheusSpec struct {
	Enabled bool `json:"enabled"`
	// Port of its web UI and API; default DefaultPrometheusPort.
	Port int `json:"port,omitempty"`
}

// Config is a local network, as read from a local-setup/*.json file.
type Config struct {
	// Chain is ChainDev or ChainInit.
	Chain string `json:"chain"`
	// ChainID names an init network's chain; default DefaultChainID.
	ChainID string `json:"chain_id,omitempty"`
	// BlockTime is the nodes' pause between blocks (e.g. "500ms");
	// default the node's own (1s).
	BlockTime string `json:"block_time,omitempty"`
	// Nodes are the parentchain nodes.
	Nodes NodeList `json:"nodes"`
	// Validateers are started in order, each once the one before it is
	// initialised.
	Validateers []ValidateerSpec `json:"validateers,omitempty"`
	// BasePorts override DefaultBasePorts field by field.
	BasePorts BasePorts `json:"base_ports"`
	// Prometheus, if enabled, scrapes every node and validateer.
	Prometheus PrometheusSpec `json:"prometheus"`
}

// strictUnmarshal decodes JSON refusing unknown fields, so that a typo in a
// configuration is an error rather than a silently ignored setting.
func strictUnmarshal(b []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if d.More() {
		return errors.New("trailing data after the JSON value")
	}
	return nil
}

// ParseConfig decodes a configuration (unknown fields are errors) and
// checks it with ValidateBasic.
func ParseConfig(b []byte) (*Config, error) {
	var c Config
	if err := strictUnmarshal(b, &c); err != nil {
		return nil, err
	}
	if err := c.ValidateBasic(); err != nil {
		return nil, err
	}
	return &c, nil
}

// LoadConfig reads and validates a configuration file.
func LoadConfig(path string) (*Config, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c, err := ParseConfig(b)
	if err != nil {
		return nil, fmt.Errorf("config %s: %w", path, err)
	}
	return c, nil
}

// namePattern keeps names usable as file names and Prometheus labels.
var namePattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,62}$`)

// reservedNames are directories and log files of the launcher itself.
var reservedNames = []string{"chain", "logs", "pids", "prometheus", "init", "sim-host-secret"}

// Flags the launcher sets itself and a configuration may not repeat.
var (
	nodeOwnFlags = []string{"-d", "--base-path", "--tmp", "--dev", "--rpc-port", "--port",
		"--prometheus-port", "--name", "--block-time"}
	serviceOwnFlags = []string{"-u", "--integritee-rpc-url", "-p", "--integritee-rpc-port",
		"-d", "--data-dir", "-P", "--trusted-worker-port", "-w", "--untrusted-worker-port",
		"-r", "--mu-ra-port", "-h", "--untrusted-http-port", "-i", "--metrics-port",
		"--enable-metrics", "--sim-host-secret"}
)

// checkFlags refuses empty flags and flags in own.
func checkFlags(what string, flags, own []string) error {
	for _, f := range flags {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("%s: empty flag", what)
		}
		name, _, _ := strings.Cut(f, "=")
		if !strings.HasPrefix(name, "--") && strings.HasPrefix(name, "-") && len(name) > 2 {
			name = name[:2] // -P2000
		}
		if slices.Contains(own, name) {
			return fmt.Errorf("%s: flag %s is set by the launcher; use the config's ports instead", what, name)
		}
	}
	return nil
}

// ValidateBasic checks the configuration without touching the machine:
// chain kind, node count, names, references, flags and that all resolved
// ports are valid and distinct.
func (c *Config) ValidateBasic() error {
	switch c.Chain {
	case ChainDev:
		if len(c.Nodes) != 1 {
			return fmt.Errorf(`chain "dev" runs exactly one node, got %d: use "init" for several`, len(c.Nodes))
		}
		if c.ChainID != "" {
			return fmt.Errorf(`chain_id applies to chain "init" only (a dev chain is %q)`, "integritee-dev")
		}
	case ChainInit:
		if len(c.Nodes) < 1 || len(c.Nodes) > maxNodes {
			return fmt.Errorf(`chain "init" needs 1..%d nodes, got %d`, maxNodes, len(c.Nodes))
		}
		if c.ChainID != "" && strings.TrimSpace(c.ChainID) != c.ChainID {
			return fmt.Errorf("chain_id %q has surrounding spaces", c.ChainID)
		}
	case "":
		return errors.New(`chain: missing: "dev" (one integritee-node --dev) or "init" (nodes sharing a genesis written by integritee-node init)`)
	default:
		return fmt.Errorf(`chain: %q is neither "dev" nor "init"`, c.Chain)
	}
	if c.BlockTime != "" {
		d, err := time.ParseDuration(c.BlockTime)
		if err != nil || d <= 0 {
			return fmt.Errorf("block_time: %q is not a positive duration such as 1s or 500ms", c.BlockTime)
		}
	}
	names := map[string]string{}
	claim := func(name, what string) error {
		if !namePattern.MatchString(name) {
			return fmt.Errorf("%s: name %q: use letters, digits, '-' and '_' (at most 63, starting with a letter or digit)", what, name)
		}
		if slices.Contains(reservedNames, name) {
			return fmt.Errorf("%s: name %q is reserved for the launcher's own files", what, name)
		}
		if prev, ok := names[name]; ok {
			return fmt.Errorf("%s: name %q is already used by %s", what, name, prev)
		}
		names[name] = what
		return nil
	}
	for i, n := range c.Nodes {
		what := fmt.Sprintf("nodes[%d]", i)
		if err := claim(c.nodeName(i), what); err != nil {
			return err
		}
		if err := checkFlags(what, n.Flags, nodeOwnFlags); err != nil {
			return err
		}
	}
	for i, v := range c.Validateers {
		what := fmt.Sprintf("validateers[%d]", i)
		if err := claim(c.validateerName(i), what); err != nil {
			return err
		}
		if v.Node != "" && c.nodeIndex(v.Node) < 0 {
			return fmt.Errorf("%s: node %q is not one of the nodes", what, v.Node)
		}
		if err := checkFlags(what, v.Flags, serviceOwnFlags); err != nil {
			return err
		}
		if slices.Contains(v.Flags, "run") {
			return fmt.Errorf("%s: flags must not contain \"run\": put the run subcommand's flags in run_flags", what)
		}
		if err := checkFlags(what+".run_flags", v.RunFlags, serviceOwnFlags); err != nil {
			return err
		}
	}
	_, err := c.resolve()
	return err
}

func (c *Config) nodeName(i int) string {
	if n := c.Nodes[i].Name; n != "" {
		return n
	}
	return fmt.Sprintf("node%d", i)
}

func (c *Config) validateerName(i int) string {
	if n := c.Validateers[i].Name; n != "" {
		return n
	}
	return fmt.Sprintf("validateer%d", i)
}

func (c *Config) nodeIndex(name string) int {
	for i := range c.Nodes {
		if c.nodeName(i) == name {
			return i
		}
	}
	return -1
}

// Node is a node with its resolved ports.
type Node struct {
	Name  string
	Index int
	Ports NodePorts
	Flags []string
}

// Validateer is a validateer with its resolved ports and node.
type Validateer struct {
	Name     string
	Index    int
	Node     *Node
	Ports    ValidateerPorts
	Flags    []string
	RunFlags []string
}

// Network is a configuration resolved into concrete processes and ports.
type Network struct {
	Chain       string
	ChainID     string
	BlockTime   string
	Nodes       []*Node
	Validateers []*Validateer
	// PrometheusPort is 0 unless Prometheus is enabled.
	PrometheusPort int
}

// Resolve returns the network the configuration describes; it fails exactly
// when ValidateBasic does.
func (c *Config) Resolve() (*Network, error) {
	if err := c.ValidateBasic(); err != nil {
		return nil, err
	}
	return c.resolve()
}

func pick(explicit, base, index, step int) int {
	if explicit != 0 {
		return explicit
	}
	return base + index*step
}

func orDefault(v, d int) int {
	if v != 0 {
		return v
	}
	return d
}

// resolve computes ports and checks them: in range, distinct, and for init
// networks the p2p ports that `integritee-node init` wrote into every node's
// peer list.
func (c *Config) resolve() (*Network, error) {
	bn := NodePorts{
		RPC:        orDefault(c.BasePorts.Node.RPC, DefaultBasePorts.Node.RPC),
		P2P:        orDefault(c.BasePorts.Node.P2P, DefaultBasePorts.Node.P2P),
		Prometheus: orDefault(c.BasePorts.Node.Prometheus, DefaultBasePorts.Node.Prometheus),
	}
	bv := ValidateerPorts{
		Trusted:   orDefault(c.BasePorts.Validateer.Trusted, DefaultBasePorts.Validateer.Trusted),
		Untrusted: orDefault(c.BasePorts.Validateer.Untrusted, DefaultBasePorts.Validateer.Untrusted),
		MuRA:      orDefault(c.BasePorts.Validateer.MuRA, DefaultBasePorts.Validateer.MuRA),
		Health:    orDefault(c.BasePorts.Validateer.Health, DefaultBasePorts.Validateer.Health),
		Metrics:   orDefault(c.BasePorts.Validateer.Metrics, DefaultBasePorts.Validateer.Metrics),
	}
	net := &Network{Chain: c.Chain, ChainID: c.ChainID, BlockTime: c.BlockTime}
	if c.Chain == ChainInit && net.ChainID == "" {
		net.ChainID = DefaultChainID
	}
	owners := map[int]string{}
	use := func(port int, owner string) error {
		if port < 1 || port > 65535 {
			return fmt.Errorf("%s: port %d out of range 1..65535", owner, port)
		}
		if prev, ok := owners[port]; ok {
			return fmt.Errorf("%s: port %d is also %s", owner, port, prev)
		}
		owners[port] = owner
		return nil
	}
	for i, s := range c.Nodes {
		n := &Node{Name: c.nodeName(i), Index: i, Flags: s.Flags, Ports: NodePorts{
			RPC:        pick(s.Ports.RPC, bn.RPC, i, NodePortStep),
			P2P:        pick(s.Ports.P2P, bn.P2P, i, NodePortStep),
			Prometheus: pick(s.Ports.Prometheus, bn.Prometheus, i, NodePortStep),
		}}
		for _, p := range []struct {
			port int
			what string
		}{{n.Ports.RPC, "rpc"}, {n.Ports.P2P, "p2p"}, {n.Ports.Prometheus, "prometheus"}} {
			if err := use(p.port, fmt.Sprintf("%s %s", n.Name, p.what)); err != nil {
				return nil, err
			}
		}
		net.Nodes = append(net.Nodes, n)
	}
	if c.Chain == ChainInit {
		// init writes node K's p2p port (base + K) into every other node's
		// persistent peers; the nodes must listen where their peers dial.
		p0 := net.Nodes[0].Ports.P2P
		for _, n := range net.Nodes[1:] {
			if want := p0 + n.Index; n.Ports.P2P != want {
				return nil, fmt.Errorf(`%s p2p: port %d, but chain "init" needs %d: integritee-node init gives node K the p2p port of node0 + K and writes it into the other nodes' peer lists`, n.Name, n.Ports.P2P, want)
			}
		}
		if last := p0 + len(net.Nodes) - 1; last > 65535 {
			return nil, fmt.Errorf("node p2p ports %d..%d out of range", p0, last)
		}
	}
	for i, s := range c.Validateers {
		v := &Validateer{Name: c.validateerName(i), Index: i, Flags: s.Flags, RunFlags: s.RunFlags, Ports: ValidateerPorts{
			Trusted:   pick(s.Ports.Trusted, bv.Trusted, i, ValidateerPortStep),
			Untrusted: pick(s.Ports.Untrusted, bv.Untrusted, i, ValidateerPortStep),
			MuRA:      pick(s.Ports.MuRA, bv.MuRA, i, ValidateerPortStep),
			Health:    pick(s.Ports.Health, bv.Health, i, ValidateerPortStep),
			Metrics:   pick(s.Ports.Metrics, bv.Metrics, i, ValidateerPortStep),
		}}
		v.Node = net.Nodes[0]
		if s.Node != "" {
			v.Node = net.Nodes[c.nodeIndex(s.Node)]
		}
		for _, p := range []struct {
			port int
			what string
		}{{v.Ports.Trusted, "trusted"}, {v.Ports.Untrusted, "untrusted"}, {v.Ports.MuRA, "mu_ra"},
			{v.Ports.Health, "health"}, {v.Ports.Metrics, "metrics"}} {
			if err := use(p.port, fmt.Sprintf("%s %s", v.Name, p.what)); err != nil {
				return nil, err
			}
		}
		net.Validateers = append(net.Validateers, v)
	}
	if c.Prometheus.Enabled {
		net.PrometheusPort = orDefault(c.Prometheus.Port, DefaultPrometheusPort)
		if err := use(net.PrometheusPort, "prometheus"); err != nil {
			return nil, err
		}
	} else if c.Prometheus.Port < 0 || c.Prometheus.Port > 65535 {
		return nil, fmt.Errorf("prometheus: port %d out of range 1..65535", c.Prometheus.Port)
	}
	return net, nil
}
