package app_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/app"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/types"
)

// BenchmarkCheckTx measures CheckTx of a transfer: decode, signature,
// nonce, fee and execution against the check state.
func BenchmarkCheckTx(b *testing.B) {
	h := newHarness(&testing.T{})
	alice, _ := account.DevPair("//Alice")
	bob, _ := account.DevPair("//Bob")
	call, _ := types.NewCall(h.codec, "balances", "transfer", balances.TransferArgs{Dest: bob.ID(), Amount: types.NewBalance(1)})
	txs := make([][]byte, b.N)
	for i := range txs {
		txs[i] = h.codec.Sign(alice, testChain, uint64(i), call)
	}
	b.ResetTimer()
	for i := range txs {
		r, _ := h.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: txs[i], Type: abci.CHECK_TX_TYPE_CHECK})
		if r.Code != 0 {
			b.Fatal(r.Log)
		}
	}
}

// fundedSenders returns a chain where n senders hold 1 TEER each, and the
// call that transfers 1 planck back to //Alice.
func fundedSenders(n int) (*harness, []*account.Pair, types.Call) {
	h := newHarness(&testing.T{})
	alice, _ := account.DevPair("//Alice")
	pairs := make([]*account.Pair, n)
	var fund [][]byte
	for i := range pairs {
		pairs[i], _ = account.DevPair(fmt.Sprintf("//Sender%d", i))
		call, _ := types.NewCall(h.codec, "balances", "transfer", balances.TransferArgs{Dest: pairs[i].ID(), Amount: types.TEER(1)})
		fund = append(fund, h.codec.Sign(alice, testChain, uint64(i), call))
	}
	h.block(fund...)
	call, _ := types.NewCall(h.codec, "balances", "transfer", balances.TransferArgs{Dest: alice.ID(), Amount: types.NewBalance(1)})
	return h, pairs, call
}

// BenchmarkFinalizeBlock measures a block of 2,000 transfers from 100
// senders, signatures verified in parallel.
func BenchmarkFinalizeBlock(b *testing.B) {
	const senders, per = 100, 20
	h, pairs, call := fundedSenders(senders)
	codec := h.codec
	nonce := uint64(0)
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		var txs [][]byte
		for k := 0; k < per; k++ {
			for _, p := range pairs {
				txs = append(txs, codec.Sign(p, testChain, nonce+uint64(k), call))
			}
		}
		nonce += per
		b.StartTimer()
		h.block(txs...)
	}
	b.ReportMetric(float64(senders*per*b.N)/b.Elapsed().Seconds(), "tx/s")
}

// BenchmarkCheckTxThenBlock measures the node's path of a transaction: a
// block's 2,000 transfers from 100 senders each through CheckTx, called
// concurrently as the RPC does (GOMAXPROCS goroutines, each sender's
// transfers in nonce order), then FinalizeBlock and Commit of the same
// transactions, whose signatures CheckTx verified already.
func BenchmarkCheckTxThenBlock(b *testing.B) {
	const senders, per = 100, 20
	h, pairs, call := fundedSenders(senders)
	codec := h.codec
	workers := runtime.GOMAXPROCS(0)
	nonce := uint64(0)
	var checkTime, blockTime time.Duration
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		b.StopTimer()
		bySender := make([][][]byte, senders)
		var txs [][]byte
		for k := 0; k < per; k++ {
			for i, p := range pairs {
				tx := codec.Sign(p, testChain, nonce+uint64(k), call)
				bySender[i] = append(bySender[i], tx)
				txs = append(txs, tx)
			}
		}
		nonce += per
		b.StartTimer()
		start := time.Now()
		var wg sync.WaitGroup
		for w := 0; w < workers; w++ {
			wg.Add(1)
			go func(w int) {
				defer wg.Done()
				for i := w; i < senders; i += workers {
					for _, tx := range bySender[i] {
						r, _ := h.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx, Type: abci.CHECK_TX_TYPE_CHECK})
						if r.Code != 0 {
							panic(r.Log)
						}
					}
				}
			}(w)
		}
		wg.Wait()
		checkTime += time.Since(start)
		start = time.Now()
		h.block(txs...)
		blockTime += time.Since(start)
	}
	total := float64(senders * per * b.N)
	b.ReportMetric(total/b.Elapsed().Seconds(), "tx/s")
	b.ReportMetric(float64(checkTime.Microseconds())/total, "checktx-µs/tx")
	b.ReportMetric(float64(blockTime.Microseconds())/total, "block-µs/tx")
}

// millionSetup is the state of BenchmarkFinalizeBlockMillionAccounts: an
// application whose genesis funds accounts accounts, the first len(pairs) of
// which are senders whose keys the benchmark holds.
type millionSetup struct {
	app      *app.App
	reg      *prometheus.Registry
	codec    *types.Codec
	pairs    []*account.Pair
	accounts int
	height   int64
	rng      *rand.Rand

	initChain             time.Duration
	memBefore, memGenesis memSnapshot // before the genesis, after InitChain
	logs                  []string    // the setup's, repeated by the first run
}

// fillerID is the id of account i of the million that sends nothing.
func fillerID(i int) account.ID {
	return account.ID(sha256.Sum256(strconv.AppendInt([]byte("filler "), int64(i), 10)))
}

// id returns the id of account i (0 ≤ i < accounts).
func (m *millionSetup) id(i int) account.ID {
	if i < len(m.pairs) {
		return m.pairs[i].ID()
	}
	return fillerID(i)
}

// millionGenesis returns the app state of the dev genesis with its balances
// section replaced by one funding accounts accounts, the first len(pairs)
// being pairs, each with 1,000 TEER. The section is written by hand (hex
// ids): encoding a million SS58 addresses would take longer than the block.
func millionGenesis(b *testing.B, pairs []*account.Pair, accounts int) []byte {
	dev, err := node.AppState(node.GenesisOptions{})
	if err != nil {
		b.Fatal(err)
	}
	var sections map[string]json.RawMessage
	if err := json.Unmarshal(dev, &sections); err != nil {
		b.Fatal(err)
	}
	bal := make([]byte, 0, accounts*110)
	bal = fmt.Appendf(bal, `{"tx_fee":%q,"balances":[`, node.DevTxFee.String())
	amount := node.DevEndowment.String()
	for i := range accounts {
		if i > 0 {
			bal = append(bal, ',')
		}
		var id account.ID
		if i < len(pairs) {
			id = pairs[i].ID()
		} else {
			id = fillerID(i)
		}
		bal = append(bal, `{"account":"0x`...)
		bal = hex.AppendEncode(bal, id[:])
		bal = append(bal, `","amount":"`...)
		bal = append(bal, amount...)
		bal = append(bal, `"}`...)
	}
	sections[balances.ModuleName] = append(bal, "]}"...)
	st, err := json.Marshal(sections)
	if err != nil {
		b.Fatal(err)
	}
	return st
}

// memSnapshot is the process's memory after a GC that returned free pages
// to the OS: the Go heap in use, what the Go runtime holds from the OS, and
// the resident set (VmRSS), which also counts what pebble allocates with C
// malloc (its block cache and memtables; cgo is on) and the binary.
type memSnapshot struct{ heapInuse, goResident, rss uint64 }

func readMem() memSnapshot {
	debug.FreeOSMemory() // a GC, and free pages back to the OS: RSS is what is held
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	s := memSnapshot{heapInuse: ms.HeapInuse, goResident: ms.Sys - ms.HeapReleased}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
				s.rss = kb << 10
			}
		}
	}
	return s
}

func mib(n uint64) float64 { return float64(n) / (1 << 20) }

// newMillionSetup builds the genesis of accounts accounts, senders of them
// with known keys, and runs InitChain on a fresh store.
func newMillionSetup(b *testing.B, accounts, senders int) *millionSetup {
	start := time.Now()
	m := &millionSetup{codec: types.NewCodec(), accounts: accounts, rng: rand.New(rand.NewPCG(7, 8))}
	m.pairs = make([]*account.Pair, senders)
	for i := range m.pairs {
		seed := sha256.Sum256(fmt.Appendf(nil, "sender %d", i))
		m.pairs[i], _ = account.PairFromSeed(seed[:])
	}
	m.memBefore = readMem()
	genesis := millionGenesis(b, m.pairs, accounts)
	m.logs = append(m.logs, fmt.Sprintf("genesis of %d accounts: %d MiB of JSON, keys and JSON built in %s", accounts, len(genesis)>>20, time.Since(start).Round(time.Millisecond)))

	s, err := state.Open(filepath.Join(b.TempDir(), "state"), app.StateConfig(0))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	m.reg = prometheus.NewRegistry()
	m.app = app.New(s, slog.New(slog.NewTextHandler(io.Discard, nil)), app.NewMetrics(m.reg))
	t0 := time.Now()
	if _, err := m.app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: chainID, Time: genesisTime, AppStateBytes: genesis}); err != nil {
		b.Fatal(err)
	}
	m.initChain = time.Since(t0)
	genesis = nil
	m.memGenesis = readMem()
	before, after := m.memBefore, m.memGenesis
	m.logs = append(m.logs,
		fmt.Sprintf("InitChain of %d accounts: %s", accounts, m.initChain.Round(time.Millisecond)),
		fmt.Sprintf("memory after InitChain: Go heap in use %.0f MiB (%.0f MiB before the genesis and the store), Go runtime resident %.0f MiB, process RSS %.0f MiB (%.0f before); outside the Go runtime (pebble's C allocations: block cache, memtables; the binary): %.0f MiB (%.0f before)",
			mib(after.heapInuse), mib(before.heapInuse), mib(after.goResident), mib(after.rss), mib(before.rss),
			mib(after.rss-min(after.rss, after.goResident)), mib(before.rss-min(before.rss, before.goResident))))
	return m
}

// blockTxs signs a block of len(senders) transfers, the kth from
// senders[k] at nonce to a distinct random account, on all cores.
func (m *millionSetup) blockTxs(senders []int, nonce uint64) [][]byte {
	dests := make([]int, len(senders))
	used := make(map[int]bool, len(senders))
	for _, s := range senders {
		used[s] = true // no transfer to a sender of the block
	}
	for k := range dests {
		for {
			j := m.rng.IntN(m.accounts)
			if !used[j] {
				used[j] = true
				dests[k] = j
				break
			}
		}
	}
	txs := make([][]byte, len(senders))
	var wg sync.WaitGroup
	workers := runtime.GOMAXPROCS(0)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := w; k < len(txs); k += workers {
				call, err := types.NewCall(m.codec, "balances", "transfer", balances.TransferArgs{Dest: m.id(dests[k]), Amount: types.NewBalance(1)})
				if err != nil {
					panic(err)
				}
				txs[k] = m.codec.Sign(m.pairs[senders[k]], testChain, nonce, call)
			}
		}()
	}
	wg.Wait()
	return txs
}

func (m *millionSetup) block(b *testing.B, txs [][]byte) {
	m.height++
	r, err := m.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Height: m.height, Time: genesisTime.Add(time.Duration(m.height) * time.Second), Txs: txs})
	if err != nil {
		b.Fatal(err)
	}
	for i, res := range r.TxResults {
		if res.Code != 0 {
			b.Fatalf("block %d tx %d: %s", m.height, i, res.Log)
		}
	}
	if _, err := m.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		b.Fatal(err)
	}
}

// histograms returns the sums and counts of the app's histograms by name.
func (m *millionSetup) histograms(b *testing.B) (sums, counts map[string]float64) {
	mfs, err := m.reg.Gather()
	if err != nil {
		b.Fatal(err)
	}
	sums, counts = map[string]float64{}, map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if h := mt.GetHistogram(); h != nil {
				sums[mf.GetName()] += h.GetSampleSum()
				counts[mf.GetName()] += float64(h.GetSampleCount())
			}
		}
	}
	return sums, counts
}

// proofBytes returns the mean size of the proof ops of 100 random accounts
// at the latest provable height, asked for as a client would.
func (m *millionSetup) proofBytes(b *testing.B) float64 {
	total := 0
	for range 100 {
		id := m.id(m.rng.IntN(m.accounts))
		r, err := m.app.Query(context.Background(), &abci.QueryRequest{Path: "/store/balances/key", Data: balances.AccountKey(id), Prove: true})
		if err != nil || r.Code != 0 || r.Value == nil || r.ProofOps == nil {
			b.Fatalf("proof of %s: %v %s", id, err, r.GetLog())
		}
		total += r.ProofOps.Size()
	}
	return float64(total) / 100
}

// BenchmarkFinalizeBlockMillionAccounts measures blocks of 2,000 transfers
// over a state of 1,000,000 funded accounts: each transfer from a distinct
// sender (of 20,000 with known keys, each sending every tenth block) to a
// distinct random account of the million, so a block writes about 4,000
// account keys. Transactions are signed with the timer stopped; the timer
// covers FinalizeBlock and Commit. From the app's histograms it reports the
// state commitment's share of FinalizeBlock (Store.Stage: leaf hashes and
// tree updates), FinalizeBlock's throughput without it, and the
// commitment's cost per written key; and the Go heap in use, after a GC,
// once the run's blocks have committed (the store keeps the trees of the
// last 100 heights: -benchtime 100x reaches that steady state). The setup
// (keys, a 103 MiB genesis, InitChain) takes about 20 s, once per -count.
func BenchmarkFinalizeBlockMillionAccounts(b *testing.B) {
	const accounts, senders, perBlock = 1_000_000, 20_000, 2_000
	m := newMillionSetup(b, accounts, senders)
	b.Run(fmt.Sprintf("accounts=%d/txs=%d", accounts, perBlock), func(b *testing.B) {
		if m.height == 0 {
			for _, l := range m.logs {
				b.Log(l)
			}
		}
		sums0, counts0 := m.histograms(b)
		idx := make([]int, perBlock)
		b.ResetTimer()
		for n := 0; n < b.N; n++ {
			b.StopTimer()
			// Block h uses the senders of slot (h-1) mod 10 at nonce (h-1)/10.
			slot := int(m.height) % (senders / perBlock)
			for k := range idx {
				idx[k] = slot*perBlock + k
			}
			txs := m.blockTxs(idx, uint64(m.height)/(senders/perBlock))
			b.StartTimer()
			m.block(b, txs)
		}
		b.StopTimer()
		sums, counts := m.histograms(b)
		const (
			fin    = "integritee_node_finalize_block_seconds"
			commit = "integritee_node_state_commitment_seconds"
			keys   = "integritee_node_state_written_keys"
		)
		finalize, commitment := sums[fin]-sums0[fin], sums[commit]-sums0[commit]
		written := sums[keys] - sums0[keys]
		blocks := counts[fin] - counts0[fin]
		txs := float64(perBlock * b.N)
		b.ReportMetric(txs/b.Elapsed().Seconds(), "tx/s")
		b.ReportMetric(txs/finalize, "finalize-tx/s")
		b.ReportMetric(txs/(finalize-commitment), "finalize-tx/s-without-commitment")
		b.ReportMetric(100*commitment/finalize, "commitment-%")
		b.ReportMetric(commitment/written*1e6, "commitment-µs/key")
		b.ReportMetric(written/blocks, "keys/block")
		b.ReportMetric(m.initChain.Seconds(), "initchain-s")
		b.ReportMetric(mib(m.memGenesis.heapInuse), "genesis-heap-MiB")
		b.ReportMetric(m.proofBytes(b), "account-proof-bytes")
		mem := readMem()
		b.ReportMetric(mib(mem.heapInuse), "heap-MiB")
		b.Logf("after %d blocks in all (%d in this run): Go heap in use %.0f MiB, process RSS %.0f MiB, outside the Go runtime %.0f MiB",
			m.height, b.N, mib(mem.heapInuse), mib(mem.rss), mib(mem.rss-min(mem.rss, mem.goResident)))
	})
}
