package cli

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// ---- fabricated sidechains ----

var invShard = sidechain.ShardID(sha256.Sum256([]byte("invariants test shard")))

func opHash(s string) sidechain.Hash { return sha256.Sum256([]byte(s)) }

// chainBuilder seals blocks of invShard, each on a given parent.
type chainBuilder struct {
	t     *testing.T
	codec *sidechain.Codec
	pair  *account.Pair
}

func newChainBuilder(t *testing.T) *chainBuilder {
	t.Helper()
	p, err := account.DevPair("//InvariantsAuthor")
	if err != nil {
		t.Fatal(err)
	}
	return &chainBuilder{t: t, codec: sidechain.NewCodec(), pair: p}
}

// extend seals one block per op list on top of parent (nil: from #1).
func (c *chainBuilder) extend(parent *sidechain.Block, ops ...[]string) []*sidechain.Block {
	var out []*sidechain.Block
	for _, names := range ops {
		h := sidechain.Header{Number: 1, Shard: invShard}
		if parent != nil {
			h.Number, h.ParentHash = parent.Header.Number+1, c.codec.Hash(parent)
		}
		d := sidechain.BlockData{Timestamp: int64(h.Number) * 300}
		for _, n := range names {
			d.Operations = append(d.Operations, opHash(n))
		}
		b := c.codec.Seal(c.pair, h, d)
		out = append(out, b)
		parent = b
	}
	return out
}

func (c *chainBuilder) head(b *sidechain.Block) trustedrpc.Header {
	return trustedrpc.Header{Header: b.Header, Hash: c.codec.Hash(b), StateHash: sidechain.Hash{byte(b.Header.Number)}}
}

// fakeBlocks serves the blocks it holds, at most perCall of them an
// answer (0: no bound), as a validateer's untrusted port does.
type fakeBlocks struct {
	label   string
	held    map[uint64]*sidechain.Block
	perCall int
	err     error
	calls   int
}

func holding(label string, bs ...*sidechain.Block) *fakeBlocks {
	f := &fakeBlocks{label: label, held: map[uint64]*sidechain.Block{}}
	for _, b := range bs {
		f.held[b.Header.Number] = b
	}
	return f
}

func (f *fakeBlocks) name() string { return f.label }

func (f *fakeBlocks) blocks(_ context.Context, from, to uint64) ([]*sidechain.Block, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	var out []*sidechain.Block
	for n := from; n <= to; n++ {
		if b, ok := f.held[n]; ok {
			if f.perCall > 0 && len(out) == f.perCall {
				break
			}
			out = append(out, b)
		}
	}
	return out, nil
}

func sources(fs ...*fakeBlocks) []blockSource {
	out := make([]blockSource, len(fs))
	for i, f := range fs {
		out[i] = f
	}
	return out
}

// ---- the --seen file ----

func TestParseSeenReadsTextAndJSON(t *testing.T) {
	a, b := opHash("a"), opHash("b")
	ba, bb := opHash("block a"), opHash("block b")
	want := []seenOp{{op: a, block: ba}, {op: b, block: bb}}
	for _, tc := range []struct{ name, file string }{
		{"text", fmt.Sprintf("# op block\n%s %s\n\n  %s   %s  \n", a, ba, b, bb)},
		{"JSON lines", fmt.Sprintf(`{"op":"%s","block":"%s"}`+"\n"+`{"op":"%s","block":"%s"}`+"\n", a, ba, b, bb)},
		{"JSON array", fmt.Sprintf(`[{"op":"%s","block":"%s"}, {"op":"%s","block":"%s"}]`, a, ba, b, bb)},
	} {
		got, err := parseSeen(strings.NewReader(tc.file))
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: got %v, want %v", tc.name, got, want)
		}
	}
	for _, bad := range []string{
		fmt.Sprintf("%s\n", a),                 // no block
		fmt.Sprintf("%s %s extra\n", a, ba),    // a third field
		fmt.Sprintf("%s 0x1234\n", a),          // a short hash
		fmt.Sprintf("%s %s\n", a[:], "zz"),     // not hex
		fmt.Sprintf(`{"op":"%s"}`+"\n", a),     // JSON without block
		fmt.Sprintf(`[{"block":"%s"}]`, ba),    // array element without op
		fmt.Sprintf(`[{"op":"%s","block":`, a), // truncated JSON
	} {
		if got, err := parseSeen(strings.NewReader(bad)); err == nil {
			t.Errorf("parseSeen(%q) = %v, want an error", bad, got)
		}
	}
}

func TestSeenLogWritesWhatParseSeenReads(t *testing.T) {
	path := filepath.Join(t.TempDir(), "seen")
	l, err := createSeenLog(path)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l.record(opHash(fmt.Sprint(i)).String(), opHash("block"))
		}()
	}
	wg.Wait()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	got, err := parseSeen(bytes.NewReader(b))
	if err != nil || len(got) != 50 {
		t.Fatalf("read back %d entries, err %v", len(got), err)
	}
	var none *seenLog // no --seen-file: records nothing, closes cleanly
	none.record("0x00", opHash("block"))
	if err := none.Close(); err != nil {
		t.Errorf("nil log: %v", err)
	}
	if l, err := createSeenLog(""); l != nil || err != nil {
		t.Errorf("createSeenLog(\"\") = %v, %v; want nil, nil", l, err)
	}
}

// ---- the checks ----

func TestCheckHeadsNeedsOneHeadAndState(t *testing.T) {
	c := newChainBuilder(t)
	bs := c.extend(nil, nil, nil)
	h1, h2 := c.head(bs[0]), c.head(bs[1])
	otherState := h2
	otherState.StateHash = sidechain.Hash{0xff}
	sibling := c.extend(bs[0], []string{"x"})[0]
	for _, tc := range []struct {
		name    string
		reports []headReport
		ok      bool
	}{
		{"all at #2", []headReport{{"v0", h2, nil}, {"v1", h2, nil}, {"v2", h2, nil}}, true},
		{"one behind", []headReport{{"v0", h2, nil}, {"v1", h1, nil}}, false},
		{"same number, another block", []headReport{{"v0", h2, nil}, {"v1", c.head(sibling), nil}}, false},
		{"same block, another state", []headReport{{"v0", h2, nil}, {"v1", otherState, nil}}, false},
		{"one does not answer", []headReport{{"v0", h2, nil}, {"v1", trustedrpc.Header{}, errors.New("connection refused")}}, false},
		{"nobody", nil, false},
	} {
		r, agreed := checkHeads(tc.reports)
		if r.ok != tc.ok || (agreed != nil) != tc.ok {
			t.Errorf("%s: %s (agreed %v), want ok=%v", tc.name, r, agreed, tc.ok)
		}
		if tc.ok && *agreed != h2 {
			t.Errorf("%s: agreed on %+v, want %+v", tc.name, *agreed, h2)
		}
	}
}

func TestCheckSupplyComparesBondingWithIssuancePlusMinted(t *testing.T) {
	n := big.NewInt
	iss := func(vs ...int64) []issuanceReport {
		var out []issuanceReport
		for i, v := range vs {
			out = append(out, issuanceReport{worker: fmt.Sprint("v", i), issuance: n(v)})
		}
		return out
	}
	for _, tc := range []struct {
		name      string
		bonding   *big.Int
		bondErr   error
		issuances []issuanceReport
		minted    *big.Int
		ok        bool
		mention   string
	}{
		{"equal", n(1000), nil, iss(1000, 1000), n(0), true, "1000"},
		{"an unshielding in flight", n(1000), nil, iss(700, 700), n(0), false, "off by 300"},
		{"a shielding not yet processed", n(1000), nil, iss(1200, 1200), n(0), false, "off by -200"},
		{"minted by the root", n(1000), nil, iss(1500, 1500), n(500), true, "500 minted by the root"},
		{"validateers disagree", n(1000), nil, iss(1000, 999), n(0), false, "disagree"},
		{"a validateer does not answer", n(1000), nil, []issuanceReport{{worker: "v0", err: errors.New("closed")}}, n(0), false, "closed"},
		{"no bonding account read", nil, errors.New("node down"), iss(1000), n(0), false, "node down"},
	} {
		r := checkSupply(tc.bonding, tc.bondErr, tc.issuances, tc.minted)
		if r.ok != tc.ok || !strings.Contains(r.detail, tc.mention) {
			t.Errorf("%s: %s; want ok=%v mentioning %q", tc.name, r, tc.ok, tc.mention)
		}
	}
}

func TestCanonicalChainFollowsParentHashesAcrossSources(t *testing.T) {
	c := newChainBuilder(t)
	main := c.extend(nil, []string{"a"}, []string{"b"}, []string{"c"}, []string{"d"}, []string{"e"})
	stale := c.extend(main[1], []string{"c"}, []string{"x"}) // a branch that lost at #3
	head := c.head(main[4])

	// The first source still holds the losing branch at #3 and #4; the
	// second, with its answers cut short (a byte bound), the final chain.
	loser := holding("loser", main[0], main[1], stale[0], stale[1])
	winner := holding("winner", main...)
	winner.perCall = 2
	fc, err := canonicalChain(context.Background(), sources(loser, winner), invShard, head)
	if err != nil {
		t.Fatal(err)
	}
	if !fc.complete() || len(fc.hashes) != 5 {
		t.Fatalf("chain from #%d with %d blocks, want #1..#5", fc.from, len(fc.hashes))
	}
	for i, b := range main {
		if fc.hashes[uint64(i+1)] != c.codec.Hash(b) {
			t.Errorf("#%d is not the final chain's block", i+1)
		}
	}
	if got := fc.ops[opHash("c")]; len(got) != 1 || got[0] != 3 {
		t.Errorf("op c in blocks %v, want [3] (not the stale branch's)", got)
	}
	if len(fc.ops[opHash("x")]) != 0 {
		t.Errorf("the stale branch's op x is in the final chain")
	}
	if r := checkChain(fc, nil); !r.ok {
		t.Errorf("checkChain: %s", r)
	}

	// Validateers that joined late hold blocks from their join on: the
	// chain is read from there, and says so.
	late := holding("late", main[2:]...)
	fc, err = canonicalChain(context.Background(), sources(late), invShard, head)
	if err != nil || fc.complete() || fc.from != 3 {
		t.Fatalf("from a late joiner: from #%d complete=%v err=%v; want from #3", fc.from, fc.complete(), err)
	}
	if r := checkChain(fc, nil); !r.ok || !strings.Contains(r.detail, "below #3") {
		t.Errorf("checkChain on a partial chain: %s", r)
	}

	// Only the losing branch at #4: the head's parent is nowhere.
	_, err = canonicalChain(context.Background(), sources(loser, holding("head only", main[4])), invShard, head)
	if err == nil || !strings.Contains(err.Error(), "#4") {
		t.Errorf("a chain broken at #4: %v", err)
	}
	if r := checkChain(&finalChain{head: head}, err); r.ok {
		t.Errorf("checkChain on a broken chain: %s", r)
	}
	// Nobody serves the head itself, or a block between two served ones.
	if _, err := canonicalChain(context.Background(), sources(holding("v0", main[:4]...)), invShard, head); err == nil || !strings.Contains(err.Error(), "head block #5") {
		t.Errorf("the head served by nobody: %v", err)
	}
	gap := holding("gap", main[0], main[1], main[3], main[4])
	if _, err := canonicalChain(context.Background(), sources(gap), invShard, head); err == nil || !strings.Contains(err.Error(), "block #3") {
		t.Errorf("a gap at #3: %v", err)
	}

	// A source that fails is named.
	broken := holding("broken")
	broken.err = errors.New("connection refused")
	if _, err := canonicalChain(context.Background(), sources(broken), invShard, head); err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Errorf("a failing source: %v", err)
	}

	// Blocks of another shard do not count.
	other := newChainBuilder(t)
	foreign := other.codec.Seal(other.pair, sidechain.Header{Number: 1, Shard: sidechain.ShardID{1}}, sidechain.BlockData{})
	if _, err := canonicalChain(context.Background(), sources(holding("foreign", foreign)), invShard, other.head(foreign)); err == nil {
		t.Errorf("a block of another shard was taken")
	}
}

func TestCheckChainFindsAnOperationExecutedTwice(t *testing.T) {
	c := newChainBuilder(t)
	bs := c.extend(nil, []string{"a", "b"}, []string{"c"}, []string{"b"})
	fc, err := canonicalChain(context.Background(), sources(holding("v0", bs...)), invShard, c.head(bs[2]))
	if err != nil {
		t.Fatal(err)
	}
	if r := checkChain(fc, nil); r.ok || !strings.Contains(r.detail, opHash("b").String()) {
		t.Errorf("checkChain: %s; want FAILED naming op b", r)
	}
}

func TestCheckSeenWantsEachSeenOperationOnceInTheFinalChain(t *testing.T) {
	c := newChainBuilder(t)
	main := c.extend(nil, []string{"a"}, []string{"b", "moved"}, []string{"c"})
	stale := c.extend(main[0], []string{"moved"})[0] // retracted: its op re-included in main[1]
	fc, err := canonicalChain(context.Background(), sources(holding("v0", main...)), invShard, c.head(main[2]))
	if err != nil {
		t.Fatal(err)
	}
	h := c.codec.Hash
	seen := []seenOp{
		{opHash("a"), h(main[0])},
		{opHash("b"), h(main[1])},
		{opHash("moved"), h(stale)},
		{opHash("c"), h(main[2])},
	}
	r := checkSeen(seen, fc)
	if !r.ok || !strings.Contains(r.detail, "4 operations") || !strings.Contains(r.detail, "1 of them in another block") {
		t.Errorf("checkSeen: %s", r)
	}
	// An op seen in the stale block and again in the final one counts once.
	if r := checkSeen(append(seen, seenOp{opHash("moved"), h(main[1])}), fc); !r.ok || !strings.Contains(r.detail, "0 of them in another block") {
		t.Errorf("checkSeen with the op seen twice: %s", r)
	}
	lost := append(seen, seenOp{opHash("lost"), h(stale)})
	if r := checkSeen(lost, fc); r.ok || !strings.Contains(r.detail, opHash("lost").String()) {
		t.Errorf("checkSeen with a lost op: %s", r)
	}

	dup := c.extend(main[2], []string{"a"})
	fc, err = canonicalChain(context.Background(), sources(holding("v0", append(main, dup...)...)), invShard, c.head(dup[0]))
	if err != nil {
		t.Fatal(err)
	}
	if r := checkSeen(seen, fc); r.ok || !strings.Contains(r.detail, "more than once") {
		t.Errorf("checkSeen with an op executed twice: %s", r)
	}
}

func TestCheckPayoutsWantsEachCallPaidOnceFromTheFinalChain(t *testing.T) {
	c := newChainBuilder(t)
	bs := c.extend(nil, []string{"unshield 1"}, []string{"unshield 2"})
	fc, err := canonicalChain(context.Background(), sources(holding("v0", bs...)), invShard, c.head(bs[1]))
	if err != nil {
		t.Fatal(err)
	}
	pay := func(op string, height int64) payout {
		return payout{callHash: opHash(op), amount: big.NewInt(10), height: height}
	}
	if r := checkPayouts([]payout{pay("unshield 1", 7), pay("unshield 2", 9)}, nil, fc); !r.ok || !strings.Contains(r.detail, "2 unshieldings paid (20 planck)") {
		t.Errorf("two payouts: %s", r)
	}
	if r := checkPayouts([]payout{pay("unshield 1", 7), pay("unshield 1", 12)}, nil, fc); r.ok || !strings.Contains(r.detail, "paid 2 times") {
		t.Errorf("a call paid twice: %s", r)
	}
	if r := checkPayouts([]payout{pay("orphan", 7)}, nil, fc); r.ok || !strings.Contains(r.detail, opHash("orphan").String()) {
		t.Errorf("a payout from an orphaned block: %s", r)
	}
	if r := checkPayouts(nil, nil, fc); !r.ok {
		t.Errorf("no payouts: %s", r)
	}
	if r := checkPayouts([]payout{pay("orphan", 7)}, nil, nil); !r.ok || !strings.Contains(r.detail, "not matched") {
		t.Errorf("without a chain: %s", r)
	}
	if r := checkPayouts(nil, errors.New("no index"), fc); r.ok {
		t.Errorf("tx_search failed: %s", r)
	}
}

func TestPayoutOfReadsTheEvent(t *testing.T) {
	h := opHash("call")
	attrs := []types.Attr{{Key: "shard", Value: invShard.String()}, {Key: "beneficiary", Value: "5F…"}, {Key: "amount", Value: "2000000000"}, {Key: "call_hash", Value: h.String()}}
	p, ok, err := payoutOf(attrs, invShard)
	if err != nil || !ok || p.callHash != h || p.amount.String() != "2000000000" {
		t.Fatalf("payoutOf = %+v %v %v", p, ok, err)
	}
	if _, ok, err := payoutOf(attrs, sidechain.ShardID{7}); ok || err != nil {
		t.Errorf("another shard's event: ok=%v err=%v", ok, err)
	}
	if _, _, err := payoutOf(attrs[:3], invShard); err == nil {
		t.Errorf("an event without call_hash was taken")
	}
	bad := append([]types.Attr{}, attrs...)
	bad[2].Value = "-5"
	if _, _, err := payoutOf(bad, invShard); err == nil {
		t.Errorf("a negative amount was taken")
	}
}

// ---- the whole run, on fabricated sources ----

// fakeSources answers from scripted sequences: each poll takes the next
// element (the last repeats).
type fakeSources struct {
	mu        sync.Mutex
	headSeq   [][]headReport
	bondSeq   []int64
	issued    int64
	payoutsOf []payout
	blocks    []blockSource
	polls     int // heads read
	bonds     int // bonding accounts read
}

func (f *fakeSources) heads(context.Context) []headReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.polls++
	return f.headSeq[min(f.polls, len(f.headSeq))-1]
}

func (f *fakeSources) issuance(context.Context) []issuanceReport {
	return []issuanceReport{{worker: "v0", issuance: big.NewInt(f.issued)}, {worker: "v1", issuance: big.NewInt(f.issued)}}
}

func (f *fakeSources) bonding(context.Context) (*big.Int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.bonds++
	return big.NewInt(f.bondSeq[min(f.bonds, len(f.bondSeq))-1]), nil
}

func (f *fakeSources) payouts(context.Context) ([]payout, error) { return f.payoutsOf, nil }

func (f *fakeSources) blockSources(context.Context) []blockSource { return f.blocks }

func TestRunInvariantsWaitsForQuietThenChecksEverything(t *testing.T) {
	c := newChainBuilder(t)
	bs := c.extend(nil, []string{"shield"}, []string{"t1", "unshield"}, []string{"t2"})
	h2, h3 := c.head(bs[1]), c.head(bs[2])
	src := &fakeSources{
		// v1 lags behind at first, then both hold #3.
		headSeq: [][]headReport{
			{{"v0", h3, nil}, {"v1", h2, nil}},
			{{"v0", h3, nil}, {"v1", h2, nil}},
			{{"v0", h3, nil}, {"v1", h3, nil}},
		},
		// An unshielding of 300 is in flight for the first polls.
		bondSeq:   []int64{1300, 1300, 1300, 1300, 1000},
		issued:    1000,
		payoutsOf: []payout{{callHash: opHash("unshield"), amount: big.NewInt(300), height: 40}},
		blocks:    sources(holding("v0", bs...)),
	}
	seen := []seenOp{{opHash("t1"), c.codec.Hash(bs[1])}, {opHash("t2"), c.codec.Hash(bs[2])}}
	var out bytes.Buffer
	results := runInvariants(context.Background(), src, seen, true, big.NewInt(0), invShard, 100*time.Millisecond, 20*time.Second, &out)
	if len(results) != 5 {
		t.Fatalf("%d results, want 5:\n%s", len(results), out.String())
	}
	for _, r := range results {
		if !r.ok {
			t.Errorf("%s", r)
		}
	}
	if src.polls < 5 {
		t.Errorf("%d polls: it did not wait for the supply to settle", src.polls)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	for i, name := range []string{"heads", "supply", "chain", "payouts", "seen"} {
		if i >= len(lines) || !strings.HasPrefix(lines[i], "ok      "+name+": ") {
			t.Errorf("line %d is not the ok line of %s:\n%s", i, name, out.String())
		}
	}
}

func TestRunInvariantsFailsWhenNeverQuiet(t *testing.T) {
	c := newChainBuilder(t)
	bs := c.extend(nil, []string{"a"}, []string{"b"})
	src := &fakeSources{
		headSeq: [][]headReport{{{"v0", c.head(bs[1]), nil}, {"v1", c.head(bs[0]), nil}}},
		bondSeq: []int64{1000},
		issued:  900,
		blocks:  sources(holding("v0", bs...)),
	}
	var out bytes.Buffer
	began := time.Now()
	results := runInvariants(context.Background(), src, nil, true, big.NewInt(0), invShard, 50*time.Millisecond, 600*time.Millisecond, &out)
	if took := time.Since(began); took > 5*time.Second {
		t.Errorf("took %s with --quiet-timeout 600ms", took)
	}
	failed := map[string]bool{}
	for _, r := range results {
		if !r.ok {
			failed[r.name] = true
		}
	}
	for _, name := range []string{"heads", "supply", "chain", "seen"} {
		if !failed[name] {
			t.Errorf("%s did not fail:\n%s", name, out.String())
		}
	}
	if !strings.Contains(out.String(), "off by 100") || !strings.Contains(out.String(), "not quiet after --quiet-timeout 600ms") {
		t.Errorf("the supply line lacks its figures:\n%s", out.String())
	}

	// A head that keeps moving never counts as quiet, even where all agree.
	var seq [][]headReport
	for _, b := range c.extend(bs[1], nil, nil, nil, nil, nil, nil, nil, nil, nil, nil) {
		seq = append(seq, []headReport{{"v0", c.head(b), nil}, {"v1", c.head(b), nil}})
	}
	moving := &fakeSources{headSeq: seq, bondSeq: []int64{1000}, issued: 1000}
	out.Reset()
	results = runInvariants(context.Background(), moving, nil, false, big.NewInt(0), invShard, time.Second, 500*time.Millisecond, &out)
	if results[0].ok || !strings.Contains(results[0].detail, "did not stay put") {
		t.Errorf("a moving head: %s", results[0])
	}
}

func TestInvariantOptionsRefuseBadFlags(t *testing.T) {
	good := func() invariantOptions {
		return invariantOptions{quietTimeout: time.Minute, settle: time.Second, mintedArg: "0", timeout: time.Minute}
	}
	for _, tc := range []struct {
		name string
		edit func(*invariantOptions)
	}{
		{"a worker without wss", func(o *invariantOptions) { o.workers = []string{"ws://127.0.0.1:2000"} }},
		{"a zero quiet timeout", func(o *invariantOptions) { o.quietTimeout = 0 }},
		{"a negative settle", func(o *invariantOptions) { o.settle = -time.Second }},
		{"a negative minted amount", func(o *invariantOptions) { o.mintedArg = "-1" }},
		{"a bad shard", func(o *invariantOptions) { o.shardArg = "not-a-shard" }},
		{"a zero timeout", func(o *invariantOptions) { o.timeout = 0 }},
	} {
		o := good()
		tc.edit(&o)
		if err := o.check(); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
	o := good()
	o.workers, o.mintedArg, o.shardArg = []string{"wss://127.0.0.1:2000", "wss://127.0.0.1:2010"}, "5000", invShard.String()
	if err := o.check(); err != nil || o.minted.Int64() != 5000 || *o.shard != invShard {
		t.Errorf("good flags: %v (minted %v)", err, o.minted)
	}
}
