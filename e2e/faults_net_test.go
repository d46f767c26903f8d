package e2e

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// The network the fault scenarios (faults_test.go) run on: two nodes of
// one `init --dev --validators 2` chain and three validateers (validateer0
// and validateer2 beside node0, validateer1 beside node1) whose advertised
// trusted and untrusted addresses point at TCP proxies the test can cut;
// a load of direct transfers, unshieldings and shieldings that writes
// every InSidechainBlock it sees to a --seen file; and the checker,
// `integritee-cli check-invariants`.

// Port bases of the fault network (5xxxx, apart from the benchmark
// scripts' and the demo's); taken ports are skipped.
const (
	faultNodeRPCBase    = 51944 // node K: RPC +K, P2P 51333+K, Prometheus 51615+K
	faultNodeP2PBase    = 51333
	faultNodePromBase   = 51615
	faultValidateerBase = 52000 // validateer K: trusted, untrusted, MU-RA, health, metrics from +10K
	faultProxyBase      = 52500 // validateer K's proxies: trusted, untrusted from +10K
)

// faultLongEnv makes the scenarios run their long versions (scripts/faults.sh
// sets it): the faults last longer.
const faultLongEnv = "INTEGRITEE_FAULTS_LONG"

// portRun returns the first of n consecutive free loopback ports from base
// on (stepping by step past taken ones).
func portRun(t *testing.T, base, n, step int) int {
	t.Helper()
	for p := base; p+n < 65535; p += step {
		var held []net.Listener
		ok := true
		for i := range n {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+i))
			if err != nil {
				ok = false
				break
			}
			held = append(held, l)
		}
		for _, l := range held {
			l.Close()
		}
		if ok {
			return p
		}
	}
	t.Fatalf("no %d free ports from %d on", n, base)
	return 0
}

// ---- a TCP proxy the test cuts and heals ----

// tcpProxy forwards connections to target. Cut, it closes the connections
// it carries and holds new ones open without forwarding a byte (a
// blackhole: the peer's TLS handshake waits until it times out), until
// Heal closes them.
type tcpProxy struct {
	ln     net.Listener
	target string

	mu      sync.Mutex
	cut     bool
	live    map[net.Conn]struct{} // both ends of forwarded connections
	held    []net.Conn            // connections accepted while cut
	blocked int                   // connections accepted while cut, in all
}

func startProxy(t *testing.T, port int, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatalf("proxy on %d: %v", port, err)
	}
	p := &tcpProxy{ln: ln, target: target, live: map[net.Conn]struct{}{}}
	go p.serve()
	t.Cleanup(func() { ln.Close(); p.Heal(); p.closeLive() })
	return p
}

func (p *tcpProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		if p.cut {
			p.held = append(p.held, c)
			p.blocked++
			p.mu.Unlock()
			continue
		}
		p.mu.Unlock()
		go p.forward(c)
	}
}

func (p *tcpProxy) forward(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		c.Close()
		return
	}
	p.mu.Lock()
	if p.cut {
		p.mu.Unlock()
		c.Close()
		up.Close()
		return
	}
	p.live[c], p.live[up] = struct{}{}, struct{}{}
	p.mu.Unlock()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		io.Copy(dst, src)
		dst.Close()
		src.Close()
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	p.mu.Lock()
	delete(p.live, c)
	delete(p.live, up)
	p.mu.Unlock()
}

// Cut partitions the target: open connections die, new ones hang.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	p.cut = true
	p.mu.Unlock()
	p.closeLive()
}

func (p *tcpProxy) closeLive() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for c := range p.live {
		c.Close()
	}
}

// Heal forwards again; the connections held while cut are closed, so that
// their peers dial anew.
func (p *tcpProxy) Heal() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
	for _, c := range p.held {
		c.Close()
	}
	p.held = nil
}

// Blocked is how many connections arrived while the proxy was cut.
func (p *tcpProxy) Blocked() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.blocked
}

// ---- the network ----

// faultNet is the fault scenarios' network. Its processes belong to the
// top-level test (they outlive each scenario); scenarios stop, kill,
// restart and partition them.
type faultNet struct {
	t      *testing.T // the top-level test
	long   bool
	dir    string // the CLI's working directory (keystore, trust root)
	logDir string
	seen   string // the --seen file, appended to by every scenario's load

	nodes     []*nodeProc
	nodeHomes []string
	vals      []*workerProc
	valPorts  [][]int    // trusted, untrusted, MU-RA, health, metrics
	valArgs   [][]string // run flags (--dev, advertised addresses, ...)
	valNode   []int      // the node each validateer uses
	proxies   [][]*tcpProxy

	shard string
	mr    attestation.MrEnclave
	sid   sidechain.ShardID
	// minted is what the shard's root created with set-balance (the
	// trusted benchmark's funding), for check-invariants --minted.
	minted int

	mu    sync.Mutex
	procs []*proc // every process started, for the final cleanup
	runs  map[string]int
}

// spawn starts a binary of binDir as name, its output in the network's log
// directory; it is killed when the top-level test ends.
func (n *faultNet) spawn(name string, args ...string) (*proc, error) {
	n.mu.Lock()
	n.runs[name]++
	logPath := filepath.Join(n.logDir, fmt.Sprintf("%s.%d.log", name, n.runs[name]))
	n.mu.Unlock()
	f, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	exe := "integritee-service"
	if strings.HasPrefix(name, "node") {
		exe = "integritee-node"
	}
	cmd := exec.Command(filepath.Join(binDir, exe), args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	p := &proc{t: n.t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	return p, nil
}

// startFaultNet writes the chain, starts the nodes and the validateers one
// after the other (validateer0 starts the shard, the others join it) and
// funds the load's senders by shielding.
func startFaultNet(t *testing.T) *faultNet {
	t.Helper()
	n := &faultNet{t: t, long: os.Getenv(faultLongEnv) != "", dir: t.TempDir(), logDir: t.TempDir(), runs: map[string]int{}}
	n.seen = filepath.Join(n.dir, "seen.txt")
	t.Cleanup(func() {
		n.mu.Lock()
		procs := n.procs
		n.mu.Unlock()
		for _, p := range procs {
			syscall.Kill(p.cmd.Process.Pid, syscall.SIGCONT)
			p.stop(syscall.SIGKILL)
		}
		if t.Failed() {
			keep := os.Getenv(keepLogsEnv)
			for _, p := range procs {
				b, _ := os.ReadFile(p.log)
				if keep != "" && os.MkdirAll(keep, 0o755) == nil {
					dst := filepath.Join(keep, t.Name()+"-"+filepath.Base(p.log))
					if os.WriteFile(dst, b, 0o644) == nil {
						t.Logf("%s's whole log: %s", p.name, dst)
					}
				}
				if len(b) > 3000 {
					b = b[len(b)-3000:]
				}
				t.Logf("--- tail of %s:\n%s", filepath.Base(p.log), b)
			}
		}
	})
	began := time.Now()
	rpc := portRun(t, faultNodeRPCBase, 2, 10)
	p2p := portRun(t, faultNodeP2PBase, 2, 10)
	prom := portRun(t, faultNodePromBase, 2, 10)
	chain := t.TempDir()
	out, err := exec.Command(filepath.Join(binDir, "integritee-node"), "init", "--dev", "--validators", "2", "--base-path", chain,
		"--base-rpc-port", strconv.Itoa(rpc), "--base-port", strconv.Itoa(p2p), "--base-prometheus-port", strconv.Itoa(prom),
		"--block-time", "300ms").CombinedOutput()
	if err != nil {
		t.Fatalf("integritee-node init: %v\n%s", err, out)
	}
	for i := range 2 {
		home := filepath.Join(chain, fmt.Sprintf("node%d", i))
		n.nodeHomes = append(n.nodeHomes, home)
		n.nodes = append(n.nodes, &nodeProc{rpc: rpc + i, p2p: p2p + i, prom: prom + i, basePath: home})
		if err := n.startNode(i); err != nil {
			t.Fatal(err)
		}
	}
	for _, nd := range n.nodes {
		nd.waitHeight(t, 2, 60*time.Second)
	}
	secret := filepath.Join(t.TempDir(), "sim-host-secret")
	for i := range 3 {
		base := portRun(t, faultValidateerBase+10*i, 5, 100)
		ports := []int{base, base + 1, base + 2, base + 3, base + 4}
		pbase := portRun(t, faultProxyBase+10*i, 2, 100)
		n.proxies = append(n.proxies, []*tcpProxy{
			startProxy(t, pbase, fmt.Sprintf("127.0.0.1:%d", ports[0])),
			startProxy(t, pbase+1, fmt.Sprintf("127.0.0.1:%d", ports[1])),
		})
		n.valPorts = append(n.valPorts, ports)
		n.valNode = append(n.valNode, []int{0, 1, 0}[i])
		n.valArgs = append(n.valArgs, []string{"--dev", "--pprof", "-T", fmt.Sprintf("wss://127.0.0.1:%d", pbase), "-U", fmt.Sprintf("ws://127.0.0.1:%d", pbase+1)})
		n.vals = append(n.vals, &workerProc{dataDir: filepath.Join(filepath.Dir(secret), fmt.Sprintf("validateer%d", i))})
		if err := n.startValidateer(i); err != nil {
			t.Fatal(err)
		}
		n.waitInitialized(t, i, 2*time.Minute)
	}
	n.shard = n.vals[0].mustT(t, n.dir, "trusted", "get-fingerprint")
	n.mr, n.sid = shardOf(t, n.shard)
	for _, s := range faultSenders {
		n.vals[0].mustT(t, n.dir, "shield-funds", "//Alice", s, strconv.Itoa(faultFunding), n.shard)
	}
	t.Logf("fault network up after %s: nodes on RPC %d, %d; validateers on trusted %d, %d, %d (advertised through proxies %d, %d, %d); long versions: %v",
		time.Since(began).Round(time.Millisecond), n.nodes[0].rpc, n.nodes[1].rpc, n.valPorts[0][0], n.valPorts[1][0], n.valPorts[2][0],
		n.proxies[0][0].ln.Addr().(*net.TCPAddr).Port, n.proxies[1][0].ln.Addr().(*net.TCPAddr).Port, n.proxies[2][0].ln.Addr().(*net.TCPAddr).Port, n.long)
	return n
}

// startNode (re)starts node i on its home.
func (n *faultNet) startNode(i int) error {
	p, err := n.spawn(fmt.Sprintf("node%d", i), "--base-path", n.nodeHomes[i])
	if err != nil {
		return err
	}
	n.nodes[i].proc = p
	return nil
}

// startValidateer (re)starts validateer i on its data dir and ports, with
// its run flags and extra ones.
func (n *faultNet) startValidateer(i int, extra ...string) error {
	ports := n.valPorts[i]
	w := n.vals[i]
	args := []string{"-p", strconv.Itoa(n.nodes[n.valNode[i]].rpc), "-d", w.dataDir,
		"-P", strconv.Itoa(ports[0]), "-w", strconv.Itoa(ports[1]), "-r", strconv.Itoa(ports[2]), "-h", strconv.Itoa(ports[3]),
		"--enable-metrics", "-i", strconv.Itoa(ports[4]),
		"--sim-host-secret", filepath.Join(filepath.Dir(w.dataDir), "sim-host-secret"), "run"}
	args = append(append(args, n.valArgs[i]...), extra...)
	p, err := n.spawn(fmt.Sprintf("validateer%d", i), args...)
	if err != nil {
		return err
	}
	n.vals[i] = &workerProc{proc: p, node: n.nodes[n.valNode[i]], dataDir: w.dataDir,
		trusted: ports[0], untrusted: ports[1], mura: ports[2], http: ports[3], metrics: ports[4]}
	return nil
}

func (n *faultNet) waitInitialized(t *testing.T, i int, timeout time.Duration) time.Duration {
	t.Helper()
	return waitInitialized(t, n.vals[i], timeout)
}

// workers is the validateers' trusted RPC, for --workers.
func (n *faultNet) workers() string {
	var ws []string
	for _, p := range n.valPorts {
		ws = append(ws, fmt.Sprintf("wss://127.0.0.1:%d", p[0]))
	}
	return strings.Join(ws, ",")
}

// checkInvariants runs `integritee-cli check-invariants` on the whole
// network with every operation the loads saw, logs what it printed, and
// reports whether every invariant holds.
func (n *faultNet) checkInvariants(t *testing.T) bool {
	t.Helper()
	began := time.Now()
	r := runCLI(n.nodes[0].rpc, n.dir, 4*time.Minute, "check-invariants", "--workers", n.workers(), "--seen", n.seen, "--quiet-timeout", "2m",
		"--minted", strconv.Itoa(n.minted))
	for _, l := range strings.Split(strings.TrimSpace(r.out), "\n") {
		t.Logf("check-invariants: %s", l)
	}
	if r.code != 0 {
		t.Logf("check-invariants exited %d after %s: %s", r.code, time.Since(began).Round(time.Millisecond), strings.TrimSpace(r.err))
	}
	return r.code == 0
}

// forkFailure describes a validateer's failed fork resolution if its log
// shows one ("own block 1: ... not found": bug 3 of docs/RELIABILITY.md,
// fixed: a validateer that joined over mutual remote attestation took the
// blocks below its join head for a divergence), or returns "".
func (n *faultNet) forkFailure() string {
	for _, w := range n.vals {
		if l := logLines(w.proc, "fork resolution with a peer failed", "fork: own block", "not found"); len(l) > 0 {
			joined := logLines(w.proc, "joined the shard over mutual attestation")
			return fmt.Sprintf("%s, which joined over mutual remote attestation (%s), cannot resolve a fork: %s", w.name, strings.Join(joined, " "), lastLine(l[0]))
		}
	}
	return ""
}

// healthy checks that every process runs, every validateer is initialized
// and the chain moves: what a scenario starts from.
func (n *faultNet) healthy(t *testing.T) {
	t.Helper()
	for i, nd := range n.nodes {
		if nd.proc == nil || isDone(nd.proc) {
			t.Fatalf("node%d is not running (an earlier scenario failed)", i)
		}
	}
	for i, w := range n.vals {
		if w.proc == nil || isDone(w.proc) {
			t.Fatalf("validateer%d is not running (an earlier scenario failed)", i)
		}
		waitInitialized(t, w, time.Minute)
	}
	h := n.nodes[0].height()
	n.nodes[0].waitHeight(t, h+2, 30*time.Second)
}

// ---- the load ----

// The load's accounts: senders funded by shielding at the start, the sink
// of their transfers, the beneficiary of their unshieldings.
var faultSenders = []string{"//FaultA", "//FaultB", "//FaultC"}

const (
	faultFunding    = 100_000_000_000
	faultTransfer   = 1_000
	faultUnshield   = 1_000_000
	faultShield     = 1_000_000_000
	faultUnshieldAt = 7 // the op of nonce k is an unshielding when k%8 == 7
	faultSink       = "//FaultSink"
	faultOpTimeout  = 20 * time.Second
)

// faultLoad sends direct transfers and unshieldings from every sender, one
// at a time each, to the validateers in turn (skipping those marked down),
// and shields from //Alice now and then. Each sender's op of nonce k is
// fixed (signatures are deterministic), so an op whose fate is unknown is
// resubmitted as the very same op, or found executed by its nonce.
type faultLoad struct {
	n    *faultNet
	t    *testing.T
	down []atomic.Bool

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu        sync.Mutex
	clients   map[int]*rpcclient.Client
	seen      *os.File
	seenW     *bufio.Writer
	seenLines int
	anomalies []string
	inBlock   []int // ops in a block, by validateer submitted to
	failures  int   // ops resubmitted or found executed otherwise
	shields   int   // shield-funds that completed
	shieldErr int
}

// startLoad starts the load; stop ends it.
func (n *faultNet) startLoad(t *testing.T) *faultLoad {
	t.Helper()
	f, err := os.OpenFile(n.seen, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	l := &faultLoad{n: n, t: t, down: make([]atomic.Bool, len(n.vals)), clients: map[int]*rpcclient.Client{},
		seen: f, seenW: bufio.NewWriter(f), inBlock: make([]int, len(n.vals))}
	l.ctx, l.cancel = context.WithCancel(context.Background())
	for i, s := range faultSenders {
		p, err := account.DevPair(s)
		if err != nil {
			t.Fatal(err)
		}
		l.wg.Add(1)
		go func() { defer l.wg.Done(); l.send(i, p) }()
	}
	l.wg.Add(1)
	go func() { defer l.wg.Done(); l.shield() }()
	t.Cleanup(l.stop)
	return l
}

// setDown marks validateer i down (the load leaves it alone) or up.
func (l *faultLoad) setDown(i int, down bool) { l.down[i].Store(down) }

// stop ends the load and flushes the seen file (once).
func (l *faultLoad) stop() {
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, c := range l.clients {
		c.Close()
		delete(l.clients, i)
	}
	if l.seen != nil {
		l.seenW.Flush()
		l.seen.Close()
		l.seen = nil
	}
}

// appendSeen adds lines (another load's --seen-file) to the seen file.
func (l *faultLoad) appendSeen(lines []byte) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seenW.Write(lines)
}

// summary reports what the load did.
func (l *faultLoad) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("ops in a block by validateer submitted to %v, %d resubmitted or found executed, %d seen lines, shields %d ok %d failed, %d anomalies",
		l.inBlock, l.failures, l.seenLines, l.shields, l.shieldErr, len(l.anomalies))
}

// through is how many ops submitted to validateer i reached a block.
func (l *faultLoad) through(i int) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.inBlock[i]
}

// total is how many ops reached a block.
func (l *faultLoad) total() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, v := range l.inBlock {
		n += v
	}
	return n
}

// problems returns the anomalies: ops a client saw in a block whose watch
// then ended Invalid or Dropped.
func (l *faultLoad) problems() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.anomalies...)
}

func (l *faultLoad) client(i int) (*rpcclient.Client, error) {
	l.mu.Lock()
	c := l.clients[i]
	l.mu.Unlock()
	if c != nil {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
	defer cancel()
	c, err := rpcclient.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d", l.n.valPorts[i][0]), rpcclient.Options{Insecure: true})
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if old := l.clients[i]; old != nil {
		c.Close()
		return old, nil
	}
	l.clients[i] = c
	return c, nil
}

func (l *faultLoad) dropClient(i int, c *rpcclient.Client) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.clients[i] == c {
		delete(l.clients, i)
		c.Close()
	}
}

// pick returns the k-th validateer in turn among those not down.
func (l *faultLoad) pick(k int) (int, bool) {
	for j := range len(l.down) {
		i := (k + j) % len(l.down)
		if !l.down[i].Load() {
			return i, true
		}
	}
	return 0, false
}

// op is a sender's op of nonce k, signed and encoded.
func (l *faultLoad) op(p *account.Pair, k uint64) []byte {
	sink, _ := account.DevPair(faultSink)
	ferdie, _ := account.DevPair("//Ferdie")
	call := trusted.Call{Transfer: &trusted.Transfer{From: p.ID(), To: sink.ID(), Amount: types.NewBalance(faultTransfer)}}
	if k%8 == faultUnshieldAt {
		call = trusted.Call{Unshield: &trusted.Unshield{From: p.ID(), To: ferdie.ID(), Amount: types.NewBalance(faultUnshield), Shard: l.n.sid}}
	}
	b, err := (&trusted.Operation{Call: trusted.SignCall(p, call, k, l.n.mr, l.n.sid)}).Encode()
	if err != nil {
		panic(err) // encoding a well-formed call does not fail
	}
	return b
}

// nonce returns the highest next nonce of p the validateers not down
// report (a stale one reports less).
func (l *faultLoad) nonce(p *account.Pair) (uint64, bool) {
	id := p.ID()
	g, err := (&trusted.Operation{Getter: trusted.SignGetter(p, trusted.Getter{Nonce: &id}, l.n.sid)}).Encode()
	if err != nil {
		return 0, false
	}
	var best uint64
	found := false
	for i := range l.down {
		if l.down[i].Load() {
			continue
		}
		c, err := l.client(i)
		if err != nil {
			continue
		}
		ctx, cancel := context.WithTimeout(l.ctx, 5*time.Second)
		v, err := c.ExecuteGetter(ctx, l.n.sid, g)
		cancel()
		if err != nil {
			l.dropClient(i, c)
			continue
		}
		k, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64)
		if err == nil && (!found || k > best) {
			best, found = k, true
		}
	}
	return best, found
}

// pause waits d or until the load stops; false if it stopped.
func (l *faultLoad) pause(d time.Duration) bool {
	select {
	case <-l.ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// send is sender s's loop.
func (l *faultLoad) send(s int, p *account.Pair) {
	var next uint64
	synced := false
	for k := s; l.ctx.Err() == nil; k++ {
		if !synced {
			got, ok := l.nonce(p)
			if !ok {
				if !l.pause(500 * time.Millisecond) {
					return
				}
				continue
			}
			next, synced = got, true
		}
		v, ok := l.pick(k)
		if !ok {
			if !l.pause(200 * time.Millisecond) {
				return
			}
			continue
		}
		c, err := l.client(v)
		if err != nil {
			if !l.pause(200 * time.Millisecond) {
				return
			}
			continue
		}
		ctx, cancel := context.WithTimeout(l.ctx, 10*time.Second)
		hash, ch, err := c.SubmitAndWatchOperation(ctx, l.n.sid, l.op(p, next))
		cancel()
		var rerr *rpcclient.Error
		switch {
		case l.ctx.Err() != nil:
			return
		case errors.As(err, &rerr):
			// Refused: a stale nonce (it executed), a duplicate (pooled
			// there already) or a taken nonce. Resync after a moment.
			l.noteFailure()
			synced = false
			if !l.pause(300 * time.Millisecond) {
				return
			}
			continue
		case err != nil:
			l.dropClient(v, c)
			l.noteFailure()
			synced = false
			continue
		}
		what := fmt.Sprintf("%s nonce %d via validateer%d", faultSenders[s], next, v)
		inBlock := make(chan bool, 1)
		go l.follow(what, hash, ch, inBlock)
		select {
		case ok := <-inBlock:
			if ok {
				l.mu.Lock()
				l.inBlock[v]++
				l.mu.Unlock()
				next++
				continue
			}
		case <-time.After(faultOpTimeout):
		case <-l.ctx.Done():
			return
		}
		l.noteFailure()
		synced = false // resubmit it, or find it executed
	}
}

func (l *faultLoad) noteFailure() {
	l.mu.Lock()
	l.failures++
	l.mu.Unlock()
}

// follow reads an op's statuses to the end of its watch: every
// InSidechainBlock goes to the seen file; the first (or the watch's end
// without one) is reported on inBlock.
func (l *faultLoad) follow(what, hash string, ch <-chan trustedrpc.Status, inBlock chan<- bool) {
	reported, sawBlock := false, false
	var statuses []string
	report := func(ok bool) {
		if !reported {
			reported = true
			inBlock <- ok
		}
	}
	defer report(false)
	for st := range ch {
		statuses = append(statuses, st.Kind)
		switch st.Kind {
		case trustedrpc.InSidechainBlock:
			sawBlock = true
			l.mu.Lock()
			if l.seen != nil {
				fmt.Fprintf(l.seenW, "%s %s\n", hash, st.BlockHash)
				l.seenLines++
			}
			l.mu.Unlock()
			report(true)
		case trustedrpc.Finalized:
			report(true)
		case trustedrpc.Invalid, trustedrpc.Dropped:
			if sawBlock {
				l.mu.Lock()
				l.anomalies = append(l.anomalies, fmt.Sprintf("%s %s: seen InSidechainBlock, then %s (%s): %s", what, hash, st.Kind, st.Reason, strings.Join(statuses, " → ")))
				l.mu.Unlock()
			}
			report(false)
		}
	}
}

// shield shields to the first sender from //Alice every few seconds,
// through either node, as a user does with the CLI.
func (l *faultLoad) shield() {
	for k := 0; l.pause(4 * time.Second); k++ {
		nd := l.n.nodes[k%2]
		v, ok := l.pick(k)
		if !ok {
			continue
		}
		ctx, cancel := context.WithTimeout(l.ctx, 45*time.Second)
		cmd := exec.CommandContext(ctx, filepath.Join(binDir, "integritee-cli"), "-p", strconv.Itoa(nd.rpc), "-P", strconv.Itoa(l.n.valPorts[v][0]),
			"shield-funds", "--timeout", "40s", "//Alice", faultSenders[0], strconv.Itoa(faultShield), l.n.shard)
		cmd.Dir = l.n.dir
		err := cmd.Run()
		cancel()
		l.mu.Lock()
		if err == nil {
			l.shields++
		} else if l.ctx.Err() == nil {
			l.shieldErr++
		}
		l.mu.Unlock()
	}
}
