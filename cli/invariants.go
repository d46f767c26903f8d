package cli

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	ws "github.com/gorilla/websocket"
	"github.com/sourcegraph/jsonrpc2"
	jsonrpcws "github.com/sourcegraph/jsonrpc2/websocket"
	"github.com/spf13/cobra"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/parentchain/client"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// check-invariants: what must hold of the two chains whatever faults the
// network went through (crashes, partitions, clock skew, a halted
// parentchain). It reads the parentchain node and every given validateer
// (attested as for every trusted command), waits until the validateers are
// quiet, and prints one line per invariant:
//
//   - heads: every validateer reports the same head (number and hash) and
//     the same state hash, unchanged for --settle;
//   - supply: the shard's bonding account on the parentchain holds the
//     sidechain's total issuance (plus --minted). Unshieldings executed on
//     the sidechain and not yet paid (and shieldings not yet processed) make
//     a difference while they last: nothing outside the enclave can read the
//     sidechain's outbox (its amounts are in encrypted state diffs), so the
//     checker waits for quiet, up to --quiet-timeout, until none is in
//     flight;
//   - payouts: no unshielding call hash is paid twice (the parentchain's
//     UnshieldedFunds events, through tx_search), and each paid call is an
//     operation of the final sidechain (not of an orphaned block);
//   - chain: the final sidechain, fetched from the validateers' untrusted
//     ports and linked by parent hashes to the agreed head, holds no
//     operation twice;
//   - seen: every operation a client saw InSidechainBlock for (--seen FILE)
//     is in the final chain exactly once, wherever a fork moved it.

// Defaults of check-invariants.
const (
	defaultQuietTimeout = 60 * time.Second
	defaultSettle       = 2 * time.Second
	// invariantPoll is how often the checker reads the chains while it
	// waits for quiet.
	invariantPoll = 250 * time.Millisecond
	// invariantCallTimeout bounds one read of a validateer or the node.
	invariantCallTimeout = 10 * time.Second
	// txSearchPage is tx_search's page size (CometBFT's maximum).
	txSearchPage = 100
	// listAtMost is how many offending items a FAILED line names.
	listAtMost = 5
)

// eventUnshielded is the parentchain event of a paid unshielding.
const eventUnshielded = enclavebridge.ModuleName + ".UnshieldedFunds"

// errInvariantsFailed is returned when any invariant does not hold.
var errInvariantsFailed = errors.New("invariants FAILED")

// invariantResult is one checked invariant.
type invariantResult struct {
	name   string
	ok     bool
	detail string
}

// String is the line the command prints: "ok" or "FAILED", the name and
// the figures.
func (r invariantResult) String() string {
	status := "ok    "
	if !r.ok {
		status = "FAILED"
	}
	return fmt.Sprintf("%s  %s: %s", status, r.name, r.detail)
}

func holds(name, format string, a ...any) invariantResult {
	return invariantResult{name: name, ok: true, detail: fmt.Sprintf(format, a...)}
}

func fails(name, format string, a ...any) invariantResult {
	return invariantResult{name: name, detail: fmt.Sprintf(format, a...)}
}

// ---- what the checker reads ----

// headReport is one validateer's answer to chain_getHeader.
type headReport struct {
	worker string
	header trustedrpc.Header
	err    error
}

// issuanceReport is one validateer's total issuance.
type issuanceReport struct {
	worker   string
	issuance *big.Int
	err      error
}

// payout is one UnshieldedFunds event of the shard.
type payout struct {
	callHash sidechain.Hash
	amount   *big.Int
	height   int64
}

// blockSource serves sidechain blocks by number: a validateer's untrusted
// port.
type blockSource interface {
	name() string
	// blocks returns the blocks from..to the source holds (possibly fewer,
	// from a higher number, or none), each checked for its signature.
	blocks(ctx context.Context, from, to uint64) ([]*sidechain.Block, error)
}

// invariantSources is what the checker reads: the command's are the node
// and the validateers; tests fabricate them.
type invariantSources interface {
	heads(ctx context.Context) []headReport
	issuance(ctx context.Context) []issuanceReport
	bonding(ctx context.Context) (*big.Int, error)
	payouts(ctx context.Context) ([]payout, error)
	blockSources(ctx context.Context) []blockSource
}

// ---- the checks, on what was read ----

// checkHeads reports whether every validateer answered the same head and
// state hash; the agreed head is returned when they did.
func checkHeads(reports []headReport) (invariantResult, *trustedrpc.Header) {
	const name = "heads"
	if len(reports) == 0 {
		return fails(name, "no validateer to ask"), nil
	}
	var errs, parts []string
	same := true
	first := reports[0].header
	for _, r := range reports {
		if r.err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", r.worker, r.err))
			continue
		}
		h := r.header
		parts = append(parts, fmt.Sprintf("%s at #%d %s state %s", r.worker, h.Number, h.Hash, h.StateHash))
		if h.Number != first.Number || h.Hash != first.Hash || h.StateHash != first.StateHash {
			same = false
		}
	}
	switch {
	case len(errs) > 0:
		return fails(name, "%s", strings.Join(append(errs, parts...), "; ")), nil
	case !same:
		return fails(name, "the validateers disagree: %s", strings.Join(parts, "; ")), nil
	}
	h := first
	return holds(name, "%d validateer(s) at #%d %s, state hash %s", len(reports), h.Number, h.Hash, h.StateHash), &h
}

// checkSupply compares the bonding account with the total issuance every
// validateer reports (plus minted, what the shard's root created with
// set-balance). Once the network is quiet nothing is in flight, and they
// must be equal.
func checkSupply(bonding *big.Int, bondErr error, issuances []issuanceReport, minted *big.Int) invariantResult {
	const name = "supply"
	if bondErr != nil {
		return fails(name, "bonding account: %v", bondErr)
	}
	var iss *big.Int
	var parts []string
	for _, r := range issuances {
		if r.err != nil {
			return fails(name, "total issuance on %s: %v", r.worker, r.err)
		}
		parts = append(parts, fmt.Sprintf("%s: %s", r.worker, r.issuance))
		if iss == nil {
			iss = r.issuance
		} else if iss.Cmp(r.issuance) != 0 {
			return fails(name, "the validateers disagree on the total issuance: %s", strings.Join(parts, "; "))
		}
	}
	if iss == nil {
		return fails(name, "no validateer reported the total issuance")
	}
	have := new(big.Int).Add(bonding, minted)
	plusMinted := ""
	if minted.Sign() != 0 {
		plusMinted = fmt.Sprintf(" (+ %s minted by the root, which it never received)", minted)
	}
	if have.Cmp(iss) == 0 {
		return holds(name, "the bonding account holds %s%s = the sidechain's total issuance %s; no unshielding in flight", bonding, plusMinted, iss)
	}
	diff := new(big.Int).Sub(have, iss)
	return fails(name, "the bonding account holds %s%s, the sidechain's total issuance is %s: off by %s "+
		"(unshieldings executed on the sidechain and not yet paid show as a positive difference, shieldings not yet processed as a negative one, while they last)",
		bonding, plusMinted, iss, diff)
}

// finalChain is the sidechain from a validateer's head down, as far as the
// validateers serve it, every block linked to the next by its parent hash.
type finalChain struct {
	head   trustedrpc.Header
	from   uint64                      // the lowest block held; 1 if complete
	hashes map[uint64]sidechain.Hash   // number → block hash
	ops    map[sidechain.Hash][]uint64 // operation → the numbers of the blocks holding it
}

func (c *finalChain) complete() bool { return c.from == 1 }

// sourceCache remembers what one block source served.
type sourceCache struct {
	src    blockSource
	blocks map[uint64]*sidechain.Block
	asked  map[uint64]bool // numbers asked for, served or not
	err    error
}

// at returns the source's block at n, fetching the fetchBlocks numbers up
// to n it has not been asked for.
func (s *sourceCache) at(ctx context.Context, n uint64) *sidechain.Block {
	if b, ok := s.blocks[n]; ok || s.asked[n] || s.err != nil {
		return b
	}
	lo := uint64(1)
	if n > indirectFetchBlocks {
		lo = n - indirectFetchBlocks + 1
	}
	for from := lo; from <= n; {
		bs, err := s.src.blocks(ctx, from, n)
		if err != nil {
			s.err = err
			break
		}
		last := from - 1
		for _, b := range bs {
			s.blocks[b.Header.Number] = b
			last = max(last, b.Header.Number)
		}
		if len(bs) == 0 || last >= n {
			break
		}
		from = last + 1 // the answer's byte bound cut it short
	}
	for k := lo; k <= n; k++ {
		s.asked[k] = true
	}
	return s.blocks[n]
}

// canonicalChain walks from head down, taking at each number the block a
// source serves whose hash the block above names as its parent. It stops
// at block 1, or below the lowest block any source holds (validateers that
// joined hold blocks from their join on). A number where the sources hold
// only other blocks breaks the chain: an error.
func canonicalChain(ctx context.Context, sources []blockSource, shard sidechain.ShardID, head trustedrpc.Header) (*finalChain, error) {
	codec := sidechain.NewCodec()
	caches := make([]*sourceCache, len(sources))
	for i, s := range sources {
		caches[i] = &sourceCache{src: s, blocks: map[uint64]*sidechain.Block{}, asked: map[uint64]bool{}}
	}
	c := &finalChain{head: head, from: head.Number + 1, hashes: map[uint64]sidechain.Hash{}, ops: map[sidechain.Hash][]uint64{}}
	want := head.Hash
	for n := head.Number; n >= 1; n-- {
		var found *sidechain.Block
		var others []string
		for _, sc := range caches {
			b := sc.at(ctx, n)
			if b == nil {
				continue
			}
			if h := codec.Hash(b); h != want {
				others = append(others, fmt.Sprintf("%s holds %s", sc.src.name(), h))
				continue
			}
			found = b
			break
		}
		if found == nil {
			if len(others) > 0 {
				return c, fmt.Errorf("block #%d: the block above names parent %s, but %s", n, want, strings.Join(others, ", "))
			}
			var errs []string
			for _, sc := range caches {
				if sc.err != nil {
					errs = append(errs, fmt.Sprintf("%s: %v", sc.src.name(), sc.err))
				}
			}
			if len(errs) > 0 {
				return c, fmt.Errorf("block #%d: %s", n, strings.Join(errs, "; "))
			}
			if n == head.Number {
				return c, fmt.Errorf("no validateer serves the head block #%d %s", n, want)
			}
			for _, sc := range caches {
				for below := range sc.blocks {
					if below < n {
						return c, fmt.Errorf("block #%d: no validateer serves it, but %s serves #%d below it", n, sc.src.name(), below)
					}
				}
			}
			break // no source holds it or anything below: the chain is served from n+1 on
		}
		if found.Header.Shard != shard {
			return c, fmt.Errorf("block #%d %s is of shard %s, not %s", n, want, found.Header.Shard, shard)
		}
		if found.Header.Number != n {
			return c, fmt.Errorf("a source served block #%d for #%d", found.Header.Number, n)
		}
		c.from, c.hashes[n] = n, want
		for _, op := range found.Data.Operations {
			c.ops[op] = append(c.ops[op], n)
		}
		want = found.Header.ParentHash
	}
	if c.from == 1 && want != (sidechain.Hash{}) {
		return c, fmt.Errorf("block #1 names parent %s, not none", want)
	}
	return c, nil
}

// checkChain reports the final chain's extent and any operation in it
// twice.
func checkChain(c *finalChain, err error) invariantResult {
	const name = "chain"
	if err != nil {
		return fails(name, "the final chain does not link to the head %s: %v", c.head.Hash, err)
	}
	if c.head.Number == 0 {
		return holds(name, "the shard has no block yet")
	}
	var twice []string
	n := 0
	for op, at := range c.ops {
		if len(at) > 1 {
			n++
			if len(twice) < listAtMost {
				twice = append(twice, fmt.Sprintf("%s in blocks %v", op, at))
			}
		}
	}
	slices.Sort(twice)
	extent := fmt.Sprintf("blocks #%d..#%d linked to the head %s", c.from, c.head.Number, c.head.Hash)
	if !c.complete() {
		extent += fmt.Sprintf(" (no validateer serves the blocks below #%d)", c.from)
	}
	if n > 0 {
		return fails(name, "%s: %d operations executed more than once: %s", extent, n, strings.Join(twice, "; "))
	}
	return holds(name, "%s, %d operations, none twice", extent, len(c.ops))
}

// checkPayouts reports call hashes paid more than once and payouts whose
// call is in no block of the final chain.
func checkPayouts(ps []payout, err error, c *finalChain) invariantResult {
	const name = "payouts"
	if err != nil {
		return fails(name, "the parentchain's UnshieldedFunds events: %v", err)
	}
	by := map[sidechain.Hash][]int64{}
	total := new(big.Int)
	for _, p := range ps {
		by[p.callHash] = append(by[p.callHash], p.height)
		total.Add(total, p.amount)
	}
	var twice, orphaned []string
	for h, heights := range by {
		if len(heights) > 1 {
			twice = append(twice, fmt.Sprintf("%s paid %d times (parentchain heights %v)", h, len(heights), heights))
		}
		if c != nil && len(c.ops[h]) == 0 {
			orphaned = append(orphaned, fmt.Sprintf("%s (paid at %v)", h, heights))
		}
	}
	slices.Sort(twice)
	slices.Sort(orphaned)
	var problems []string
	if len(twice) > 0 {
		problems = append(problems, fmt.Sprintf("%d call hashes paid more than once: %s", len(twice), strings.Join(firstFew(twice), "; ")))
	}
	if len(orphaned) > 0 {
		where := "no block of the final sidechain"
		if c != nil && !c.complete() {
			where = fmt.Sprintf("no block of the final sidechain from #%d (the blocks below are served by no validateer)", c.from)
		}
		problems = append(problems, fmt.Sprintf("%d paid calls are in %s: %s", len(orphaned), where, strings.Join(firstFew(orphaned), "; ")))
	}
	if len(problems) > 0 {
		return fails(name, "%d unshieldings paid (%s planck): %s", len(ps), total, strings.Join(problems, "; "))
	}
	if c == nil {
		return holds(name, "%d unshieldings paid (%s planck), each call hash once (not matched with the sidechain: its chain was not read)", len(ps), total)
	}
	return holds(name, "%d unshieldings paid (%s planck), each call hash once, each an operation of the final sidechain", len(ps), total)
}

func firstFew(s []string) []string {
	if len(s) <= listAtMost {
		return s
	}
	return append(slices.Clone(s[:listAtMost]), fmt.Sprintf("… %d more", len(s)-listAtMost))
}

// seenOp is a line of a --seen file: an operation and a block a client saw
// it InSidechainBlock in.
type seenOp struct {
	op, block sidechain.Hash
}

// checkSeen reports operations a client saw in a block that are not in
// the final chain exactly once. An operation seen in several blocks (a
// fork retracted one) needs to be in the chain once.
func checkSeen(seen []seenOp, c *finalChain) invariantResult {
	const name = "seen"
	blocks := map[sidechain.Hash][]sidechain.Hash{}
	var order []sidechain.Hash
	for _, s := range seen {
		if _, ok := blocks[s.op]; !ok {
			order = append(order, s.op)
		}
		blocks[s.op] = append(blocks[s.op], s.block)
	}
	var missing, twice []string
	moved := 0
	for _, op := range order {
		at := c.ops[op]
		switch len(at) {
		case 0:
			missing = append(missing, fmt.Sprintf("%s (seen in %s)", op, blocks[op][len(blocks[op])-1]))
		case 1:
			if !slices.Contains(blocks[op], c.hashes[at[0]]) {
				moved++
			}
		default:
			twice = append(twice, fmt.Sprintf("%s in blocks %v", op, at))
		}
	}
	if len(missing) > 0 || len(twice) > 0 {
		var problems []string
		if len(missing) > 0 {
			where := "the final chain"
			if !c.complete() {
				where = fmt.Sprintf("the final chain from #%d (the blocks below are served by no validateer)", c.from)
			}
			problems = append(problems, fmt.Sprintf("%d are not in %s: %s", len(missing), where, strings.Join(firstFew(missing), "; ")))
		}
		if len(twice) > 0 {
			problems = append(problems, fmt.Sprintf("%d are in it more than once: %s", len(twice), strings.Join(firstFew(twice), "; ")))
		}
		return fails(name, "of %d operations clients saw InSidechainBlock, %s", len(order), strings.Join(problems, "; "))
	}
	return holds(name, "%d operations clients saw InSidechainBlock are each in the final chain exactly once (%d of them in another block than the one seen: a fork moved them)", len(order), moved)
}

// ---- the --seen file ----

// parseSeen reads a --seen file: lines of "<operation hash> <block hash>"
// (0x-hex; blank lines and lines starting with # are skipped), or JSON:
// an array of {"op": "0x…", "block": "0x…"} objects, or one such object
// per line.
func parseSeen(r io.Reader) ([]seenOp, error) {
	raw, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	type jsonSeen struct {
		Op    *sidechain.Hash `json:"op"`
		Block *sidechain.Hash `json:"block"`
	}
	fromJSON := func(j jsonSeen, where string) (seenOp, error) {
		if j.Op == nil || j.Block == nil {
			return seenOp{}, fmt.Errorf("%s: want {\"op\": \"0x…\", \"block\": \"0x…\"}", where)
		}
		return seenOp{op: *j.Op, block: *j.Block}, nil
	}
	if t := bytes.TrimSpace(raw); len(t) > 0 && t[0] == '[' {
		var all []jsonSeen
		if err := json.Unmarshal(t, &all); err != nil {
			return nil, fmt.Errorf("JSON array: %w", err)
		}
		out := make([]seenOp, 0, len(all))
		for i, j := range all {
			s, err := fromJSON(j, fmt.Sprintf("element %d", i))
			if err != nil {
				return nil, err
			}
			out = append(out, s)
		}
		return out, nil
	}
	var out []seenOp
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		where := fmt.Sprintf("line %d", n)
		if line[0] == '{' {
			var j jsonSeen
			if err := json.Unmarshal([]byte(line), &j); err != nil {
				return nil, fmt.Errorf("%s: %w", where, err)
			}
			s, err := fromJSON(j, where)
			if err != nil {
				return nil, err
			}
			out = append(out, s)
			continue
		}
		f := strings.Fields(line)
		if len(f) != 2 {
			return nil, fmt.Errorf("%s: want \"<operation hash> <block hash>\", got %q", where, line)
		}
		var s seenOp
		if err := s.op.UnmarshalText([]byte(f[0])); err != nil {
			return nil, fmt.Errorf("%s: operation: %w", where, err)
		}
		if err := s.block.UnmarshalText([]byte(f[1])); err != nil {
			return nil, fmt.Errorf("%s: block: %w", where, err)
		}
		out = append(out, s)
	}
	return out, sc.Err()
}

// seenLog writes a --seen file as a load generator sees its operations
// InSidechainBlock: one "<operation hash> <block hash>" line each. It is
// safe for concurrent use; nil records nothing.
type seenLog struct {
	mu  sync.Mutex
	f   *os.File
	w   *bufio.Writer
	err error
}

// createSeenLog creates (or truncates) path; an empty path gives nil.
func createSeenLog(path string) (*seenLog, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("--seen-file: %w", err)
	}
	return &seenLog{f: f, w: bufio.NewWriter(f)}, nil
}

// record notes that op (0x-hex, as the RPC answered it) was seen in block.
func (l *seenLog) record(op string, block sidechain.Hash) {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err == nil {
		_, l.err = fmt.Fprintf(l.w, "%s %s\n", op, block)
	}
}

// Close flushes and closes the file, returning the first write error.
func (l *seenLog) Close() error {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	err := errors.Join(l.err, l.w.Flush(), l.f.Close())
	if err != nil {
		return fmt.Errorf("--seen-file: %w", err)
	}
	return nil
}

// ---- the run ----

// invariantOptions are check-invariants' flags.
type invariantOptions struct {
	workers      []string
	seenFile     string
	quietTimeout time.Duration
	settle       time.Duration
	mintedArg    string
	shardArg     string
	timeout      time.Duration

	minted *big.Int
	shard  *sidechain.ShardID
}

// check validates the flags before anything dials.
func (o *invariantOptions) check() error {
	for _, w := range o.workers {
		if _, err := parseWorkerURL(w); err != nil {
			return err
		}
	}
	if o.quietTimeout <= 0 || o.settle < 0 {
		return fmt.Errorf("--quiet-timeout must be positive and --settle not negative (got %s, %s)", o.quietTimeout, o.settle)
	}
	if err := checkTimeout(o.timeout); err != nil {
		return err
	}
	m, err := parseAmount(o.mintedArg)
	if err != nil {
		return fmt.Errorf("--minted: %w", err)
	}
	o.minted = m.Big()
	if o.shardArg != "" {
		s, err := sidechain.ParseShardID(o.shardArg)
		if err != nil {
			return fmt.Errorf("--shard: %w", err)
		}
		o.shard = &s
	}
	return nil
}

// runInvariants waits until the validateers agree on a head that stays put
// for settle and the supply holds (or quietTimeout passes), then checks
// the chain, the payouts and the seen operations against that head.
func runInvariants(ctx context.Context, src invariantSources, seen []seenOp, haveSeen bool, minted *big.Int, shard sidechain.ShardID, settle, quietTimeout time.Duration, out io.Writer) []invariantResult {
	began := time.Now()
	deadline := began.Add(quietTimeout)
	var heads, supply invariantResult
	var agreed, last *trustedrpc.Header
	var since time.Time // when the agreed head last changed
	for {
		heads, agreed = checkHeads(src.heads(ctx))
		if agreed == nil || last == nil || *agreed != *last {
			last, since = agreed, time.Now()
		}
		bond, bondErr := src.bonding(ctx)
		supply = checkSupply(bond, bondErr, src.issuance(ctx), minted)
		settled := agreed != nil && time.Since(since) >= settle
		if settled && supply.ok {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			if agreed != nil && !settled {
				heads = fails(heads.name, "%s, but the head did not stay put for --settle %s within --quiet-timeout %s (blocks still being made?)", heads.detail, settle, quietTimeout)
			}
			if !supply.ok {
				supply.detail += fmt.Sprintf(" (not quiet after --quiet-timeout %s)", quietTimeout)
			}
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(invariantPoll):
		}
	}
	if heads.ok {
		heads.detail += fmt.Sprintf(", unchanged for %s (quiet after %s)", settle, time.Since(began).Round(10*time.Millisecond))
	}
	results := []invariantResult{heads, supply}
	fmt.Fprintln(out, heads)
	fmt.Fprintln(out, supply)

	var chain *finalChain
	var chainErr error
	if agreed != nil {
		chain, chainErr = canonicalChain(ctx, src.blockSources(ctx), shard, *agreed)
		results = append(results, checkChain(chain, chainErr))
	} else {
		results = append(results, fails("chain", "not checked: the validateers never agreed on a head"))
	}
	fmt.Fprintln(out, results[len(results)-1])
	usable := chain
	if chainErr != nil {
		usable = nil
	}
	ps, err := src.payouts(ctx)
	results = append(results, checkPayouts(ps, err, usable))
	fmt.Fprintln(out, results[len(results)-1])
	if haveSeen {
		if usable == nil {
			results = append(results, fails("seen", "not checked: the final chain could not be read (above)"))
		} else {
			results = append(results, checkSeen(seen, usable))
		}
		fmt.Fprintln(out, results[len(results)-1])
	}
	return results
}

func checkInvariantsCmd(w *workerEnv) *cobra.Command {
	o := invariantOptions{quietTimeout: defaultQuietTimeout, settle: defaultSettle, mintedArg: "0", timeout: defaultTimeout}
	cmd := &cobra.Command{
		Use:   "check-invariants [--workers URL,...] [--seen FILE] [--quiet-timeout D] [--minted N]",
		Short: "Check what must hold of the parentchain and the sidechain once the validateers are quiet",
		Long: `check-invariants reads the parentchain node (-u/-p) and every validateer of --workers
(default: -U/-P; each attested as for every trusted command, unless --insecure), waits
until the validateers agree on a head that stays put for --settle and the supply holds
(up to --quiet-timeout), and prints one line per invariant, "ok" or "FAILED" with the
figures:

  heads    every validateer reports the same head (number and hash) and state hash
  supply   the shard's bonding account on the parentchain holds the sidechain's total
           issuance (plus --minted, what the root created with set-balance). Unshieldings
           executed on the sidechain and not yet paid make a difference while they last;
           nothing outside the enclaves can read them (amounts travel in encrypted state
           diffs), so the check waits for quiet until none is in flight
  chain    the final chain, fetched from the validateers' untrusted ports and linked by
           parent hashes to the agreed head, holds no operation twice
  payouts  no unshielding call hash is paid twice (UnshieldedFunds events, tx_search),
           and each paid call is an operation of the final chain
  seen     every operation of --seen (lines "<operation hash> <block hash>", or JSON
           objects {"op", "block"}, as trusted benchmark --seen-file writes) is in the
           final chain exactly once, in whichever block a fork left it

It exits 1 if any invariant FAILED.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.check(); err != nil {
				return err
			}
			return w.checkInvariants(ctxOf(cmd), o)
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.workers, "workers", nil, "validateers' trusted RPC, wss://host:port; repeat or separate with commas (default: -U/-P)")
	f.StringVar(&o.seenFile, "seen", "", "file of operations clients saw InSidechainBlock: lines \"<operation hash> <block hash>\" or JSON {\"op\",\"block\"}")
	f.DurationVar(&o.quietTimeout, "quiet-timeout", o.quietTimeout, "how long to wait for the validateers to agree on a settled head and for the supply to hold")
	f.DurationVar(&o.settle, "settle", o.settle, "how long the agreed head must stay unchanged to count as quiet")
	f.StringVar(&o.mintedArg, "minted", o.mintedArg, "planck the shard's root created with set-balance (dev chains), which the bonding account never received")
	f.StringVar(&o.shardArg, "shard", "", "shard, base58 or 0x-hex (default: the first validateer's)")
	f.DurationVar(&o.timeout, "timeout", o.timeout, "how long to wait for the connections")
	return cmd
}

// checkInvariants is the command: dial, read, check, print.
func (w *workerEnv) checkInvariants(ctx context.Context, o invariantOptions) error {
	var seen []seenOp
	if o.seenFile != "" {
		f, err := os.Open(o.seenFile)
		if err != nil {
			return fmt.Errorf("--seen: %w", err)
		}
		seen, err = parseSeen(f)
		f.Close() //nolint:errcheck
		if err != nil {
			return fmt.Errorf("--seen %s: %w", o.seenFile, err)
		}
	}
	node, err := w.nodeClient()
	if err != nil {
		return err
	}
	// Any account may read the total issuance: a throwaway key signs.
	seed := make([]byte, 32)
	if _, err := rand.Read(seed); err != nil {
		return fmt.Errorf("a getter key: %w", err)
	}
	signer, err := account.PairFromSeed(seed)
	if err != nil {
		return fmt.Errorf("a getter key: %w", err)
	}
	src, err := w.dialInvariantSources(ctx, o, node, signer)
	if err != nil {
		return err
	}
	defer src.close()
	fmt.Fprintf(w.out, "checking shard %s on %d validateer(s) and the node %s:%d (waiting up to %s for quiet)\n",
		src.shard, len(src.workers), w.opts.NodeURL, w.opts.NodePort, o.quietTimeout)
	results := runInvariants(ctx, src, seen, o.seenFile != "", o.minted, src.shard, o.settle, o.quietTimeout, w.out)
	failed := 0
	for _, r := range results {
		if !r.ok {
			failed++
		}
	}
	if failed > 0 {
		return fmt.Errorf("%w: %d of %d", errInvariantsFailed, failed, len(results))
	}
	fmt.Fprintf(w.out, "all %d invariants hold\n", len(results))
	return nil
}

// liveSources reads the node and the validateers.
type liveSources struct {
	node      *client.Client
	shard     sidechain.ShardID
	signer    *account.Pair
	workers   []*invariantWorker
	untrusted []*untrustedBlocks // the workers' untrusted ports, once asked for
}

// invariantWorker is one validateer: its trusted RPC connection (re-dialled
// after a failure) and its untrusted port.
type invariantWorker struct {
	env       *workerEnv
	url       string
	c         *rpcclient.Client
	untrusted string
}

func (w *workerEnv) dialInvariantSources(ctx context.Context, o invariantOptions, node *client.Client, signer *account.Pair) (*liveSources, error) {
	targets := []workerOptions{w.worker}
	if len(o.workers) > 0 {
		targets = targets[:0]
		for _, u := range o.workers {
			wo, err := parseWorkerURL(u)
			if err != nil {
				return nil, err
			}
			wo.Insecure = w.worker.Insecure
			targets = append(targets, wo)
		}
	}
	dctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	if !w.worker.Insecure {
		// Read the chain facts once, for all connections.
		if _, err := w.workerChain(dctx); err != nil {
			return nil, err
		}
	}
	src := &liveSources{node: node, signer: signer}
	for i, t := range targets {
		we := *w
		we.worker = t
		iw := &invariantWorker{env: &we, url: fmt.Sprintf("%s:%d", t.URL, t.Port)}
		src.workers = append(src.workers, iw)
		c, err := iw.conn(dctx)
		if err != nil {
			src.close()
			return nil, err
		}
		served, err := workerShard(dctx, c)
		if err != nil {
			src.close()
			return nil, fmt.Errorf("%s: %w", iw.url, err)
		}
		switch {
		case i == 0 && o.shard != nil:
			src.shard = *o.shard
		case i == 0:
			src.shard = served
		}
		if served != src.shard {
			src.close()
			return nil, fmt.Errorf("%s serves shard %s, not %s", iw.url, served, src.shard)
		}
		if iw.untrusted, err = c.String(dctx, "author_getUntrustedUrl"); err != nil {
			src.close()
			return nil, fmt.Errorf("%s: author_getUntrustedUrl: %w", iw.url, err)
		}
	}
	return src, nil
}

// conn returns the worker's connection, dialling it if there is none.
func (iw *invariantWorker) conn(ctx context.Context) (*rpcclient.Client, error) {
	if iw.c != nil {
		return iw.c, nil
	}
	c, err := iw.env.dialWorker(ctx, nil)
	if err != nil {
		return nil, err
	}
	iw.c = c
	return c, nil
}

// failed drops the connection after an error, so that the next read
// dials again (the validateer may have restarted).
func (iw *invariantWorker) failed() {
	if iw.c != nil {
		iw.c.Close() //nolint:errcheck
		iw.c = nil
	}
}

func (s *liveSources) close() {
	for _, iw := range s.workers {
		iw.failed()
	}
	for _, u := range s.untrusted {
		u.close()
	}
}

func (s *liveSources) heads(ctx context.Context) []headReport {
	out := make([]headReport, len(s.workers))
	for i, iw := range s.workers {
		out[i].worker = iw.url
		cctx, cancel := context.WithTimeout(ctx, invariantCallTimeout)
		c, err := iw.conn(cctx)
		if err == nil {
			out[i].header, err = c.Header(cctx, s.shard)
			if err != nil {
				iw.failed()
			}
		}
		cancel()
		if err != nil {
			out[i].err = fmt.Errorf("chain_getHeader: %w", err)
		}
	}
	return out
}

func (s *liveSources) issuance(ctx context.Context) []issuanceReport {
	out := make([]issuanceReport, len(s.workers))
	op, err := (&trusted.Operation{Getter: trusted.SignGetter(s.signer, trusted.Getter{TotalIssuance: &trusted.TotalIssuanceQuery{}}, s.shard)}).Encode()
	for i, iw := range s.workers {
		out[i].worker = iw.url
		if err != nil {
			out[i].err = err
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, invariantCallTimeout)
		c, cerr := iw.conn(cctx)
		var v string
		if cerr == nil {
			if v, cerr = c.ExecuteGetter(cctx, s.shard, op); cerr != nil {
				iw.failed()
			}
		}
		cancel()
		if cerr == nil {
			out[i].issuance, cerr = bigOf("total issuance", v)
		}
		out[i].err = cerr
	}
	return out
}

func (s *liveSources) bonding(ctx context.Context) (*big.Int, error) {
	cctx, cancel := context.WithTimeout(ctx, invariantCallTimeout)
	defer cancel()
	var info enclavebridge.BondingAccountInfo
	if err := s.node.Query(cctx, "/enclavebridge/bonding_account/"+s.shard.String(), &info); err != nil {
		return nil, err
	}
	return info.Free.Big(), nil
}

// payouts reads every UnshieldedFunds event of the shard from the node's
// transaction index.
func (s *liveSources) payouts(ctx context.Context) ([]payout, error) {
	q := fmt.Sprintf("%s.shard='%s'", eventUnshielded, s.shard)
	var out []payout
	for page := 1; ; page++ {
		cctx, cancel := context.WithTimeout(ctx, invariantCallTimeout)
		perPage := txSearchPage
		res, err := s.node.RPC().TxSearch(cctx, q, false, &page, &perPage, "asc")
		cancel()
		if err != nil {
			return nil, fmt.Errorf("tx_search %q: %w", q, err)
		}
		for _, tx := range res.Txs {
			for _, ev := range tx.TxResult.Events {
				if ev.Type != eventUnshielded {
					continue
				}
				p, ok, err := payoutOf(client.FromABCI(ev.Type, ev.Attributes).Attrs, s.shard)
				if err != nil {
					return nil, fmt.Errorf("tx %X at height %d: %w", tx.Hash, tx.Height, err)
				}
				if ok {
					p.height = tx.Height
					out = append(out, p)
				}
			}
		}
		if len(res.Txs) == 0 || page*txSearchPage >= res.TotalCount {
			return out, nil
		}
	}
}

// payoutOf reads an UnshieldedFunds event's attributes; ok is false for
// another shard's.
func payoutOf(attrs []types.Attr, shard sidechain.ShardID) (payout, bool, error) {
	var p payout
	var gotHash, gotAmount bool
	for _, a := range attrs {
		switch a.Key {
		case "shard":
			if a.Value != shard.String() {
				return p, false, nil
			}
		case "call_hash":
			if err := p.callHash.UnmarshalText([]byte(a.Value)); err != nil {
				return p, false, fmt.Errorf("%s call_hash: %w", eventUnshielded, err)
			}
			gotHash = true
		case "amount":
			v, ok := new(big.Int).SetString(a.Value, 10)
			if !ok || v.Sign() < 0 {
				return p, false, fmt.Errorf("%s amount %q", eventUnshielded, a.Value)
			}
			p.amount, gotAmount = v, true
		}
	}
	if !gotHash || !gotAmount {
		return p, false, fmt.Errorf("%s without call_hash or amount", eventUnshielded)
	}
	return p, true, nil
}

func (s *liveSources) blockSources(context.Context) []blockSource {
	if s.untrusted == nil {
		for _, iw := range s.workers {
			s.untrusted = append(s.untrusted, &untrustedBlocks{url: iw.untrusted, shard: s.shard})
		}
	}
	out := make([]blockSource, len(s.untrusted))
	for i, u := range s.untrusted {
		out[i] = u
	}
	return out
}

// untrustedBlocks fetches blocks from a validateer's untrusted port,
// dialling it on first use.
type untrustedBlocks struct {
	url   string
	shard sidechain.ShardID
	f     *indirectFollower
}

func (u *untrustedBlocks) name() string { return u.url }

func (u *untrustedBlocks) close() {
	if u.f != nil {
		u.f.close()
	}
}

func (u *untrustedBlocks) blocks(ctx context.Context, from, to uint64) ([]*sidechain.Block, error) {
	if u.f == nil {
		f, err := dialUntrusted(ctx, u.url)
		if err != nil {
			return nil, err
		}
		u.f = f
	}
	cctx, cancel := context.WithTimeout(ctx, invariantCallTimeout)
	defer cancel()
	return u.f.fetch(cctx, u.shard, from, min(to, from+indirectFetchBlocks-1))
}

// dialUntrusted connects to a validateer's untrusted port (ws://host:port).
// What it serves is checked block by block (signatures) and by linking the
// blocks to a head read over the attested connection.
func dialUntrusted(ctx context.Context, url string) (*indirectFollower, error) {
	cctx, cancel := context.WithTimeout(ctx, invariantCallTimeout)
	defer cancel()
	d := ws.Dialer{HandshakeTimeout: invariantCallTimeout}
	wc, resp, err := d.DialContext(cctx, url, nil)
	if err != nil {
		return nil, fmt.Errorf("untrusted port %s: %w", url, err)
	}
	if resp != nil && resp.Body != nil {
		resp.Body.Close() //nolint:errcheck
	}
	wc.SetReadLimit(indirectFetchReadLimit)
	noCalls := jsonrpc2.HandlerWithError(func(context.Context, *jsonrpc2.Conn, *jsonrpc2.Request) (any, error) { return nil, nil })
	return &indirectFollower{url: url, conn: jsonrpc2.NewConn(context.Background(), jsonrpcws.NewObjectStream(wc), noCalls), codec: sidechain.NewCodec()}, nil
}
