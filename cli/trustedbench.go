package cli

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math"
	"math/big"
	"net/http"
	"net/url"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/shielding"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/balance"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// trusted benchmark: the sidechain benchmark suite's load generator. It
// prepares every operation before the clock starts, then many websocket
// clients (each its own RA-TLS connection) submit with watch, in a closed
// loop, for a sustained duration; it reports executed transfers per second,
// latency percentiles, the validateers' CPU and memory (from their
// Prometheus endpoints) and this machine's ed25519 verification ceiling.

// Benchmark modes.
const (
	benchPlain     = "plain"     // signed operations in batches over the attested channel
	benchEncrypted = "encrypted" // HPKE ciphertexts, author_submitAndWatchExtrinsic, one per request
)

// Defaults of the benchmark's flags.
const (
	defaultBenchAccounts  = 10000
	defaultBenchTransfers = 40
	defaultBenchClients   = 64
	defaultBenchWindow    = 48
	defaultBenchBatch     = 64
	defaultBenchDuration  = 30 * time.Second
	defaultBenchMaxErrors = 10
)

// Bounds of the funding phase: the root's set-balance calls, sent in
// batches of fundBatch over at most fundConns connections with at most
// fundOutstanding of them outstanding in all, below the pool's bound of
// operations per signer (10,000).
const (
	fundBatch       = 256
	fundConns       = 4
	fundOutstanding = 8192
)

// Other constants of the benchmark.
const (
	// ceilingDuration is how long the ed25519 ceiling is measured.
	ceilingDuration = 2 * time.Second
	// sampleEvery is how often the validateers' RSS is sampled when they
	// do not export their peak.
	sampleEvery = 500 * time.Millisecond
	// printProblems is how many refusals (and operations that never
	// reached a block) are printed; all are counted.
	printProblems = 10
	// getterConcurrency is how many balance getters are in flight on the
	// one connection of the correctness check.
	getterConcurrency = 16
	// dialConcurrency bounds the clients' concurrent RA-TLS handshakes.
	dialConcurrency = 8
)

// Prometheus metric names the benchmark reads.
const (
	metricCPU     = "process_cpu_seconds_total"
	metricPeakRSS = "integritee_worker_process_peak_resident_memory_bytes"
	metricRSS     = "process_resident_memory_bytes"
)

// benchAccount names the i-th fresh account of a benchmark run.
func benchAccount(run int64, i int) string { return fmt.Sprintf("//BenchT%d//%d", run, i) }

// benchOptions are the benchmark's flags.
type benchOptions struct {
	accounts, transfers int
	prefund             int // further funded accounts in the state
	clients             int
	concurrency         int // deprecated alias of clients
	window, batch       int
	duration            time.Duration
	mode                string
	workers             []string
	metrics             []string
	maxErrors           int
	root                string
	seenFile            string // --seen-file: operations seen InSidechainBlock
	cpuProfile          string // --cpuprofile: the client's profile of the load
}

// check validates the flags before anything dials; changed tells which
// flags the command line set.
func (o *benchOptions) check(changed func(string) bool) error {
	if changed("concurrency") {
		if changed("clients") {
			return errors.New("--concurrency is a deprecated alias of --clients; give only --clients")
		}
		o.clients = o.concurrency
	}
	for _, f := range []struct {
		name string
		v    int
	}{{"--accounts", o.accounts}, {"--transfers", o.transfers}, {"--clients", o.clients}, {"--window", o.window}, {"--batch", o.batch}} {
		if f.v < 1 {
			return fmt.Errorf("%s must be positive (got %d)", f.name, f.v)
		}
	}
	if o.prefund < 0 {
		return fmt.Errorf("--prefund must not be negative (got %d)", o.prefund)
	}
	if o.batch > trustedrpc.MaxBatchOperations {
		return fmt.Errorf("--batch %d: at most %d operations per request (trustedrpc.MaxBatchOperations)", o.batch, trustedrpc.MaxBatchOperations)
	}
	if o.duration <= 0 {
		return fmt.Errorf("--duration must be positive (got %s)", o.duration)
	}
	if o.maxErrors < 0 {
		return fmt.Errorf("--max-errors must not be negative (got %d)", o.maxErrors)
	}
	if o.mode != benchPlain && o.mode != benchEncrypted {
		return fmt.Errorf("--mode %q: want %s or %s", o.mode, benchPlain, benchEncrypted)
	}
	for _, w := range o.workers {
		if _, err := parseWorkerURL(w); err != nil {
			return err
		}
	}
	for _, m := range o.metrics {
		u, err := url.Parse(m)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("--metrics %q: want a Prometheus endpoint, http://host:port/metrics", m)
		}
	}
	if _, err := parseAccountArg("--root", o.root); err != nil {
		return err
	}
	return nil
}

// parseWorkerURL parses a --workers entry, wss://host:port, into the form
// of the global -U/-P flags.
func parseWorkerURL(s string) (workerOptions, error) {
	u, err := url.Parse(s)
	if err != nil {
		return workerOptions{}, fmt.Errorf("--workers %q: %w", s, err)
	}
	if u.Scheme != "wss" || u.Hostname() == "" || u.Port() == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
		return workerOptions{}, fmt.Errorf("--workers %q: want wss://host:port (the trusted RPC is TLS only)", s)
	}
	port, err := strconv.Atoi(u.Port())
	if err != nil || port < 1 || port > 65535 {
		return workerOptions{}, fmt.Errorf("--workers %q: %q is not a TCP port", s, u.Port())
	}
	host := u.Hostname()
	if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return workerOptions{URL: "wss://" + host, Port: port}, nil
}

func trustedBenchmarkCmd(t *trustedEnv) *cobra.Command {
	o := benchOptions{
		accounts: defaultBenchAccounts, transfers: defaultBenchTransfers, clients: defaultBenchClients,
		window: defaultBenchWindow, batch: defaultBenchBatch, duration: defaultBenchDuration,
		mode: benchPlain, maxErrors: defaultBenchMaxErrors, root: "//Alice",
	}
	cmd := &cobra.Command{
		Use:   "benchmark [--accounts N --transfers M --clients K --duration D --mode plain|encrypted --metrics URL]",
		Short: "Measure direct trusted transfers per second under sustained load (the sidechain benchmark's load generator)",
		Long: `benchmark funds --accounts fresh accounts (//BenchT<run>//i) with set-balance, signed by
--root, sent in batches over several connections and each watched until it is in a
sidechain block. Then, before the clock starts, it signs (and with --mode encrypted
HPKE-encrypts) --transfers transfers per account, of 1 planck each around a ring of
the accounts, and measures this machine's ed25519 verifications per second on all
cores (its ceiling).

The run: --clients websocket clients, each its own RA-TLS connection to one of
--workers (round-robin; default the worker of -U/-P), submit with watch for
--duration, then wait for the outstanding operations. Each account belongs to one
client, which submits its transfers in nonce order; each client keeps at most
--window operations outstanding (submitted, not yet in a sidechain block, Invalid
or Dropped) and, in plain mode, sends --batch of them per request. A client that
runs out of prepared transfers stops the submission early, with a warning.

Modes: plain (default) sends the signed operations over the attested channel, in
batches (author_submitAndWatchTrustedOperations); encrypted sends HPKE ciphertexts with
author_submitAndWatchExtrinsic, one per request, as before.

It prints progress every second, then the executed transfers per second (those
in a sidechain block, over the time from the first submission to the last
InSidechainBlock), the latency from submission to InSidechainBlock (p50, p95,
p99, max), each validateer's CPU seconds per 1,000 transfers and peak RSS (from
--metrics), the ceiling and the ratio of the two. Afterwards it reads every
benchmark account's balance and nonce over one connection: the balances must add
up to what the funding gave them (it prints "balances add up"), and the nonces
must count the transfers reported InSidechainBlock. The last line is
machine-readable:

  executed_per_s=N p50_ms=N p99_ms=N ceiling_per_s=N ratio=R

Every refused operation (an RPC error, Invalid or Dropped) is counted and the first
few printed; submission stops once more than --max-errors were refused. The
command fails if any transfer was refused or never reached a block (within
--timeout of its submission), or if that check fails; the report is printed
first. It always uses direct invocation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(cmd.Flags().Changed); err != nil {
				return err
			}
			return t.benchmark(ctxOf(cmd), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.accounts, "accounts", o.accounts, "fresh accounts, created and funded for the run")
	f.IntVar(&o.prefund, "prefund", 0, "further accounts (public keys only) the root funds with 1 planck each before the run, so that the state holds that many more funded accounts")
	f.IntVar(&o.transfers, "transfers", o.transfers, "transfers prepared per account (the run stops early, with a warning, if a client uses all of its accounts')")
	f.IntVar(&o.clients, "clients", o.clients, "websocket clients, each its own RA-TLS connection")
	f.IntVar(&o.concurrency, "concurrency", 0, "deprecated alias of --clients")
	_ = f.MarkHidden("concurrency")
	f.IntVar(&o.window, "window", o.window, "operations each client keeps outstanding at most (submitted, not yet in a block, Invalid or Dropped)")
	f.IntVar(&o.batch, "batch", o.batch, fmt.Sprintf("operations per request in plain mode (1 to %d; 1: author_submitAndWatchTrustedOperation); encrypted mode sends one per request", trustedrpc.MaxBatchOperations))
	f.DurationVar(&o.duration, "duration", o.duration, "how long the clients submit; then the run waits for the outstanding operations")
	f.StringVar(&o.mode, "mode", o.mode, "plain: signed operations over the attested channel, in batches; encrypted: HPKE ciphertexts, one per request")
	f.StringSliceVar(&o.workers, "workers", nil, "workers' trusted RPC, wss://host:port; repeat or separate with commas; clients are spread round-robin (default: -U/-P)")
	f.StringSliceVar(&o.metrics, "metrics", nil, "validateers' Prometheus endpoints, e.g. http://127.0.0.1:8787/metrics; repeat or separate with commas")
	f.IntVar(&o.maxErrors, "max-errors", o.maxErrors, "stop submitting once more than this many operations were refused (the run fails on any refusal regardless)")
	f.StringVar(&o.root, "root", o.root, "the sidechain's root account, which funds the accounts")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write the client's CPU profile of the load (from the first submission to the last operation resolved) to this file")
	f.StringVar(&o.seenFile, "seen-file", "", "write \"<operation hash> <block hash>\" for every operation seen InSidechainBlock (funding included), for check-invariants --seen")
	return cmd
}

// at returns the trusted environment with worker w in place of -U/-P.
func (t *trustedEnv) at(w workerOptions) *trustedEnv {
	we := *t.workerEnv
	we.worker = w
	tt := *t
	tt.workerEnv = &we
	return &tt
}

// benchRun is one benchmark invocation's state.
type benchRun struct {
	t         *trustedEnv
	o         benchOptions
	out       io.Writer
	s         *session // the first worker; getters and the root's nonce
	clients   []*rpcclient.Client
	workers   []workerOptions
	run       int64
	root      *account.Pair
	pairs     []*account.Pair
	fund      balance.Balance
	issuance0 *big.Int // total issuance before the funding, if read
	seen      *seenLog // --seen-file; nil: none
}

func (t *trustedEnv) benchmark(ctx context.Context, o benchOptions) (err error) {
	seen, err := createSeenLog(o.seenFile)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, seen.Close()) }()
	b := &benchRun{t: t, o: o, out: t.out, run: time.Now().UnixNano(), seen: seen}
	defer b.close()
	if err := b.connect(ctx); err != nil {
		return err
	}
	// The ceiling first, before the run's own work (funding, preparing)
	// leaves the validateer busy or this process with garbage to collect.
	fmt.Fprintf(b.out, "measuring ed25519 verifications per second on %d cores for %s\n", runtime.NumCPU(), ceilingDuration)
	runtime.GC()
	ceiling := verifyCeiling(runtime.NumCPU(), ceilingDuration)
	fmt.Fprintf(b.out, "  ceiling: %.0f verifications/s\n", ceiling)
	if err := b.deriveAccounts(ctx); err != nil {
		return err
	}
	if err := b.prefundAccounts(ctx); err != nil {
		return err
	}
	if err := b.fundAccounts(ctx); err != nil {
		return err
	}
	ops, err := b.prepare(ctx)
	if err != nil {
		return err
	}
	mon := newMetricsMonitor(o.metrics)
	mon.before(ctx, b.out)
	stopProfile, err := startCPUProfile(o.cpuProfile)
	if err != nil {
		return err
	}
	runtime.GC() // the preparation's garbage, outside the client's CPU figure
	cpu0, cpuOK := processCPU()
	res := b.load(ctx, ops)
	cpu1, _ := processCPU()
	if err := stopProfile(); err != nil {
		return err
	}
	mon.after(ctx, b.out)
	clientCPU := time.Duration(-1)
	if cpuOK {
		clientCPU = cpu1 - cpu0
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("benchmark interrupted: %w", err)
	}
	check := b.checkState(ctx)
	return b.report(res, mon, ceiling, clientCPU, check)
}

func (b *benchRun) close() {
	for _, c := range b.clients {
		c.Close() //nolint:errcheck
	}
	if b.s != nil {
		b.s.Close()
	}
}

// connect opens the session (first worker) and the clients' connections.
func (b *benchRun) connect(ctx context.Context) error {
	t := b.t
	b.workers = []workerOptions{t.worker}
	if len(b.o.workers) > 0 {
		b.workers = b.workers[:0]
		for _, w := range b.o.workers {
			wo, err := parseWorkerURL(w)
			if err != nil {
				return err
			}
			wo.Insecure = t.worker.Insecure
			b.workers = append(b.workers, wo)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	if !t.worker.Insecure {
		// Read the chain facts once, for all connections.
		if _, err := t.workerChain(cctx); err != nil {
			return err
		}
	}
	s, err := t.at(b.workers[0]).open(cctx)
	if err != nil {
		return err
	}
	b.s = s
	if err := requireShard(cctx, s.c, s.shard); err != nil {
		return err
	}
	if b.root, err = s.pair("--root", b.o.root); err != nil {
		return err
	}
	n := b.o.clients
	if n > b.o.accounts {
		fmt.Fprintf(b.out, "--clients %d > --accounts %d: using %d clients (each account belongs to one client)\n", n, b.o.accounts, b.o.accounts)
		n = b.o.accounts
	}
	fmt.Fprintf(b.out, "connecting %d clients to %d worker(s) (shard %s)\n", n, len(b.workers), s.shard)
	b.clients = make([]*rpcclient.Client, n)
	errs := make([]error, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range min(n, dialConcurrency) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= n || cctx.Err() != nil {
					return
				}
				w := b.workers[i%len(b.workers)]
				c, err := t.at(w).dialWorker(cctx, &s.mrenclave)
				if err == nil {
					if err = requireShard(cctx, c, s.shard); err != nil {
						c.Close() //nolint:errcheck
					}
				}
				if err != nil {
					errs[i] = fmt.Errorf("client %d: %w", i, err)
					continue
				}
				b.clients[i] = c
			}
		}()
	}
	wg.Wait()
	b.clients = slices.DeleteFunc(b.clients, func(c *rpcclient.Client) bool { return c == nil })
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return cctx.Err()
}

// deriveAccounts derives the run's fresh accounts on all cores (a dev seed
// costs a PBKDF2).
func (b *benchRun) deriveAccounts(ctx context.Context) error {
	start := time.Now()
	b.pairs = make([]*account.Pair, b.o.accounts)
	err := parallel(ctx, b.o.accounts, func(i int) error {
		p, err := account.DevPair(benchAccount(b.run, i))
		b.pairs[i] = p
		return err
	})
	if err != nil {
		return err
	}
	fmt.Fprintf(b.out, "derived %d accounts (//BenchT%d//i) in %s\n", b.o.accounts, b.run, since(start))
	return nil
}

// parallel calls f(0..n-1) on runtime.NumCPU() goroutines and returns the
// first error.
func parallel(ctx context.Context, n int, f func(i int) error) error {
	return parallelOn(ctx, runtime.NumCPU(), n, f)
}

// parallelOn calls f(0..n-1) on k goroutines and returns the first error;
// after an error or the end of ctx it starts no further calls.
func parallelOn(ctx context.Context, k, n int, f func(i int) error) error {
	var next atomic.Int64
	var first atomic.Pointer[error]
	var wg sync.WaitGroup
	for range min(n, k) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for first.Load() == nil && ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(i); err != nil {
					first.CompareAndSwap(nil, &err)
				}
			}
		}()
	}
	wg.Wait()
	if e := first.Load(); e != nil {
		return *e
	}
	return ctx.Err()
}

// encodeCall signs call as p and encodes it as a plain operation.
func (b *benchRun) encodeCall(p *account.Pair, call trusted.Call, nonce uint64) ([]byte, error) {
	op, err := (&trusted.Operation{Call: trusted.SignCall(p, call, nonce, b.s.mrenclave, b.s.shard)}).Encode()
	if err != nil {
		return nil, fmt.Errorf("encode the call: %w", err)
	}
	return op, nil
}

// fundAccounts sets every account's balance to --transfers planck with the
// root's set-balance calls, prepared first, then sent in batches over
// several connections and watched until each is in a sidechain block.
func (b *benchRun) fundAccounts(ctx context.Context) error {
	b.fund = balance.NewBalance(uint64(b.o.transfers))
	fctx, cancel := context.WithTimeout(ctx, b.t.timeout)
	issuance, err := b.totalIssuance(fctx)
	cancel()
	if err != nil {
		fmt.Fprintf(b.out, "warning: total issuance not read (%v); only the accounts' balances will be checked\n", err)
	} else {
		b.issuance0 = issuance
	}
	ids := make([]account.ID, len(b.pairs))
	for i, p := range b.pairs {
		ids[i] = p.ID()
	}
	return b.setBalances(ctx, ids, b.fund, "accounts")
}

// prefundAccounts gives --prefund further accounts 1 planck each, so that
// the state holds that many funded accounts besides the benchmark's. They
// are public keys derived from the run, with no private key: nobody spends
// from them.
func (b *benchRun) prefundAccounts(ctx context.Context) error {
	if b.o.prefund == 0 {
		return nil
	}
	ids := make([]account.ID, b.o.prefund)
	for i := range ids {
		ids[i] = sha256.Sum256(fmt.Appendf(nil, "integritee benchmark %d prefund %d", b.run, i))
	}
	return b.setBalances(ctx, ids, balance.NewBalance(1), "prefunded accounts")
}

// setBalances sets every id's balance to amount with the root's set-balance
// calls, prepared first, then sent in batches over several connections and
// watched until each is in a sidechain block.
func (b *benchRun) setBalances(ctx context.Context, ids []account.ID, amount balance.Balance, what string) error {
	fctx, cancel := context.WithTimeout(ctx, b.t.timeout)
	rootNonce, err := b.s.nonce(fctx, b.root)
	cancel()
	if err != nil {
		return err
	}
	ops := make([][]byte, len(ids))
	err = parallel(ctx, len(ids), func(i int) error {
		var err error
		ops[i], err = b.encodeCall(b.root, trusted.Call{SetBalance: &trusted.SetBalance{Who: ids[i], Free: amount}}, rootNonce+uint64(i))
		return err
	})
	if err != nil {
		return err
	}
	var conns []*rpcclient.Client
	for _, i := range fundingClients(len(b.clients), len(b.workers)) {
		conns = append(conns, b.clients[i])
	}
	fmt.Fprintf(b.out, "funding %d %s with %s planck each: set-balance as %s, batches of %d over %d connections\n",
		len(ids), what, amount, b.root.ID(), fundBatch, len(conns))
	q := &opQueue{ops: ops, name: func(i int) string { return fmt.Sprintf("set-balance of %s %d", what, i) }}
	l := &loader{
		shard: b.s.shard, timeout: b.t.timeout, out: b.out, seen: b.seen,
		window: fundOutstanding / len(conns), batch: fundBatch, stop: make(chan struct{}),
		inOrder: new(sync.Mutex),
	}
	l.tally.printTo = b.out
	l.tally.onRefused = func(int64) { l.halt("a set-balance call was refused", "") }
	start := time.Now()
	var wg sync.WaitGroup
	for _, c := range conns {
		wg.Add(1)
		go func() { defer wg.Done(); l.pump(ctx, c, q, nil) }()
	}
	waitWithProgress(&wg, b.out, func() string {
		return fmt.Sprintf("  funded %d/%d", l.tally.inBlock.Load(), len(ids))
	})
	if err := ctx.Err(); err != nil {
		return err
	}
	if bad := l.tally.refused() + l.tally.lost.Load(); bad > 0 {
		return fmt.Errorf("funding: %d of %d set-balance calls refused or not in a block within --timeout %s (first: %s)",
			bad, len(ids), b.t.timeout, l.tally.firstProblem())
	}
	el := time.Since(start)
	fmt.Fprintf(b.out, "funded %d %s in %s (%.0f/s)\n", len(ids), what, since(start), float64(len(ids))/el.Seconds())
	return nil
}

// fundingClients returns the clients (of n, client i on worker i mod
// workers) the funding sends through: at most fundConns, all of the first
// worker. Through several workers a later batch of the root's could reach
// one before the earlier batch, forwarded by another, did, and wait there
// as Future operations, of which the pool holds few per signer.
func fundingClients(n, workers int) []int {
	var out []int
	for i := 0; i < n && len(out) < fundConns; i += max(workers, 1) {
		out = append(out, i)
	}
	return out
}

// prepare signs (and in encrypted mode encrypts) every transfer, in each
// client's submission order: client c owns accounts c, c+K, c+2K, ... and
// sends their n-th transfers before any (n+1)-th.
func (b *benchRun) prepare(ctx context.Context) ([]*opQueue, error) {
	var key []byte
	if b.o.mode == benchEncrypted {
		kctx, cancel := context.WithTimeout(ctx, b.t.timeout)
		k, err := b.s.c.ShieldingKey(kctx)
		cancel()
		if err != nil {
			return nil, fmt.Errorf("author_getShieldingKey: %w", err)
		}
		key = k
	}
	k, m := len(b.clients), b.o.transfers
	queues := make([]*opQueue, k)
	for c := range queues {
		owned := (len(b.pairs) - c + k - 1) / k
		queues[c] = &opQueue{ops: make([][]byte, owned*m), name: func(i int) string {
			a, n := c+k*(i%owned), i/owned
			return fmt.Sprintf("transfer of account %d with nonce %d (client %d)", a, n, c)
		}}
	}
	what := "signed"
	if key != nil {
		what = "signed and HPKE-encrypted"
	}
	fmt.Fprintf(b.out, "preparing %d transfers (%s, %s mode)\n", len(b.pairs)*m, what, b.o.mode)
	start := time.Now()
	var done atomic.Int64
	var wg sync.WaitGroup
	var err error
	wg.Add(1)
	go func() {
		defer wg.Done()
		err = parallel(ctx, len(b.pairs), func(i int) error {
			p := b.pairs[i]
			call := trusted.Call{Transfer: &trusted.Transfer{From: p.ID(), To: b.pairs[(i+1)%len(b.pairs)].ID(), Amount: balance.NewBalance(1)}}
			q, j := queues[i%k], i/k
			owned := len(q.ops) / m
			for n := range m {
				op, err := b.encodeCall(p, call, uint64(n))
				if err != nil {
					return err
				}
				if key != nil {
					if op, err = shielding.Encrypt(key, op); err != nil {
						return fmt.Errorf("encrypt the call: %w", err)
					}
				}
				q.ops[n*owned+j] = op
			}
			done.Add(int64(m))
			return nil
		})
	}()
	waitWithProgress(&wg, b.out, func() string { return fmt.Sprintf("  prepared %d/%d", done.Load(), len(b.pairs)*m) })
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(b.out, "prepared %d transfers in %s\n", len(b.pairs)*m, since(start))
	return queues, nil
}

// opQueue hands out prepared operations in submission order.
type opQueue struct {
	mu   sync.Mutex
	ops  [][]byte
	next int
	name func(i int) string // names operation i in messages
}

// take returns up to n next operations and the index of the first; none
// once all are taken.
func (q *opQueue) take(n int) (int, [][]byte) {
	q.mu.Lock()
	defer q.mu.Unlock()
	first := q.next
	q.next = min(len(q.ops), q.next+n)
	return first, q.ops[first:q.next]
}

func (q *opQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.next == len(q.ops)
}

// tally counts a phase's operations.
type tally struct {
	submitted     atomic.Int64 // accepted by the worker, watched
	inBlock       atomic.Int64
	rpcRefused    atomic.Int64 // refused by the RPC: never outstanding
	statusRefused atomic.Int64 // accepted, then Invalid or Dropped
	lost          atomic.Int64 // accepted, but no block within --timeout, or the watch ended

	mu        sync.Mutex
	first     time.Time // the first submission
	last      time.Time // the last InSidechainBlock
	latencies []time.Duration
	problems  []string // the first printProblems
	printTo   io.Writer
	// onRefused is told the number of refusals after each.
	onRefused func(n int64)
}

// Kinds of problems.
const (
	rpcRefusal = iota
	statusRefusal
	neverInBlock
)

func (t *tally) submittedAt(at time.Time) {
	t.mu.Lock()
	if t.first.IsZero() || at.Before(t.first) {
		t.first = at
	}
	t.mu.Unlock()
}

func (t *tally) executed(at time.Time, latency time.Duration) {
	t.mu.Lock()
	if at.After(t.last) {
		t.last = at
	}
	t.latencies = append(t.latencies, latency)
	t.mu.Unlock()
	t.inBlock.Add(1)
}

// refused is the number of refused operations.
func (t *tally) refused() int64 { return t.rpcRefused.Load() + t.statusRefused.Load() }

// outstanding is the number of accepted operations not yet resolved.
func (t *tally) outstanding() int64 {
	resolved := t.inBlock.Load() + t.statusRefused.Load() + t.lost.Load()
	return max(0, t.submitted.Load()-resolved)
}

// problem counts a refused or lost operation and keeps (and prints, with
// printTo) the first few.
func (t *tally) problem(kind int, what string, err error) {
	label := "refused"
	switch kind {
	case rpcRefusal:
		t.rpcRefused.Add(1)
	case statusRefusal:
		t.statusRefused.Add(1)
	default:
		t.lost.Add(1)
		label = "never in a block"
	}
	if kind != neverInBlock && t.onRefused != nil {
		t.onRefused(t.refused())
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.problems) < printProblems {
		msg := fmt.Sprintf("%s: %s: %v", label, what, err)
		t.problems = append(t.problems, msg)
		if t.printTo != nil {
			fmt.Fprintf(t.printTo, "  %s\n", msg)
			if len(t.problems) == printProblems {
				fmt.Fprintf(t.printTo, "  (further problems are counted, not printed)\n")
			}
		}
	}
}

func (t *tally) firstProblem() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.problems) == 0 {
		return "none"
	}
	return t.problems[0]
}

// loader drives clients in a closed loop.
type loader struct {
	shard     sidechain.ShardID
	encrypted bool
	timeout   time.Duration // per operation, from its submission
	out       io.Writer
	window    int
	batch     int
	seen      *seenLog // records the operations seen InSidechainBlock; nil: none
	// inOrder, if set, makes every pump send its request only after the
	// previous request of any pump was answered, so that one signer's
	// operations (the root's set-balance calls) reach the pool in nonce
	// order and never wait there as Future operations, of which the pool
	// holds only a few per signer (pool.DefaultMaxFuturePerAccount).
	inOrder *sync.Mutex

	tally tally

	stop      chan struct{} // closed: submit no more
	stopOnce  sync.Once
	reason    string    // why the submission stopped
	warning   string    // printed before the stop, if not empty
	stoppedAt time.Time // when
}

// halt stops the submission for reason (with a warning to print first, if
// not empty); only the first call does.
func (l *loader) halt(reason, warning string) {
	l.stopOnce.Do(func() {
		l.reason, l.warning, l.stoppedAt = reason, warning, time.Now()
		close(l.stop)
	})
}

func (l *loader) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// pump submits q's operations over c, keeping at most l.window outstanding
// and sending up to l.batch per request, until q is empty (then it calls
// onEmpty, if set) or l stops; then it waits for its outstanding
// operations.
func (l *loader) pump(ctx context.Context, c *rpcclient.Client, q *opQueue, onEmpty func()) {
	done := make(chan struct{}, l.window)
	outstanding := 0
	full := min(l.batch, l.window)
	empty := false
	for {
		stopped := empty || l.stopped() || ctx.Err() != nil
		if !stopped && q.empty() {
			empty, stopped = true, true
			if onEmpty != nil {
				onEmpty()
			}
		}
		if stopped && outstanding == 0 {
			return
		}
		if !stopped && l.window-outstanding >= full {
			outstanding += l.sendNext(ctx, c, q, l.window-outstanding, done)
			continue
		}
		stop := l.stop
		if stopped {
			stop = nil
		}
		select {
		case <-done:
			outstanding--
		case <-stop:
		}
	}
}

// sendNext takes up to min(l.batch, room) of q's next operations and sends
// them; with l.inOrder, taking and sending is one step for all pumps.
func (l *loader) sendNext(ctx context.Context, c *rpcclient.Client, q *opQueue, room int, done chan<- struct{}) int {
	if l.inOrder != nil {
		l.inOrder.Lock()
		defer l.inOrder.Unlock()
	}
	first, ops := q.take(min(l.batch, room))
	if len(ops) == 0 {
		return 0
	}
	return l.send(ctx, c, q, first, ops, done)
}

// send submits ops (q's from first on) in one request (plain mode) or one
// each (encrypted mode, or --batch 1) and watches those the worker
// accepted; it returns how many it accepted.
func (l *loader) send(ctx context.Context, c *rpcclient.Client, q *opQueue, first int, ops [][]byte, done chan<- struct{}) int {
	sent := time.Now()
	l.tally.submittedAt(sent)
	var subs []rpcclient.Submitted
	switch {
	case l.encrypted:
		for _, op := range ops {
			h, w, err := c.SubmitAndWatch(ctx, l.shard, op)
			subs = append(subs, rpcclient.Submitted{Hash: h, Watch: w, Err: err})
		}
	case l.batch == 1:
		for _, op := range ops {
			h, w, err := c.SubmitAndWatchOperation(ctx, l.shard, op)
			subs = append(subs, rpcclient.Submitted{Hash: h, Watch: w, Err: err})
		}
	default:
		var err error
		if subs, err = c.SubmitAndWatchOperations(ctx, l.shard, ops); err != nil {
			subs = nil
			for range ops {
				subs = append(subs, rpcclient.Submitted{Err: fmt.Errorf("author_submitAndWatchTrustedOperations: %w", err)})
			}
		}
	}
	accepted := 0
	for i := range ops {
		what := q.name(first + i)
		var s rpcclient.Submitted
		if i < len(subs) {
			s = subs[i]
		} else {
			s.Err = fmt.Errorf("the worker answered %d results for %d operations", len(subs), len(ops))
		}
		if s.Err != nil {
			if ctx.Err() != nil {
				l.tally.problem(neverInBlock, what, ctx.Err())
			} else {
				l.tally.problem(rpcRefusal, what, s.Err)
			}
			continue
		}
		accepted++
		l.tally.submitted.Add(1)
		go l.watch(ctx, s.Hash, s.Watch, sent, what, done)
	}
	return accepted
}

// watch follows an operation's statuses until InSidechainBlock (or
// Finalized, if a lagging reader lost the former), Invalid or Dropped, or
// until --timeout after its submission, and then frees its window slot.
func (l *loader) watch(ctx context.Context, hash string, ch <-chan trustedrpc.Status, sent time.Time, what string, done chan<- struct{}) {
	defer func() { done <- struct{}{} }()
	timer := time.NewTimer(time.Until(sent.Add(l.timeout)))
	defer timer.Stop()
	last := "none"
	for {
		select {
		case st, ok := <-ch:
			if !ok {
				l.tally.problem(neverInBlock, what, fmt.Errorf("the watch ended after status %s without a block (connection lost?)", last))
				return
			}
			last = st.Kind
			switch st.Kind {
			case trustedrpc.InSidechainBlock, trustedrpc.Finalized:
				now := time.Now()
				l.seen.record(hash, st.BlockHash)
				l.tally.executed(now, now.Sub(sent))
				return
			case trustedrpc.Invalid:
				l.tally.problem(statusRefusal, what, fmt.Errorf("%w: %s", errInvalid, st.Reason))
				return
			case trustedrpc.Dropped:
				l.tally.problem(statusRefusal, what, errDropped)
				return
			}
		case <-timer.C:
			l.tally.problem(neverInBlock, what, fmt.Errorf("not in a sidechain block within --timeout %s of its submission (last status: %s)", l.timeout, last))
			return
		case <-ctx.Done():
			l.tally.problem(neverInBlock, what, ctx.Err())
			return
		}
	}
}

// load runs the clients over the prepared queues for --duration (or until a
// client runs out, more than --max-errors are refused, or ctx ends) and
// waits for the outstanding operations.
func (b *benchRun) load(ctx context.Context, queues []*opQueue) *loader {
	o := b.o
	l := &loader{
		shard: b.s.shard, encrypted: o.mode == benchEncrypted, timeout: b.t.timeout, out: b.out, seen: b.seen,
		window: o.window, batch: o.batch, stop: make(chan struct{}),
	}
	batch := fmt.Sprintf("batches of %d (author_submitAndWatchTrustedOperations)", o.batch)
	switch {
	case l.encrypted:
		l.batch = 1
		batch = "one ciphertext per request (author_submitAndWatchExtrinsic)"
	case o.batch == 1:
		batch = "one operation per request (author_submitAndWatchTrustedOperation)"
	}
	l.tally.printTo = b.out
	l.tally.onRefused = func(n int64) {
		if n > int64(o.maxErrors) {
			l.halt(fmt.Sprintf("more than --max-errors %d operations were refused", o.maxErrors), "")
		}
	}
	fmt.Fprintf(b.out, "running for %s: %d clients over %d worker(s), %s mode, window %d, %s\n",
		o.duration, len(b.clients), len(b.workers), o.mode, o.window, batch)
	start := time.Now()
	timer := time.AfterFunc(o.duration, func() { l.halt(fmt.Sprintf("--duration %s elapsed", o.duration), "") })
	defer timer.Stop()
	stopInterrupt := context.AfterFunc(ctx, func() { l.halt("interrupted", "") })
	defer stopInterrupt()

	var wg sync.WaitGroup
	for i, c := range b.clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.pump(ctx, c, queues[i], func() {
				l.halt(fmt.Sprintf("client %d ran out of prepared transfers", i),
					fmt.Sprintf("WARNING: client %d used all %d transfers prepared for its accounts after %s, before --duration %s ended: "+
						"the submission stops early; the figures cover a shorter run (prepare more with --transfers or --accounts)",
						i, len(queues[i].ops), since(start), o.duration))
			})
		}()
	}
	announced := make(chan struct{})
	go func() {
		defer close(announced)
		<-l.stop
		if l.warning != "" {
			fmt.Fprintln(b.out, l.warning)
		}
		fmt.Fprintf(b.out, "submission stopped after %s (%s); waiting for %d outstanding operations (at most --timeout %s each)\n",
			l.stoppedAt.Sub(start).Round(time.Millisecond), l.reason, l.tally.outstanding(), b.t.timeout)
	}()
	waitWithProgress(&wg, b.out, func() string {
		return fmt.Sprintf("  %5.1fs: submitted %d, in block %d, outstanding %d, refused %d",
			time.Since(start).Seconds(), l.tally.submitted.Load(), l.tally.inBlock.Load(), l.tally.outstanding(), l.tally.refused())
	})
	l.halt("every client stopped", "") // ends the announcer if nothing stopped the run
	<-announced
	return l
}

// metricsMonitor reads the validateers' Prometheus endpoints before and
// after the run, and samples their RSS meanwhile.
type metricsMonitor struct {
	urls   []string
	client *http.Client

	cpu0, cpu1 []float64 // process_cpu_seconds_total; NaN: not read
	peak       []float64 // the peak RSS gauge after the run; NaN: absent
	mu         sync.Mutex
	sampled    []float64 // the largest process_resident_memory_bytes seen; NaN: none
	warned     []bool

	stopSampling context.CancelFunc
	sampling     sync.WaitGroup
}

func newMetricsMonitor(urls []string) *metricsMonitor {
	nan := func() []float64 {
		v := make([]float64, len(urls))
		for i := range v {
			v[i] = math.NaN()
		}
		return v
	}
	return &metricsMonitor{urls: urls, client: &http.Client{Timeout: 5 * time.Second},
		cpu0: nan(), cpu1: nan(), peak: nan(), sampled: nan(), warned: make([]bool, len(urls)), stopSampling: func() {}}
}

// scrape reads one endpoint's metric families (text format).
func (m *metricsMonitor) scrape(ctx context.Context, u string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := m.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("HTTP %s", resp.Status)
	}
	var p expfmt.TextParser
	return p.TextToMetricFamilies(resp.Body)
}

// metricValue returns the value of a family's series (the largest, if it
// has several), or NaN if the family is absent or empty.
func metricValue(families map[string]*dto.MetricFamily, name string) float64 {
	v := math.NaN()
	mf := families[name]
	if mf == nil {
		return v
	}
	for _, m := range mf.GetMetric() {
		var x float64
		switch {
		case m.Counter != nil:
			x = m.Counter.GetValue()
		case m.Gauge != nil:
			x = m.Gauge.GetValue()
		case m.Untyped != nil:
			x = m.Untyped.GetValue()
		default:
			continue
		}
		if math.IsNaN(v) || x > v {
			v = x
		}
	}
	return v
}

// read scrapes endpoint i, records its RSS sample and returns the families
// (nil on failure, which it prints once per endpoint to out).
func (m *metricsMonitor) read(ctx context.Context, i int, out io.Writer) map[string]*dto.MetricFamily {
	fams, err := m.scrape(ctx, m.urls[i])
	m.mu.Lock()
	defer m.mu.Unlock()
	if err != nil {
		if !m.warned[i] && out != nil && ctx.Err() == nil {
			m.warned[i] = true
			fmt.Fprintf(out, "warning: --metrics %s: %v\n", m.urls[i], err)
		}
		return nil
	}
	if rss := metricValue(fams, metricRSS); !math.IsNaN(rss) && (math.IsNaN(m.sampled[i]) || rss > m.sampled[i]) {
		m.sampled[i] = rss
	}
	return fams
}

// before reads the CPU counters and starts sampling the RSS.
func (m *metricsMonitor) before(ctx context.Context, out io.Writer) {
	if len(m.urls) == 0 {
		return
	}
	for i := range m.urls {
		if fams := m.read(ctx, i, out); fams != nil {
			m.cpu0[i] = metricValue(fams, metricCPU)
		}
	}
	sctx, cancel := context.WithCancel(ctx)
	m.stopSampling = cancel
	m.sampling.Add(1)
	go func() {
		defer m.sampling.Done()
		tick := time.NewTicker(sampleEvery)
		defer tick.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-tick.C:
				for i := range m.urls {
					m.read(sctx, i, nil)
				}
			}
		}
	}()
}

// after stops the sampling and reads the CPU counters and peak RSS.
func (m *metricsMonitor) after(ctx context.Context, out io.Writer) {
	m.stopSampling()
	m.sampling.Wait()
	for i := range m.urls {
		if fams := m.read(ctx, i, out); fams != nil {
			m.cpu1[i] = metricValue(fams, metricCPU)
			m.peak[i] = metricValue(fams, metricPeakRSS)
		}
	}
}

// bigOf parses a decimal amount a getter returned.
func bigOf(what, v string) (*big.Int, error) {
	b, err := balance.ParseBalance(strings.TrimSpace(v))
	if err != nil {
		return nil, fmt.Errorf("%s: the worker answered %q, not an amount", what, v)
	}
	return b.Big(), nil
}

// totalIssuance reads the shard's total issuance (signed by the root; any
// signer may read it).
func (b *benchRun) totalIssuance(ctx context.Context) (*big.Int, error) {
	v, err := b.s.get(ctx, b.root, trusted.Getter{TotalIssuance: &trusted.TotalIssuanceQuery{}})
	if err != nil {
		return nil, fmt.Errorf("total issuance: %w", err)
	}
	return bigOf("total issuance", v)
}

// stateCheck is what the accounts' state says after the run.
type stateCheck struct {
	executed int64 // transfers executed: the sum of the accounts' nonces
	err      error // the balances do not add up, or they could not be read
}

// checkState reads every benchmark account's free balance and nonce over
// the one session connection. The balances must add up to the funding
// (transfers move planck, never create or destroy it); the nonces count
// the transfers the state executed, which report compares with the
// InSidechainBlock statuses.
func (b *benchRun) checkState(ctx context.Context) stateCheck {
	cctx, cancel := context.WithTimeout(ctx, b.t.timeout+time.Duration(len(b.pairs))*time.Millisecond)
	defer cancel()
	fmt.Fprintf(b.out, "reading the %d accounts' balances and nonces over one connection\n", len(b.pairs))
	balances := make([]*big.Int, len(b.pairs))
	nonces := make([]uint64, len(b.pairs))
	err := parallelOn(cctx, getterConcurrency, len(b.pairs), func(i int) error {
		p := b.pairs[i]
		id := p.ID()
		v, err := b.s.get(cctx, p, trusted.Getter{FreeBalance: &id})
		if err != nil {
			return fmt.Errorf("balance of account %d (%s): %w", i, id, err)
		}
		if balances[i], err = bigOf(fmt.Sprintf("balance of account %d", i), v); err != nil {
			return err
		}
		nonces[i], err = b.s.nonce(cctx, p)
		return err
	})
	if err != nil {
		return stateCheck{executed: -1, err: fmt.Errorf("correctness check: %w", err)}
	}
	var c stateCheck
	sum := new(big.Int)
	for i, v := range balances {
		sum.Add(sum, v)
		c.executed += int64(nonces[i])
	}
	want := new(big.Int).Mul(big.NewInt(int64(len(b.pairs))), b.fund.Big())
	if sum.Cmp(want) != 0 {
		c.err = fmt.Errorf("balances do not add up: the %d accounts hold %s planck, want %s (%d × %s funded; transfers move planck, never create it)",
			len(b.pairs), sum, want, len(b.pairs), b.fund)
		return c
	}
	fmt.Fprintf(b.out, "balances add up: the %d accounts hold %s planck, %d × %s as funded\n", len(b.pairs), sum, len(b.pairs), b.fund)
	if b.issuance0 != nil {
		if now, err := b.totalIssuance(cctx); err == nil {
			grew := new(big.Int).Sub(now, b.issuance0)
			if grew.Cmp(want) == 0 {
				fmt.Fprintf(b.out, "total issuance grew by %s, exactly the funding\n", grew)
			} else {
				fmt.Fprintf(b.out, "note: total issuance grew by %s, not the funding's %s (other activity in the shard?)\n", grew, want)
			}
		}
	}
	return c
}

// percentile returns the p-th percentile (nearest rank) of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p/100*float64(len(sorted)))) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// benchLine is the report's last, machine-readable line.
func benchLine(executedPerS, p50ms, p99ms, ceilingPerS, ratio float64) string {
	return fmt.Sprintf("executed_per_s=%.0f p50_ms=%.1f p99_ms=%.1f ceiling_per_s=%.0f ratio=%.3f", executedPerS, p50ms, p99ms, ceilingPerS, ratio)
}

// report prints the results, the machine-readable line last, and returns
// the run's failure, if any.
func (b *benchRun) report(l *loader, mon *metricsMonitor, ceiling float64, clientCPU time.Duration, check stateCheck) error {
	t := &l.tally
	t.mu.Lock()
	lat := slices.Clone(t.latencies)
	first, last := t.first, t.last
	problems := slices.Clone(t.problems)
	t.mu.Unlock()
	slices.Sort(lat)
	inBlock, submitted := t.inBlock.Load(), t.submitted.Load()
	refused, lost := t.refused(), t.lost.Load()
	out := b.out
	fmt.Fprintf(out, "transfers: %d accepted, %d in sidechain blocks, %d refused (%d by the RPC, %d Invalid or Dropped), %d never in a block\n",
		submitted, inBlock, refused, t.rpcRefused.Load(), t.statusRefused.Load(), lost)
	if check.executed >= 0 {
		fmt.Fprintf(out, "state: the accounts' nonces count %d executed transfers\n", check.executed)
	}
	var perS float64
	if inBlock > 0 && last.After(first) {
		elapsed := last.Sub(first)
		perS = float64(inBlock) / elapsed.Seconds()
		fmt.Fprintf(out, "executed: %d transfers in %s (first submission to last InSidechainBlock): %.1f/s\n", inBlock, elapsed.Round(time.Millisecond), perS)
	}
	p50, p95, p99 := percentile(lat, 50), percentile(lat, 95), percentile(lat, 99)
	var worst time.Duration
	if len(lat) > 0 {
		worst = lat[len(lat)-1]
	}
	fmt.Fprintf(out, "latency, submission to InSidechainBlock: p50 %.1f ms, p95 %.1f ms, p99 %.1f ms, max %.1f ms\n", ms(p50), ms(p95), ms(p99), ms(worst))
	if len(mon.urls) == 0 {
		fmt.Fprintln(out, "validateer CPU and RSS: not measured (no --metrics)")
	}
	for i, u := range mon.urls {
		cpu := "CPU not measured (no " + metricCPU + ")"
		if d := mon.cpu1[i] - mon.cpu0[i]; !math.IsNaN(d) {
			cpu = fmt.Sprintf("CPU %.2f s over the run", d)
			if inBlock > 0 {
				cpu += fmt.Sprintf(", %.3f s per 1,000 transfers", d/float64(inBlock)*1000)
			}
		}
		rss := "peak RSS not measured"
		switch {
		case mon.peak[i] > 0: // 0: the gauge exists where there is no peak to read
			rss = fmt.Sprintf("peak RSS %.1f MiB (%s)", mon.peak[i]/(1<<20), metricPeakRSS)
		case !math.IsNaN(mon.sampled[i]):
			rss = fmt.Sprintf("peak RSS %.1f MiB (largest %s sampled every %s during the run)", mon.sampled[i]/(1<<20), metricRSS, sampleEvery)
		}
		fmt.Fprintf(out, "validateer %s: %s; %s\n", u, cpu, rss)
	}
	if clientCPU >= 0 && inBlock > 0 {
		fmt.Fprintf(out, "client (this process): CPU %.2f s over the load, %.3f s per 1,000 transfers\n",
			clientCPU.Seconds(), clientCPU.Seconds()/float64(inBlock)*1000)
	}
	ratio := 0.0
	if ceiling > 0 {
		ratio = perS / ceiling
	}
	fmt.Fprintf(out, "ceiling: %.0f ed25519 verifications/s on %d cores; executed/ceiling = %.3f\n", ceiling, runtime.NumCPU(), ratio)

	var errs []error
	if refused > 0 || lost > 0 {
		for _, p := range problems {
			fmt.Fprintf(out, "  %s\n", p)
		}
		errs = append(errs, fmt.Errorf("%d transfers refused and %d never in a sidechain block (first: %s)", refused, lost, problems[0]))
	}
	if inBlock == 0 && len(errs) == 0 {
		errs = append(errs, errors.New("no transfer reached a sidechain block"))
	}
	// An operation that never reached a block in time may still execute.
	if check.executed >= 0 && (check.executed < inBlock || check.executed > inBlock+lost) {
		errs = append(errs, fmt.Errorf("the watches reported %d transfers InSidechainBlock (and %d never in a block), but the accounts' nonces count %d executed: "+
			"the validateer's statuses disagree with its state", inBlock, lost, check.executed))
	}
	if check.err != nil {
		errs = append(errs, check.err)
	}
	fmt.Fprintln(out, benchLine(perS, ms(p50), ms(p99), ceiling, ratio))
	return errors.Join(errs...)
}

// since is the time since start, to the millisecond.
func since(start time.Time) time.Duration { return time.Since(start).Round(time.Millisecond) }
