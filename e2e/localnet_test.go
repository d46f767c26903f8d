package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/localnet"
)

// localnetConfig loads a shipped local-setup config and moves every port
// of its nodes and validateers to free ones (the shipped files use the
// programs' default ports, which a test must not assume free), enabling
// Prometheus on a free port too if the machine has it. It writes the
// result to a temporary file.
func localnetConfig(t *testing.T, shipped string, edit func(*localnet.Config)) (path string, net *localnet.Network) {
	t.Helper()
	c, err := localnet.LoadConfig(filepath.Join("..", "local-setup", shipped))
	if err != nil {
		t.Fatal(err)
	}
	nn, nv := len(c.Nodes), len(c.Validateers)
	// An init chain's node K listens for peers on node0's p2p port + K
	// (integritee-node init writes that into every peer list): the p2p
	// ports are one run of consecutive free ports.
	p2p, p := localnetFreePorts(t, nn, 2*nn+5*nv+1)
	for i := range c.Nodes {
		c.Nodes[i].Ports = localnet.NodePorts{RPC: p[0], P2P: p2p + i, Prometheus: p[1]}
		p = p[2:]
	}
	for i := range c.Validateers {
		c.Validateers[i].Ports = localnet.ValidateerPorts{Trusted: p[0], Untrusted: p[1], MuRA: p[2], Health: p[3], Metrics: p[4]}
		p = p[5:]
	}
	if _, err := exec.LookPath(localnet.PrometheusBinary); err == nil {
		c.Prometheus = localnet.PrometheusSpec{Enabled: true, Port: p[0]}
	} else {
		c.Prometheus = localnet.PrometheusSpec{}
		t.Logf("%s is not installed (apt-get install prometheus): the Prometheus scrape checks are left out", localnet.PrometheusBinary)
	}
	if edit != nil {
		edit(c)
	}
	if net, err = c.Resolve(); err != nil {
		t.Fatal(err)
	}
	b, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	path = filepath.Join(t.TempDir(), shipped)
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path, net
}

// localnetFreePorts returns the first of run consecutive free loopback
// ports and n other free ones, all distinct: every port is held open until
// all are found.
func localnetFreePorts(t *testing.T, run, n int) (first int, others []int) {
	t.Helper()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	listen := func(port int) (int, bool) {
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			return 0, false
		}
		held = append(held, l)
		return l.Addr().(*net.TCPAddr).Port, true
	}
	for tries := 0; first == 0; tries++ {
		if tries == 100 {
			t.Fatalf("found no %d consecutive free ports", run)
		}
		base, ok := listen(0)
		if !ok {
			t.Fatal("no free port")
		}
		got := 1
		for ; got < run; got++ {
			if _, ok := listen(base + got); !ok {
				break
			}
		}
		if got == run {
			first = base
		}
	}
	for range n {
		p, ok := listen(0)
		if !ok {
			t.Fatal("no free port")
		}
		others = append(others, p)
	}
	return first, others
}

// readPids reads the launcher's pid files (work dir/pids/<name>.pid).
func readPids(t *testing.T, work string) map[string]int {
	t.Helper()
	m, err := localnet.ReadPids(work)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// gone reports whether no process has the pid any more (the launcher reaps
// its children, so a stopped child leaves no zombie behind either).
func gone(pid int) bool { return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH) }

func launcherLog(p *proc) string {
	b, _ := os.ReadFile(p.log)
	return string(b)
}

// waitExit waits for the launcher to exit and returns its exit code.
func waitExit(t *testing.T, p *proc, within time.Duration) int {
	t.Helper()
	select {
	case <-p.done:
	case <-time.After(within):
		t.Fatalf("integritee-localnet did not exit within %s; output:\n%s", within, launcherLog(p))
	}
	return p.cmd.ProcessState.ExitCode()
}

// Validateer series of the shared-shard sidechain that Prometheus must
// find for every validateer. Histograms are looked up by their _count
// series; aura_remaining_durations (by stage) exists once its validateer
// authored a block.
var localnetValidateerSeries = []string{
	"integritee_worker_enclave_sidechain_block_height",
	"integritee_worker_enclave_sidechain_blocks_proposed_total",
	"integritee_worker_enclave_sidechain_blocks_imported_total",
	"integritee_worker_enclave_sidechain_forks_total",
	"integritee_worker_enclave_sidechain_peer_count",
	"integritee_worker_enclave_sidechain_onboarding_remaining_blocks",
	"integritee_worker_enclave_sidechain_onboarding_imported_blocks_total",
	"integritee_worker_enclave_sidechain_queued_blocks",
	"integritee_worker_enclave_sidechain_slot_duration_seconds_count",
	"integritee_worker_enclave_sidechain_aura_remaining_durations_count",
	"integritee_worker_parentchain_proven_view_height",
}

// localnetMetric reads a series from a /metrics page: the value of the
// line NAME VALUE (unlabelled) or, for a labelled series, the sum over its
// lines; ok is false if the page has no such series.
func localnetMetric(page, name string) (v float64, ok bool) {
	for _, line := range strings.Split(page, "\n") {
		rest, found := strings.CutPrefix(line, name)
		if !found || rest == "" || (rest[0] != ' ' && rest[0] != '{') {
			continue
		}
		if rest[0] == '{' {
			i := strings.LastIndexByte(rest, '}')
			if i < 0 {
				continue
			}
			rest = rest[i+1:]
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(rest), 64)
		if err != nil {
			continue
		}
		v, ok = v+f, true
	}
	return v, ok
}

// localnetMetrics fetches a /metrics page; "" if it does not answer.
func localnetMetrics(port int) string {
	c := http.Client{Timeout: 3 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// promSample is one series of a Prometheus instant query's answer.
type promSample struct {
	Metric map[string]string `json:"metric"`
	Value  [2]any            `json:"value"`
}

// promQuery runs an instant query against the Prometheus API.
func promQuery(t *testing.T, port int, q string) []promSample {
	t.Helper()
	var r struct {
		Status string `json:"status"`
		Data   struct {
			Result []promSample `json:"result"`
		} `json:"data"`
	}
	body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", port, url.QueryEscape(q)))
	if err := json.Unmarshal([]byte(body), &r); err != nil || r.Status != "success" {
		t.Fatalf("Prometheus query %s: %v: %s", q, err, body)
	}
	return r.Data.Result
}

// promTarget is one of Prometheus's active targets.
type promTarget struct {
	Labels    map[string]string `json:"labels"`
	ScrapeURL string            `json:"scrapeUrl"`
	Health    string            `json:"health"`
	LastError string            `json:"lastError"`
}

func promTargets(t *testing.T, port int) []promTarget {
	t.Helper()
	var r struct {
		Data struct {
			ActiveTargets []promTarget `json:"activeTargets"`
		} `json:"data"`
	}
	body := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/targets", port))
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		t.Fatalf("Prometheus targets: %v: %s", err, body)
	}
	return r.Data.ActiveTargets
}

// localnetWait is waitFor whose failure shows cond's last status.
func localnetWait(t *testing.T, what string, timeout time.Duration, cond func() (bool, string)) {
	t.Helper()
	var status string
	deadline := time.Now().Add(timeout)
	for {
		var ok bool
		if ok, status = cond(); ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s; last seen: %s", timeout, what, status)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// endpointTable parses the launcher's table of processes into
// "NAME ENDPOINT" → "PID ADDRESS".
func endpointTable(out string) map[string]string {
	m := map[string]string{}
	for _, line := range strings.Split(out, "\n") {
		f := strings.Fields(line)
		if len(f) < 4 || f[0] == "PROCESS" {
			continue
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue
		}
		m[f[0]+" "+f[2]] = f[1] + " " + strings.Join(f[3:], " ")
	}
	return m
}

// TestLocalnet starts local-setup/two-nodes-three-validateers.json (on
// free ports, with Prometheus if installed) with integritee-localnet: two
// nodes of one init chain, validateer0 and validateer2 beside node0,
// validateer1 beside node1, all three on one shard. It uses the network
// through integritee-cli, checks that the validateers agree and count each
// other, that Prometheus scrapes all five processes, and stops it with
// SIGINT.
func TestLocalnet(t *testing.T) {
	began := time.Now()
	cfgPath, net := localnetConfig(t, "two-nodes-three-validateers.json", nil)
	if net.Chain != localnet.ChainInit || len(net.Nodes) != 2 || len(net.Validateers) != 3 {
		t.Fatalf("two-nodes-three-validateers.json: chain %q, %d nodes, %d validateers: want init, 2, 3", net.Chain, len(net.Nodes), len(net.Validateers))
	}
	work := filepath.Join(t.TempDir(), "net")
	l := start(t, "integritee-localnet", "--config", cfgPath, "--work-dir", work, "--start-timeout", "40s")
	waitFor(t, "integritee-localnet to report every process healthy", 60*time.Second, func() bool {
		if isDone(l) {
			t.Fatalf("integritee-localnet exited early:\n%s", launcherLog(l))
		}
		return strings.Contains(launcherLog(l), localnet.ReadyMessage)
	})
	t.Logf("every process healthy after %s", time.Since(began).Round(time.Millisecond))
	out := launcherLog(l)

	// Every process runs, with a pid file, and has its endpoints (and
	// pid) in the table.
	pids := readPids(t, work)
	wantProcs := len(net.Nodes) + len(net.Validateers)
	if net.PrometheusPort != 0 {
		wantProcs++
	}
	if len(pids) != wantProcs {
		t.Fatalf("pid files %v, want %d", pids, wantProcs)
	}
	table := endpointTable(out)
	want := map[string]string{}
	for _, n := range net.Nodes {
		want[n.Name+" rpc"] = fmt.Sprintf("http://127.0.0.1:%d  ws://127.0.0.1:%d/websocket", n.Ports.RPC, n.Ports.RPC)
		want[n.Name+" p2p"] = fmt.Sprintf("127.0.0.1:%d", n.Ports.P2P)
		want[n.Name+" prometheus"] = fmt.Sprintf("http://127.0.0.1:%d/metrics", n.Ports.Prometheus)
	}
	for _, v := range net.Validateers {
		want[v.Name+" node"] = fmt.Sprintf("%s (ws://127.0.0.1:%d)", v.Node.Name, v.Node.Ports.RPC)
		want[v.Name+" trusted"] = fmt.Sprintf("wss://127.0.0.1:%d", v.Ports.Trusted)
		want[v.Name+" untrusted"] = fmt.Sprintf("ws://127.0.0.1:%d", v.Ports.Untrusted)
		want[v.Name+" mu-ra"] = fmt.Sprintf("127.0.0.1:%d", v.Ports.MuRA)
		want[v.Name+" health"] = fmt.Sprintf("http://127.0.0.1:%d/is_initialized", v.Ports.Health)
		want[v.Name+" metrics"] = fmt.Sprintf("http://127.0.0.1:%d/metrics", v.Ports.Metrics)
	}
	if net.PrometheusPort != 0 {
		want["prometheus web"] = fmt.Sprintf("http://127.0.0.1:%d", net.PrometheusPort)
	}
	for key, addr := range want {
		name := strings.Fields(key)[0]
		got, ok := table[key]
		if wantRow := fmt.Sprintf("%d %s", pids[name], strings.Join(strings.Fields(addr), " ")); !ok || got != wantRow {
			t.Errorf("endpoint table: %s is %q, want %q:\n%s", key, got, wantRow, out)
		}
	}
	for name, pid := range pids {
		if gone(pid) {
			t.Errorf("%s (pid %d) is not running", name, pid)
		}
	}
	if wantNode1 := net.Validateers[1].Node.Name; wantNode1 != "node1" || net.Validateers[0].Node.Name != "node0" || net.Validateers[2].Node.Name != "node0" {
		t.Fatalf("validateers beside %s, %s, %s: want node0, node1, node0", net.Validateers[0].Node.Name, wantNode1, net.Validateers[2].Node.Name)
	}

	// The network works: both nodes answer the CLI with the dev genesis,
	// and every validateer, beside its node, serves the one shard with the
	// same shielding key (the later ones joined the first).
	dir := t.TempDir()
	nodes := make([]*nodeProc, len(net.Nodes))
	for i, n := range net.Nodes {
		nodes[i] = &nodeProc{rpc: n.Ports.RPC}
		bal, err := strconv.ParseUint(nodes[i].mustCLI(t, dir, "balance", "//Alice"), 10, 64)
		if err != nil || bal == 0 {
			t.Fatalf("//Alice's balance on %s: %d %v", n.Name, bal, err)
		}
	}
	vals := make([]*workerProc, len(net.Validateers))
	for i, v := range net.Validateers {
		vals[i] = &workerProc{proc: &proc{name: v.Name}, node: nodes[v.Node.Index], trusted: v.Ports.Trusted, metrics: v.Ports.Metrics}
	}
	shard := vals[0].mustT(t, dir, "trusted", "get-fingerprint")
	if s := vals[0].mustT(t, dir, "trusted", "get-shard"); shard == "" || s != shard {
		t.Fatalf("fingerprint %q, shard %q: a --dev validateer serves the shard of its mrenclave", shard, s)
	}
	key0 := vals[0].mustT(t, dir, "trusted", "get-shielding-key")
	for _, w := range vals[1:] {
		if s := w.mustT(t, dir, "trusted", "get-shard"); s != shard {
			t.Errorf("%s serves shard %s, validateer0 %s", w.name, s, shard)
		}
		if k := w.mustT(t, dir, "trusted", "get-shielding-key"); key0 == "" || k != key0 {
			t.Errorf("%s's shielding key %q, validateer0's %q: it did not get the shard's keys", w.name, k, key0)
		}
	}
	for _, n := range net.Nodes {
		if m := localnetMetrics(n.Ports.Prometheus); !strings.Contains(m, "integritee_node_block_height") {
			t.Errorf("%s's metrics lack integritee_node_block_height", n.Name)
		}
	}

	// Shield through node1 (the CLI takes the shielding key from
	// validateer1, beside it), then direct transfers through the validateers
	// in turn until each has authored a block (the slot's author takes a
	// transfer whichever validateer received it).
	const shielded, amount = 50000000000, 1000000000
	vals[1].mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", strconv.Itoa(shielded), shard)
	balancesEverywhere := func(what string, wantBal map[string]string) {
		t.Helper()
		localnetWait(t, what, 20*time.Second, func() (bool, string) {
			var last []string
			ok := true
			for _, w := range vals {
				for acct, b := range wantBal {
					got := w.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", acct)
					last = append(last, fmt.Sprintf("%s %s=%s", w.name, acct, got))
					ok = ok && got == b
				}
			}
			return ok, strings.Join(last, ", ")
		})
	}
	balancesEverywhere("every validateer to show the shielded funds", map[string]string{"//AliceIncognito": strconv.Itoa(shielded)})
	proposed := func(w *workerProc) float64 {
		v, _ := localnetMetric(localnetMetrics(w.metrics), "integritee_worker_enclave_sidechain_blocks_proposed_total")
		return v
	}
	sent := 0
	waitFor(t, "every validateer to author a block (direct transfers through each in turn)", 40*time.Second, func() bool {
		if sent >= len(vals) {
			all := true
			for _, w := range vals {
				all = all && proposed(w) > 0
			}
			if all {
				return true
			}
		}
		if sent == 20 {
			var counts []string
			for _, w := range vals {
				counts = append(counts, fmt.Sprintf("%s=%g", w.name, proposed(w)))
			}
			t.Fatalf("after %d direct transfers some validateer has authored no block: blocks_proposed_total %s", sent, strings.Join(counts, " "))
		}
		w := vals[sent%len(vals)]
		w.mustT(t, dir, "trusted", "--mrenclave", shard, "--direct", "transfer", "//AliceIncognito", "//BobIncognito", strconv.Itoa(amount))
		sent++
		return false
	})
	t.Logf("%d direct transfers until each validateer authored a block", sent)
	balancesEverywhere("every validateer to show the transfers' balances", map[string]string{
		"//AliceIncognito": strconv.Itoa(shielded - sent*amount), "//BobIncognito": strconv.Itoa(sent * amount)})

	// One chain: the same head everywhere, and each validateer counts the
	// other two as peers.
	var heads []string
	localnetWait(t, "every validateer to report the same sidechain header", 20*time.Second, func() (bool, string) {
		heads = heads[:0]
		for _, w := range vals {
			heads = append(heads, w.mustT(t, dir, "trusted", "--mrenclave", shard, "get-sidechain-header"))
		}
		for _, h := range heads[1:] {
			if h != heads[0] {
				return false, strings.Join(heads, " | ")
			}
		}
		return true, ""
	})
	var head struct {
		Number uint64 `json:"number"`
		Hash   string `json:"hash"`
	}
	if err := json.Unmarshal([]byte(heads[0]), &head); err != nil || head.Hash == "" || head.Number < uint64(1+sent) {
		t.Errorf("sidechain header %q (%v): want a block at least #%d (the shard's first, then a block per transfer)", heads[0], err, 1+sent)
	}
	t.Logf("head everywhere: #%d %s", head.Number, head.Hash)
	for i, w := range vals {
		v := net.Validateers[i]
		localnetWait(t, w.name+" to count its two peers", 15*time.Second, func() (bool, string) {
			n, ok := localnetMetric(localnetMetrics(v.Ports.Metrics), "integritee_worker_enclave_sidechain_peer_count")
			return ok && n == 2, fmt.Sprintf("peer_count %g (present: %v)", n, ok)
		})
		m := localnetMetrics(v.Ports.Metrics)
		for _, series := range localnetValidateerSeries {
			if _, ok := localnetMetric(m, series); !ok {
				t.Errorf("%s's metrics lack %s", v.Name, series)
			}
		}
		if f, _ := localnetMetric(m, "integritee_worker_enclave_sidechain_forks_total"); f != 0 {
			t.Errorf("%s counted %g competing blocks", v.Name, f)
		}
	}

	if net.PrometheusPort != 0 {
		// Prometheus is ready before it has loaded its targets: wait until
		// it lists all five, each labelled with its process's name, and
		// has scraped them all up.
		wantTargets := map[string]string{}
		for _, n := range net.Nodes {
			wantTargets[n.Name] = fmt.Sprintf("127.0.0.1:%d", n.Ports.Prometheus)
		}
		for _, v := range net.Validateers {
			wantTargets[v.Name] = fmt.Sprintf("127.0.0.1:%d", v.Ports.Metrics)
		}
		var status string
		localnetWait(t, "Prometheus to list every node and validateer as a target, up", 20*time.Second, func() (bool, string) {
			targets := promTargets(t, net.PrometheusPort)
			var parts []string
			up := 0
			for _, tg := range targets {
				parts = append(parts, fmt.Sprintf("%s %s %s %s", tg.Labels["name"], tg.Labels["instance"], tg.Health, tg.LastError))
				if wantTargets[tg.Labels["name"]] == tg.Labels["instance"] && tg.Health == "up" {
					up++
				}
			}
			status = strings.Join(parts, "; ")
			return len(targets) == len(wantTargets) && up == len(wantTargets), status
		})
		t.Logf("Prometheus targets: %s", status)
		localnetWait(t, "Prometheus's up to be 1 for every target", 15*time.Second, func() (bool, string) {
			res := promQuery(t, net.PrometheusPort, "up")
			ok := len(res) == len(wantTargets)
			var parts []string
			for _, s := range res {
				parts = append(parts, fmt.Sprintf("%s %s %v", s.Metric["name"], s.Metric["instance"], s.Value[1]))
				ok = ok && wantTargets[s.Metric["name"]] == s.Metric["instance"] && s.Value[1] == "1"
			}
			return ok, strings.Join(parts, "; ")
		})
		// Every series scraped from every validateer (and the nodes' own).
		localnetWait(t, "Prometheus to hold every validateer's sidechain series", 20*time.Second, func() (bool, string) {
			var missing []string
			for _, series := range localnetValidateerSeries {
				have := map[string]bool{}
				for _, s := range promQuery(t, net.PrometheusPort, series) {
					have[s.Metric["name"]] = true
				}
				for _, v := range net.Validateers {
					if !have[v.Name] {
						missing = append(missing, v.Name+" "+series)
					}
				}
			}
			have := map[string]bool{}
			for _, s := range promQuery(t, net.PrometheusPort, "integritee_node_block_height") {
				have[s.Metric["name"]] = true
			}
			for _, n := range net.Nodes {
				if !have[n.Name] {
					missing = append(missing, n.Name+" integritee_node_block_height")
				}
			}
			return len(missing) == 0, "missing " + strings.Join(missing, ", ")
		})
		// Prometheus sees the peer counts too (the first scrapes may
		// predate the last join).
		localnetWait(t, "Prometheus to see a peer_count of 2 on every validateer", 15*time.Second, func() (bool, string) {
			res := promQuery(t, net.PrometheusPort, "integritee_worker_enclave_sidechain_peer_count")
			ok := len(res) == len(net.Validateers)
			var parts []string
			for _, s := range res {
				parts = append(parts, fmt.Sprintf("%s=%v", s.Metric["name"], s.Value[1]))
				ok = ok && s.Value[1] == "2"
			}
			return ok, strings.Join(parts, " ")
		})
	}
	logs := []string{"init"}
	for _, n := range net.Nodes {
		logs = append(logs, n.Name)
	}
	for _, v := range net.Validateers {
		logs = append(logs, v.Name)
	}
	if net.PrometheusPort != 0 {
		logs = append(logs, "prometheus")
	}
	for _, name := range logs {
		if st, err := os.Stat(filepath.Join(work, "logs", name+".log")); err != nil || st.Size() == 0 {
			t.Errorf("logs/%s.log: %v", name, err)
		}
	}

	// Ctrl-C: every process stopped, the launcher exits 0.
	l.cmd.Process.Signal(syscall.SIGINT)
	if code := waitExit(t, l, 30*time.Second); code != 0 {
		t.Fatalf("integritee-localnet exited %d after SIGINT:\n%s", code, launcherLog(l))
	}
	for name, pid := range pids {
		if !gone(pid) {
			t.Errorf("%s (pid %d) is still there after the launcher exited", name, pid)
		}
	}
	if out := launcherLog(l); !strings.Contains(out, "all processes stopped") || strings.Contains(out, "killed after the stop timeout") {
		t.Errorf("not a clean stop:\n%s", out)
	}
	t.Logf("whole run: %s", time.Since(began).Round(time.Millisecond))
}

// TestLocalnetProcessExitsEarly: a validateer that cannot start makes the
// launcher print its log's tail, stop the node and exit non-zero.
func TestLocalnetProcessExitsEarly(t *testing.T) {
	cfgPath, _ := localnetConfig(t, "one-validateer.json", func(c *localnet.Config) {
		c.Prometheus.Enabled = false
		c.Validateers[0].RunFlags = append(c.Validateers[0].RunFlags, "--no-such-flag")
	})
	work := filepath.Join(t.TempDir(), "net")
	l := start(t, "integritee-localnet", "--config", cfgPath, "--work-dir", work)
	if code := waitExit(t, l, 45*time.Second); code == 0 {
		t.Fatalf("integritee-localnet exited 0 although validateer0 failed:\n%s", launcherLog(l))
	}
	out := launcherLog(l)
	for _, want := range []string{"validateer0 exited with status 1", "unknown flag: --no-such-flag", "work dir kept for inspection"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for name, pid := range readPids(t, work) {
		if !gone(pid) {
			t.Errorf("%s (pid %d) is still there after the launcher exited", name, pid)
		}
	}
}
