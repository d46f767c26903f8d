package localnet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// The launcher's tests run it against fakes: this test binary, linked as
// integritee-node and integritee-service into a bin dir, plays those
// programs when LOCALNET_FAKE is set (see fakeMain). LOCALNET_FAKE_MODE
// picks a misbehaviour.
func TestMain(m *testing.M) {
	if os.Getenv("LOCALNET_FAKE") != "" {
		os.Exit(fakeMain(filepath.Base(os.Args[0]), os.Args[1:], os.Getenv("LOCALNET_FAKE_MODE")))
	}
	os.Exit(m.Run())
}

// fakeMain serves the health endpoint the launcher probes: a node's
// /status at height 3 on --rpc-port, a validateer's /is_initialized on -h.
func fakeMain(prog string, args []string, mode string) int {
	flag := func(name string) string {
		for i, a := range args {
			if a == name && i+1 < len(args) {
				return args[i+1]
			}
		}
		return ""
	}
	if len(args) > 0 && args[0] == "init" {
		fmt.Println("fake init", args)
		return 0
	}
	var port, path, body string
	code := http.StatusOK
	switch prog {
	case NodeBinary:
		port, path, body = flag("--rpc-port"), "/status", `{"result":{"sync_info":{"latest_block_height":"3"}}}`
		if mode == "node-fails" {
			fmt.Fprintln(os.Stderr, "fake node: cannot start")
			return 2
		}
	case ServiceBinary:
		port, path, body = flag("-h"), "/is_initialized", "initialized"
		switch mode {
		case "service-exits":
			time.Sleep(300 * time.Millisecond) // after the launcher started waiting
			fmt.Fprintln(os.Stderr, "fake service: enclave failure")
			return 3
		case "service-unhealthy":
			code = http.StatusNotFound
		}
	default:
		fmt.Fprintln(os.Stderr, "fake: unknown program", prog)
		return 1
	}
	l, err := net.Listen("tcp", "127.0.0.1:"+port)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fake:", err)
		return 1
	}
	http.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(code)
		fmt.Fprint(w, body)
	})
	go http.Serve(l, nil)
	fmt.Println("fake", prog, "serving", args)
	ch := make(chan os.Signal, 1)
	if mode == "ignore-term" {
		signal.Ignore(syscall.SIGTERM)
		signal.Notify(ch, syscall.SIGINT)
	} else {
		signal.Notify(ch, syscall.SIGINT, syscall.SIGTERM)
	}
	<-ch
	return 0
}

// fakeBinDir links this test binary as both programs.
func fakeBinDir(t *testing.T, mode string) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, name := range []string{NodeBinary, ServiceBinary} {
		if err := os.Symlink(exe, filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	t.Setenv("LOCALNET_FAKE", "1")
	t.Setenv("LOCALNET_FAKE_MODE", mode)
	return dir
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var ports []int
	var ls []net.Listener
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

// testConfig is a dev node and one validateer on free ports.
func testConfig(t *testing.T) *Config {
	t.Helper()
	p := freePorts(t, 8)
	c := &Config{Chain: ChainDev, Nodes: NodeList{{Ports: NodePorts{p[0], p[1], p[2]}}},
		Validateers: []ValidateerSpec{{Ports: ValidateerPorts{p[3], p[4], p[5], p[6], p[7]}, RunFlags: []string{"--dev"}}}}
	if err := c.ValidateBasic(); err != nil {
		t.Fatal(err)
	}
	return c
}

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

// run starts Run in the background; the result arrives on the channel.
func run(ctx context.Context, c *Config, o Options) (*syncBuffer, <-chan error) {
	out := &syncBuffer{}
	o.Out = out
	done := make(chan error, 1)
	go func() { done <- Run(ctx, c, o) }()
	return out, done
}

func waitOut(t *testing.T, out *syncBuffer, done <-chan error, want string) {
	t.Helper()
	deadline := time.After(20 * time.Second)
	for !strings.Contains(out.String(), want) {
		select {
		case err := <-done:
			t.Fatalf("Run returned %v before printing %q; output:\n%s", err, want, out)
		case <-deadline:
			t.Fatalf("timed out waiting for %q; output:\n%s", want, out)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func waitDone(t *testing.T, done <-chan error, within time.Duration) error {
	t.Helper()
	select {
	case err := <-done:
		return err
	case <-time.After(within):
		t.Fatalf("Run did not return within %s", within)
		return nil
	}
}

// pids reads the work dir's pid files.
func pids(t *testing.T, workDir string) map[string]int {
	t.Helper()
	m, err := ReadPids(workDir)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func assertGone(t *testing.T, pids map[string]int) {
	t.Helper()
	for name, pid := range pids {
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after Run returned (kill 0: %v)", name, pid, err)
		}
	}
}

func TestRunStartsAndStopsOnCancel(t *testing.T) {
	bin := fakeBinDir(t, "")
	c := testConfig(t)
	work := filepath.Join(t.TempDir(), "net")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := run(ctx, c, Options{WorkDir: work, BinDir: bin})
	waitOut(t, out, done, ReadyMessage)
	n, _ := c.Resolve()
	for _, want := range []string{
		"node0  ", fmt.Sprintf("http://127.0.0.1:%d", n.Nodes[0].Ports.RPC),
		fmt.Sprintf("wss://127.0.0.1:%d", n.Validateers[0].Ports.Trusted),
		fmt.Sprintf("http://127.0.0.1:%d/is_initialized", n.Validateers[0].Ports.Health),
		fmt.Sprintf("http://127.0.0.1:%d/metrics", n.Validateers[0].Ports.Metrics),
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	ps := pids(t, work)
	if len(ps) != 2 {
		t.Fatalf("pid files %v, want node0 and validateer0", ps)
	}
	// The validateer sits beside node0 and was given its ports.
	vlog, _ := os.ReadFile(filepath.Join(work, "logs", "validateer0.log"))
	for _, want := range []string{"-p " + strconv.Itoa(n.Nodes[0].Ports.RPC), "-P " + strconv.Itoa(n.Validateers[0].Ports.Trusted),
		"--enable-metrics", "--sim-host-secret " + filepath.Join(work, "sim-host-secret"), "run --dev"} {
		if !strings.Contains(string(vlog), want) {
			t.Errorf("validateer0.log lacks %q:\n%s", want, vlog)
		}
	}
	cancel()
	if err := waitDone(t, done, 10*time.Second); err != nil {
		t.Fatalf("Run after cancel: %v", err)
	}
	assertGone(t, ps)
	if _, err := os.Stat(work); err != nil {
		t.Errorf("a given work dir must be kept: %v", err)
	}
}

func TestRunTempWorkDirRemoved(t *testing.T) {
	bin := fakeBinDir(t, "")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := run(ctx, testConfig(t), Options{BinDir: bin})
	waitOut(t, out, done, ReadyMessage)
	m := regexp.MustCompile(`work dir (\S+)`).FindStringSubmatch(out.String())
	if m == nil {
		t.Fatalf("no work dir printed:\n%s", out)
	}
	cancel()
	if err := waitDone(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(m[1]); !os.IsNotExist(err) {
		t.Errorf("temporary work dir %s still there (%v)", m[1], err)
	}
}

func TestRunProcessExitsEarly(t *testing.T) {
	bin := fakeBinDir(t, "service-exits")
	work := t.TempDir()
	out, done := run(context.Background(), testConfig(t), Options{WorkDir: work, BinDir: bin})
	err := waitDone(t, done, 20*time.Second)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Name != "validateer0" || !strings.Contains(ee.Status, "status 3") {
		t.Fatalf("want validateer0's ExitError with status 3, got %v", err)
	}
	for _, want := range []string{"fake service: enclave failure", "work dir kept for inspection"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	assertGone(t, pids(t, work))
}

func TestRunNodeFails(t *testing.T) {
	bin := fakeBinDir(t, "node-fails")
	out, done := run(context.Background(), testConfig(t), Options{WorkDir: t.TempDir(), BinDir: bin})
	err := waitDone(t, done, 20*time.Second)
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Name != "node0" {
		t.Fatalf("want node0's ExitError, got %v", err)
	}
	if !strings.Contains(out.String(), "fake node: cannot start") {
		t.Errorf("no log tail:\n%s", out)
	}
}

func TestRunKillsAfterStopTimeout(t *testing.T) {
	bin := fakeBinDir(t, "ignore-term")
	work := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := run(ctx, testConfig(t), Options{WorkDir: work, BinDir: bin, StopTimeout: 300 * time.Millisecond})
	waitOut(t, out, done, ReadyMessage)
	ps := pids(t, work)
	start := time.Now()
	cancel()
	if err := waitDone(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 300*time.Millisecond {
		t.Errorf("stopped after %s: the fakes ignore SIGTERM, so the stop timeout should have passed", d)
	}
	assertGone(t, ps)
}

func TestRunStartTimeout(t *testing.T) {
	bin := fakeBinDir(t, "service-unhealthy")
	work := t.TempDir()
	_, done := run(context.Background(), testConfig(t), Options{WorkDir: work, BinDir: bin, StartTimeout: time.Second})
	err := waitDone(t, done, 20*time.Second)
	if err == nil || !strings.Contains(err.Error(), "validateer0 not healthy") || !strings.Contains(err.Error(), "HTTP 404") {
		t.Fatalf("want validateer0 not healthy with its last probe, got %v", err)
	}
	assertGone(t, pids(t, work))
}

func TestRunInitChain(t *testing.T) {
	bin := fakeBinDir(t, "")
	// Node K's ports are the base ports + K: six consecutive free ports
	// give both nodes theirs (node1's were once left unchecked, and a port
	// another test held failed the run).
	base := freePorts(t, 1)[0]
	for !func() bool {
		for k := 0; k < 6; k++ {
			if portFree(base+k) != nil {
				return false
			}
		}
		return true
	}() {
		base++
	}
	c := &Config{Chain: ChainInit, Nodes: make(NodeList, 2), BlockTime: "300ms", BasePorts: BasePorts{Node: NodePorts{RPC: base, Prometheus: base + 2, P2P: base + 4}}}
	work := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := run(ctx, c, Options{WorkDir: work, BinDir: bin})
	waitOut(t, out, done, ReadyMessage)
	cancel()
	if err := waitDone(t, done, 10*time.Second); err != nil {
		t.Fatal(err)
	}
	initLog, _ := os.ReadFile(filepath.Join(work, "logs", "init.log"))
	for _, want := range []string{"init --dev --validators 2 --base-path " + filepath.Join(work, "chain"), "--chain-id integritee-local",
		"--base-port " + strconv.Itoa(c.BasePorts.Node.P2P), "--block-time 300ms"} {
		if !strings.Contains(string(initLog), want) {
			t.Errorf("init.log lacks %q:\n%s", want, initLog)
		}
	}
	n1, _ := os.ReadFile(filepath.Join(work, "logs", "node1.log"))
	if want := "--base-path " + filepath.Join(work, "chain", "node1"); !strings.Contains(string(n1), want) {
		t.Errorf("node1.log lacks %q:\n%s", want, n1)
	}
	if strings.Contains(string(n1), "--dev") {
		t.Errorf("an init node got --dev:\n%s", n1)
	}
}

func TestRunRefusesBeforeStarting(t *testing.T) {
	bin := fakeBinDir(t, "")
	t.Run("port in use", func(t *testing.T) {
		c := testConfig(t)
		n, _ := c.Resolve()
		l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", n.Validateers[0].Ports.Health))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		err = Run(context.Background(), c, Options{WorkDir: t.TempDir(), BinDir: bin})
		if err == nil || !strings.Contains(err.Error(), fmt.Sprintf("port %d (validateer0 health) is in use", n.Validateers[0].Ports.Health)) {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("work dir not empty", func(t *testing.T) {
		work := t.TempDir()
		os.WriteFile(filepath.Join(work, "x"), nil, 0o644)
		err := Run(context.Background(), testConfig(t), Options{WorkDir: work, BinDir: bin})
		if err == nil || !strings.Contains(err.Error(), "is not empty") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("no binaries", func(t *testing.T) {
		err := Run(context.Background(), testConfig(t), Options{WorkDir: t.TempDir(), BinDir: t.TempDir()})
		if err == nil || !strings.Contains(err.Error(), "integritee-node not found") || !strings.Contains(err.Error(), "--bin-dir") {
			t.Fatalf("got %v", err)
		}
	})
	t.Run("prometheus missing", func(t *testing.T) {
		t.Setenv("PATH", t.TempDir())
		c := testConfig(t)
		c.Prometheus = PrometheusSpec{Enabled: true, Port: freePorts(t, 1)[0]}
		err := Run(context.Background(), c, Options{WorkDir: t.TempDir(), BinDir: bin})
		if err == nil || !strings.Contains(err.Error(), "apt-get install prometheus") {
			t.Fatalf("got %v", err)
		}
	})
}

func TestRunInterruptedWhileStarting(t *testing.T) {
	bin := fakeBinDir(t, "service-unhealthy")
	work := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out, done := run(ctx, testConfig(t), Options{WorkDir: work, BinDir: bin})
	waitOut(t, out, done, "") // started
	deadline := time.Now().Add(10 * time.Second)
	for len(pids(t, work)) < 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the validateer never started:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}
	ps := pids(t, work)
	cancel()
	if err := waitDone(t, done, 10*time.Second); err != nil {
		t.Fatalf("interrupted while starting: want a clean stop, got %v", err)
	}
	if strings.Contains(out.String(), ReadyMessage) || !strings.Contains(out.String(), "all processes stopped") {
		t.Errorf("output:\n%s", out)
	}
	assertGone(t, ps)
}
