package e2e

import (
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// workerProc is a running integritee-service.
type workerProc struct {
	*proc
	node                                    *nodeProc
	dataDir                                 string
	trusted, untrusted, mura, http, metrics int
}

// startWorker starts `integritee-service run --dev` against n with data in
// dataDir (fresh if empty) and waits until /is_initialized answers 200.
func startWorker(t *testing.T, n *nodeProc, dataDir string, runArgs ...string) *workerProc {
	t.Helper()
	w := startWorkerNoWait(t, n, dataDir, runArgs...)
	waitFor(t, "the validateer's /is_initialized", 90*time.Second, w.initialized)
	return w
}

func startWorkerNoWait(t *testing.T, n *nodeProc, dataDir string, runArgs ...string) *workerProc {
	t.Helper()
	if dataDir == "" {
		dataDir = t.TempDir()
	}
	p := freePorts(t, 5)
	args := []string{"-p", strconv.Itoa(n.rpc), "-d", dataDir,
		"-P", strconv.Itoa(p[0]), "-w", strconv.Itoa(p[1]), "-r", strconv.Itoa(p[2]), "-h", strconv.Itoa(p[3]),
		"--enable-metrics", "-i", strconv.Itoa(p[4]),
		"--sim-host-secret", filepath.Join(filepath.Dir(dataDir), "sim-host-secret"), "run"}
	if len(runArgs) == 0 {
		runArgs = []string{"--dev"}
	}
	args = append(args, runArgs...)
	return &workerProc{proc: start(t, "integritee-service", args...), node: n, dataDir: dataDir,
		trusted: p[0], untrusted: p[1], mura: p[2], http: p[3], metrics: p[4]}
}

func (w *workerProc) initialized() bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/is_initialized", w.http))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// tcli runs integritee-cli against the node and this worker.
func (w *workerProc) tcli(t *testing.T, dir string, args ...string) cliResult {
	t.Helper()
	return w.node.cli(t, dir, append([]string{"-P", strconv.Itoa(w.trusted)}, args...)...)
}

// mustT runs the CLI against the worker and fails the test unless it
// succeeds.
func (w *workerProc) mustT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	r := w.tcli(t, dir, args...)
	if r.code != 0 {
		t.Fatalf("integritee-cli %v: exit %d: %s%s", args, r.code, r.out, r.err)
	}
	return trimOut(r.out)
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// sidechainHeight reads the worker's block height metric.
func sidechainHeight(t *testing.T, w *workerProc) int {
	m := httpGet(t, fmt.Sprintf("http://127.0.0.1:%d/metrics", w.metrics))
	for _, line := range strings.Split(m, "\n") {
		if strings.HasPrefix(line, "integritee_worker_enclave_sidechain_block_height ") {
			var v float64
			fmt.Sscan(strings.TrimPrefix(line, "integritee_worker_enclave_sidechain_block_height "), &v)
			return int(v)
		}
	}
	return 0
}

func isDone(p *proc) bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}
