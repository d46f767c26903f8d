package cli

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/sourcegraph/jsonrpc2"
	jsonrpcws "github.com/sourcegraph/jsonrpc2/websocket"
	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// trusted benchmark-indirect: indirect invocations through the parentchain,
// measured end to end. Every trusted call is signed and HPKE-encrypted
// before the clock starts and carried by an enclavebridge.invoke extrinsic,
// signed beforehand too; the run broadcasts them to the node and watches for
// each call's effect in the sidechain (its signer's trusted nonce).

// Defaults of benchmark-indirect's flags.
const (
	defaultIndirectAccounts = 200
	defaultIndirectCalls    = 5
	defaultIndirectWorkers  = 16
)

// Other constants of benchmark-indirect.
const (
	// indirectHeadEvery is how often the poller reads the sidechain head;
	// when it moved, it fetches the new blocks (or, without the untrusted
	// port, reads the pending accounts' nonces).
	indirectHeadEvery = 100 * time.Millisecond
	// indirectPollAllEvery is how often the pending accounts' nonces are
	// read whatever the head does, without the untrusted port.
	indirectPollAllEvery = time.Second
	// indirectFetchBlocks is how many blocks one fetch asks for: the
	// untrusted port's bound (service.MaxFetchBlocks).
	indirectFetchBlocks = 500
	// indirectFetchReadLimit bounds a fetch's answer: 8 MiB of blocks
	// beyond the first (service.MaxFetchBytes), hex-encoded, and a first
	// block of up to sidechain.MaxBlockBytes.
	indirectFetchReadLimit = 2*(8<<20) + 2*sidechain.MaxBlockBytes + 1<<20
	// indirectGetters is how many getters are in flight on the one
	// connection of the poller and of the check.
	indirectGetters = 16
	// indirectFundWindow bounds the root's set-balance calls watched at
	// once (the pool holds at most 10,000 operations per signer).
	indirectFundWindow = 4096
	// indirectProblems is how many refusals are printed; all are counted.
	indirectProblems = 10
)

// indirectAccount names the fresh accounts of run i: the parentchain
// account that signs and pays for account i's extrinsics, and the trusted
// account that signs its calls.
func indirectAccount(run int64, i int, trustedSide bool) string {
	if trustedSide {
		return fmt.Sprintf("//BenchIT%d//%d", run, i)
	}
	return fmt.Sprintf("//BenchI%d//%d", run, i)
}

// indirectOptions are benchmark-indirect's flags.
type indirectOptions struct {
	accounts, calls, workers int
	root                     string
}

func (o indirectOptions) check() error {
	for _, f := range []struct {
		name string
		v    int
	}{{"--accounts", o.accounts}, {"--calls", o.calls}, {"--workers", o.workers}} {
		if f.v < 1 {
			return fmt.Errorf("%s must be positive (got %d)", f.name, f.v)
		}
	}
	if _, err := parseAccountArg("--root", o.root); err != nil {
		return err
	}
	return nil
}

func trustedBenchmarkIndirectCmd(t *trustedEnv) *cobra.Command {
	o := indirectOptions{accounts: defaultIndirectAccounts, calls: defaultIndirectCalls, workers: defaultIndirectWorkers, root: "//Alice"}
	cmd := &cobra.Command{
		Use:   "benchmark-indirect [--accounts N --calls M --workers K]",
		Short: "Measure indirect invocations through the parentchain: calls/s executed in the sidechain and end-to-end latency",
		Long: `benchmark-indirect measures indirect invocations: trusted calls that travel encrypted
inside enclavebridge.invoke extrinsics through the parentchain to the validateer.

Before the clock starts it creates --accounts fresh pairs of accounts: a parentchain
account //BenchI<run>//i, funded from the xt-signer (-a/--xt-signer, default //Alice)
with the fees of its --calls extrinsics, and a trusted account //BenchIT<run>//i, funded
on the sidechain with --calls planck by set-balance signed by --root (direct, each
watched until it is in a sidechain block). Then it signs and HPKE-encrypts every
trusted call (a transfer of 1 planck to the next account, around a ring, with nonces
0..M-1) and signs every parentchain extrinsic carrying one (nonces 0..M-1).

The run: --workers goroutines broadcast the extrinsics (broadcast_tx_sync) over as
many connections to the node, worker w owning accounts w, w+K, ..., their n-th calls
before any (n+1)-th. Meanwhile one RA-TLS connection to the validateer reads the
sidechain head every 100 ms and, whenever it moved (and at least every second), the
trusted nonces of the accounts with calls outstanding: a call has taken effect when
its signer's nonce passed it. The latency of a call is from just before its broadcast
to the moment its effect was first seen. Progress is printed every second.

At the end every account's trusted nonce must be --calls and its balance --calls
planck, and every parentchain account's nonce --calls: each call executed exactly
once. The last line is machine-readable:
  indirect_per_s=N p50_ms=N p99_ms=N
It exits 1 after the report if an extrinsic was refused, a call did not take effect
within --timeout after the last broadcast, or the check fails. --timeout also bounds
each step of the preparation.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			if t.direct {
				return errors.New("benchmark-indirect sends its calls through the parentchain: drop --direct")
			}
			return t.benchmarkIndirect(ctxOf(cmd), o)
		},
	}
	f := cmd.Flags()
	f.IntVar(&o.accounts, "accounts", o.accounts, "fresh account pairs (parentchain and trusted), created and funded for the run")
	f.IntVar(&o.calls, "calls", o.calls, "indirect calls per account")
	f.IntVar(&o.workers, "workers", o.workers, "goroutines broadcasting the extrinsics, each over its own connection to the node")
	f.StringVar(&o.root, "root", o.root, "the sidechain's root account, which funds the trusted accounts")
	return cmd
}

// indirectRun is one run of benchmark-indirect.
type indirectRun struct {
	*session
	o       indirectOptions
	node    *client.Client
	chain   types.Chain
	key     []byte
	run     int64
	senders []*account.Pair     // parentchain accounts
	signers []*account.Pair     // trusted accounts
	txs     [][][]byte          // [account][n]: the signed extrinsics
	hashes  map[[32]byte][2]int // extrinsic hash → [account, n]
	calls   map[[32]byte][2]int // trusted call hash → [account, n]

	// Filled by the run.
	startHeight int64             // the parentchain's height before the first broadcast
	startHead   uint64            // the sidechain's head then
	submitAt    [][]time.Time     // [account][n]: just before its broadcast
	seenAt      [][]time.Time     // [account][n]: its effect first seen
	submitted   []atomic.Int64    // per account: extrinsics the node accepted (a prefix of its nonces)
	refused     atomic.Int64      // extrinsics the node refused
	skipped     atomic.Int64      // not sent after an earlier one of the account was refused
	resent      atomic.Int64      // sent again after enclavebridge.ShardBlockFull
	problemMu   sync.Mutex        // guards problems
	problems    []string          // the first refusals
	seen        []uint64          // per account: the calls seen taking effect (the poller's)
	executed    atomic.Int64      // calls seen taking effect
	blocks      *indirectFollower // the untrusted port's blocks; nil: the poller reads nonces
	headReads   atomic.Int64      // chain_getHeader calls
	fetches     atomic.Int64      // sidechain_fetchBlocksFromPeer calls
	getters     atomic.Int64      // the poller's nonce getters
	rounds      []time.Duration   // the poller's nonce rounds
	scBlocks    int               // sidechain blocks that executed calls of the run
	scMostOps   int               // the most calls of the run one of them executed
}

// indirectSince is the time since start, to the millisecond.
func indirectSince(start time.Time) time.Duration { return time.Since(start).Round(time.Millisecond) }

func (t *trustedEnv) benchmarkIndirect(ctx context.Context, o indirectOptions) error {
	sctx, cancel := context.WithTimeout(ctx, t.timeout)
	defer cancel()
	s, err := t.open(sctx)
	if err != nil {
		return err
	}
	defer s.Close()
	r := &indirectRun{session: s, o: o, run: time.Now().UnixNano()}
	root, err := s.pair("--root", o.root)
	if err != nil {
		return err
	}
	funder, err := t.xtSigner()
	if err != nil {
		return err
	}
	if err := requireShard(sctx, s.c, s.shard); err != nil {
		return err
	}
	if r.key, err = s.c.ShieldingKey(sctx); err != nil {
		return fmt.Errorf("author_getShieldingKey: %w", err)
	}
	if r.node, err = t.nodeClient(); err != nil {
		return err
	}
	if r.chain, err = r.node.Chain(sctx); err != nil {
		return err
	}
	sum, err := r.node.Summary(sctx)
	if err != nil {
		return err
	}
	cancel()
	total := o.accounts * o.calls
	fmt.Fprintf(t.out, "benchmark-indirect: %d accounts × %d calls = %d indirect calls (enclavebridge.invoke) to shard %s, %d workers\n",
		o.accounts, o.calls, total, s.shard, o.workers)
	fmt.Fprintf(t.out, "accounts: parentchain //BenchI%d//i, trusted //BenchIT%d//i, i = 0..%d\n", r.run, r.run, o.accounts-1)
	r.senders = make([]*account.Pair, o.accounts)
	r.signers = make([]*account.Pair, o.accounts)
	for i := range o.accounts {
		if r.senders[i], err = account.DevPair(indirectAccount(r.run, i, false)); err != nil {
			return err
		}
		if r.signers[i], err = account.DevPair(indirectAccount(r.run, i, true)); err != nil {
			return err
		}
	}

	// 1. Fund the parentchain accounts (fees) and the trusted ones.
	fee, err := sum.TxFee.MulU64(uint64(o.calls))
	if err != nil {
		return err
	}
	if err := r.fundSenders(ctx, funder, fee); err != nil {
		return err
	}
	if err := r.fundSigners(ctx, root); err != nil {
		return err
	}

	// 2. Sign and encrypt every call, sign every extrinsic.
	if err := r.prepare(); err != nil {
		return err
	}

	// 3. The run.
	elapsed, sent, err := r.send(ctx)
	if err != nil {
		return err
	}

	// 4. The check and the report.
	check := r.check(ctx)
	return r.report(ctx, elapsed, sent, check)
}

// fundSenders transfers amount from funder to every parentchain account,
// the funder's nonces in order, and waits until each holds it.
func (r *indirectRun) fundSenders(ctx context.Context, funder *account.Pair, amount types.Balance) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	codec := r.node.Codec()
	nonce, err := r.node.NextNonce(ctx, funder.ID())
	if err != nil {
		return err
	}
	fmt.Fprintf(r.out, "funding %d parentchain accounts with %s planck each (the fees of %d extrinsics) from %s\n", len(r.senders), amount, r.o.calls, funder.ID())
	began, last := time.Now(), time.Now()
	var lastTx [32]byte
	for i, p := range r.senders {
		call, err := types.NewCall(codec, balances.ModuleName, "transfer", balances.TransferArgs{Dest: p.ID(), Amount: amount})
		if err != nil {
			return err
		}
		tx := codec.Sign(funder, r.chain, nonce+uint64(i), call)
		if err := r.node.Broadcast(ctx, tx); err != nil {
			return fmt.Errorf("fund parentchain account %d: %w", i, err)
		}
		lastTx = types.TxHash(tx)
		if time.Since(last) >= time.Second {
			fmt.Fprintf(r.out, "  sent %d/%d transfers (%s)\n", i+1, len(r.senders), indirectSince(began))
			last = time.Now()
		}
	}
	if _, err := r.node.WaitTx(ctx, lastTx); err != nil {
		return fmt.Errorf("funding the parentchain accounts: %w", err)
	}
	return indirectParallel(ctx, len(r.senders), func(i int) error {
		a, err := r.node.Account(ctx, r.senders[i].ID())
		if err != nil {
			return err
		}
		if a.Free.Cmp(amount) < 0 {
			return fmt.Errorf("parentchain account %d holds %s planck after funding, want %s (is %s funded?)", i, a.Free, amount, funder.ID())
		}
		return nil
	})
}

// fundSigners sets every trusted account's balance to --calls planck with
// set-balance calls signed by root, direct, each watched until it is in a
// sidechain block.
func (r *indirectRun) fundSigners(ctx context.Context, root *account.Pair) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	nonce, err := r.nonce(ctx, root)
	if err != nil {
		return err
	}
	amount := types.NewBalance(uint64(r.o.calls))
	fmt.Fprintf(r.out, "funding %d trusted accounts with %s planck each (set-balance signed by %s, direct)\n", len(r.signers), amount, root.ID())
	began, last := time.Now(), time.Now()
	for from := 0; from < len(r.signers); from += indirectFundWindow {
		to := min(from+indirectFundWindow, len(r.signers))
		watches := make([]<-chan trustedrpc.Status, 0, to-from)
		for i := from; i < to; i++ {
			call := trusted.Call{SetBalance: &trusted.SetBalance{Who: r.signers[i].ID(), Free: amount}}
			_, ct, err := sealCall(root, call, nonce+uint64(i), r.mrenclave, r.shard, r.key)
			if err != nil {
				return err
			}
			_, w, err := r.c.SubmitAndWatch(ctx, r.shard, ct)
			if err != nil {
				return fmt.Errorf("fund trusted account %d: author_submitAndWatchExtrinsic: %w", i, err)
			}
			watches = append(watches, w)
		}
		for k, w := range watches {
			if _, err := awaitInBlock(ctx, w); err != nil {
				return fmt.Errorf("fund trusted account %d: %w", from+k, err)
			}
			if time.Since(last) >= time.Second {
				fmt.Fprintf(r.out, "  funded %d/%d (%s)\n", from+k+1, len(r.signers), indirectSince(began))
				last = time.Now()
			}
		}
	}
	fmt.Fprintf(r.out, "funded in %s\n", indirectSince(began))
	return nil
}

// prepare signs and encrypts every trusted call and signs every extrinsic
// carrying one, on all cores.
func (r *indirectRun) prepare() error {
	n, m := len(r.signers), r.o.calls
	fmt.Fprintf(r.out, "signing and encrypting %d trusted calls and signing their extrinsics\n", n*m)
	began := time.Now()
	r.txs = make([][][]byte, n)
	callHashes := make([][][32]byte, n)
	var done atomic.Int64
	var wg sync.WaitGroup
	errs := make([]error, runtime.GOMAXPROCS(0))
	for g := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codec := types.NewCodec() // one per goroutine
			for i := g; i < n; i += len(errs) {
				transfer := trusted.Call{Transfer: &trusted.Transfer{From: r.signers[i].ID(), To: r.signers[(i+1)%n].ID(), Amount: types.NewBalance(1)}}
				r.txs[i] = make([][]byte, m)
				callHashes[i] = make([][32]byte, m)
				for k := range m {
					sc, ct, err := sealCall(r.signers[i], transfer, uint64(k), r.mrenclave, r.shard, r.key)
					if err != nil {
						errs[g] = err
						return
					}
					callHashes[i][k] = sc.Hash()
					call, err := types.NewCall(codec, enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{Shard: r.shard, Ciphertext: ct})
					if err != nil {
						errs[g] = err
						return
					}
					r.txs[i][k] = codec.Sign(r.senders[i], r.chain, uint64(k), call)
					done.Add(1)
				}
			}
		}()
	}
	waitWithProgress(&wg, r.out, func() string { return fmt.Sprintf("  prepared %d/%d (%s)", done.Load(), n*m, indirectSince(began)) })
	if err := errors.Join(errs...); err != nil {
		return err
	}
	r.hashes = make(map[[32]byte][2]int, n*m)
	r.calls = make(map[[32]byte][2]int, n*m)
	size := 0
	for i := range r.txs {
		for k, tx := range r.txs[i] {
			r.hashes[types.TxHash(tx)] = [2]int{i, k}
			r.calls[callHashes[i][k]] = [2]int{i, k}
			size += len(tx)
		}
	}
	fmt.Fprintf(r.out, "prepared in %s (an extrinsic is about %d bytes)\n", indirectSince(began), size/(n*m))
	return nil
}

// problem records a refusal, printing the first ones.
func (r *indirectRun) problem(what string, err error) {
	r.problemMu.Lock()
	defer r.problemMu.Unlock()
	if len(r.problems) < indirectProblems {
		r.problems = append(r.problems, fmt.Sprintf("%s: %v", what, err))
	}
}

// send broadcasts every extrinsic while the poller watches for the calls'
// effects, and waits until every accepted call took effect or --timeout
// passed after the last broadcast. It returns the time from the first
// broadcast to the last effect seen, and to the last broadcast.
func (r *indirectRun) send(ctx context.Context) (elapsed, sent time.Duration, err error) {
	n, m, k := len(r.senders), r.o.calls, r.o.workers
	total := int64(n * m)
	r.submitAt = make([][]time.Time, n)
	r.seenAt = make([][]time.Time, n)
	for i := range n {
		r.submitAt[i] = make([]time.Time, m)
		r.seenAt[i] = make([]time.Time, m)
	}
	r.submitted = make([]atomic.Int64, n)
	r.seen = make([]uint64, n)

	var sentAll atomic.Bool
	pctx, stopPoller := context.WithCancel(ctx)
	defer stopPoller()
	pollerDone := make(chan error, 1)
	st, err := r.node.RPC().Status(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("node status: %w", err)
	}
	r.startHeight = st.SyncInfo.LatestBlockHeight
	head, err := r.c.Header(ctx, r.shard)
	if err != nil {
		return 0, 0, fmt.Errorf("chain_getHeader: %w", err)
	}
	r.startHead = head.Number
	watching := "reading its head over the RA-TLS connection every 100 ms and fetching new blocks from its untrusted port "
	if r.blocks, err = r.followBlocks(ctx); err != nil {
		fmt.Fprintf(r.out, "warning: %v; reading the accounts' trusted nonces instead\n", err)
		watching = "reading its head and the accounts' trusted nonces over the RA-TLS connection"
	} else {
		defer r.blocks.close()
		watching += r.blocks.url
	}
	fmt.Fprintf(r.out, "sending %d extrinsics over %d connections to the node; watching the sidechain: %s\n", total, k, watching)
	start := time.Now()
	go func() { pollerDone <- r.poll(pctx, &sentAll) }()

	var wg sync.WaitGroup
	var sentCount atomic.Int64
	for w := range k {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := 0; c < m; c++ {
				for i := w; i < n; i += k {
					if r.submitted[i].Load() < int64(c) {
						r.skipped.Add(1) // an earlier call of the account was refused
						continue
					}
					r.submitAt[i][c] = time.Now()
					if err := r.broadcast(ctx, r.txs[i][c]); err != nil {
						r.refused.Add(1)
						r.problem(fmt.Sprintf("account %d call %d refused", i, c), err)
						continue
					}
					r.submitted[i].Store(int64(c + 1))
					sentCount.Add(1)
				}
			}
		}()
	}
	progress := func() string {
		return fmt.Sprintf("  %s: sent %d/%d (%d refused, %d sent again: the shard's calls in a parentchain block were full), executed %d",
			indirectSince(start), sentCount.Load(), total, r.refused.Load(), r.resent.Load(), r.executed.Load())
	}
	waitWithProgress(&wg, r.out, progress)
	sent = time.Since(start)
	sentAll.Store(true)
	fmt.Fprintf(r.out, "sent in %s; waiting for the sidechain (at most --timeout %s)\n", sent.Round(time.Millisecond), r.timeout)

	deadline := time.NewTimer(r.timeout)
	defer deadline.Stop()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case err := <-pollerDone:
			if err != nil {
				return 0, 0, err
			}
			return r.elapsedSince(start), sent, nil
		case <-tick.C:
			fmt.Fprintln(r.out, progress())
		case <-deadline.C:
			stopPoller()
			<-pollerDone
			fmt.Fprintf(r.out, "timed out: %d of %d accepted calls took effect within --timeout %s after the last broadcast\n", r.executed.Load(), sentCount.Load(), r.timeout)
			return r.elapsedSince(start), sent, nil
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}

// elapsedSince is the time from start to the last effect seen (0 if none).
func (r *indirectRun) elapsedSince(start time.Time) time.Duration {
	var last time.Time
	for i := range r.seenAt {
		for _, at := range r.seenAt[i] {
			if at.After(last) {
				last = at
			}
		}
	}
	if last.IsZero() {
		return 0
	}
	return last.Sub(start)
}

// poll watches the sidechain until every accepted call took effect (once
// sentAll) or ctx ends (then it returns nil). It reads the head every
// indirectHeadEvery; when the head moved, it fetches the new blocks from
// the untrusted port, and each call of the run among a block's operations
// took effect when the block was fetched. Without the untrusted port (or
// once a fetch failed) it reads instead the trusted nonces of the accounts
// with calls outstanding, when the head moved in this or the last read, or
// after indirectPollAllEvery: a call took effect when its signer's nonce
// passed it.
func (r *indirectRun) poll(ctx context.Context, sentAll *atomic.Bool) error {
	head := r.startHead
	moved := 0 // nonce rounds to go after the head moved
	lastRound := time.Time{}
	tick := time.NewTicker(indirectHeadEvery)
	defer tick.Stop()
	for {
		done := sentAll.Load() // before reading the counts below
		var pending []int
		for i := range r.seen {
			if int64(r.seen[i]) < r.submitted[i].Load() {
				pending = append(pending, i)
			}
		}
		if done && len(pending) == 0 {
			return nil
		}
		h, err := r.c.Header(ctx, r.shard)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("chain_getHeader: %w", err)
		}
		r.headReads.Add(1)
		if h.Number > head && r.blocks != nil {
			if err := r.readBlocks(ctx, head+1, h.Number); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				fmt.Fprintf(r.out, "warning: %v; reading the accounts' trusted nonces from now on\n", err)
				r.blocks.close()
				r.blocks = nil
			}
		}
		if h.Number != head {
			head, moved = h.Number, 2
		}
		if r.blocks == nil && len(pending) > 0 && (moved > 0 || time.Since(lastRound) >= indirectPollAllEvery) {
			began := time.Now()
			if err := r.readNonces(ctx, pending); err != nil {
				if ctx.Err() != nil {
					return nil
				}
				return err
			}
			lastRound = time.Now()
			r.rounds = append(r.rounds, lastRound.Sub(began))
		}
		moved = max(moved-1, 0)
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// readBlocks fetches the sidechain blocks from..to and records the calls of
// the run they executed as taking effect now.
func (r *indirectRun) readBlocks(ctx context.Context, from, to uint64) error {
	for from <= to {
		bs, err := r.blocks.fetch(ctx, r.shard, from, min(to, from+indirectFetchBlocks-1))
		r.fetches.Add(1)
		if err != nil {
			return err
		}
		if len(bs) == 0 {
			return fmt.Errorf("%s served no block from %d on, below the head %d", r.blocks.url, from, to)
		}
		now := time.Now()
		for _, b := range bs {
			if b.Header.Number != from {
				return fmt.Errorf("%s served block %d for %d", r.blocks.url, b.Header.Number, from)
			}
			ours := 0
			for _, op := range b.Data.Operations {
				at, ok := r.calls[op]
				if !ok {
					continue
				}
				i, k := at[0], at[1]
				ours++
				if r.seenAt[i][k].IsZero() {
					r.seenAt[i][k] = now
					r.executed.Add(1)
				}
				r.seen[i] = max(r.seen[i], uint64(k+1))
			}
			if ours > 0 {
				r.scBlocks++
				r.scMostOps = max(r.scMostOps, ours)
			}
			from++
		}
	}
	return nil
}

// indirectFollower reads sidechain blocks from a validateer's untrusted port
// (sidechain_fetchBlocksFromPeer, what peers on-board from), over one
// websocket. The blocks are checked only for their author's signature: the
// run uses them for timing, and checks the state over the attested
// connection.
type indirectFollower struct {
	url   string
	conn  *jsonrpc2.Conn
	codec *sidechain.Codec
}

// followBlocks connects to the untrusted port the validateer reports.
func (r *indirectRun) followBlocks(ctx context.Context) (*indirectFollower, error) {
	url, err := r.c.String(ctx, "author_getUntrustedUrl")
	if err != nil {
		return nil, fmt.Errorf("author_getUntrustedUrl: %w", err)
	}
	d := ws.Dialer{HandshakeTimeout: 10 * time.Second}
	wc, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("the validateer's untrusted port %s: %w", url, err)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close() //nolint:errcheck
	}
	wc.SetReadLimit(indirectFetchReadLimit)
	noCalls := jsonrpc2.HandlerWithError(func(context.Context, *jsonrpc2.Conn, *jsonrpc2.Request) (any, error) { return nil, nil })
	f := &indirectFollower{url: url, conn: jsonrpc2.NewConn(context.Background(), jsonrpcws.NewObjectStream(wc), noCalls), codec: sidechain.NewCodec()}
	return f, nil
}

// fetch returns the blocks from..to the port serves (possibly fewer).
func (f *indirectFollower) fetch(ctx context.Context, shard sidechain.ShardID, from, to uint64) ([]*sidechain.Block, error) {
	var hexes []string
	if err := f.conn.Call(ctx, "sidechain_fetchBlocksFromPeer", []any{shard.String(), from, to}, &hexes); err != nil {
		return nil, fmt.Errorf("sidechain_fetchBlocksFromPeer %d..%d on %s: %w", from, to, f.url, err)
	}
	out := make([]*sidechain.Block, 0, len(hexes))
	for _, h := range hexes {
		raw, err := hex.DecodeString(strings.TrimPrefix(h, "0x"))
		if err != nil {
			return nil, fmt.Errorf("a block from %s: %w", f.url, err)
		}
		b, err := f.codec.Decode(raw)
		if err != nil {
			return nil, fmt.Errorf("a block from %s: %w", f.url, err)
		}
		out = append(out, b)
	}
	return out, nil
}

func (f *indirectFollower) close() { f.conn.Close() } //nolint:errcheck

// readNonces reads the trusted nonces of the accounts and records the
// calls that took effect since the last read.
func (r *indirectRun) readNonces(ctx context.Context, accounts []int) error {
	return indirectParallel(ctx, len(accounts), func(j int) error {
		i := accounts[j]
		v, err := r.nonce(ctx, r.signers[i])
		if err != nil {
			return err
		}
		r.getters.Add(1)
		now := time.Now()
		if v > uint64(r.o.calls) {
			return fmt.Errorf("trusted account %d's nonce is %d, above the %d calls signed", i, v, r.o.calls)
		}
		for c := r.seen[i]; c < v; c++ {
			r.seenAt[i][c] = now
			r.executed.Add(1)
		}
		r.seen[i] = max(r.seen[i], v)
		return nil
	})
}

// indirectParallel runs f(0..n-1) with at most indirectGetters at once and
// returns the first error.
func indirectParallel(ctx context.Context, n int, f func(i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sem := make(chan struct{}, indirectGetters)
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	for i := range n {
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			break
		}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			if err := f(i); err != nil {
				once.Do(func() { first = err; cancel() })
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		first = ctx.Err()
	}
	return first
}

// indirectCheck is the state check after the run.
type indirectCheck struct {
	err   error // reading the state failed
	wrong []string
}

// check reads every trusted account's nonce and balance and every
// parentchain account's nonce. Each must show all its account's accepted
// calls executed once; with every call executed, every trusted balance is
// back at --calls planck.
func (r *indirectRun) check(ctx context.Context) indirectCheck {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var mu sync.Mutex
	var c indirectCheck
	all := r.refused.Load() == 0 && r.skipped.Load() == 0
	wrong := func(s string) {
		mu.Lock()
		defer mu.Unlock()
		c.wrong = append(c.wrong, s)
	}
	c.err = indirectParallel(ctx, len(r.signers), func(i int) error {
		want := uint64(r.submitted[i].Load())
		nonce, err := r.nonce(ctx, r.signers[i])
		if err != nil {
			return err
		}
		if nonce != want {
			wrong(fmt.Sprintf("trusted account %d: nonce %d, want %d", i, nonce, want))
		}
		id := r.signers[i].ID()
		bal, err := r.get(ctx, r.signers[i], trusted.Getter{FreeBalance: &id})
		if err != nil {
			return err
		}
		if all && strings.TrimSpace(bal) != strconv.Itoa(r.o.calls) {
			wrong(fmt.Sprintf("trusted account %d: balance %s planck, want %d", i, bal, r.o.calls))
		}
		a, err := r.node.Account(ctx, r.senders[i].ID())
		if err != nil {
			return err
		}
		if a.Nonce != want {
			wrong(fmt.Sprintf("parentchain account %d: nonce %d, want %d", i, a.Nonce, want))
		}
		return nil
	})
	slices.Sort(c.wrong)
	return c
}

// inclusion finds the parentchain block of every extrinsic: the blocks
// from the one after from, up to the latest. It returns each call's block
// height and each height's block time.
func (r *indirectRun) inclusion(ctx context.Context, from int64) ([][]int64, map[int64]time.Time, error) {
	st, err := r.node.RPC().Status(ctx)
	if err != nil {
		return nil, nil, err
	}
	heights := make([][]int64, len(r.txs))
	for i := range heights {
		heights[i] = make([]int64, r.o.calls)
	}
	times := map[int64]time.Time{}
	for h := from + 1; h <= st.SyncInfo.LatestBlockHeight; h++ {
		b, err := r.node.RPC().Block(ctx, &h)
		if err != nil {
			return nil, nil, fmt.Errorf("block %d: %w", h, err)
		}
		times[h] = b.Block.Time
		for _, tx := range b.Block.Txs {
			if at, ok := r.hashes[types.TxHash(tx)]; ok {
				heights[at[0]][at[1]] = h
			}
		}
	}
	return heights, times, nil
}

// indirectQuantile is the p-quantile (nearest rank) of sorted durations.
func indirectQuantile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

// indirectLine is the last, machine-readable line.
func indirectLine(perS float64, p50, p99 time.Duration) string {
	return fmt.Sprintf("indirect_per_s=%.1f p50_ms=%d p99_ms=%d", perS, p50.Milliseconds(), p99.Milliseconds())
}

// report prints the figures, the check and, last, the machine-readable
// line; it fails the command if anything was refused, did not take effect
// or the check found a difference.
func (r *indirectRun) report(ctx context.Context, elapsed, sent time.Duration, check indirectCheck) error {
	n, m := len(r.senders), r.o.calls
	total := n * m
	accepted := 0
	var lat []time.Duration
	for i := range r.submitAt {
		accepted += int(r.submitted[i].Load())
		for c := range m {
			if !r.seenAt[i][c].IsZero() {
				lat = append(lat, r.seenAt[i][c].Sub(r.submitAt[i][c]))
			}
		}
	}
	slices.Sort(lat)
	executed := len(lat)
	fmt.Fprintf(r.out, "sent:     %d extrinsics in %s: %.0f/s accepted by the node (%d refused, %d not sent after a refusal)\n",
		accepted, sent.Round(time.Millisecond), float64(accepted)/sent.Seconds(), r.refused.Load(), r.skipped.Load())
	for _, p := range r.problems {
		fmt.Fprintf(r.out, "  refused: %s\n", p)
	}

	// Where the calls went on the parentchain (after the run: not timed).
	ictx, cancel := context.WithTimeout(ctx, r.timeout)
	heights, times, err := r.inclusion(ictx, r.startHeight)
	cancel()
	if err != nil {
		fmt.Fprintf(r.out, "parentchain: could not read the blocks: %v\n", err)
	} else {
		perBlock := map[int64]int{}
		var toCommit []time.Duration
		for i := range heights {
			for c, h := range heights[i] {
				if h == 0 {
					continue
				}
				perBlock[h]++
				if next, ok := times[h+1]; ok && !r.seenAt[i][c].IsZero() {
					toCommit = append(toCommit, next.Sub(r.submitAt[i][c]))
				}
			}
		}
		hs := slices.Sorted(maps.Keys(perBlock))
		most := 0
		for _, c := range perBlock {
			most = max(most, c)
		}
		switch {
		case len(hs) == 1:
			fmt.Fprintf(r.out, "parentchain: the extrinsics went into 1 block (height %d)\n", hs[0])
		case len(hs) > 1:
			fmt.Fprintf(r.out, "parentchain: the extrinsics went into %d blocks (heights %d–%d), at most %d a block\n", len(hs), hs[0], hs[len(hs)-1], most)
		}
		if len(toCommit) > 0 {
			slices.Sort(toCommit)
			fmt.Fprintf(r.out, "  submission → its parentchain block committed (the next block's time): p50 %d ms, p99 %d ms, max %d ms\n",
				indirectQuantile(toCommit, 0.5).Milliseconds(), indirectQuantile(toCommit, 0.99).Milliseconds(), toCommit[len(toCommit)-1].Milliseconds())
		}
	}

	perS := 0.0
	if executed > 0 && elapsed > 0 {
		perS = float64(executed) / elapsed.Seconds()
	}
	fmt.Fprintf(r.out, "executed: %d calls in the sidechain in %s from the first broadcast: %.1f/s\n", executed, elapsed.Round(time.Millisecond), perS)
	var round time.Duration
	for _, d := range r.rounds {
		round += d
	}
	if len(r.rounds) > 0 {
		round /= time.Duration(len(r.rounds))
	}
	p50, p95, p99 := indirectQuantile(lat, 0.5), indirectQuantile(lat, 0.95), indirectQuantile(lat, 0.99)
	maxLat := time.Duration(0)
	if len(lat) > 0 {
		maxLat = lat[len(lat)-1]
	}
	fmt.Fprintf(r.out, "latency, broadcast → effect seen in the sidechain: p50 %d ms, p95 %d ms, p99 %d ms, max %d ms\n",
		p50.Milliseconds(), p95.Milliseconds(), p99.Milliseconds(), maxLat.Milliseconds())
	switch {
	case r.scBlocks == 1:
		fmt.Fprintf(r.out, "sidechain: the calls were executed in 1 block\n")
	case r.scBlocks > 1:
		fmt.Fprintf(r.out, "sidechain: the calls were executed in %d blocks, at most %d a block\n", r.scBlocks, r.scMostOps)
	}
	if len(r.rounds) == 0 {
		fmt.Fprintf(r.out, "  (an effect is seen when its sidechain block is fetched, within %d ms of the block's import: %d head reads, %d block fetches)\n",
			indirectHeadEvery.Milliseconds(), r.headReads.Load(), r.fetches.Load())
	} else {
		fmt.Fprintf(r.out, "  (an effect is seen within %d ms of the head moving plus a nonce round, %d ms on average: %d head reads, %d block fetches, %d nonce getters in %d rounds)\n",
			indirectHeadEvery.Milliseconds(), round.Milliseconds(), r.headReads.Load(), r.fetches.Load(), r.getters.Load(), len(r.rounds))
	}

	var failures []string
	if f := r.refused.Load() + r.skipped.Load(); f > 0 {
		failures = append(failures, fmt.Sprintf("%d of %d calls not accepted by the node", f, total))
	}
	if executed < accepted {
		failures = append(failures, fmt.Sprintf("%d of %d accepted calls did not take effect within --timeout", accepted-executed, accepted))
	}
	switch {
	case check.err != nil:
		failures = append(failures, fmt.Sprintf("the state check could not read the state: %v", check.err))
		fmt.Fprintf(r.out, "check: could not read the state: %v\n", check.err)
	case len(check.wrong) > 0:
		failures = append(failures, fmt.Sprintf("the state check found %d differences", len(check.wrong)))
		for _, w := range check.wrong[:min(len(check.wrong), indirectProblems)] {
			fmt.Fprintf(r.out, "check: %s\n", w)
		}
	case len(failures) == 0:
		fmt.Fprintf(r.out, "check: all %d trusted accounts have nonce %d and balance %d planck, all %d parentchain accounts nonce %d: every call executed exactly once\n", n, m, m, n, m)
	default:
		fmt.Fprintf(r.out, "check: every trusted and parentchain nonce matches the calls the node accepted\n")
	}
	fmt.Fprintln(r.out, indirectLine(perS, p50, p99))
	if len(failures) > 0 {
		return fmt.Errorf("benchmark-indirect: %s", strings.Join(failures, "; "))
	}
	return nil
}

// broadcast sends tx; while the node refuses it because the shard's calls
// in the next parentchain block are full (enclavebridge.ShardBlockFull,
// at most MaxShardCallsPerBlock a block), it sends it again a little later,
// as a client of the chain should.
func (r *indirectRun) broadcast(ctx context.Context, tx []byte) error {
	for {
		err := r.node.Broadcast(ctx, tx)
		if !errors.Is(err, enclavebridge.ErrShardBlockFull) {
			return err
		}
		r.resent.Add(1)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond): // back-off, a tenth of a block
		}
	}
}
