package service

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/jsonrpc"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/service/blockstore"
	"github.com/integritee-go/integritee/service/kvstore"
	"github.com/integritee-go/integritee/service/sealedstore"
)

// Version is the service's version, reported by system_version.
const Version = "0.1.0"

// DevFunding is what --dev gives the enclave's account from //Alice.
var DevFunding = types.TEER(10)

// Service is a running validateer.
type Service struct {
	cfg     Config
	log     *slog.Logger
	node    *client.Client
	host    *host
	enc     *enclave.Enclave
	metrics *Metrics
	counter rpc.Counters
	// untrustedConns counts the untrusted port's connections.
	untrustedConns jsonrpc.ConnStats

	registered         chan struct{}
	onboarded          atomic.Bool // joined and on-boarded: /is_initialized may answer 200
	syncMu             sync.Mutex  // one parentchain sync at a time
	lastOK, lastFailed float64
	lastProofFailures  float64
	lastProposed       float64
	lastImported       float64
	lastForks          float64
	lastRollbacks      float64
}

// Paths inside the data dir.
func (c Config) sealedDir() string { return filepath.Join(c.DataDir, "sealed") }
func (c Config) stateDir() string  { return filepath.Join(c.DataDir, "state") }
func (c Config) blocksDir() string { return filepath.Join(c.DataDir, "blocks") }

// New opens the data dir, connects to the node, reads the parentchain's
// genesis and starts the enclave.
func New(ctx context.Context, cfg Config, log *slog.Logger) (*Service, error) {
	if err := cfg.ValidateBasic(); err != nil {
		return nil, err
	}
	if cfg.CleanReset {
		for _, d := range []string{cfg.stateDir(), cfg.blocksDir()} {
			if err := os.RemoveAll(d); err != nil {
				return nil, fmt.Errorf("service: clean reset: %w", err)
			}
		}
		log.Info("clean reset: state and blocks removed; keys kept", "data_dir", cfg.DataDir)
	}
	node, err := client.Dial(cfg.NodeURL + ":" + strconv.Itoa(cfg.NodePort))
	if err != nil {
		return nil, err
	}
	gen, err := genesis(ctx, node, log)
	if err != nil {
		return nil, err
	}
	vals := make([]*cmttypes.Validator, len(gen.Validators))
	for i, v := range gen.Validators {
		vals[i] = cmttypes.NewValidator(v.PubKey, v.Power)
	}
	valSet, err := cmttypes.ValidatorSetFromExistingValidators(vals)
	if err != nil {
		return nil, fmt.Errorf("service: genesis validators: %w", err)
	}
	state, err := kvstore.Open(cfg.stateDir())
	if err != nil {
		return nil, err
	}
	blocks, err := blockstore.Open(cfg.blocksDir())
	if err != nil {
		state.Close()
		return nil, err
	}
	h := &host{DirStore: sealedstore.New(cfg.sealedDir()), log: log.With("part", "host"), state: state, blocks: blocks, node: node}
	var shard [32]byte
	if cfg.Shard != "" {
		s, err := parseShard(cfg.Shard)
		if err != nil {
			return nil, err
		}
		shard = s
	}
	enc, err := enclave.Open(ctx, cfg.TEEConfig(), h, enclave.Config{
		Shard: shard, ChainID: gen.ChainID, GenesisValidators: valSet,
		SlotDuration: cfg.SlotDuration, FinalizationInterval: cfg.FinalizationInterval,
		SnapshotInterval: 100, KeepSnapshots: 3, Pool: cfg.Pool,
		Version: Version, MuRaURL: cfg.MuRaURL(), UntrustedURL: cfg.UntrustedURL(),
	}, log.With("part", "enclave"))
	if err != nil {
		state.Close()
		blocks.Close()
		return nil, err
	}
	h.peers = newPeerSet(log.With("part", "peers"), node, enc.ShardID(), enc.Signer(), enc.MrEnclave(), enc.QuoteVerifier(), cfg.FetchMaxBytes)
	s := &Service{cfg: cfg, log: log, node: node, host: h, enc: enc, registered: make(chan struct{})}
	s.metrics = NewMetrics(func() float64 { return float64(s.counter.Requests.Load()) }, func() float64 { return float64(s.counter.Submitted.Load()) })
	s.metrics.Labels.WithLabelValues(Version, enc.MrEnclave().String()).Set(1)
	s.metrics.WatchConnections("trusted", &s.counter.Conns)
	s.metrics.WatchConnections("untrusted", &s.untrustedConns)
	return s, nil
}

// Enclave returns the service's enclave.
func (s *Service) Enclave() *enclave.Enclave { return s.enc }

// genesis waits for the node and returns its genesis document.
func genesis(ctx context.Context, node *client.Client, log *slog.Logger) (*cmttypes.GenesisDoc, error) {
	for attempt := 0; ; attempt++ {
		g, err := node.RPC().Genesis(ctx)
		if err == nil {
			return g.Genesis, nil
		}
		if attempt%10 == 0 {
			log.Warn("waiting for the parentchain node", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("service: parentchain node: %w", err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// Run serves until ctx ends.
func (s *Service) Run(ctx context.Context) error {
	defer s.host.state.Close()
	defer s.host.blocks.Close()
	defer s.host.peers.close()
	errc := make(chan error, 4)
	listen := func(port int) (net.Listener, error) {
		return net.Listen("tcp", net.JoinHostPort(s.cfg.bindHost(), strconv.Itoa(port)))
	}
	// The enclave serves the trusted RPC itself: TLS, with its own RA-TLS
	// certificate, ends inside it; the host only hands over the listener.
	tl, err := listen(s.cfg.TrustedPort)
	if err != nil {
		return fmt.Errorf("service: trusted port: %w", err)
	}
	go func() { errc <- ignoreClosed(s.enc.ServeTrustedRPC(tl, &s.counter, s.cfg.TrustedRPCLimits())) }()
	defer s.enc.CloseTrustedRPC()

	ul, err := listen(s.cfg.UntrustedPort)
	if err != nil {
		return fmt.Errorf("service: untrusted port: %w", err)
	}
	untrusted := newUntrustedServer(s.host.blocks, s.log.With("part", "untrusted"), s.cfg.UntrustedLimits(), s.cfg.FetchMaxBytes, &s.untrustedConns)
	go func() { errc <- ignoreClosed(untrusted.Serve(ul)) }()
	defer untrusted.Close()

	// Mutual remote attestation: the enclave does the TLS itself, on
	// connections the host accepts.
	mctx, stopMuRa := context.WithCancel(ctx)
	defer stopMuRa()
	rl, err := listen(s.cfg.MuRaPort)
	if err != nil {
		return fmt.Errorf("service: mu-ra port: %w", err)
	}
	go func() { errc <- s.enc.ServeMuRa(mctx, rl) }()

	mux := http.NewServeMux()
	mux.HandleFunc("GET /is_initialized", s.isInitialized) // other methods: 405
	hl, err := listen(s.cfg.HTTPPort)
	if err != nil {
		return fmt.Errorf("service: http port: %w", err)
	}
	httpSrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { errc <- ignoreClosed(httpSrv.Serve(hl)) }()
	defer httpSrv.Close()

	if s.cfg.EnableMetrics {
		ml, err := listen(s.cfg.MetricsPort)
		if err != nil {
			return fmt.Errorf("service: metrics port: %w", err)
		}
		mm := http.NewServeMux()
		mm.Handle("GET /metrics", promhttp.HandlerFor(s.metrics.Registry(), promhttp.HandlerOpts{}))
		if s.cfg.Pprof {
			mm.HandleFunc("/debug/pprof/", pprof.Index)
			mm.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
			mm.HandleFunc("/debug/pprof/profile", pprof.Profile)
			mm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
			mm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		}
		ms := &http.Server{Handler: mm, ReadHeaderTimeout: 10 * time.Second}
		go func() { errc <- ignoreClosed(ms.Serve(ml)) }()
		defer ms.Close()
	}
	s.log.Info("validateer serving", "trusted", s.cfg.TrustedURL(), "untrusted", s.cfg.UntrustedURL(), "mu-ra", rl.Addr().String(),
		"http", hl.Addr().String(), "mrenclave", s.enc.MrEnclave(), "shard", s.enc.ShardID(), "signer", s.enc.Signer())

	// The lifecycle gets its own context so that, on any stop, it ends
	// (and stops touching the stores) before the deferred closes run.
	pctx, stopPeers := context.WithCancel(ctx)
	defer stopPeers()
	go s.host.peers.refreshLoop(pctx)

	lctx, stopLifecycle := context.WithCancel(ctx)
	lifeDone := make(chan error, 1)
	go func() { lifeDone <- s.lifecycle(lctx) }()
	var runErr error
	select {
	case <-ctx.Done():
		s.log.Info("stopping validateer")
	case runErr = <-errc:
	case runErr = <-lifeDone:
		lifeDone <- runErr
	}
	stopLifecycle()
	if lerr := <-lifeDone; runErr == nil && ctx.Err() == nil {
		runErr = lerr
	}
	return runErr
}

func ignoreClosed(err error) error {
	if err == nil || errors.Is(err, http.ErrServerClosed) || errors.Is(err, net.ErrClosed) {
		return nil
	}
	return err
}

func (s *Service) isInitialized(w http.ResponseWriter, _ *http.Request) {
	select {
	case <-s.registered:
		if s.onboarded.Load() && s.enc.Initialized() {
			w.WriteHeader(http.StatusOK)
			fmt.Fprintln(w, "initialized")
			return
		}
	default:
	}
	w.WriteHeader(http.StatusNotFound)
	fmt.Fprintln(w, "not initialized")
}

// lifecycle: fund (dev), register, sync the parentchain, join the shard
// through a peer if the enclave has no state of a shard with history,
// on-board the blocks peers hold above its head, then run slots and keep
// syncing and catching up; renew the registration in time.
func (s *Service) lifecycle(ctx context.Context) error {
	if s.cfg.Dev {
		if err := s.devFund(ctx); err != nil {
			return err
		}
	}
	if err := s.register(ctx); err != nil {
		return err
	}
	close(s.registered)
	if err := s.syncParentchain(ctx, true); err != nil {
		return err
	}
	if err := s.joinShard(ctx); err != nil {
		return err
	}
	s.onboard(ctx)
	s.onboarded.Store(true)
	s.enc.SendDue(ctx)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { defer wg.Done(); s.renewLoop(ctx) }()
	go func() { defer wg.Done(); s.syncLoop(ctx) }()
	go func() { defer wg.Done(); s.catchUpLoop(ctx) }()
	err := s.slotLoop(ctx)
	if err != nil {
		// A fatal slot error ends the service; stop the loops with it.
		s.log.Error("stopping after a fatal error", "err", err)
	}
	cancel()
	wg.Wait()
	return err
}

// devFund gives the enclave's account parentchain funds from //Alice.
func (s *Service) devFund(ctx context.Context) error {
	me := s.enc.Signer()
	a, err := s.node.Account(ctx, me)
	if err != nil {
		return err
	}
	if a.Free.Cmp(types.TEER(1)) >= 0 {
		return nil
	}
	alice, _ := account.DevPair("//Alice")
	call, err := types.NewCall(s.node.Codec(), balances.ModuleName, "transfer", balances.TransferArgs{Dest: me, Amount: DevFunding})
	if err != nil {
		return err
	}
	if _, err := s.node.Submit(ctx, alice, call); err != nil {
		return fmt.Errorf("service: --dev funding of the enclave from //Alice: %w", err)
	}
	s.log.Info("enclave account funded from //Alice", "account", me, "amount", DevFunding)
	return nil
}

// register registers (or renews) the enclave on the parentchain and waits
// until the registry shows the fresh registration.
func (s *Service) register(ctx context.Context) error {
	before := time.Now().Add(-time.Minute).UnixMilli()
	var method string
	for attempt := 1; ; attempt++ {
		var err error
		method, err = s.enc.Register(ctx, s.cfg.TrustedURL(), s.cfg.SkipRA)
		if err == nil {
			break
		}
		if attempt == 5 {
			return fmt.Errorf("service: register enclave: %w", err)
		}
		s.log.Warn("registering the enclave failed; retrying", "attempt", attempt, "err", err)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Duration(attempt) * time.Second):
		}
	}
	for {
		var e teerex.Enclave
		err := s.node.Query(ctx, "/teerex/enclave/"+s.enc.Signer().Hex(), &e)
		if err == nil && e.MrEnclave == s.enc.MrEnclave() && e.Timestamp >= before {
			s.log.Info("enclave registered", "method", method, "url", e.URL, "mrenclave", e.MrEnclave)
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// renewLoop renews the registration every 12 hours, well within teerex's
// 24-hour renewal period.
func (s *Service) renewLoop(ctx context.Context) {
	t := time.NewTicker(12 * time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if err := s.register(ctx); err != nil {
				s.log.Error("renewing the registration failed", "err", err)
			}
		}
	}
}

// syncParentchain imports every parentchain block up to one below the tip
// (the light client needs the next header too).
func (s *Service) syncParentchain(ctx context.Context, report bool) error {
	// The sync loop and catch-up both sync; one at a time, or both would
	// fetch and hand the enclave the same height.
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	f := fetcher{c: s.node}
	latest, err := f.latest(ctx)
	if err != nil {
		return err
	}
	next := s.enc.NextParentchainHeight()
	if report && latest-next > 10 {
		s.log.Info("catching up with the parentchain", "from", next, "to", latest-1)
	}
	lastLog := time.Now()
	for h := next; h < latest; h++ {
		in, err := f.input(ctx, h)
		if err != nil {
			return err
		}
		began := time.Now()
		if err := s.enc.ImportParentchainBlock(ctx, in, time.Now()); err != nil && !errors.Is(err, enclave.ErrHalted) {
			return fmt.Errorf("service: parentchain block %d: %w", h, err)
		}
		s.slowCall("parentchain block import", began, "height", h)
		s.metrics.ParentchainBlock.WithLabelValues("integritee").Set(float64(h))
		s.metrics.SyncLag.Set(float64(latest - 1 - h))
		if time.Since(lastLog) > 5*time.Second {
			s.log.Info("parentchain sync", "at", h, "target", latest-1, "left", latest-1-h)
			lastLog = time.Now()
		}
	}
	if next < latest {
		began := time.Now()
		s.enc.SendDue(ctx)
		s.slowCall("parentchain calls due", began)
	}
	return nil
}

// slowCall logs an enclave call that took longer than a slot (it held the
// enclave's lock, so block production and imports waited for it).
func (s *Service) slowCall(what string, began time.Time, args ...any) {
	if took := time.Since(began); took > s.cfg.SlotDuration {
		s.log.Warn("slow enclave call: "+what, append(args, "took", took.Round(time.Millisecond))...)
	}
}

func (s *Service) syncLoop(ctx context.Context) {
	for i := 0; ; i++ {
		if err := s.syncParentchain(ctx, false); err != nil && ctx.Err() == nil {
			s.log.Warn("parentchain sync", "err", err)
		}
		if i%25 == 0 {
			if a, err := s.node.Account(ctx, s.enc.Signer()); err == nil {
				s.metrics.FreeBalance.WithLabelValues("integritee", "enclave").Set(a.Free.Float64())
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// slotLoop calls the enclave at the start of every slot. A block that
// could not be stored stops the service: a restart rebuilds the state from
// what is stored.
func (s *Service) slotLoop(ctx context.Context) error {
	slot := s.cfg.SlotDuration
	var lastHalt time.Time
	for {
		now := s.cfg.Now()
		next := now.Truncate(slot).Add(slot)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(next.Sub(now)):
		}
		start := time.Now()
		b, err := s.enc.OnSlot(ctx, start.Add(s.cfg.DevClockOffset))
		if errors.Is(err, enclave.ErrCommitFailed) {
			return err
		}
		if errors.Is(err, enclave.ErrHalted) {
			if time.Since(lastHalt) > time.Minute {
				s.log.Error("the enclave halts: its state is behind the parentchain's; it acts again once caught up from peers", "err", err)
				lastHalt = time.Now()
			}
			s.updateMetrics()
			continue
		}
		if err != nil {
			s.log.Error("slot", "err", err)
			continue
		}
		s.updateMetrics()
		if b != nil {
			s.metrics.SlotDuration.Observe(time.Since(start).Seconds())
			s.metrics.AuraRemaining.WithLabelValues("after_block").Observe(max(0, (slot - time.Since(start)).Seconds()))
			s.log.Info("sidechain block", "number", b.Header.Number, "ops", len(b.Data.Operations), "parentchain", b.Data.LayerOneHead.Number, "took", time.Since(start).Round(time.Millisecond))
		}
	}
}

func (s *Service) updateMetrics() {
	block, poolSize, stateSize, issuance := s.enc.Progress()
	st := s.enc.Stats()
	m := s.metrics
	m.BlockHeight.Set(float64(block))
	m.PoolSize.Set(float64(poolSize))
	m.StateSize.WithLabelValues(s.enc.ShardID().String()).Set(float64(stateSize))
	m.TotalIssuance.Set(issuance.Float64())
	m.PeerCount.Set(float64(s.host.PeerCount()))
	if n, ok := s.enc.Finalized(); ok {
		m.LastFinalized.WithLabelValues(s.enc.ShardID().String()).Set(float64(n))
	}
	m.AttemptedCalls.WithLabelValues("success").Add(float64(st.CallsOK) - s.lastOK)
	m.AttemptedCalls.WithLabelValues("failed").Add(float64(st.CallsFailed) - s.lastFailed)
	s.lastOK, s.lastFailed = float64(st.CallsOK), float64(st.CallsFailed)
	m.ProofFailures.Add(float64(st.ProofFailures) - s.lastProofFailures)
	s.lastProofFailures = float64(st.ProofFailures)
	m.ViewHeight.Set(float64(st.ViewHeight))
	m.BlocksProposed.Add(float64(st.BlocksProposed) - s.lastProposed)
	m.BlocksImported.Add(float64(st.BlocksImported) - s.lastImported)
	s.lastProposed, s.lastImported = float64(st.BlocksProposed), float64(st.BlocksImported)
	m.Forks.Add(float64(st.Forks) - s.lastForks)
	s.lastForks = float64(st.Forks)
	m.QueuedBlocks.Set(float64(st.Queued))
	m.Behind.Set(float64(st.Behind))
	m.Rollbacks.Add(float64(st.Rollbacks) - s.lastRollbacks)
	s.lastRollbacks = float64(st.Rollbacks)
	if st.LastExecution > 0 {
		m.ExecutionDuration.Observe(st.LastExecution.Seconds())
	}
}
