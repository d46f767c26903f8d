package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	abcicli "github.com/cometbft/cometbft/abci/client"
	abci "github.com/cometbft/cometbft/abci/types"
	cmtcfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	cmtnode "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/integritee-go/integritee/parentchain/app"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/types"
)

// MaxRequestBatchSize bounds the requests of one JSON-RPC batch (CometBFT's
// default is 10): clients that submit many transactions batch their
// broadcast_tx_sync calls (integritee-cli benchmark-transfers sends 100 a
// request), which saves an HTTP exchange and its parsing per transaction on
// both sides. A batch runs in order in one goroutine, and the request body
// stays bounded by max_body_bytes (1 MB).
const MaxRequestBatchSize = 100

// The node's RPC and mempool limits, set here rather than left to
// CometBFT's defaults (docs/parentchain.md, "Limits"). A request beyond one
// is refused and the node serves on.
const (
	// MaxRPCConnections bounds the RPC's open connections (HTTP and
	// websocket); more wait in the listener's backlog.
	MaxRPCConnections = 2000
	// MaxRPCBodyBytes bounds one HTTP request body or websocket message
	// (a batch of 100 broadcasts of 1–2 KiB transactions fits).
	MaxRPCBodyBytes = 1 << 20
	// MaxRPCHeaderBytes bounds an HTTP request's header.
	MaxRPCHeaderBytes = 64 << 10
	// MaxSubscriptionClients and MaxSubscriptionsPerClient bound the
	// websocket event subscriptions; a subscriber too slow to take its
	// events is disconnected (CloseOnSlowClient) rather than buffered.
	MaxSubscriptionClients    = 1000
	MaxSubscriptionsPerClient = 100
	// MaxTxBytes bounds one transaction in the mempool, before CheckTx:
	// 1 KiB above the application's own bound (types.MaxTxBytes, 64 KiB,
	// room for the largest call, a 16 KiB invoke), so that a transaction
	// just above that gets the application's specific tx.TooLarge, and
	// CometBFT refuses only what is far beyond it.
	MaxTxBytes = types.MaxTxBytes + 1<<10
	// MaxMempoolBytes bounds the mempool's transactions in bytes, beside
	// its count (--mempool-size).
	MaxMempoolBytes = 256 << 20
	// BroadcastTxCommitTimeout bounds broadcast_tx_commit's wait.
	BroadcastTxCommitTimeout = 30 * time.Second
)

// cometConfig turns our configuration into CometBFT's.
func cometConfig(c Config) *cmtcfg.Config {
	cc := cmtcfg.DefaultConfig()
	cc.SetRoot(c.cometDir())
	cc.Moniker = c.Moniker
	// CometBFT's RPC listens on a socket only the front reaches; the front
	// serves the RPC port (front.go).
	cc.RPC.ListenAddress = "unix://" + rpcSocket(c.cometDir())
	cc.RPC.MaxSubscriptionClients = MaxSubscriptionClients
	cc.RPC.MaxSubscriptionsPerClient = MaxSubscriptionsPerClient
	cc.RPC.CloseOnSlowClient = true
	cc.RPC.MaxOpenConnections = MaxRPCConnections
	cc.RPC.MaxBodyBytes = MaxRPCBodyBytes
	cc.RPC.MaxHeaderBytes = MaxRPCHeaderBytes
	cc.RPC.TimeoutBroadcastTxCommit = BroadcastTxCommitTimeout
	cc.RPC.PprofListenAddress = c.PprofAddr // "" leaves it off
	cc.RPC.MaxRequestBatchSize = MaxRequestBatchSize
	cc.P2P.ListenAddress = "tcp://0.0.0.0:" + strconv.Itoa(c.P2PPort)
	cc.P2P.PersistentPeers = strings.Join(c.PersistentPeers, ",")
	cc.P2P.AddrBookStrict = false // peers on loopback and private networks
	cc.P2P.AllowDuplicateIP = true
	cc.P2P.PexReactor = len(c.PersistentPeers) > 0
	cc.Consensus.TimeoutCommit = time.Duration(c.BlockTime)
	cc.Mempool.Size = c.MempoolSize
	cc.Mempool.CacheSize = 2 * c.MempoolSize
	cc.Mempool.MaxTxsBytes = MaxMempoolBytes
	cc.Mempool.MaxTxBytes = MaxTxBytes
	cc.TxIndex.Indexer = "kv"
	// We serve Prometheus ourselves, CometBFT's metrics beside our own.
	cc.Instrumentation.Prometheus = false
	return cc
}

// Node is a running parentchain node.
type Node struct {
	cfg     Config
	log     *slog.Logger
	comet   *cmtnode.Node
	store   *state.Store
	metrics *http.Server
	front   *http.Server // the RPC port (front.go)
}

// New builds a node from a base path that holds a genesis (see EnsureDev and
// Init). It does not start it.
func New(ctx context.Context, c Config, log *slog.Logger) (*Node, error) {
	if err := c.ValidateBasic(); err != nil {
		return nil, err
	}
	if !c.hasGenesis() {
		return nil, fmt.Errorf("node: no chain in %s: start with --dev, or write one with `integritee-node init`", c.BasePath)
	}
	cc := cometConfig(c)
	if err := cc.ValidateBasic(); err != nil {
		return nil, fmt.Errorf("node: cometbft config: %w", err)
	}
	nk, err := p2p.LoadNodeKey(c.nodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("node: %w", err)
	}
	pv := privval.LoadFilePV(c.privValKeyFile(), c.privValStateFile())

	store, err := state.Open(c.appStateDir(), app.StateConfig(c.StateVersions))
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	application := app.New(store, log.With("module", "app"), app.NewMetrics(reg))

	// CometBFT registers its metrics, and Go's and the process's, with the
	// default registry; the node serves that and ours.
	instr := *cc.Instrumentation
	instr.Prometheus = c.PrometheusPort > 0
	comet, err := cmtnode.NewNode(ctx, cc, pv, nk,
		clientCreator{application},
		cmtnode.DefaultGenesisDocProviderFunc(cc),
		cmtcfg.DefaultDBProvider,
		cmtnode.DefaultMetricsProvider(&instr),
		slogAdapter{log.With("module", "cometbft")},
	)
	if err != nil {
		store.Close()
		return nil, fmt.Errorf("node: %w", err)
	}
	n := &Node{cfg: c, log: log, comet: comet, store: store}
	rpcHost := "127.0.0.1"
	if c.RPCExternal {
		rpcHost = "0.0.0.0"
	}
	n.front = &http.Server{Addr: net.JoinHostPort(rpcHost, strconv.Itoa(c.RPCPort)), Handler: newRPCFront(rpcSocket(c.cometDir())),
		ReadHeaderTimeout: 10 * time.Second, MaxHeaderBytes: MaxRPCHeaderBytes}
	if c.PrometheusPort > 0 {
		host := "127.0.0.1"
		if c.PrometheusExternal {
			host = "0.0.0.0"
		}
		mux := http.NewServeMux()
		mux.Handle("/metrics", promhttp.HandlerFor(prometheus.Gatherers{prometheus.DefaultGatherer, reg}, promhttp.HandlerOpts{ErrorHandling: promhttp.ContinueOnError}))
		n.metrics = &http.Server{Addr: net.JoinHostPort(host, strconv.Itoa(c.PrometheusPort)), Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	}
	return n, nil
}

// Run starts the node and serves until ctx ends, then stops it cleanly.
func (n *Node) Run(ctx context.Context) error {
	if n.metrics != nil {
		ln, err := net.Listen("tcp", n.metrics.Addr)
		if err != nil {
			n.store.Close()
			return fmt.Errorf("node: prometheus: %w", err)
		}
		go func() {
			if err := n.metrics.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				n.log.Error("prometheus server", "err", err)
			}
		}()
	}
	front, err := net.Listen("tcp", n.front.Addr)
	if err != nil {
		n.store.Close()
		return fmt.Errorf("node: rpc: %w", err)
	}
	// A socket left by a killed node would stop CometBFT's RPC listening.
	if err := os.Remove(rpcSocket(n.cfg.cometDir())); err != nil && !errors.Is(err, fs.ErrNotExist) {
		front.Close()
		n.store.Close()
		return fmt.Errorf("node: rpc socket: %w", err)
	}
	if err := n.comet.Start(); err != nil {
		front.Close()
		n.store.Close()
		return fmt.Errorf("node: start: %w", err)
	}
	go func() {
		if err := serveFront(n.front, front); err != nil && !errors.Is(err, http.ErrServerClosed) {
			n.log.Error("rpc server", "err", err)
		}
	}()
	n.log.Info("node started",
		"chain_id", n.comet.GenesisDoc().ChainID,
		"rpc", n.front.Addr,
		"p2p", n.comet.Config().P2P.ListenAddress,
		"node_id", n.comet.NodeInfo().ID(),
		"base_path", n.cfg.BasePath)
	<-ctx.Done()
	n.log.Info("stopping node")
	_ = n.front.Close()
	if n.metrics != nil {
		_ = n.metrics.Close()
	}
	if err := n.comet.Stop(); err != nil {
		n.log.Error("stop cometbft", "err", err)
	}
	n.comet.Wait()
	return n.store.Close()
}

// clientCreator connects CometBFT to the application in-process. Consensus,
// query and snapshot calls are serialized per connection, as CometBFT's
// NewConnSyncLocalClientCreator does; mempool calls (CheckTx) are not: the
// RPC's broadcast_tx_* handlers call CheckTx concurrently, so that the
// application decodes and verifies transactions on all cores, and
// app.App.CheckTx serializes only the execution against its check state.
// CometBFT still holds the mempool's lock (shared by CheckTx, exclusive for
// a block's update and recheck), so a recheck never overlaps a CheckTx.
type clientCreator struct{ app abci.Application }

var _ proxy.ClientCreator = clientCreator{}

func (c clientCreator) NewABCIConsensusClient() (abcicli.Client, error) {
	return abcicli.NewLocalClient(nil, c.app), nil
}

func (c clientCreator) NewABCIMempoolClient() (abcicli.Client, error) {
	return abcicli.NewUnsyncLocalClient(c.app), nil
}

func (c clientCreator) NewABCIQueryClient() (abcicli.Client, error) {
	return abcicli.NewLocalClient(nil, c.app), nil
}

func (c clientCreator) NewABCISnapshotClient() (abcicli.Client, error) {
	return abcicli.NewLocalClient(nil, c.app), nil
}

// slogAdapter sends CometBFT's logs to slog.
type slogAdapter struct{ l *slog.Logger }

func (s slogAdapter) Debug(msg string, kv ...any) { s.l.Debug(msg, kv...) }

// Info is demoted to debug: CometBFT reports every step of consensus at
// info, and the node's own log says what an operator needs per block.
func (s slogAdapter) Info(msg string, kv ...any)  { s.l.Debug(msg, kv...) }
func (s slogAdapter) Error(msg string, kv ...any) { s.l.Error(msg, kv...) }
func (s slogAdapter) With(kv ...any) cmtlog.Logger {
	return slogAdapter{s.l.With(kv...)}
}
