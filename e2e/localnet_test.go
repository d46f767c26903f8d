package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
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
// of its node0 and validateer0 to free ones (the shipped files use the
// programs' default ports, which a test must not assume free), enabling
// Prometheus on a free port too if the machine has it. It writes the
// result to a temporary file.
func localnetConfig(t *testing.T, shipped string, edit func(*localnet.Config)) (path string, net *localnet.Network) {
	t.Helper()
	c, err := localnet.LoadConfig(filepath.Join("..", "local-setup", shipped))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Nodes) != 1 || len(c.Validateers) != 1 {
		t.Fatalf("%s: want one node and one validateer", shipped)
	}
	p := freePorts(t, 9)
	c.Nodes[0].Ports = localnet.NodePorts{RPC: p[0], P2P: p[1], Prometheus: p[2]}
	c.Validateers[0].Ports = localnet.ValidateerPorts{Trusted: p[3], Untrusted: p[4], MuRA: p[5], Health: p[6], Metrics: p[7]}
	if _, err := exec.LookPath(localnet.PrometheusBinary); err == nil {
		c.Prometheus = localnet.PrometheusSpec{Enabled: true, Port: p[8]}
	} else {
		t.Logf("%s is not installed (apt-get install prometheus): the Prometheus scrape check is left out", localnet.PrometheusBinary)
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

// readPids reads the launcher's pid files (work dir/pids/<name>.pid).
func readPids(t *testing.T, work string) map[string]int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(work, "pids", "*.pid"))
	m := map[string]int{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		m[strings.TrimSuffix(filepath.Base(f), ".pid")] = pid
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

// TestLocalnet starts local-setup/one-validateer.json (on free ports)
// with integritee-localnet, uses the network through integritee-cli, and
// stops it with SIGINT.
func TestLocalnet(t *testing.T) {
	cfgPath, net := localnetConfig(t, "one-validateer.json", nil)
	work := filepath.Join(t.TempDir(), "net")
	l := start(t, "integritee-localnet", "--config", cfgPath, "--work-dir", work, "--start-timeout", "40s")
	waitFor(t, "integritee-localnet to report every process healthy", 45*time.Second, func() bool {
		if isDone(l) {
			t.Fatalf("integritee-localnet exited early:\n%s", launcherLog(l))
		}
		return strings.Contains(launcherLog(l), localnet.ReadyMessage)
	})
	out := launcherLog(l)
	node, val := net.Nodes[0], net.Validateers[0]
	for _, want := range []string{
		fmt.Sprintf("http://127.0.0.1:%d", node.Ports.RPC), fmt.Sprintf("127.0.0.1:%d", node.Ports.P2P),
		fmt.Sprintf("http://127.0.0.1:%d/metrics", node.Ports.Prometheus),
		fmt.Sprintf("wss://127.0.0.1:%d", val.Ports.Trusted), fmt.Sprintf("ws://127.0.0.1:%d", val.Ports.Untrusted),
		fmt.Sprintf("127.0.0.1:%d", val.Ports.MuRA), fmt.Sprintf("http://127.0.0.1:%d/is_initialized", val.Ports.Health),
		fmt.Sprintf("http://127.0.0.1:%d/metrics", val.Ports.Metrics),
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the endpoint table lacks %s:\n%s", want, out)
		}
	}
	pids := readPids(t, work)
	wantProcs := 2
	if net.PrometheusPort != 0 {
		wantProcs = 3
	}
	if len(pids) != wantProcs {
		t.Fatalf("pid files %v, want %d", pids, wantProcs)
	}

	// The network works: the node answers the CLI with the dev genesis,
	// and the validateer, beside it, serves its attested trusted RPC.
	n := &nodeProc{rpc: node.Ports.RPC}
	dir := t.TempDir()
	bal, err := strconv.ParseUint(n.mustCLI(t, dir, "balance", "//Alice"), 10, 64)
	if err != nil || bal == 0 {
		t.Fatalf("//Alice's balance: %d %v", bal, err)
	}
	w := &workerProc{node: n, trusted: val.Ports.Trusted}
	fp := w.mustT(t, dir, "trusted", "get-fingerprint")
	if shard := w.mustT(t, dir, "trusted", "get-shard"); fp == "" || shard != fp {
		t.Fatalf("fingerprint %q, shard %q: a --dev validateer serves the shard of its mrenclave", fp, shard)
	}
	if m := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", node.Ports.Prometheus)); !strings.Contains(m, "integritee_node_block_height") {
		t.Errorf("node metrics lack integritee_node_block_height")
	}
	workerSeries := []string{
		"integritee_worker_enclave_sidechain_block_height",
		"integritee_worker_enclave_sidechain_blocks_proposed_total",
		"integritee_worker_enclave_sidechain_blocks_imported_total",
		"integritee_worker_enclave_sidechain_peer_count",
		"integritee_worker_parentchain_proven_view_height",
	}
	m := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", val.Ports.Metrics))
	for _, series := range workerSeries {
		if !strings.Contains(m, series) {
			t.Errorf("validateer metrics lack %s", series)
		}
	}
	if net.PrometheusPort != 0 {
		// Prometheus is ready before it has loaded its targets.
		waitFor(t, "Prometheus to list the node and the validateer as targets", 15*time.Second, func() bool {
			targets := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/targets", net.PrometheusPort))
			return strings.Contains(targets, fmt.Sprintf(`"127.0.0.1:%d"`, node.Ports.Prometheus)) &&
				strings.Contains(targets, fmt.Sprintf(`"127.0.0.1:%d"`, val.Ports.Metrics))
		})
		// Every target up, and the series scraped.
		waitFor(t, "Prometheus to scrape both targets up with the validateer's series", 30*time.Second, func() bool {
			up := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=up", net.PrometheusPort))
			if strings.Count(up, `"value"`) < 2 || strings.Contains(up, `"0"]`) {
				return false
			}
			for _, series := range append(workerSeries, "integritee_node_block_height") {
				q := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/api/v1/query?query=%s", net.PrometheusPort, series))
				if !strings.Contains(q, `"__name__":"`+series+`"`) {
					return false
				}
			}
			return true
		})
	}
	for _, name := range []string{"node0", "validateer0"} {
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
