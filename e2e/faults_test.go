package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Fault injection (docs/RELIABILITY.md, "Fault injection"): each scenario
// runs the load of faults_net_test.go on the fault network, injects one
// fault, heals it, and ends with `integritee-cli check-invariants` over the
// whole history (every operation any scenario's clients saw in a block).
// `go test ./e2e -run 'TestFault/<name>'` runs one (after the network's
// set-up); scripts/faults.sh runs them in a row, in their long versions
// with INTEGRITEE_FAULTS_LONG=1. The block store's I/O errors are a
// service-level test: service/faults_test.go.

// faultScenario is one fault: run injects and heals it under load;
// restore, if set, undoes what run left changed (after the check).
type faultScenario struct {
	name    string
	run     func(t *testing.T, n *faultNet, l *faultLoad)
	restore func(t *testing.T, n *faultNet)
}

func faultScenarios() []faultScenario {
	return []faultScenario{
		{name: "kill-validateer", run: killValidateer},
		{name: "stop-validateer", run: stopValidateer},
		{name: "partition", run: partitionValidateer},
		{name: "clock-ahead", run: clockAhead, restore: clockRestore},
		{name: "kill-node", run: killNode},
		{name: "parentchain-halt", run: haltParentchain},
		{name: "benchmark-stop", run: benchmarkStop},
		// Last: it changes the network (a new enclave for validateer2).
		{name: "wipe-validateer", run: wipeValidateer},
	}
}

// TestFault runs every fault scenario, one after the other, on one
// network: two nodes and three validateers.
func TestFault(t *testing.T) {
	n := startFaultNet(t)
	for _, sc := range faultScenarios() {
		t.Run(sc.name, func(t *testing.T) {
			began := time.Now()
			n.healthy(t)
			l := n.startLoad(t)
			eventually(t, "the load to get 6 operations into blocks before the fault", 60*time.Second, func() (bool, string) {
				return l.total() >= 6, l.summary()
			})
			sc.run(t, n, l)
			l.stop()
			t.Logf("load: %s", l.summary())
			for _, p := range l.problems() {
				t.Errorf("a client saw an operation in a block and then lost it: %s", p)
			}
			if !n.checkInvariants(t) {
				if bug := n.forkFailure(); bug != "" {
					t.Errorf("check-invariants failed (above); the fork bug fixed in enclave/fork.go (JoinedAt) is back: %s", bug)
				} else {
					t.Error("check-invariants failed (above)")
				}
			}
			for _, w := range n.vals {
				t.Logf("%s rollbacks=%g", metricsLine(w), func() float64 { v, _ := metric(w, mRollbacks); return v }())
			}
			if sc.restore != nil {
				sc.restore(t, n)
			}
			t.Logf("%s done after %s", sc.name, time.Since(began).Round(time.Millisecond))
		})
	}
}

// dur is a fault's duration: short in `go test`, long with
// INTEGRITEE_FAULTS_LONG.
func (n *faultNet) dur(short, long time.Duration) time.Duration {
	if n.long {
		return long
	}
	return short
}

// during waits d, the fault, and fails t unless the load got at least min
// operations into blocks meanwhile.
func during(t *testing.T, l *faultLoad, d time.Duration, min int, what string) {
	t.Helper()
	before := l.total()
	time.Sleep(d) // the fault lasts d: deliberate
	if got := l.total() - before; got < min {
		t.Errorf("%s: the load got %d operations into blocks in %s, want at least %d (%s)", what, got, d, min, l.summary())
	} else {
		t.Logf("%s: the load got %d operations into blocks in %s", what, got, d)
	}
}

// throughAgain waits until operations submitted to validateer i reach
// blocks again.
func throughAgain(t *testing.T, l *faultLoad, i int, timeout time.Duration) {
	t.Helper()
	from := l.through(i)
	eventually(t, fmt.Sprintf("3 more operations through validateer%d", i), timeout, func() (bool, string) {
		return l.through(i) >= from+3, l.summary()
	})
}

// killValidateer: SIGKILL validateer1 under load; the others go on; it
// restarts on its data dir and catches up.
func killValidateer(t *testing.T, n *faultNet, l *faultLoad) {
	const i = 1
	l.setDown(i, true)
	n.vals[i].stop(syscall.SIGKILL)
	during(t, l, n.dur(4*time.Second, 20*time.Second), 3, "validateer1 killed")
	if err := n.startValidateer(i); err != nil {
		t.Fatal(err)
	}
	took := n.waitInitialized(t, i, 2*time.Minute)
	l.setDown(i, false)
	t.Logf("validateer1 restarted and initialized in %s; on-boarding: %q", took.Round(time.Millisecond), logLines(n.vals[i].proc, "on-boarding done"))
	throughAgain(t, l, i, time.Minute)
}

// stopValidateer: SIGSTOP validateer2 past several slots, then SIGCONT.
func stopValidateer(t *testing.T, n *faultNet, l *faultLoad) {
	const i = 2
	pid := n.vals[i].proc.cmd.Process.Pid
	l.setDown(i, true)
	syscall.Kill(pid, syscall.SIGSTOP)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	during(t, l, n.dur(5*time.Second, 30*time.Second), 3, "validateer2 stopped")
	syscall.Kill(pid, syscall.SIGCONT)
	l.setDown(i, false)
	throughAgain(t, l, i, time.Minute)
}

// partitionValidateer: validateer2's advertised trusted and untrusted
// addresses are proxies; cut, the peers cannot reach it (its connections
// to them still work: the partition is one-way), healed, they can.
func partitionValidateer(t *testing.T, n *faultNet, l *faultLoad) {
	const i = 2
	blocked := n.proxies[i][0].Blocked()
	for _, p := range n.proxies[i] {
		p.Cut()
	}
	t.Cleanup(func() {
		for _, p := range n.proxies[i] {
			p.Heal()
		}
	})
	during(t, l, n.dur(6*time.Second, 30*time.Second), 3, "validateer2 partitioned")
	for _, p := range n.proxies[i] {
		p.Heal()
	}
	if got := n.proxies[i][0].Blocked() - blocked; got == 0 {
		t.Errorf("no peer tried to reach validateer2 during the partition: the cut proved nothing")
	} else {
		t.Logf("the peers' connections to validateer2 held by the cut: %d", got)
	}
	throughAgain(t, l, i, time.Minute)
}

// clockAhead: validateer2 restarts with its slot clock a slot ahead
// (--dev-clock-offset 300ms) and runs so under load; forks are resolved.
func clockAhead(t *testing.T, n *faultNet, l *faultLoad) {
	const i = 2
	l.setDown(i, true)
	n.vals[i].stop(syscall.SIGTERM)
	if err := n.startValidateer(i, "--dev-clock-offset", "300ms"); err != nil {
		t.Fatal(err)
	}
	n.waitInitialized(t, i, 2*time.Minute)
	l.setDown(i, false)
	forks := 0.0
	for _, w := range n.vals {
		v, _ := metric(w, mForks)
		forks += v
	}
	during(t, l, n.dur(10*time.Second, 40*time.Second), 3, "validateer2 a slot ahead")
	throughAgain(t, l, i, time.Minute)
	after := 0.0
	for _, w := range n.vals {
		v, _ := metric(w, mForks)
		after += v
	}
	t.Logf("forks noticed while validateer2 ran a slot ahead: %g", after-forks)
}

// clockRestore restarts validateer2 with its clock right.
func clockRestore(t *testing.T, n *faultNet) {
	n.vals[2].stop(syscall.SIGTERM)
	if err := n.startValidateer(2); err != nil {
		t.Fatal(err)
	}
	n.waitInitialized(t, 2, 2*time.Minute)
}

// killNode: SIGKILL node1 (validateer1's node) under load: with two
// validators the parentchain halts; node1 restarts on its home.
func killNode(t *testing.T, n *faultNet, l *faultLoad) {
	const i = 1
	h := n.nodes[0].height()
	n.nodes[i].stop(syscall.SIGKILL)
	down := n.dur(5*time.Second, 30*time.Second)
	time.Sleep(down) // the node is down: deliberate
	if got := n.nodes[0].height(); got > h+2 {
		t.Errorf("node0 went from height %d to %d without node1: two validators need both", h, got)
	}
	if err := n.startNode(i); err != nil {
		t.Fatal(err)
	}
	n.nodes[i].waitHeight(t, h+3, 2*time.Minute)
	n.nodes[0].waitHeight(t, h+3, time.Minute)
	t.Logf("node1 was down for %s; the chain moved on from %d to %d", down, h, n.nodes[0].height())
	throughAgain(t, l, 1, time.Minute)
}

// haltParentchain: both nodes stopped (SIGSTOP) for a while, then resumed.
// The sidechain goes on until its blocks would be too far ahead of the
// last parentchain block (15 s), then waits.
func haltParentchain(t *testing.T, n *faultNet, l *faultLoad) {
	halt := n.dur(20*time.Second, time.Minute)
	h := n.nodes[0].height()
	sc0 := mustMetric(t, n.vals[0], mHeight)
	for _, nd := range n.nodes {
		syscall.Kill(nd.proc.cmd.Process.Pid, syscall.SIGSTOP)
	}
	t.Cleanup(func() {
		for _, nd := range n.nodes {
			syscall.Kill(nd.proc.cmd.Process.Pid, syscall.SIGCONT)
		}
	})
	ops := l.total()
	halted := time.Now()
	// While it is halted, every validateer must still answer its trusted
	// RPC (chain_getHeader), whatever it waits for from its node.
	time.Sleep(n.dur(8*time.Second, 20*time.Second)) // into the halt: deliberate
	var unresponsive []string
	for _, w := range n.vals {
		asked := time.Now()
		h, err := headerOf(w, n.sid)
		if err != nil {
			unresponsive = append(unresponsive, fmt.Sprintf("%s: %v after %s", w.name, err, time.Since(asked).Round(time.Millisecond)))
			continue
		}
		t.Logf("%s answered chain_getHeader in %s during the halt: #%d", w.name, time.Since(asked).Round(time.Millisecond), h.Number)
	}
	if len(unresponsive) > 0 {
		msg := fmt.Sprintf("validateers that did not answer chain_getHeader while the parentchain was halted: %s", strings.Join(unresponsive, "; "))
		for _, w := range n.vals {
			if stack := enclaveWaitingOnNode(w); stack != "" {
				msg += fmt.Sprintf("\n%s's enclave waits on the node: %s", w.name, stack)
			}
		}
		t.Error(msg)
	}
	time.Sleep(time.Until(halted.Add(halt))) // the rest of the halt: deliberate
	sc1 := mustMetric(t, n.vals[0], mHeight)
	opsDuring := l.total() - ops
	for _, nd := range n.nodes {
		syscall.Kill(nd.proc.cmd.Process.Pid, syscall.SIGCONT)
	}
	n.nodes[0].waitHeight(t, h+3, time.Minute)
	t.Logf("parentchain halted at %d for %s: the sidechain went from #%g to #%g and %d operations reached blocks meanwhile", h, halt, sc0, sc1, opsDuring)
	from := l.total()
	eventually(t, "the load to go on after the parentchain resumed", time.Minute, func() (bool, string) {
		return l.total() >= from+6, l.summary()
	})
}

// wipeValidateer: validateer2's data dir is deleted; it restarts as a new
// enclave (a new signing key), registers, joins the shard over mutual
// remote attestation and catches up.
func wipeValidateer(t *testing.T, n *faultNet, l *faultLoad) {
	const i = 2
	l.setDown(i, true)
	n.vals[i].stop(syscall.SIGKILL)
	if err := os.RemoveAll(n.vals[i].dataDir); err != nil {
		t.Fatal(err)
	}
	during(t, l, n.dur(3*time.Second, 15*time.Second), 2, "validateer2 gone")
	if err := n.startValidateer(i); err != nil {
		t.Fatal(err)
	}
	took := n.waitInitialized(t, i, 3*time.Minute)
	joined := logLines(n.vals[i].proc, "joined the shard over mutual remote attestation")
	if len(joined) == 0 {
		t.Errorf("the wiped validateer2 is initialized but never logged joining the shard over mutual remote attestation; its log ends: %s", lastLine(procLog(n.vals[i].proc)))
	}
	t.Logf("the wiped validateer2 re-registered and re-joined in %s: %s", took.Round(time.Millisecond), strings.Join(joined, " "))
	l.setDown(i, false)
	throughAgain(t, l, i, time.Minute)
}

// enclaveWaitingOnNode returns the stack (from the validateer's
// /debug/pprof, served with --pprof) of a goroutine inside the enclave that
// waits for the parentchain node, or "".
func enclaveWaitingOnNode(w *workerProc) string {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/goroutine?debug=2", w.metrics))
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, g := range strings.Split(string(b), "\n\n") {
		if strings.Contains(g, "enclave.(*Enclave)") && strings.Contains(g, "parentchain/client") {
			var frames []string
			for _, l := range strings.Split(g, "\n") {
				l = strings.TrimSpace(l)
				if i := strings.LastIndex(l, "("); i > 0 && strings.HasPrefix(l, "github.com/integritee-go/integritee/") {
					frames = append(frames, strings.TrimPrefix(l[:i], "github.com/integritee-go/integritee/"))
				}
			}
			return strings.Join(frames, " ← ")
		}
	}
	return ""
}

// benchmarkStop: the trusted benchmark (the load generator of
// docs/benchmarks.md) on validateer0 and validateer1 beside the load,
// validateer2 stopped for a few seconds meanwhile; the benchmark's
// --seen-file joins the others, and its funding (set-balance by the root)
// is passed to the checker as --minted.
func benchmarkStop(t *testing.T, n *faultNet, l *faultLoad) {
	const accounts, transfers = 40, 10
	seen := filepath.Join(n.dir, fmt.Sprintf("bench-seen-%d.txt", time.Now().UnixNano()))
	workers := fmt.Sprintf("wss://127.0.0.1:%d,wss://127.0.0.1:%d", n.valPorts[0][0], n.valPorts[1][0])
	done := make(chan cliResult, 1)
	go func() {
		done <- runCLI(n.nodes[0].rpc, n.dir, 4*time.Minute, "-P", strconv.Itoa(n.valPorts[0][0]), "trusted", "--timeout", "90s", "benchmark",
			"--accounts", strconv.Itoa(accounts), "--transfers", strconv.Itoa(transfers), "--clients", "4", "--window", "16", "--batch", "8",
			"--duration", n.dur(8*time.Second, 30*time.Second).String(), "--workers", workers, "--seen-file", seen)
	}()
	// The benchmark's funding mints accounts × transfers planck: the root's
	// set-balance, which the bonding account never receives.
	n.minted += accounts * transfers
	time.Sleep(4 * time.Second) // into the benchmark's funding or run: deliberate
	pid := n.vals[2].proc.cmd.Process.Pid
	l.setDown(2, true)
	syscall.Kill(pid, syscall.SIGSTOP)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGCONT) })
	time.Sleep(n.dur(3*time.Second, 10*time.Second)) // validateer2 stopped: deliberate
	syscall.Kill(pid, syscall.SIGCONT)
	l.setDown(2, false)
	r := <-done
	out := strings.TrimSpace(r.out)
	lines := strings.Split(out, "\n")
	t.Logf("trusted benchmark: %s", strings.Join(lines[max(0, len(lines)-3):], " | "))
	if r.code != 0 {
		t.Errorf("trusted benchmark exited %d: %s\n%s", r.code, strings.TrimSpace(r.err), out)
	}
	b, err := os.ReadFile(seen)
	if err != nil {
		t.Fatalf("the benchmark's --seen-file: %v", err)
	}
	if lines := strings.Count(string(b), "\n"); lines < accounts {
		t.Errorf("the benchmark's --seen-file holds %d lines, want at least its %d set-balance calls", lines, accounts)
	}
	l.appendSeen(b)
}
