package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// Several validateers on one shard: they start one after the other (the
// first starts the shard, the later ones join it over mutual remote
// attestation), take slots in turn, forward operations to each other,
// catch up after a restart, and refuse a validateer of another build.

// Metric names of the validateer.
const (
	mProposed  = "integritee_worker_enclave_sidechain_blocks_proposed_total"
	mImported  = "integritee_worker_enclave_sidechain_blocks_imported_total"
	mForks     = "integritee_worker_enclave_sidechain_forks_total"
	mPeers     = "integritee_worker_enclave_sidechain_peer_count"
	mHeight    = "integritee_worker_enclave_sidechain_block_height"
	mOnboardRe = "integritee_worker_enclave_sidechain_onboarding_remaining_blocks"
)

// eventually polls cond every 100 ms until it holds; past timeout it fails
// the test with what and cond's last status.
func eventually(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, status := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// startInitNodes writes a network of k validator nodes with
// `integritee-node init --dev --validators k` and starts every node.
func startInitNodes(t *testing.T, k int) []*nodeProc {
	t.Helper()
	dir := t.TempDir()
	bases := freePortRuns(t, 3, k)
	out, err := exec.Command(filepath.Join(binDir, "integritee-node"), "init", "--dev",
		"--validators", strconv.Itoa(k), "--base-path", dir,
		"--base-rpc-port", strconv.Itoa(bases[0]), "--base-port", strconv.Itoa(bases[1]),
		"--base-prometheus-port", strconv.Itoa(bases[2]), "--block-time", "300ms").CombinedOutput()
	if err != nil {
		t.Fatalf("integritee-node init: %v\n%s", err, out)
	}
	nodes := make([]*nodeProc, k)
	for i := range nodes {
		home := filepath.Join(dir, fmt.Sprintf("node%d", i))
		nodes[i] = &nodeProc{proc: start(t, "integritee-node", "--base-path", home),
			rpc: bases[0] + i, p2p: bases[1] + i, prom: bases[2] + i, basePath: home}
	}
	for _, n := range nodes {
		n.waitHeight(t, 2, 60*time.Second)
	}
	return nodes
}

// startValidateer starts exe (integritee-service, or another build of it
// if exe is set) as name against n, with data in dataDir (fresh if empty)
// on ports (trusted, untrusted, mu-ra, http, metrics; free ones if nil),
// as startWorkerNoWait does. The validateers of one test share the
// simulation TEE's host secret, as validateers of one host do.
func startValidateer(t *testing.T, name string, n *nodeProc, exe, dataDir string, ports []int, runArgs ...string) *workerProc {
	t.Helper()
	if exe == "" {
		exe = filepath.Join(binDir, "integritee-service")
	}
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	if ports == nil {
		ports = freePorts(t, 5)
	}
	args := []string{"-p", strconv.Itoa(n.rpc), "-d", dataDir,
		"-P", strconv.Itoa(ports[0]), "-w", strconv.Itoa(ports[1]), "-r", strconv.Itoa(ports[2]), "-h", strconv.Itoa(ports[3]),
		"--enable-metrics", "-i", strconv.Itoa(ports[4]),
		"--sim-host-secret", filepath.Join(filepath.Dir(dataDir), "sim-host-secret"), "run"}
	if len(runArgs) == 0 {
		runArgs = []string{"--dev"}
	}
	w := &workerProc{proc: startExe(t, name, exe, append(args, runArgs...)...), node: n, dataDir: dataDir,
		trusted: ports[0], untrusted: ports[1], mura: ports[2], http: ports[3], metrics: ports[4]}
	keepLogOnFailure(t, w.proc)
	return w
}

// keepLogsEnv names a directory to which a failed test's validateer logs
// are copied whole (the harness shows only their tails).
const keepLogsEnv = "INTEGRITEE_E2E_KEEP_LOGS"

func keepLogOnFailure(t *testing.T, p *proc) {
	dir := os.Getenv(keepLogsEnv)
	if dir == "" {
		return
	}
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		if b, err := os.ReadFile(p.log); err == nil && os.MkdirAll(dir, 0o755) == nil {
			path := filepath.Join(dir, t.Name()+"-"+p.name+".log")
			if os.WriteFile(path, b, 0o644) == nil {
				t.Logf("%s's whole log: %s", p.name, path)
			}
		}
	})
}

func (w *workerProc) ports() []int { return []int{w.trusted, w.untrusted, w.mura, w.http, w.metrics} }

// waitInitialized waits until w's /is_initialized answers 200 and returns
// how long that took.
func waitInitialized(t *testing.T, w *workerProc, timeout time.Duration) time.Duration {
	t.Helper()
	began := time.Now()
	eventually(t, w.name+"'s /is_initialized", timeout, func() (bool, string) {
		if isDone(w.proc) {
			t.Fatalf("%s exited before it was initialized", w.name)
		}
		return w.initialized(), "not initialized; last log line: " + lastLine(procLog(w.proc))
	})
	return time.Since(began)
}

func procLog(p *proc) string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	if len(s) > 400 {
		s = s[:400] + "…"
	}
	return s
}

// logLines returns the lines of a process's log that contain every part.
func logLines(p *proc, parts ...string) []string {
	var out []string
	for _, l := range strings.Split(procLog(p), "\n") {
		all := true
		for _, part := range parts {
			all = all && strings.Contains(l, part)
		}
		if all && l != "" {
			out = append(out, l)
		}
	}
	return out
}

// metric reads an unlabelled series from w's /metrics; ok is false if w
// does not answer or lacks the series.
func metric(w *workerProc, name string) (v float64, ok bool) {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", w.metrics))
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(resp.Body)
	for _, line := range strings.Split(buf.String(), "\n") {
		if rest, found := strings.CutPrefix(line, name+" "); found {
			f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
			return f, err == nil
		}
	}
	return 0, false
}

func mustMetric(t *testing.T, w *workerProc, name string) float64 {
	t.Helper()
	v, ok := metric(w, name)
	if !ok {
		t.Fatalf("%s: no %s on its metrics port %d", w.name, name, w.metrics)
	}
	return v
}

// metricsLine summarises the sidechain series of w, for logs and failures.
func metricsLine(w *workerProc) string {
	var parts []string
	for _, m := range []struct{ short, name string }{{"height", mHeight}, {"proposed", mProposed}, {"imported", mImported}, {"forks", mForks}, {"peers", mPeers}, {"onboarding_remaining", mOnboardRe}} {
		if v, ok := metric(w, m.name); ok {
			parts = append(parts, fmt.Sprintf("%s=%g", m.short, v))
		} else {
			parts = append(parts, m.short+"=?")
		}
	}
	return w.name + ": " + strings.Join(parts, " ")
}

// trustedClient dials w's trusted RPC without the CLI's attestation check
// (the tests compare what validateers answer; the CLI tests check the
// attestation).
func trustedClient(w *workerProc) (*rpcclient.Client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return rpcclient.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d", w.trusted), rpcclient.Options{Insecure: true})
}

// headerOf asks w for the shard's head.
func headerOf(w *workerProc, shard sidechain.ShardID) (rpc.Header, error) {
	c, err := trustedClient(w)
	if err != nil {
		return rpc.Header{}, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Header(ctx, shard)
}

// shieldingKeyOf asks w for its author_getShieldingKey.
func shieldingKeyOf(w *workerProc) ([]byte, error) {
	c, err := trustedClient(w)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.ShieldingKey(ctx)
}

func headerString(h rpc.Header) string { return fmt.Sprintf("#%d %s", h.Number, h.Hash) }

// waitQuiet waits until every validateer reports the same head and it has
// not moved for a few slots, and returns it.
func waitQuiet(t *testing.T, ws []*workerProc, shard sidechain.ShardID, timeout time.Duration) rpc.Header {
	t.Helper()
	const quietFor = 1500 * time.Millisecond
	var last rpc.Header
	var since time.Time
	eventually(t, "every validateer to report the same, settled sidechain head", timeout, func() (bool, string) {
		hs := make([]string, len(ws))
		var first rpc.Header
		same := true
		for i, w := range ws {
			h, err := headerOf(w, shard)
			if err != nil {
				return false, fmt.Sprintf("%s: %v", w.name, err)
			}
			hs[i] = w.name + " " + headerString(h)
			if i == 0 {
				first = h
			} else if h.Hash != first.Hash {
				same = false
			}
		}
		status := strings.Join(hs, "; ")
		if !same {
			since = time.Time{}
			for _, w := range ws {
				status += " | " + metricsLine(w)
			}
			return false, status
		}
		if since.IsZero() || first.Hash != last.Hash {
			last, since = first, time.Now()
			return false, status
		}
		return time.Since(since) >= quietFor, status
	})
	return last
}

// cliHeader is the head as `trusted get-sidechain-header` prints it.
func cliHeader(t *testing.T, w *workerProc, dir, shard string) (uint64, string) {
	t.Helper()
	out := w.mustT(t, dir, "trusted", "--mrenclave", shard, "get-sidechain-header")
	var h struct {
		Number uint64 `json:"number"`
		Hash   string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(out), &h); err != nil || h.Hash == "" {
		t.Fatalf("%s: get-sidechain-header printed %q: %v", w.name, out, err)
	}
	return h.Number, h.Hash
}

// sameHeaders checks that the CLI prints one head for every validateer.
func sameHeaders(t *testing.T, ws []*workerProc, dir, shard string) (uint64, string) {
	t.Helper()
	n0, h0 := cliHeader(t, ws[0], dir, shard)
	for _, w := range ws[1:] {
		if n, h := cliHeader(t, w, dir, shard); n != n0 || h != h0 {
			t.Errorf("%s's sidechain head is #%d %s, %s's #%d %s", w.name, n, h, ws[0].name, n0, h0)
		}
	}
	return n0, h0
}

// wantBalances checks the sidechain balances on every validateer.
func wantBalances(t *testing.T, ws []*workerProc, dir, shard string, want map[string]string) {
	t.Helper()
	for _, w := range ws {
		for acct, v := range want {
			if got := w.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", acct); got != v {
				t.Errorf("%s: %s has %s on the sidechain, want %s", w.name, acct, got, v)
			}
		}
	}
}

// runCLI runs integritee-cli without a *testing.T, for use off the test's
// goroutine; a failure to run counts as exit code -1.
func runCLI(nodeRPC int, dir string, timeout time.Duration, args ...string) cliResult {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "integritee-cli"), append([]string{"-p", strconv.Itoa(nodeRPC)}, args...)...)
	cmd.Dir = dir
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	r := cliResult{out: out.String(), err: errb.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		r.code, r.err = -1, r.err+err.Error()
	}
	return r
}

func shardOf(t *testing.T, s string) (attestation.MrEnclave, sidechain.ShardID) {
	t.Helper()
	mr, err := attestation.ParseMrEnclave(s)
	if err != nil {
		t.Fatalf("fingerprint %q: %v", s, err)
	}
	return mr, sidechain.ShardID(mr)
}

// TestThreeValidateersOnTwoNodes: three validateers on two nodes of one
// `init --dev --validators 2` network (validateer0 and validateer2 beside
// node0, validateer1 beside node1) share one shard: the same fingerprint
// and shielding key, operations submitted to any of them and indirect
// calls through either node executed once, an unshielding paid once, and
// in the end the same head and balances everywhere, with blocks from at
// least two authors.
func TestThreeValidateersOnTwoNodes(t *testing.T) {
	nodes := startInitNodes(t, 2)
	beside := []*nodeProc{nodes[0], nodes[1], nodes[0]}
	vals := make([]*workerProc, 3)
	for i, n := range beside {
		vals[i] = startValidateer(t, fmt.Sprintf("validateer%d", i), n, "", "", nil)
		took := waitInitialized(t, vals[i], 90*time.Second)
		t.Logf("validateer%d (beside the node on rpc %d) initialized after %s", i, n.rpc, took.Round(time.Millisecond))
	}
	for _, w := range vals[1:] {
		if len(logLines(w.proc, "joined the shard over mutual remote attestation")) == 0 {
			t.Errorf("%s is initialized but never logged joining the shard over mutual remote attestation", w.name)
		}
	}
	dir := t.TempDir()
	shard := vals[0].mustT(t, dir, "trusted", "get-fingerprint")
	_, sid := shardOf(t, shard)

	// One shard: one fingerprint, one shielding key.
	key0, err := shieldingKeyOf(vals[0])
	if err != nil {
		t.Fatalf("validateer0's shielding key: %v", err)
	}
	for _, w := range vals[1:] {
		if fp := w.mustT(t, dir, "trusted", "get-fingerprint"); fp != shard {
			t.Errorf("%s's fingerprint %s, validateer0's %s", w.name, fp, shard)
		}
		if s := w.mustT(t, dir, "trusted", "get-shard"); s != shard {
			t.Errorf("%s serves shard %s, validateer0 %s", w.name, s, shard)
		}
		k, err := shieldingKeyOf(w)
		if err != nil {
			t.Fatalf("%s's shielding key: %v", w.name, err)
		}
		if !bytes.Equal(k, key0) {
			t.Errorf("%s's shielding key %x… differs from validateer0's %x…: it did not get the shard's keys", w.name, k[:8], key0[:8])
		}
	}

	ferdie0 := types.MustParseBalance(nodes[0].balance(t, "//Ferdie"))
	vals[0].mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "50000000000", shard)
	eventually(t, "every validateer to show the shielded 50000000000", 20*time.Second, func() (bool, string) {
		var got []string
		for _, w := range vals {
			b := w.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", "//AliceIncognito")
			got = append(got, w.name+"="+b)
			if b != "50000000000" {
				return false, strings.Join(got, " ")
			}
		}
		return true, ""
	})

	// Direct transfers, one submitted to each validateer: the others get
	// them forwarded, and whoever authors executes each once.
	for i, w := range vals {
		amount := strconv.Itoa((i + 1) * 1000000000)
		r := w.tcli(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", amount)
		if r.code != 0 {
			t.Fatalf("direct transfer of %s submitted to %s: exit %d: %s%s", amount, w.name, r.code, r.out, r.err)
		}
		t.Logf("direct transfer of %s through %s: in sidechain block %s", amount, w.name, trimOut(r.out))
	}
	// Indirect transfers through each node (enclavebridge.invoke, signed
	// and paid by //Bob), watched through the validateer beside it.
	for i, n := range nodes {
		out := n.mustCLI(t, dir, "-P", strconv.Itoa(vals[i].trusted), "trusted", "--mrenclave", shard, "-a", "//Bob",
			"transfer", "//BobIncognito", "//AliceIncognito", "500000000")
		t.Logf("indirect transfer through node%d: %s", i, out)
	}
	// An unshielding, paid out once the primary confirmed its block.
	out := vals[2].mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "unshield-funds", "//AliceIncognito", "//Ferdie", "2000000000")
	if !strings.Contains(out, "paid on the parentchain") {
		t.Fatalf("unshield-funds through validateer2 printed %q", out)
	}

	waitQuiet(t, vals, sid, 30*time.Second)
	// Paid once: wait some parentchain blocks for a second payout that
	// must not come, on either node.
	nodes[0].waitHeight(t, nodes[0].height()+10, 30*time.Second)
	wantFerdie, _ := ferdie0.Add(planck(2000000000))
	for i, n := range nodes {
		if got := types.MustParseBalance(n.balance(t, "//Ferdie")); got != wantFerdie {
			t.Errorf("//Ferdie has %s on node%d, want %s (paid once)", got, i, wantFerdie)
		}
	}
	// 50 shielded - (1+2+3) + 2×0.5 - 2 unshielded.
	wantBalances(t, vals, dir, shard, map[string]string{"//AliceIncognito": "43000000000", "//BobIncognito": "5000000000"})
	var bond enclavebridge.BondingAccountInfo
	nodes[1].query(t, "/enclavebridge/bonding_account/"+shard, &bond)
	for _, w := range vals {
		if iss := w.mustT(t, dir, "trusted", "--mrenclave", shard, "get-total-issuance"); iss != "48000000000" || bond.Free.String() != iss {
			t.Errorf("%s: total issuance %s, bonding account %s, want both 48000000000", w.name, iss, bond.Free)
		}
	}
	num, hash := sameHeaders(t, vals, dir, shard)
	t.Logf("head everywhere: #%d %s", num, hash)

	// Competing blocks may happen (a slot's author that has not yet got
	// the previous block); what counts is that they end in one head.
	authors := 0
	for _, w := range vals {
		t.Log(metricsLine(w))
		if mustMetric(t, w, mProposed) > 0 {
			authors++
		}
	}
	if authors < 2 {
		t.Errorf("%d of the three validateers authored blocks (blocks_proposed_total > 0), want at least 2: they do not take slots in turn", authors)
	}
	for _, w := range vals {
		eventually(t, w.name+" to count its two peers", 15*time.Second, func() (bool, string) {
			v, _ := metric(w, mPeers)
			return v == 2, metricsLine(w)
		})
	}
}

// streamStats is one client's count of its direct transfers.
type streamStats struct {
	ok, unknown atomic.Int64
	mu          sync.Mutex
	failures    []string
}

func (s *streamStats) fail(msg string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, msg)
}

// TestValidateerKilledUnderLoadIsNotMissed: three validateers each get a
// steady stream of direct transfers from their own sender (the CLI waits
// until each is in a sidechain block); validateer2 is killed (SIGKILL)
// mid-stream and stays down past the shard's silence bound, while the
// other streams go on; restarted on its data dir and ports, it catches up
// from its peers, serves its stream again and authors again. In the end
// every validateer shows the same head and the balances the clients saw:
// no confirmed transfer lost, none executed twice.
func TestValidateerKilledUnderLoadIsNotMissed(t *testing.T) {
	n := startDevNode(t, "")
	vals := make([]*workerProc, 3)
	for i := range vals {
		vals[i] = startValidateer(t, fmt.Sprintf("validateer%d", i), n, "", "", nil)
		waitInitialized(t, vals[i], 90*time.Second)
	}
	dir := t.TempDir()
	shard := vals[0].mustT(t, dir, "trusted", "get-fingerprint")
	_, sid := shardOf(t, shard)
	vals[0].mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "30000000000", shard)
	const funding, amount = 5000000000, 1000000
	senders := []string{"//Stream0", "//Stream1", "//Stream2"}
	for _, s := range senders {
		vals[0].mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", s, strconv.Itoa(funding))
	}
	waitQuiet(t, vals, sid, 30*time.Second)

	// The streams: stream i sends through validateer i, one transfer at a
	// time, and skips it while it is down. A transfer in flight when its
	// validateer is killed may or may not have executed: it counts as
	// unknown.
	var down [3]atomic.Bool
	var stop atomic.Bool
	stats := make([]*streamStats, 3)
	var wg sync.WaitGroup
	for i := range stats {
		stats[i] = &streamStats{}
		sdir, port := t.TempDir(), strconv.Itoa(vals[i].trusted)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for !stop.Load() {
				if down[i].Load() {
					time.Sleep(50 * time.Millisecond)
					continue
				}
				r := runCLI(n.rpc, sdir, 45*time.Second, "-P", port, "trusted", "--mrenclave", shard, "--direct", "--timeout", "30s",
					"transfer", senders[i], "//StreamSink", strconv.Itoa(amount))
				switch {
				case r.code == 0:
					stats[i].ok.Add(1)
				case down[i].Load():
					stats[i].unknown.Add(1)
				default:
					stats[i].fail(fmt.Sprintf("stream %d (validateer%d) transfer #%d: exit %d: %s%s", i, i, stats[i].ok.Load()+1, r.code, trimOut(r.out), trimOut(r.err)))
					time.Sleep(200 * time.Millisecond)
				}
			}
		}()
	}
	stopStreams := sync.OnceFunc(func() { stop.Store(true); wg.Wait() })
	t.Cleanup(stopStreams) // before the processes are killed
	counts := func() string {
		var s []string
		for i, st := range stats {
			s = append(s, fmt.Sprintf("stream%d ok=%d unknown=%d failed=%d", i, st.ok.Load(), st.unknown.Load(), len(st.failures)))
		}
		return strings.Join(s, ", ")
	}
	eventually(t, "three transfers of each stream", 60*time.Second, func() (bool, string) {
		for _, st := range stats {
			if st.ok.Load() < 3 {
				return false, counts()
			}
		}
		return true, ""
	})

	// Kill validateer2 mid-stream.
	killed := vals[2]
	killHeight := n.height()
	killLog := len(procLog(vals[0].proc))
	ok0, ok1 := stats[0].ok.Load(), stats[1].ok.Load()
	down[2].Store(true)
	killed.stop(syscall.SIGKILL)
	t.Logf("killed validateer2 at parentchain height %d; %s", killHeight, counts())

	// The others go on: validateer2's slots stay empty until it falls out
	// of the authority set after the silence bound; then they author alone.
	eventually(t, "streams 0 and 1 to go on without validateer2 and validateer2 to leave the authority set", 90*time.Second, func() (bool, string) {
		left := strings.Contains(procLog(vals[0].proc)[killLog:], "count=2")
		status := fmt.Sprintf("%s; parentchain %d (killed at %d); validateer0 logged the authority set shrink: %v", counts(), n.height(), killHeight, left)
		return stats[0].ok.Load() >= ok0+8 && stats[1].ok.Load() >= ok1+8 && left, status
	})
	t.Logf("without validateer2: %s; parentchain %d", counts(), n.height())

	// Restart on the same data dir and ports: it catches up from its peers.
	restarted := time.Now()
	vals[2] = startValidateer(t, "validateer2-restarted", n, "", killed.dataDir, killed.ports())
	waitInitialized(t, vals[2], 90*time.Second)
	target := 0.0
	for _, w := range vals[:2] {
		target = max(target, mustMetric(t, w, mHeight))
	}
	eventually(t, fmt.Sprintf("the restarted validateer2 to catch up to block #%g", target), 60*time.Second, func() (bool, string) {
		h, _ := metric(vals[2], mHeight)
		return h >= target, metricsLine(vals[2])
	})
	onboarded := logLines(vals[2].proc, "on-boarding done")
	if len(onboarded) == 0 {
		t.Errorf("the restarted validateer2 missed blocks but never logged \"on-boarding done\"; its log: %s", lastLine(procLog(vals[2].proc)))
	}
	t.Logf("validateer2 restarted and caught up to #%g in %s; its on-boarding log: %q", target, time.Since(restarted).Round(time.Millisecond),
		logLines(vals[2].proc, "on-boarding"))

	// Its stream resumes, and it authors again (it came back into the
	// authority set).
	ok2 := stats[2].ok.Load()
	down[2].Store(false)
	eventually(t, "stream 2 to go through the restarted validateer2 again", 60*time.Second, func() (bool, string) {
		return stats[2].ok.Load() >= ok2+3, counts()
	})
	eventually(t, "the restarted validateer2 to author a block again", 60*time.Second, func() (bool, string) {
		v, _ := metric(vals[2], mProposed)
		return v > 0, metricsLine(vals[2]) + "; " + counts()
	})
	stopStreams()
	t.Logf("streams stopped: %s", counts())
	for _, st := range stats {
		for _, f := range st.failures {
			t.Errorf("a transfer through a running validateer failed: %s", f)
		}
	}

	waitQuiet(t, vals, sid, 30*time.Second)
	num, hash := sameHeaders(t, vals, dir, shard)
	t.Logf("head everywhere: #%d %s", num, hash)
	var sink int64
	for i, s := range senders {
		nonces := map[string]bool{}
		for _, w := range vals {
			nonces[w.mustT(t, dir, "trusted", "--mrenclave", shard, "nonce", s)] = true
		}
		if len(nonces) != 1 {
			t.Fatalf("the validateers disagree on %s's nonce: %v", s, nonces)
		}
		var executed int64
		for k := range nonces {
			executed, _ = strconv.ParseInt(k, 10, 64)
		}
		ok, unknown := stats[i].ok.Load(), stats[i].unknown.Load()
		t.Logf("%s: the client saw %d transfers succeed and %d end unknown; %d executed", s, ok, unknown, executed)
		if executed < ok || executed > ok+unknown {
			t.Errorf("%s: %d transfers executed (its nonce), the client saw %d succeed and %d end unknown (validateer killed)", s, executed, ok, unknown)
		}
		sink += executed * amount
		wantBalances(t, vals, dir, shard, map[string]string{s: strconv.FormatInt(funding-executed*amount, 10)})
	}
	wantBalances(t, vals, dir, shard, map[string]string{"//StreamSink": strconv.FormatInt(sink, 10)})
	for _, w := range vals {
		t.Log(metricsLine(w))
	}
	if v := mustMetric(t, vals[2], mOnboardRe); v != 0 {
		t.Errorf("the restarted validateer2 reports %g blocks left to on-board after it caught up", v)
	}
}

// TestStrangerBuildCannotJoin: a validateer of another build (another
// mrenclave: the same binary with bytes appended) started with
// --request-state for the shard of two honest validateers never gets the
// shard's keys or state: it stays uninitialized, its shielding key is its
// own, and it authors nothing. Its host refuses the honest peers' RA-TLS
// (not its build); and when a host of that build goes straight to an
// honest validateer's MU-RA port with its enclave's quote, the honest one
// refuses it by mutual attestation. The honest ones' head and balances are
// untouched, and the shard goes on.
func TestStrangerBuildCannotJoin(t *testing.T) {
	n := startDevNode(t, "")
	honest := make([]*workerProc, 2)
	for i := range honest {
		honest[i] = startValidateer(t, fmt.Sprintf("validateer%d", i), n, "", "", nil)
		waitInitialized(t, honest[i], 90*time.Second)
	}
	dir := t.TempDir()
	shard := honest[0].mustT(t, dir, "trusted", "get-fingerprint")
	_, sid := shardOf(t, shard)
	honest[0].mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "10000000000", shard)
	honest[1].mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", "1000000000")
	before := waitQuiet(t, honest, sid, 30*time.Second)
	wantBefore := map[string]string{"//AliceIncognito": "9000000000", "//BobIncognito": "1000000000"}
	wantBalances(t, honest, dir, shard, wantBefore)
	honestKey, err := shieldingKeyOf(honest[0])
	if err != nil {
		t.Fatal(err)
	}

	// Another build: the simulation TEE measures the executable's bytes.
	exe := filepath.Join(t.TempDir(), "integritee-service-stranger")
	b, err := os.ReadFile(filepath.Join(binDir, "integritee-service"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, append(b, []byte("\x00another build of the validateer")...), 0o755); err != nil {
		t.Fatal(err)
	}
	mrOut, err := exec.Command(exe, "--sim-host-secret", filepath.Join(t.TempDir(), "sim-host-secret"), "mrenclave").Output()
	if err != nil {
		t.Fatalf("stranger mrenclave: %v", err)
	}
	strangerMr := strings.TrimSpace(string(mrOut))
	smr, err := attestation.ParseMrEnclave(strangerMr)
	if err != nil || strangerMr == shard {
		t.Fatalf("the stranger build's mrenclave %q (%v) must differ from the shard's %s", strangerMr, err, shard)
	}
	t.Logf("honest mrenclave (shard) %s, stranger's %s", shard, strangerMr)

	s := startValidateer(t, "stranger", n, exe, "", nil, "--dev", "--request-state", shard)
	everInitialized := false
	watch := func() {
		if s.initialized() {
			everInitialized = true
		}
	}
	// Its host finds no registered enclave of its own build to join, and
	// waits; the honest ones, likewise, never take it for a peer.
	eventually(t, "the stranger to register and wait for a validateer of its own build", 60*time.Second, func() (bool, string) {
		watch()
		if isDone(s.proc) {
			t.Fatalf("the stranger exited")
		}
		return len(logLines(s.proc, "enclave registered")) > 0 && len(logLines(s.proc, "waiting for a validateer of the shard to provision", "peers=0")) > 0, lastLine(procLog(s.proc))
	})
	m := regexp.MustCompile(`msg="validateer serving".* signer=(\w+)`).FindStringSubmatch(procLog(s.proc))
	if m == nil {
		t.Fatal("the stranger's log names no signer")
	}
	strangerID, err := account.ResolveID(m[1])
	if err != nil {
		t.Fatal(err)
	}

	// A host of the stranger build goes straight to each honest
	// validateer's MU-RA port, presenting its enclave's quote (the
	// simulation TEE's quotes can be made by anyone for any mrenclave).
	for _, h := range honest {
		cert, err := ratls.NewBoundCertificate(mitmTEE{mr: smr, at: time.Now()}, strangerID, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", fmt.Sprintf("127.0.0.1:%d", h.mura), &tls.Config{
			MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: []tls.Certificate{cert}})
		if err == nil {
			// TLS 1.3: the server's verdict on the client certificate
			// comes with the first read.
			conn.SetDeadline(time.Now().Add(10 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil {
			t.Fatalf("%s's MU-RA port accepted a quote of the stranger build", h.name)
		}
		var refusal []string
		eventually(t, h.name+" to log refusing the stranger build by mutual attestation", 10*time.Second, func() (bool, string) {
			refusal = logLines(h.proc, "peer refused by mutual attestation", "peer runs mrenclave "+strangerMr)
			return len(refusal) > 0, lastLine(procLog(h.proc))
		})
		t.Logf("%s refused the stranger (the client saw %q): %s", h.name, err, refusal[0])
	}

	for _, h := range honest {
		if l := logLines(h.proc, "peer validateer", strangerID.String()); len(l) > 0 {
			t.Errorf("%s took the stranger build for a peer: %s", h.name, l[0])
		}
	}

	// The stranger has only its own keys.
	key, err := shieldingKeyOf(s)
	if err == nil && bytes.Equal(key, honestKey) {
		t.Errorf("the stranger serves the shard's shielding key")
	}
	t.Logf("the stranger's author_getShieldingKey: %d bytes, err %v (the shard's: %x…)", len(key), err, honestKey[:8])
	watch()

	// The shard goes on beside it, untouched.
	after := waitQuiet(t, honest, sid, 30*time.Second)
	if after.Hash != before.Hash {
		t.Errorf("the honest head moved from %s to %s with no operation submitted", headerString(before), headerString(after))
	}
	wantBalances(t, honest, dir, shard, wantBefore)
	honest[1].mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", "1000000000")
	waitQuiet(t, honest, sid, 30*time.Second)
	sameHeaders(t, honest, dir, shard)
	wantBalances(t, honest, dir, shard, map[string]string{"//AliceIncognito": "8000000000", "//BobIncognito": "2000000000"})
	for _, h := range honest {
		t.Log(metricsLine(h))
		if got := logLines(h.proc, `msg="shard authorities"`, "count=3"); len(got) != 0 {
			t.Errorf("%s counts the stranger among the shard's authorities: %q", h.name, got)
		}
	}
	watch()
	if everInitialized || s.initialized() {
		t.Errorf("the stranger build became initialized")
	}
	if v, ok := metric(s, mProposed); ok && v != 0 {
		t.Errorf("the stranger authored %g blocks", v)
	}
	if got := logLines(s.proc, "joined the shard"); len(got) != 0 {
		t.Errorf("the stranger joined the shard: %q", got)
	}
	t.Log(metricsLine(s))
}

// TestLateValidateerOnboards: one validateer (100 ms slots) produces a
// few hundred sidechain blocks, one transfer each; then a second one
// starts, joins over mutual remote attestation, becomes initialized, holds
// the same head, and authors blocks of its own.
func TestLateValidateerOnboards(t *testing.T) {
	const slot = "100ms"
	const wantBlocks = 250
	n := startDevNode(t, "")
	v0 := startValidateer(t, "validateer0", n, "", "", nil, "--dev", "--slot-duration", slot)
	waitInitialized(t, v0, 90*time.Second)
	dir := t.TempDir()
	shard := v0.mustT(t, dir, "trusted", "get-fingerprint")
	mr, sid := shardOf(t, shard)
	v0.mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", "100000000000", shard)

	// One transfer a slot, straight to the trusted RPC, so that each slot
	// makes a block.
	c, err := trustedClient(v0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	key, err := c.ShieldingKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	alice, _ := account.DevPair("//AliceIncognito")
	bob, _ := account.DevPair("//BobIncognito")
	nonce, err := strconv.ParseUint(v0.mustT(t, dir, "trusted", "--mrenclave", shard, "nonce", "//AliceIncognito"), 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	first := nonce
	produce := time.Now()
	tick := time.NewTicker(100 * time.Millisecond)
	for height := 0.0; height < wantBlocks; {
		<-tick.C
		sc := stf.SignCall(alice, stf.Call{Transfer: &stf.Transfer{From: alice.ID(), To: bob.ID(), Amount: types.NewBalance(1)}}, nonce, mr, sid)
		plain, err := (&stf.Operation{Call: sc}).Encode()
		if err != nil {
			t.Fatal(err)
		}
		ct, err := keys.ShieldingEncrypt(key, plain)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Submit(ctx, sid, ct); err != nil {
			t.Fatalf("transfer with nonce %d: %v", nonce, err)
		}
		nonce++
		if nonce%10 == 0 {
			height = mustMetric(t, v0, mHeight)
			if time.Since(produce) > 60*time.Second {
				t.Fatalf("validateer0 made %g blocks in 60 s, want %d", height, wantBlocks)
			}
		}
	}
	tick.Stop()
	eventually(t, "every transfer to execute", 30*time.Second, func() (bool, string) {
		got := v0.mustT(t, dir, "trusted", "--mrenclave", shard, "nonce", "//AliceIncognito")
		return got == strconv.FormatUint(nonce, 10), fmt.Sprintf("nonce %s, want %d", got, nonce)
	})
	h0 := waitQuiet(t, []*workerProc{v0}, sid, 30*time.Second)
	t.Logf("validateer0 alone made %d sidechain blocks (%d transfers) in %s", h0.Number, nonce-first, time.Since(produce).Round(time.Millisecond))
	if h0.Number < wantBlocks {
		t.Fatalf("head #%d, want at least %d blocks", h0.Number, wantBlocks)
	}

	// The late validateer.
	v1 := startValidateer(t, "validateer1", n, "", "", nil, "--dev", "--slot-duration", slot)
	took := waitInitialized(t, v1, 60*time.Second)
	joined := logLines(v1.proc, "joined the shard over mutual remote attestation")
	if len(joined) == 0 {
		t.Fatalf("validateer1 is initialized but never logged joining the shard")
	}
	t.Logf("validateer1 joined a shard of %d blocks: start to /is_initialized %s; %s; on-boarding: %q",
		h0.Number, took.Round(time.Millisecond), joined[0], logLines(v1.proc, "on-boarding"))
	vals := []*workerProc{v0, v1}
	waitQuiet(t, vals, sid, 30*time.Second)
	if k, err := shieldingKeyOf(v1); err != nil || !bytes.Equal(k, key) {
		t.Errorf("validateer1's shielding key (err %v) is not the shard's", err)
	}

	// It takes its slots: direct transfers through it until it authored.
	sent := 0
	eventually(t, "validateer1 to author a block", 30*time.Second, func() (bool, string) {
		if v, _ := metric(v1, mProposed); v > 0 {
			return true, ""
		}
		v1.mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", "1000")
		sent++
		return false, fmt.Sprintf("%d transfers through it; %s; %s", sent, metricsLine(v1), metricsLine(v0))
	})
	waitQuiet(t, vals, sid, 30*time.Second)
	num, hash := sameHeaders(t, vals, dir, shard)
	t.Logf("after %d more transfers, head everywhere #%d %s; %s; %s", sent, num, hash, metricsLine(v0), metricsLine(v1))
	bobWant := (nonce - first) + uint64(sent)*1000
	wantBalances(t, vals, dir, shard, map[string]string{
		"//BobIncognito":   strconv.FormatUint(bobWant, 10),
		"//AliceIncognito": strconv.FormatUint(100000000000-bobWant, 10),
	})
}
