// Package e2e runs the real binaries on free loopback ports and drives them
// with the real CLI and raw JSON-RPC, as users do.
package e2e

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/parentchain/types"
)

var binDir string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		fmt.Println("e2e: skipped in -short mode: these tests build and start the real binaries")
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "integritee-e2e-bin-")
	if err != nil {
		panic(err)
	}
	build := exec.Command("go", "build", "-o", dir+"/", "../cmd/...")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "e2e: build binaries:", err)
		os.Exit(1)
	}
	binDir = dir
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePorts returns n distinct free TCP ports on loopback.
func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ls []net.Listener
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	for _, l := range ls {
		l.Close()
	}
	return ports
}

// waitFor polls cond every 100 ms until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", timeout, what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// proc is a running binary whose output goes to a log file.
type proc struct {
	t    *testing.T
	name string
	cmd  *exec.Cmd
	log  string
	done chan struct{}
}

func start(t *testing.T, name string, args ...string) *proc {
	t.Helper()
	return startExe(t, name, filepath.Join(binDir, name), args...)
}

// startExe starts the executable exe as name, its output in a log file
// shown when the test fails, and kills it when the test ends.
func startExe(t *testing.T, name, exe string, args ...string) *proc {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), name+".log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{t: t, name: name, cmd: cmd, log: logPath, done: make(chan struct{})}
	go func() { cmd.Wait(); f.Close(); close(p.done) }()
	t.Cleanup(func() {
		p.stop(syscall.SIGKILL)
		if t.Failed() {
			b, _ := os.ReadFile(logPath)
			if len(b) > 6000 {
				b = b[len(b)-6000:]
			}
			t.Logf("--- tail of %s %v log:\n%s", name, args, b)
		}
	})
	return p
}

// stop signals the process and waits for it to exit.
func (p *proc) stop(sig syscall.Signal) {
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(20 * time.Second):
		p.cmd.Process.Kill()
		<-p.done
	}
}

// nodeProc is a running integritee-node.
type nodeProc struct {
	*proc
	rpc, p2p, prom int
	basePath       string
}

// startDevNode starts `integritee-node --dev` on free ports in basePath
// (a fresh directory if empty).
func startDevNode(t *testing.T, basePath string, extra ...string) *nodeProc {
	t.Helper()
	if basePath == "" {
		basePath = t.TempDir()
	}
	ports := freePorts(t, 3)
	args := append([]string{"--dev", "--base-path", basePath,
		"--rpc-port", strconv.Itoa(ports[0]), "--port", strconv.Itoa(ports[1]),
		"--prometheus-port", strconv.Itoa(ports[2]), "--block-time", "300ms"}, extra...)
	n := &nodeProc{proc: start(t, "integritee-node", args...), rpc: ports[0], p2p: ports[1], prom: ports[2], basePath: basePath}
	n.waitHeight(t, 1, 30*time.Second)
	return n
}

// rpcCall makes a JSON-RPC 2.0 call over HTTP and returns result or error.
func rpcCall(port int, method string, params any) (json.RawMessage, *rpcError, error) {
	body, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
	return rpcRaw(port, body)
}

type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    string `json:"data"`
}

func rpcRaw(port int, body []byte) (json.RawMessage, *rpcError, error) {
	resp, err := http.Post(fmt.Sprintf("http://127.0.0.1:%d/", port), "application/json", bytes.NewReader(body))
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  *rpcError       `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, nil, fmt.Errorf("decode %s: %w", b, err)
	}
	return r.Result, r.Error, nil
}

// height returns the node's latest block height, or -1 if it does not answer.
func (n *nodeProc) height() int64 {
	res, rerr, err := rpcCall(n.rpc, "status", map[string]any{})
	if err != nil || rerr != nil {
		return -1
	}
	var st struct {
		SyncInfo struct {
			Height string `json:"latest_block_height"`
		} `json:"sync_info"`
	}
	json.Unmarshal(res, &st)
	h, _ := strconv.ParseInt(st.SyncInfo.Height, 10, 64)
	return h
}

func (n *nodeProc) waitHeight(t *testing.T, h int64, timeout time.Duration) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%s on rpc %d to reach height %d", n.name, n.rpc, h), timeout, func() bool { return n.height() >= h })
}

// appHashAt returns the app hash in the header of block h+1, which commits
// to the state after block h.
func (n *nodeProc) appHashAt(t *testing.T, h int64) string {
	t.Helper()
	res, rerr, err := rpcCall(n.rpc, "block", map[string]any{"height": strconv.FormatInt(h+1, 10)})
	if err != nil || rerr != nil {
		t.Fatalf("block %d: %v %v", h+1, err, rerr)
	}
	var b struct {
		Block struct {
			Header struct {
				AppHash string `json:"app_hash"`
			} `json:"header"`
		} `json:"block"`
	}
	if err := json.Unmarshal(res, &b); err != nil {
		t.Fatal(err)
	}
	return b.Block.Header.AppHash
}

// query runs abci_query and returns the decoded JSON value or the log of a
// failed query.
// chain returns the node's chain as transactions name it (id and genesis
// hash, which signatures cover).
func (n *nodeProc) chain(t *testing.T) types.Chain {
	t.Helper()
	var info struct {
		ChainID     string `json:"chain_id"`
		GenesisHash string `json:"genesis_hash"`
	}
	n.query(t, "/system/chain", &info)
	g, err := hex.DecodeString(strings.TrimPrefix(info.GenesisHash, "0x"))
	if err != nil || len(g) != 32 {
		t.Fatalf("genesis hash %q", info.GenesisHash)
	}
	ch := types.Chain{ID: info.ChainID}
	copy(ch.Genesis[:], g)
	return ch
}

func (n *nodeProc) query(t *testing.T, path string, out any) {
	t.Helper()
	res, rerr, err := rpcCall(n.rpc, "abci_query", map[string]any{"path": path})
	if err != nil || rerr != nil {
		t.Fatalf("abci_query %s: %v %v", path, err, rerr)
	}
	var q struct {
		Response struct {
			Code  int    `json:"code"`
			Log   string `json:"log"`
			Value []byte `json:"value"`
		} `json:"response"`
	}
	if err := json.Unmarshal(res, &q); err != nil {
		t.Fatal(err)
	}
	if q.Response.Code != 0 {
		t.Fatalf("abci_query %s: %s", path, q.Response.Log)
	}
	if err := json.Unmarshal(q.Response.Value, out); err != nil {
		t.Fatalf("abci_query %s: %v", path, err)
	}
}

// cliResult is one run of integritee-cli.
type cliResult struct {
	out, err string
	code     int
}

// cli runs integritee-cli against the node in dir (for the keystore).
func (n *nodeProc) cli(t *testing.T, dir string, args ...string) cliResult {
	t.Helper()
	r := runCLI(n.rpc, dir, 2*time.Minute, args...)
	if r.code == -1 {
		t.Fatalf("cli %v: %s", args, r.err)
	}
	return r
}

// mustCLI runs the CLI and fails the test unless it succeeds.
func (n *nodeProc) mustCLI(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := n.cli(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("integritee-cli %v: exit %d: %s%s", args, r.code, r.out, r.err)
	}
	return strings.TrimSpace(r.out)
}

// balance returns ACCT's free balance as the CLI prints it.
func (n *nodeProc) balance(t *testing.T, acct string) string {
	t.Helper()
	return n.mustCLI(t, t.TempDir(), "balance", acct)
}

// blockHash returns the hash of block h, upper-case hex.
func (n *nodeProc) blockHash(t *testing.T, h int64) string {
	t.Helper()
	res, rerr, err := rpcCall(n.rpc, "block", map[string]any{"height": strconv.FormatInt(h, 10)})
	if err != nil || rerr != nil {
		t.Fatalf("block %d: %v %v", h, err, rerr)
	}
	var b struct {
		BlockID struct {
			Hash string `json:"hash"`
		} `json:"block_id"`
	}
	if err := json.Unmarshal(res, &b); err != nil || len(b.BlockID.Hash) != 64 {
		t.Fatalf("block %d %s: no hash (%v)", h, res, err)
	}
	return b.BlockID.Hash
}
