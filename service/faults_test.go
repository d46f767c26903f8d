package service

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/api/trustedrpc"
	"github.com/integritee-go/integritee/balance"
	"github.com/integritee-go/integritee/enclave"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// Fault injection at the service level (docs/RELIABILITY.md): the block
// store fails as a full disk does, through the host's block writes.

// failingBlocks passes block writes to the store until it is told to
// fail; then every write fails with err and is counted.
type failingBlocks struct {
	next blockWriter

	mu       sync.Mutex
	err      error  // nil: writes go through
	refused  int    // writes refused
	lastFail uint64 // number of the last block refused
}

func (f *failingBlocks) fail(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *failingBlocks) refusals() (int, uint64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused, f.lastFail
}

func (f *failingBlocks) Put(b *sidechain.Block, raw []byte) error {
	f.mu.Lock()
	err := f.err
	if err != nil {
		f.refused++
		f.lastFail = b.Header.Number
	}
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("blockstore: put block %d: %w", b.Header.Number, err)
	}
	return f.next.Put(b, raw)
}

func (f *failingBlocks) DeleteFrom(shard sidechain.ShardID, from uint64) error {
	f.mu.Lock()
	err := f.err
	f.mu.Unlock()
	if err != nil {
		return fmt.Errorf("blockstore: delete from %d: %w", from, err)
	}
	return f.next.DeleteFrom(shard, from)
}

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

// startDevNode runs an in-process dev parentchain node until the test ends
// and returns its RPC port.
func startDevNode(t *testing.T) int {
	t.Helper()
	p := freePorts(t, 2)
	cfg := node.DefaultConfig(t.TempDir())
	cfg.RPCPort, cfg.P2PPort, cfg.PrometheusPort = p[0], p[1], 0
	cfg.BlockTime = node.Duration(200 * time.Millisecond)
	if err := node.EnsureDev(cfg); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n, err := node.New(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("node: %v", err)
		}
	})
	return cfg.RPCPort
}

// syncBuffer is a log sink that tests read while the service writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// runningService is a Service started in-process.
type runningService struct {
	s      *Service
	log    *syncBuffer
	done   chan error
	cancel context.CancelFunc
}

// startService starts a validateer on cfg; install, if not nil, is called
// with it before it runs. It stops when the test ends.
func startService(t *testing.T, cfg Config, install func(*Service)) *runningService {
	t.Helper()
	logs := &syncBuffer{}
	ctx, cancel := context.WithCancel(context.Background())
	s, err := New(ctx, cfg, slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if install != nil {
		install(s)
	}
	r := &runningService{s: s, log: logs, done: make(chan error, 1), cancel: cancel}
	go func() { r.done <- s.Run(ctx) }()
	t.Cleanup(func() {
		r.stop()
		if t.Failed() {
			t.Logf("--- validateer log:\n%s", tail(logs.String(), 6000))
		}
	})
	return r
}

// stop cancels the service and waits for Run to return (once).
func (r *runningService) stop() {
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err
	case <-time.After(30 * time.Second):
	}
}

// logLinesOf returns the lines of log holding any of parts.
func logLinesOf(log string, parts ...string) []string {
	var out []string
	for _, l := range strings.Split(log, "\n") {
		for _, p := range parts {
			if strings.Contains(l, p) {
				out = append(out, l)
				break
			}
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// waitInitialized polls /is_initialized until it answers 200.
func waitInitialized(t *testing.T, r *runningService, timeout time.Duration) {
	t.Helper()
	url := fmt.Sprintf("http://127.0.0.1:%d/is_initialized", r.s.cfg.HTTPPort)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case err := <-r.done:
			t.Fatalf("the validateer stopped before it was initialized: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the validateer not initialized after %s", timeout)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// shardClient signs and submits trusted operations to one validateer.
type shardClient struct {
	t     *testing.T
	c     *rpcclient.Client
	mr    [32]byte
	shard sidechain.ShardID
}

func dialShard(t *testing.T, s *Service) *shardClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := rpcclient.Dial(ctx, fmt.Sprintf("wss://127.0.0.1:%d", s.cfg.TrustedPort), rpcclient.Options{Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &shardClient{t: t, c: c, mr: s.enc.MrEnclave(), shard: s.enc.ShardID()}
}

// submit signs call as p with nonce and returns its statuses.
func (sc *shardClient) submit(p *account.Pair, call trusted.Call, nonce uint64) <-chan trustedrpc.Status {
	sc.t.Helper()
	op, err := (&trusted.Operation{Call: trusted.SignCall(p, call, nonce, sc.mr, sc.shard)}).Encode()
	if err != nil {
		sc.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, ch, err := sc.c.SubmitAndWatchOperation(ctx, sc.shard, op)
	if err != nil {
		sc.t.Fatalf("submit %s with nonce %d: %v", call.Name(), nonce, err)
	}
	return ch
}

// inBlock waits for the operation's InSidechainBlock and returns the block.
func inBlock(t *testing.T, ch <-chan trustedrpc.Status, timeout time.Duration) sidechain.Hash {
	t.Helper()
	deadline := time.After(timeout)
	var seen []string
	for {
		select {
		case st, ok := <-ch:
			if !ok {
				t.Fatalf("the watch ended after %v without InSidechainBlock", seen)
			}
			seen = append(seen, st.Kind)
			switch st.Kind {
			case trustedrpc.InSidechainBlock, trustedrpc.Finalized:
				return st.BlockHash
			case trustedrpc.Invalid, trustedrpc.Dropped:
				t.Fatalf("the operation ended %s (%s)", st.Kind, st.Reason)
			}
		case <-deadline:
			t.Fatalf("not in a block within %s; statuses %v", timeout, seen)
		}
	}
}

func (sc *shardClient) get(p *account.Pair, g trusted.Getter) string {
	sc.t.Helper()
	op, err := (&trusted.Operation{Getter: trusted.SignGetter(p, g, sc.shard)}).Encode()
	if err != nil {
		sc.t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := sc.c.ExecuteGetter(ctx, sc.shard, op)
	if err != nil {
		sc.t.Fatalf("getter: %v", err)
	}
	return v
}

func (sc *shardClient) balanceOf(p *account.Pair) string {
	id := p.ID()
	return sc.get(p, trusted.Getter{FreeBalance: &id})
}

func (sc *shardClient) nonceOf(p *account.Pair) string {
	id := p.ID()
	return sc.get(p, trusted.Getter{Nonce: &id})
}

func (sc *shardClient) head() trustedrpc.Header {
	sc.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	h, err := sc.c.Header(ctx, sc.shard)
	if err != nil {
		sc.t.Fatalf("chain_getHeader: %v", err)
	}
	return h
}

func devPair(t *testing.T, seed string) *account.Pair {
	t.Helper()
	p, err := account.DevPair(seed)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// TestFaultBlockStoreFull (the io-error scenario of docs/RELIABILITY.md):
// a validateer on an in-process dev node executes a few calls; then its
// block store fails every write with ENOSPC, as a full disk does, and a
// transfer is submitted. The validateer must not report the transfer in a
// block, must stop with an error that names the failed write, and must
// lose nothing it committed: restarted on the same data dir with a working
// store, it holds the same head, state and balances, the transfer is not
// executed, and it authors again (the transfer, resubmitted, executes).
func TestFaultBlockStoreFull(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an in-process parentchain node and validateer (a few seconds); run without -short")
	}
	rpcPort := startDevNode(t)
	dir := t.TempDir()
	p := freePorts(t, 4)
	cfg := DefaultConfig()
	cfg.NodePort, cfg.DataDir, cfg.Dev = rpcPort, filepath.Join(dir, "validateer"), true
	cfg.TrustedPort, cfg.UntrustedPort, cfg.MuRaPort, cfg.HTTPPort = p[0], p[1], p[2], p[3]
	cfg.SimHostSecret = filepath.Join(dir, "sim-host-secret")

	store := &failingBlocks{}
	v := startService(t, cfg, func(s *Service) {
		store.next = s.host.blocks
		s.host.writes = store
	})
	waitInitialized(t, v, 2*time.Minute)
	c := dialShard(t, v.s)
	root, x, y := devPair(t, "//Alice"), devPair(t, "//FaultX"), devPair(t, "//FaultY")
	amount := func(n uint64) balance.Balance { return balance.NewBalance(n) }
	inBlock(t, c.submit(root, trusted.Call{SetBalance: &trusted.SetBalance{Who: x.ID(), Free: amount(1000)}}, 0), 30*time.Second)
	inBlock(t, c.submit(x, trusted.Call{Transfer: &trusted.Transfer{From: x.ID(), To: y.ID(), Amount: amount(100)}}, 0), 30*time.Second)
	committed := c.head()
	t.Logf("before the fault: head #%d %s, state %s", committed.Number, committed.Hash, committed.StateHash)

	// The disk fills up; the next block cannot be stored.
	store.fail(syscall.ENOSPC)
	late := c.submit(x, trusted.Call{Transfer: &trusted.Transfer{From: x.ID(), To: y.ID(), Amount: amount(1)}}, 1)
	var runErr error
	select {
	case runErr = <-v.done:
		v.done <- runErr
	case st := <-late:
		if st.Kind == trustedrpc.InSidechainBlock {
			t.Fatalf("the transfer was reported InSidechainBlock %s although its block could not be stored", st.BlockHash)
		}
		select {
		case runErr = <-v.done:
			v.done <- runErr
		case <-time.After(60 * time.Second):
			t.Fatal("the validateer kept running after its block store failed")
		}
	case <-time.After(60 * time.Second):
		t.Fatal("the validateer kept running after its block store failed")
	}
	refused, at := store.refusals()
	if refused == 0 {
		t.Fatalf("the validateer stopped (%v) without trying to store a block", runErr)
	}
	if at != committed.Number+1 {
		t.Errorf("the refused write was of block #%d, want the next block #%d", at, committed.Number+1)
	}
	if !errors.Is(runErr, enclave.ErrCommitFailed) || !strings.Contains(runErr.Error(), syscall.ENOSPC.Error()) {
		t.Errorf("Run returned %v; want enclave.ErrCommitFailed naming %q", runErr, syscall.ENOSPC.Error())
	}
	if l := v.log.String(); !strings.Contains(l, "stopping after a fatal error") || !strings.Contains(l, syscall.ENOSPC.Error()) {
		t.Errorf("the log does not report the failed write clearly:\n%s", tail(l, 3000))
	}
	for st := range late {
		if st.Kind == trustedrpc.InSidechainBlock || st.Kind == trustedrpc.Finalized {
			t.Errorf("the transfer was reported %s %s after the failed write", st.Kind, st.BlockHash)
		}
	}
	t.Logf("the validateer stopped after %d refused write(s) of block #%d: %v", refused, at, runErr)

	// The disk has room again; the operator restarts the validateer.
	v2 := startService(t, cfg, nil)
	waitInitialized(t, v2, 2*time.Minute)
	c2 := dialShard(t, v2.s)
	if h := c2.head(); h != committed {
		t.Fatalf("after the restart the head is #%d %s state %s; want the committed #%d %s state %s",
			h.Number, h.Hash, h.StateHash, committed.Number, committed.Hash, committed.StateHash)
	}
	if bx, by, n := c2.balanceOf(x), c2.balanceOf(y), c2.nonceOf(x); bx != "900" || by != "100" || n != "1" {
		t.Fatalf("after the restart //FaultX has %s (nonce %s), //FaultY %s; want 900 (nonce 1) and 100", bx, n, by)
	}
	// It authors again: the transfer, resubmitted, executes once.
	b := inBlock(t, c2.submit(x, trusted.Call{Transfer: &trusted.Transfer{From: x.ID(), To: y.ID(), Amount: amount(1)}}, 1), 30*time.Second)
	if h := c2.head(); h.Number != committed.Number+1 || h.Hash != b {
		t.Errorf("the resubmitted transfer is in %s, the head is #%d %s; want the next block #%d", b, h.Number, h.Hash, committed.Number+1)
	}
	if bx, by := c2.balanceOf(x), c2.balanceOf(y); bx != "899" || by != "101" {
		t.Errorf("after the resubmitted transfer //FaultX has %s, //FaultY %s; want 899 and 101", bx, by)
	}
}

// failPeerBlocksOnce makes the wrapper refuse the next write of a block
// another validateer authored, once.
type failPeerBlocksOnce struct {
	next blockWriter
	self [32]byte

	mu      sync.Mutex
	armed   bool
	refused uint64 // the number of the block refused; 0: none yet
	// after is the state hash after each block stored, by number; wrong
	// lists the blocks this validateer authored on a state that is not
	// its parent's.
	after map[uint64]sidechain.Hash
	wrong []string
}

func (f *failPeerBlocksOnce) arm() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.armed = true
}

func (f *failPeerBlocksOnce) refusedBlock() uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.refused
}

func (f *failPeerBlocksOnce) Put(b *sidechain.Block, raw []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := b.Header.Number
	if f.armed && b.Data.Author != f.self {
		f.armed, f.refused = false, n
		return fmt.Errorf("blockstore: put block %d: %w", n, syscall.EIO)
	}
	if parent, ok := f.after[n-1]; ok && b.Data.Author == f.self && parent != b.Data.StateHashBefore {
		f.wrong = append(f.wrong, fmt.Sprintf("#%d on state %s, its parent #%d left %s", n, b.Data.StateHashBefore, n-1, parent))
	}
	if err := f.next.Put(b, raw); err != nil {
		return err
	}
	if f.after == nil {
		f.after = map[uint64]sidechain.Hash{}
	}
	f.after[n] = b.Data.StateHashAfter
	return nil
}

// authoredOnWrongState returns the blocks this validateer authored on a
// state that was not its parent's.
func (f *failPeerBlocksOnce) authoredOnWrongState() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.wrong)
}

func (f *failPeerBlocksOnce) DeleteFrom(shard sidechain.ShardID, from uint64) error {
	return f.next.DeleteFrom(shard, from)
}

// TestFaultBlockStoreFailsOnAPeersBlock: two validateers; the block store
// of validateer1 fails one write, of a block validateer0 authored (an I/O
// error while importing), and then works again. validateer1 must either
// stop with an error naming the write, as it does when its own block
// cannot be stored, or recover (hold validateer0's head and state again)
// without authoring a block on a state that is not its parent's.
//
// The bug this found (docs/RELIABILITY.md, "Bugs found", 2): the enclave
// applied the block's state diff before the host stored the block and
// kept it when the store failed; in its next slot it authored a block on
// that state, which split it off the shard. Now a failed commit stops the
// enclave (enclave.failLocked), as a failed commit of its own block does.
func TestFaultBlockStoreFailsOnAPeersBlock(t *testing.T) {
	if testing.Short() {
		t.Skip("starts an in-process parentchain node and two validateers; run without -short")
	}
	rpcPort := startDevNode(t)
	dir := t.TempDir()
	config := func(name string) Config {
		p := freePorts(t, 4)
		cfg := DefaultConfig()
		cfg.NodePort, cfg.DataDir, cfg.Dev = rpcPort, filepath.Join(dir, name), true
		cfg.TrustedPort, cfg.UntrustedPort, cfg.MuRaPort, cfg.HTTPPort = p[0], p[1], p[2], p[3]
		cfg.SimHostSecret = filepath.Join(dir, "sim-host-secret")
		return cfg
	}
	v0 := startService(t, config("validateer0"), nil)
	waitInitialized(t, v0, 2*time.Minute)
	cfg1 := config("validateer1")
	cfg1.RequestState = true
	store := &failPeerBlocksOnce{}
	v1 := startService(t, cfg1, func(s *Service) {
		store.next, store.self = s.host.blocks, s.enc.Signer()
		s.host.writes = store
	})
	waitInitialized(t, v1, 2*time.Minute)
	c0, c1 := dialShard(t, v0.s), dialShard(t, v1.s)
	root, x, y := devPair(t, "//Alice"), devPair(t, "//FaultX"), devPair(t, "//FaultY")
	inBlock(t, c0.submit(root, trusted.Call{SetBalance: &trusted.SetBalance{Who: x.ID(), Free: balance.NewBalance(1000)}}, 0), 30*time.Second)

	store.arm()
	var nonce uint64
	deadline := time.Now().Add(60 * time.Second)
	for store.refusedBlock() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("validateer1 imported no block of validateer0 in 60 s")
		}
		inBlock(t, c0.submit(x, trusted.Call{Transfer: &trusted.Transfer{From: x.ID(), To: y.ID(), Amount: balance.NewBalance(1)}}, nonce), 30*time.Second)
		nonce++
	}
	t.Logf("validateer1's store refused block #%d of validateer0 once, then works again", store.refusedBlock())
	// More transfers after the failed write (through validateer0:
	// validateer1 may be stopping).
	for range 4 {
		inBlock(t, c0.submit(x, trusted.Call{Transfer: &trusted.Transfer{From: x.ID(), To: y.ID(), Amount: balance.NewBalance(1)}}, nonce), 30*time.Second)
		nonce++
	}
	deadline = time.Now().Add(30 * time.Second)
	for {
		select {
		case err := <-v1.done:
			v1.done <- err
			if err == nil || !strings.Contains(err.Error(), syscall.EIO.Error()) {
				t.Fatalf("validateer1 stopped with %v; want an error naming the failed write (%q)", err, syscall.EIO.Error())
			}
			t.Logf("validateer1 stopped: %v", err)
			return
		default:
		}
		h0, h1 := c0.head(), c1.head()
		if h0 == h1 && c1.nonceOf(x) == fmt.Sprint(nonce) {
			t.Logf("validateer1 holds validateer0's head #%d %s again", h1.Number, h1.Hash)
			if wrong := store.authoredOnWrongState(); len(wrong) > 0 {
				t.Errorf("after the failed write validateer1 authored blocks on a state that is not their parent's: %s; its log: %q",
					strings.Join(wrong, "; "), logLinesOf(v1.log.String(), "fork", "sidechain block"))
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("validateer1 neither stopped nor recovered after its store failed once: validateer0 at #%d %s state %s, validateer1 at #%d %s state %s, still running",
				h0.Number, h0.Hash, h0.StateHash, h1.Number, h1.Hash, h1.StateHash)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
