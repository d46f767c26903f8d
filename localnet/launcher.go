package localnet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"text/tabwriter"
	"time"
)

// Binary names the launcher looks for in its bin dir.
const (
	NodeBinary    = "integritee-node"
	ServiceBinary = "integritee-service"
)

// ReadyMessage starts the line the launcher prints once every process is
// healthy.
const ReadyMessage = "localnet: all processes healthy"

// Defaults of Options.
const (
	DefaultStartTimeout = 2 * time.Minute
	DefaultStopTimeout  = 20 * time.Second
)

// logTailLines is how much of a failed process's log the launcher prints.
const logTailLines = 40

// Options are the launcher's settings besides the network itself.
type Options struct {
	// WorkDir holds every process's data, logs/<name>.log and
	// pids/<name>.pid. Empty: a fresh temporary directory, removed at a
	// clean exit unless Keep. A given directory must be empty or absent and
	// is never removed.
	WorkDir string
	// Keep keeps the temporary work dir.
	Keep bool
	// BinDir holds integritee-node and integritee-service.
	BinDir string
	// StartTimeout bounds each wait for processes to become healthy.
	StartTimeout time.Duration
	// StopTimeout is how long a process may take to exit after SIGTERM
	// before it gets SIGKILL.
	StopTimeout time.Duration
	// Out receives the work dir, the endpoint table, the ready line and
	// failed processes' log tails.
	Out io.Writer
	// Log receives the launcher's own progress.
	Log *slog.Logger
}

// ExitError is a child that exited while it should have been running.
type ExitError struct {
	Name, Status, Log string
}

func (e *ExitError) Error() string {
	return fmt.Sprintf("%s %s (log: %s)", e.Name, e.Status, e.Log)
}

// launcher is one run of the network.
type launcher struct {
	net        *Network
	o          Options
	log        *slog.Logger
	nodeBin    string
	serviceBin string
	promBin    string

	mu       sync.Mutex
	procs    []*process    // in start order
	exited   chan *process // every child, once it exits
	stopping bool
}

// Run starts the network cfg describes, prints its endpoints once every
// process is healthy, and runs until ctx is cancelled (the command cancels
// it on SIGINT and SIGTERM) or a process exits. Either way it stops every
// process (SIGTERM, then SIGKILL after Options.StopTimeout). It returns nil
// after a cancellation and an error if anything failed, a process exited
// early included (an *ExitError, after printing its log's tail to Out).
func Run(ctx context.Context, cfg *Config, o Options) (err error) {
	net, err := cfg.Resolve()
	if err != nil {
		return err
	}
	if o.StartTimeout <= 0 {
		o.StartTimeout = DefaultStartTimeout
	}
	if o.StopTimeout <= 0 {
		o.StopTimeout = DefaultStopTimeout
	}
	if o.Out == nil {
		o.Out = io.Discard
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	l := &launcher{net: net, o: o, log: o.Log}
	if l.nodeBin, err = findBinary(o.BinDir, NodeBinary); err != nil {
		return err
	}
	if len(net.Validateers) > 0 {
		if l.serviceBin, err = findBinary(o.BinDir, ServiceBinary); err != nil {
			return err
		}
	}
	if net.PrometheusPort != 0 {
		if l.promBin, err = exec.LookPath(PrometheusBinary); err != nil {
			return fmt.Errorf(`the config enables Prometheus, but no %q binary is on PATH: install it (Debian/Ubuntu: apt-get install prometheus) or set "prometheus": {"enabled": false}`, PrometheusBinary)
		}
	}
	if err := l.checkPorts(); err != nil {
		return err
	}
	temp := o.WorkDir == ""
	if err := l.makeWorkDir(); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "localnet: work dir %s (logs in %s)\n", l.o.WorkDir, filepath.Join(l.o.WorkDir, "logs"))
	l.exited = make(chan *process, len(net.Nodes)+len(net.Validateers)+1)

	err = l.start(ctx)
	if err == nil {
		l.printEndpoints()
		fmt.Fprintf(o.Out, "%s: %d running; Ctrl-C stops them\n", ReadyMessage, len(l.procs))
		err = l.wait(ctx)
	}
	interrupted := errors.Is(err, context.Canceled) && ctx.Err() != nil
	if interrupted {
		l.log.Info("stop requested (SIGINT or SIGTERM): stopping every process")
		err = nil
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		fmt.Fprintf(o.Out, "localnet: %s %s; last lines of %s:\n%s\n", ee.Name, ee.Status, ee.Log, tail(ee.Log, logTailLines))
	}
	l.stopAll()
	fmt.Fprintf(o.Out, "localnet: all processes stopped\n")
	switch {
	case err != nil:
		fmt.Fprintf(o.Out, "localnet: work dir kept for inspection: %s\n", l.o.WorkDir)
	case temp && !o.Keep:
		if rerr := os.RemoveAll(l.o.WorkDir); rerr != nil {
			l.log.Warn("could not remove the work dir", "dir", l.o.WorkDir, "err", rerr)
		}
	default:
		fmt.Fprintf(o.Out, "localnet: work dir kept: %s\n", l.o.WorkDir)
	}
	return err
}

// checkPorts fails early, naming the port's role, if something already
// listens on one of the network's ports.
func (l *launcher) checkPorts() error {
	check := func(port int, what string) error {
		if err := portFree(port); err != nil {
			return fmt.Errorf("port %d (%s) is in use: stop what listens there or change the config's ports (%v)", port, what, err)
		}
		return nil
	}
	for _, n := range l.net.Nodes {
		for _, p := range []struct {
			port int
			what string
		}{{n.Ports.RPC, "rpc"}, {n.Ports.P2P, "p2p"}, {n.Ports.Prometheus, "prometheus"}} {
			if err := check(p.port, n.Name+" "+p.what); err != nil {
				return err
			}
		}
	}
	for _, v := range l.net.Validateers {
		for _, p := range []struct {
			port int
			what string
		}{{v.Ports.Trusted, "trusted"}, {v.Ports.Untrusted, "untrusted"}, {v.Ports.MuRA, "mu_ra"},
			{v.Ports.Health, "health"}, {v.Ports.Metrics, "metrics"}} {
			if err := check(p.port, v.Name+" "+p.what); err != nil {
				return err
			}
		}
	}
	if l.net.PrometheusPort != 0 {
		return check(l.net.PrometheusPort, "prometheus")
	}
	return nil
}

func (l *launcher) makeWorkDir() error {
	if l.o.WorkDir == "" {
		d, err := os.MkdirTemp("", "integritee-localnet-")
		if err != nil {
			return err
		}
		l.o.WorkDir = d
	} else {
		d, err := filepath.Abs(l.o.WorkDir)
		if err != nil {
			return err
		}
		l.o.WorkDir = d
		entries, err := os.ReadDir(d)
		if err != nil && !os.IsNotExist(err) {
			return fmt.Errorf("work dir: %w", err)
		}
		if len(entries) > 0 {
			return fmt.Errorf("work dir %s is not empty: give a fresh one (the launcher always starts a new network)", d)
		}
	}
	for _, sub := range []string{"logs", "pids"} {
		if err := os.MkdirAll(filepath.Join(l.o.WorkDir, sub), 0o755); err != nil {
			return err
		}
	}
	return nil
}

func (l *launcher) path(elem ...string) string {
	return filepath.Join(append([]string{l.o.WorkDir}, elem...)...)
}

// spawn starts one child and records it.
func (l *launcher) spawn(name, kind, bin string, args []string) (*process, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopping {
		return nil, context.Canceled
	}
	p, err := startProcess(name, kind, bin, args, l.o.WorkDir, l.path("logs", name+".log"), l.path("pids", name+".pid"), l.exited)
	if err != nil {
		return nil, err
	}
	l.procs = append(l.procs, p)
	l.log.Info("started", "name", name, "pid", p.pid(), "log", p.log)
	return p, nil
}

// start brings the network up: init (for an init chain), all nodes, each
// validateer in turn, Prometheus; every step waits for health.
func (l *launcher) start(ctx context.Context) error {
	if l.net.Chain == ChainInit {
		if err := l.initChain(ctx); err != nil {
			return err
		}
	}
	for _, n := range l.net.Nodes {
		if _, err := l.spawn(n.Name, "node", l.nodeBin, l.nodeArgs(n)); err != nil {
			return err
		}
	}
	var checks []healthCheck
	for _, n := range l.net.Nodes {
		checks = append(checks, healthCheck{n.Name, func(ctx context.Context) (bool, string) { return nodeHealthy(ctx, n) }})
	}
	if err := l.waitHealthy(ctx, fmt.Sprintf("height ≥ %d", MinNodeHeight), checks); err != nil {
		return err
	}
	for _, v := range l.net.Validateers {
		if _, err := l.spawn(v.Name, "validateer", l.serviceBin, l.validateerArgs(v)); err != nil {
			return err
		}
		if err := l.waitHealthy(ctx, "/is_initialized = 200", []healthCheck{{v.Name, func(ctx context.Context) (bool, string) { return validateerHealthy(ctx, v) }}}); err != nil {
			return err
		}
	}
	if l.net.PrometheusPort != 0 {
		if err := l.startPrometheus(ctx); err != nil {
			return err
		}
	}
	return nil
}

// initChain runs `integritee-node init --dev` once for all nodes: a local
// network's genesis is the permissive dev genesis (dev accounts funded,
// //Alice sudo, skip and simulated attestation allowed), so the simulation
// TEE's validateers register on it as on a dev chain. Without --dev, init
// writes a secure genesis that needs an operator's --sudo and --endow.
func (l *launcher) initChain(ctx context.Context) error {
	n0 := l.net.Nodes[0].Ports
	args := []string{"init", "--dev", "--validators", strconv.Itoa(len(l.net.Nodes)), "--base-path", l.path("chain"),
		"--chain-id", l.net.ChainID, "--base-rpc-port", strconv.Itoa(n0.RPC), "--base-port", strconv.Itoa(n0.P2P),
		"--base-prometheus-port", strconv.Itoa(n0.Prometheus)}
	if l.net.BlockTime != "" {
		args = append(args, "--block-time", l.net.BlockTime)
	}
	logPath := l.path("logs", "init.log")
	f, err := os.Create(logPath)
	if err != nil {
		return err
	}
	defer f.Close()
	fmt.Fprintf(f, "# %s %s\n", l.nodeBin, shellJoin(args))
	cmd := exec.CommandContext(ctx, l.nodeBin, args...)
	cmd.Dir, cmd.Stdout, cmd.Stderr = l.o.WorkDir, f, f
	l.log.Info("writing the chain", "cmd", "integritee-node "+shellJoin(args))
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("integritee-node init: %v; last lines of %s:\n%s", err, logPath, tail(logPath, logTailLines))
	}
	return nil
}

// nodeHome is where a node keeps its keys, genesis and state.
func (l *launcher) nodeHome(n *Node) string {
	if l.net.Chain == ChainInit {
		return l.path("chain", fmt.Sprintf("node%d", n.Index)) // as init names them
	}
	return l.path(n.Name)
}

func (l *launcher) nodeArgs(n *Node) []string {
	var args []string
	if l.net.Chain == ChainDev {
		args = append(args, "--dev")
		if l.net.BlockTime != "" {
			args = append(args, "--block-time", l.net.BlockTime)
		}
	}
	args = append(args, "--base-path", l.nodeHome(n), "--name", n.Name,
		"--rpc-port", strconv.Itoa(n.Ports.RPC), "--port", strconv.Itoa(n.Ports.P2P),
		"--prometheus-port", strconv.Itoa(n.Ports.Prometheus))
	return append(args, n.Flags...)
}

func (l *launcher) validateerArgs(v *Validateer) []string {
	args := []string{"-u", "ws://127.0.0.1", "-p", strconv.Itoa(v.Node.Ports.RPC), "-d", l.path(v.Name),
		"-P", strconv.Itoa(v.Ports.Trusted), "-w", strconv.Itoa(v.Ports.Untrusted),
		"-r", strconv.Itoa(v.Ports.MuRA), "-h", strconv.Itoa(v.Ports.Health),
		"--enable-metrics", "-i", strconv.Itoa(v.Ports.Metrics),
		// One simulated host: all validateers share its sealing secret,
		// kept in the work dir rather than the user's home.
		"--sim-host-secret", l.path("sim-host-secret")}
	args = append(args, v.Flags...)
	args = append(args, "run")
	return append(args, v.RunFlags...)
}

func (l *launcher) startPrometheus(ctx context.Context) error {
	dir := l.path("prometheus")
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		return err
	}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(PrometheusConfig(l.net)), 0o644); err != nil {
		return err
	}
	args := []string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=127.0.0.1:" + strconv.Itoa(l.net.PrometheusPort)}
	if _, err := l.spawn("prometheus", "prometheus", l.promBin, args); err != nil {
		return err
	}
	return l.waitHealthy(ctx, "/-/ready = 200", []healthCheck{{"prometheus", func(ctx context.Context) (bool, string) {
		return prometheusHealthy(ctx, l.net.PrometheusPort)
	}}})
}

type healthCheck struct {
	name  string
	check func(context.Context) (bool, string)
}

// pollInterval is how often health is probed while starting.
const pollInterval = 200 * time.Millisecond

// waitHealthy polls the checks until all pass, a process exits, ctx ends or
// StartTimeout passes.
func (l *launcher) waitHealthy(ctx context.Context, want string, checks []healthCheck) error {
	start := time.Now()
	deadline := time.NewTimer(l.o.StartTimeout)
	defer deadline.Stop()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	pending := map[string]healthCheck{}
	for _, c := range checks {
		pending[c.name] = c
		l.log.Info("waiting until healthy", "name", c.name, "want", want)
	}
	last := map[string]string{}
	for {
		for name, c := range pending {
			pctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			ok, status := c.check(pctx)
			cancel()
			last[name] = status
			if ok {
				l.log.Info("healthy", "name", name, "status", status, "after", time.Since(start).Round(time.Millisecond))
				delete(pending, name)
			}
		}
		if len(pending) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case p := <-l.exited:
			return &ExitError{Name: p.name, Status: p.exitDescription() + " while starting", Log: p.log}
		case <-deadline.C:
			for name := range pending {
				p := l.find(name)
				return fmt.Errorf("%s not healthy (%s) after %s; last probe: %s; last lines of %s:\n%s",
					name, want, l.o.StartTimeout, last[name], p.log, tail(p.log, logTailLines))
			}
		case <-tick.C:
		}
	}
}

func (l *launcher) find(name string) *process {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, p := range l.procs {
		if p.name == name {
			return p
		}
	}
	return nil
}

// wait runs until ctx ends or a process exits.
func (l *launcher) wait(ctx context.Context) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case p := <-l.exited:
		return &ExitError{Name: p.name, Status: p.exitDescription(), Log: p.log}
	}
}

// stopAll stops every process: Prometheus and the validateers first (they
// talk to the nodes), then the nodes. Each group gets SIGTERM at once and
// StopTimeout to exit before SIGKILL.
func (l *launcher) stopAll() {
	l.mu.Lock()
	l.stopping = true
	procs := append([]*process(nil), l.procs...)
	l.mu.Unlock()
	var first, nodes []*process
	for _, p := range procs {
		if p.kind == "node" {
			nodes = append(nodes, p)
		} else {
			first = append(first, p)
		}
	}
	for _, group := range [][]*process{first, nodes} {
		var wg sync.WaitGroup
		for _, p := range group {
			if p.exited() {
				continue
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				start := time.Now()
				if p.stop(l.o.StopTimeout) {
					l.log.Warn("killed after the stop timeout", "name", p.name, "pid", p.pid(), "timeout", l.o.StopTimeout)
				} else {
					l.log.Info("stopped", "name", p.name, "pid", p.pid(), "status", p.exitDescription(), "after", time.Since(start).Round(time.Millisecond))
				}
			}()
		}
		wg.Wait()
	}
}

// printEndpoints writes the table of every process's endpoints and pid.
func (l *launcher) printEndpoints() {
	pid := func(name string) string {
		if p := l.find(name); p != nil {
			return strconv.Itoa(p.pid())
		}
		return "-"
	}
	w := tabwriter.NewWriter(l.o.Out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "PROCESS\tPID\tENDPOINT\tADDRESS")
	for _, n := range l.net.Nodes {
		id := pid(n.Name)
		fmt.Fprintf(w, "%s\t%s\trpc\thttp://127.0.0.1:%d  ws://127.0.0.1:%d/websocket\n", n.Name, id, n.Ports.RPC, n.Ports.RPC)
		fmt.Fprintf(w, "%s\t%s\tp2p\t127.0.0.1:%d\n", n.Name, id, n.Ports.P2P)
		fmt.Fprintf(w, "%s\t%s\tprometheus\thttp://127.0.0.1:%d/metrics\n", n.Name, id, n.Ports.Prometheus)
	}
	for _, v := range l.net.Validateers {
		id := pid(v.Name)
		fmt.Fprintf(w, "%s\t%s\tnode\t%s (ws://127.0.0.1:%d)\n", v.Name, id, v.Node.Name, v.Node.Ports.RPC)
		fmt.Fprintf(w, "%s\t%s\ttrusted\twss://127.0.0.1:%d\n", v.Name, id, v.Ports.Trusted)
		fmt.Fprintf(w, "%s\t%s\tuntrusted\tws://127.0.0.1:%d\n", v.Name, id, v.Ports.Untrusted)
		fmt.Fprintf(w, "%s\t%s\tmu-ra\t127.0.0.1:%d\n", v.Name, id, v.Ports.MuRA)
		fmt.Fprintf(w, "%s\t%s\thealth\thttp://127.0.0.1:%d/is_initialized\n", v.Name, id, v.Ports.Health)
		fmt.Fprintf(w, "%s\t%s\tmetrics\thttp://127.0.0.1:%d/metrics\n", v.Name, id, v.Ports.Metrics)
	}
	if l.net.PrometheusPort != 0 {
		fmt.Fprintf(w, "prometheus\t%s\tweb\thttp://127.0.0.1:%d\n", pid("prometheus"), l.net.PrometheusPort)
	}
	w.Flush()
	n0 := l.net.Nodes[0]
	fmt.Fprintf(l.o.Out, "try:  integritee-cli -p %d balance //Alice\n", n0.Ports.RPC)
	if len(l.net.Validateers) > 0 {
		v := l.net.Validateers[0]
		fmt.Fprintf(l.o.Out, "      integritee-cli -p %d -P %d trusted get-fingerprint\n", v.Node.Ports.RPC, v.Ports.Trusted)
	}
	fmt.Fprintf(l.o.Out, "logs: %s   pids: %s\n", l.path("logs", "<name>.log"), l.path("pids", "<name>.pid"))
}
