package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// benchLineRE is the benchmark's last, machine-readable line.
var benchLineRE = regexp.MustCompile(`^executed_per_s=\d+(\.\d)? p50_ms=\d+(\.\d)? p99_ms=\d+(\.\d)? ceiling_per_s=\d+(\.\d)? ratio=\d+\.\d{3}$`)

// TestTrustedBenchmark runs `trusted benchmark` briefly against a real
// validateer in both modes: it must succeed (no transfer refused, every one
// in a block, the balances adding up and matching the accounts' nonces),
// report the validateer's metrics, and end with the machine-readable line.
// Nothing about its speed is asserted.
func TestTrustedBenchmark(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	dir := t.TempDir()
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", w.metrics)
	for _, c := range []struct {
		mode  string
		extra []string
	}{
		// --prefund: the root's set-balance calls fill several batches over
		// several connections and must reach the pool in nonce order (it
		// holds only 64 Future operations per signer).
		{"plain", []string{"--batch", "16", "--prefund", "3000"}},
		{"encrypted", nil},
	} {
		t.Run(c.mode, func(t *testing.T) {
			args := append([]string{"trusted", "benchmark", "--mode", c.mode, "--accounts", "50", "--transfers", "20",
				"--duration", "2s", "--clients", "4", "--window", "32", "--metrics", metrics}, c.extra...)
			out, last := runBenchmark(t, w, dir, args)
			for _, want := range []string{
				"funded 50 accounts",
				"balances add up: the 50 accounts hold 1000 planck",
				" 0 refused (0 by the RPC, 0 Invalid or Dropped), 0 never in a block",
				"validateer " + metrics + ": CPU ",
				"peak RSS ",
			} {
				if !strings.Contains(out, want) {
					t.Errorf("output lacks %q:\n%s", want, out)
				}
			}
			if c.mode == "plain" && !strings.Contains(out, "funded 3000 prefunded accounts") {
				t.Errorf("output lacks %q:\n%s", "funded 3000 prefunded accounts", out)
			}
			if strings.Contains(out, "refused:") || strings.Contains(out, "never in a block:") {
				t.Errorf("the run reports refusals:\n%s", out)
			}
			t.Logf("%s: %s", c.mode, last)
		})
	}
}

// TestTrustedBenchmarkManyClients is the short version of the 5,000-client
// scenario: 300 RA-TLS websocket clients on one validateer, each with two
// operations outstanding, served without a refusal or a lost operation.
func TestTrustedBenchmarkManyClients(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	metrics := fmt.Sprintf("http://127.0.0.1:%d/metrics", w.metrics)
	args := []string{"trusted", "benchmark", "--accounts", "300", "--transfers", "10", "--clients", "300",
		"--window", "2", "--batch", "2", "--duration", "3s", "--metrics", metrics}
	out, last := runBenchmark(t, w, t.TempDir(), args)
	for _, want := range []string{
		"connecting 300 clients to 1 worker(s)",
		"balances add up: the 300 accounts hold 3000 planck",
		" 0 refused (0 by the RPC, 0 Invalid or Dropped), 0 never in a block",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	t.Logf("%s", last)
}

// runBenchmark runs the CLI with args in dir against w; it must succeed and
// end with the machine-readable line. It returns the output and that line.
func runBenchmark(t *testing.T, w *workerProc, dir string, args []string) (out, last string) {
	t.Helper()
	r := w.tcli(t, dir, args...)
	out = trimOut(r.out)
	if r.code != 0 {
		t.Fatalf("integritee-cli %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, out, r.err)
	}
	lines := strings.Split(out, "\n")
	if last = lines[len(lines)-1]; !benchLineRE.MatchString(last) {
		t.Errorf("last line %q is not the machine-readable line", last)
	}
	return out, last
}
