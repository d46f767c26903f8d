package cli

import (
	"context"
	"errors"
	"io"
	"math"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/rpcclient"
)

// benchFixture is a benchmark run without connections: accounts and k
// clients, enough to prepare operations.
func benchFixture(t *testing.T, accounts, transfers, clients int) *benchRun {
	t.Helper()
	b := &benchRun{
		t:       &trustedEnv{workerEnv: &workerEnv{env: &env{out: io.Discard}}},
		o:       benchOptions{accounts: accounts, transfers: transfers, mode: benchPlain},
		out:     io.Discard,
		s:       &session{mrenclave: testMrEnclave, shard: testShard},
		clients: make([]*rpcclient.Client, clients),
		run:     7,
	}
	if err := b.deriveAccounts(context.Background()); err != nil {
		t.Fatal(err)
	}
	return b
}

// Every account's transfers are prepared once each, owned by one client,
// in nonce order within it, and each client sends its accounts' n-th
// transfers before any (n+1)-th.
func TestBenchPrepareOrder(t *testing.T) {
	for _, c := range []struct{ accounts, transfers, clients int }{{10, 3, 4}, {7, 2, 7}, {5, 4, 1}, {64, 2, 5}} {
		b := benchFixture(t, c.accounts, c.transfers, c.clients)
		queues, err := b.prepare(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		owner := map[account.ID]int{}
		index := map[account.ID]int{}
		for i, p := range b.pairs {
			index[p.ID()] = i
		}
		seen := map[[2]uint64]bool{}
		for k, q := range queues {
			next := map[account.ID]uint64{}
			level := uint64(0)
			for i, raw := range q.ops {
				op, err := trusted.DecodeOperation(raw)
				if err != nil {
					t.Fatalf("%+v: client %d op %d: %v", c, k, i, err)
				}
				sc := op.Call
				if err := sc.Verify(testMrEnclave, testShard); err != nil {
					t.Fatalf("%+v: client %d op %d: %v", c, k, i, err)
				}
				a := index[sc.Signer]
				if o, ok := owner[sc.Signer]; ok && o != k {
					t.Fatalf("%+v: account %d in clients %d and %d", c, a, o, k)
				}
				owner[sc.Signer] = k
				if a%c.clients != k {
					t.Errorf("%+v: account %d in client %d", c, a, k)
				}
				if sc.Nonce != next[sc.Signer] {
					t.Errorf("%+v: account %d: nonce %d, want %d", c, a, sc.Nonce, next[sc.Signer])
				}
				next[sc.Signer]++
				if sc.Nonce < level {
					t.Errorf("%+v: client %d sends nonce %d after a nonce %d", c, k, sc.Nonce, level)
				}
				level = max(level, sc.Nonce)
				key := [2]uint64{uint64(a), sc.Nonce}
				if seen[key] {
					t.Errorf("%+v: account %d nonce %d twice", c, a, sc.Nonce)
				}
				seen[key] = true
				tr := sc.Call.Transfer
				if tr == nil || tr.To != b.pairs[(a+1)%c.accounts].ID() || tr.Amount.String() != "1" {
					t.Errorf("%+v: account %d: %+v, want 1 planck to the next account", c, a, tr)
				}
			}
		}
		if len(seen) != c.accounts*c.transfers {
			t.Errorf("%+v: %d transfers prepared, want %d", c, len(seen), c.accounts*c.transfers)
		}
	}
}

// The benchmark's flags are checked before anything dials.
func TestBenchmarkRefusesBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want []string
	}{
		{[]string{"--accounts", "0"}, []string{"--accounts", "positive"}},
		{[]string{"--transfers", "-1"}, []string{"--transfers"}},
		{[]string{"--clients", "0"}, []string{"--clients"}},
		{[]string{"--window", "0"}, []string{"--window"}},
		{[]string{"--batch", "0"}, []string{"--batch"}},
		{[]string{"--batch", "1025"}, []string{"--batch 1025", "at most 1024"}},
		{[]string{"--duration", "0s"}, []string{"--duration"}},
		{[]string{"--max-errors", "-1"}, []string{"--max-errors"}},
		{[]string{"--mode", "fast"}, []string{`--mode "fast"`, "plain", "encrypted"}},
		{[]string{"--workers", "ws://127.0.0.1:2000"}, []string{"--workers", "wss://host:port"}},
		{[]string{"--workers", "wss://127.0.0.1:2000,wss://127.0.0.1"}, []string{`--workers "wss://127.0.0.1"`}},
		{[]string{"--metrics", "127.0.0.1:8787"}, []string{"--metrics"}},
		{[]string{"--root", "alice"}, []string{"--root"}},
		{[]string{"--clients", "2", "--concurrency", "3"}, []string{"--concurrency", "deprecated alias"}},
	} {
		_, err := run(t, append([]string{"-p", "1", "-P", "1", "trusted", "benchmark"}, c.args...)...)
		wantErr(t, err, c.want...)
	}
}

func TestBenchmarkFlagDefaults(t *testing.T) {
	cmd, _ := newTrustedCmd(&workerEnv{env: &env{out: io.Discard}})
	bench, _, err := cmd.Find([]string{"benchmark"})
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{
		"accounts": "10000", "transfers": "40", "clients": "64", "window": "48", "batch": "64",
		"duration": "30s", "mode": "plain", "workers": "[]", "metrics": "[]", "max-errors": "10", "root": "//Alice",
	} {
		f := bench.Flags().Lookup(name)
		if f == nil {
			t.Errorf("no --%s", name)
			continue
		}
		if f.DefValue != want {
			t.Errorf("--%s defaults to %q, want %q", name, f.DefValue, want)
		}
	}
	if f := bench.Flags().Lookup("concurrency"); f == nil || !f.Hidden {
		t.Errorf("--concurrency should remain as a hidden alias of --clients: %+v", f)
	}
}

func TestParseWorkerURL(t *testing.T) {
	for in, want := range map[string]workerOptions{
		"wss://127.0.0.1:2000":          {URL: "wss://127.0.0.1", Port: 2000},
		"wss://validateer.example:443/": {URL: "wss://validateer.example", Port: 443},
		"wss://[::1]:2010":              {URL: "wss://[::1]", Port: 2010},
	} {
		got, err := parseWorkerURL(in)
		if err != nil || got != want {
			t.Errorf("parseWorkerURL(%q) = %+v, %v; want %+v", in, got, err, want)
		}
		// What the global flags make of it is the same address.
		if addr, err := workerAddress(got.URL, got.Port); err != nil || addr != strings.TrimSuffix(in, "/") {
			t.Errorf("workerAddress of %q: %q, %v", in, addr, err)
		}
	}
	for _, in := range []string{"ws://127.0.0.1:2000", "wss://127.0.0.1", "wss://127.0.0.1:0", "wss://127.0.0.1:2000/rpc", "wss://:2000", "127.0.0.1:2000", "wss://u@127.0.0.1:2000"} {
		if got, err := parseWorkerURL(in); err == nil {
			t.Errorf("parseWorkerURL(%q) = %+v; want an error", in, got)
		}
	}
}

const sampleMetrics = `# HELP process_cpu_seconds_total Total user and system CPU time spent in seconds.
# TYPE process_cpu_seconds_total counter
process_cpu_seconds_total 12.5
# HELP process_resident_memory_bytes Resident memory size in bytes.
# TYPE process_resident_memory_bytes gauge
process_resident_memory_bytes 1.048576e+08
# HELP integritee_worker_process_peak_resident_memory_bytes Peak resident memory.
# TYPE integritee_worker_process_peak_resident_memory_bytes gauge
integritee_worker_process_peak_resident_memory_bytes 2.097152e+08
# HELP integritee_worker_enclave_stf_state_size_bytes Size of the shard's state in bytes.
# TYPE integritee_worker_enclave_stf_state_size_bytes gauge
integritee_worker_enclave_stf_state_size_bytes{shard="a"} 3
integritee_worker_enclave_stf_state_size_bytes{shard="b"} 7
`

func TestMetricValue(t *testing.T) {
	var p expfmt.TextParser
	fams, err := p.TextToMetricFamilies(strings.NewReader(sampleMetrics))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		metricCPU: 12.5, metricRSS: 104857600, metricPeakRSS: 209715200,
		"integritee_worker_enclave_stf_state_size_bytes": 7, // the largest series
	} {
		if got := metricValue(fams, name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if got := metricValue(fams, "absent"); !math.IsNaN(got) {
		t.Errorf("an absent metric is %v, want NaN", got)
	}
}

func TestPercentileAndLine(t *testing.T) {
	var lat []time.Duration
	for i := 1; i <= 200; i++ {
		lat = append(lat, time.Duration(i)*time.Millisecond)
	}
	for p, want := range map[float64]time.Duration{50: 100 * time.Millisecond, 95: 190 * time.Millisecond, 99: 198 * time.Millisecond, 100: 200 * time.Millisecond} {
		if got := percentile(lat, p); got != want {
			t.Errorf("p%v = %s, want %s", p, got, want)
		}
	}
	if got := percentile(nil, 50); got != 0 {
		t.Errorf("p50 of nothing = %s", got)
	}
	if got := percentile(lat[:1], 99); got != time.Millisecond {
		t.Errorf("p99 of one = %s", got)
	}
	line := benchLine(4321.56, 312.04, 1000.06, 52345.4, 4321.56/52345.4)
	if want := "executed_per_s=4322 p50_ms=312.0 p99_ms=1000.1 ceiling_per_s=52345 ratio=0.083"; line != want {
		t.Errorf("line %q, want %q", line, want)
	}
	re := regexp.MustCompile(`^executed_per_s=\d+(\.\d)? p50_ms=\d+(\.\d)? p99_ms=\d+(\.\d)? ceiling_per_s=\d+(\.\d)? ratio=\d+\.\d{3}$`)
	if l := benchLine(0, 0, 0, 1, 0); !re.MatchString(l) {
		t.Errorf("line of an empty run %q", l)
	}
}

// The tally's outstanding operations: accepted and not yet resolved; RPC
// refusals were never outstanding. More than --max-errors refusals stop
// the submission; lost operations do not count as refusals.
func TestTally(t *testing.T) {
	l := &loader{stop: make(chan struct{})}
	l.tally.onRefused = func(n int64) {
		if n > 2 {
			l.halt("too many", "")
		}
	}
	l.tally.submitted.Add(10)
	now := time.Now()
	l.tally.submittedAt(now)
	l.tally.submittedAt(now.Add(-time.Second))
	l.tally.executed(now.Add(time.Second), time.Second)
	l.tally.executed(now, 2*time.Second)
	l.tally.problem(rpcRefusal, "op 11", errors.New("pool full"))
	l.tally.problem(statusRefusal, "op 3", errDropped)
	l.tally.problem(neverInBlock, "op 4", context.DeadlineExceeded)
	if got := l.tally.outstanding(); got != 6 {
		t.Errorf("outstanding %d, want 6", got)
	}
	if l.tally.refused() != 2 || l.stopped() {
		t.Errorf("refused %d, stopped %v; want 2, running", l.tally.refused(), l.stopped())
	}
	if !l.tally.first.Equal(now.Add(-time.Second)) || !l.tally.last.Equal(now.Add(time.Second)) {
		t.Errorf("first %s, last %s", l.tally.first, l.tally.last)
	}
	l.tally.problem(statusRefusal, "op 5", errInvalid)
	if !l.stopped() || l.reason != "too many" {
		t.Errorf("not stopped after 3 refusals: %q", l.reason)
	}
	if p := l.tally.firstProblem(); !strings.Contains(p, "op 11") || !strings.Contains(p, "pool full") {
		t.Errorf("first problem %q", p)
	}
}

// A queue hands out its operations in order, in pieces, once.
func TestOpQueue(t *testing.T) {
	q := &opQueue{ops: [][]byte{{0}, {1}, {2}, {3}, {4}}}
	var got []byte
	for _, n := range []int{2, 2, 2, 2} {
		first, ops := q.take(n)
		for i, op := range ops {
			if int(op[0]) != first+i {
				t.Errorf("take(%d) at %d: %v", n, first, ops)
			}
			got = append(got, op[0])
		}
	}
	if string(got) != "\x00\x01\x02\x03\x04" || !q.empty() {
		t.Errorf("handed out %v, empty %v", got, q.empty())
	}
}

// The root's funding goes through the first worker only, in order: spread
// over three workers (make bench's three-validateer scenario), a batch
// reached a worker before the earlier one did and the pool refused the
// rest as too many Future operations.
func TestFundingUsesTheFirstWorkersClients(t *testing.T) {
	for _, c := range []struct {
		n, workers int
		want       []int
	}{
		{64, 1, []int{0, 1, 2, 3}},
		{64, 3, []int{0, 3, 6, 9}},
		{5, 3, []int{0, 3}},
		{2, 1, []int{0, 1}},
	} {
		if got := fundingClients(c.n, c.workers); !slices.Equal(got, c.want) {
			t.Errorf("fundingClients(%d, %d) = %v, want %v", c.n, c.workers, got, c.want)
		}
	}
}
