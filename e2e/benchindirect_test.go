package e2e

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
)

// indirectLineRE is benchmark-indirect's last, machine-readable line.
var indirectLineRE = regexp.MustCompile(`^indirect_per_s=\d+\.\d p50_ms=\d+ p99_ms=\d+$`)

// TestBenchmarkIndirect runs `trusted benchmark-indirect` with 3 accounts of
// 2 calls against a real node and validateer. It must succeed, report all 6
// calls executed exactly once and end with the machine-readable line; read
// independently afterwards, each trusted account it names must have nonce
// 2 and balance 2 planck, and each parentchain account must have spent the
// fees it was funded with on its 2 extrinsics. Nothing about its speed is
// asserted.
func TestBenchmarkIndirect(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	dir := t.TempDir()
	args := []string{"trusted", "benchmark-indirect", "--accounts", "3", "--calls", "2", "--workers", "2"}
	r := w.tcli(t, dir, args...)
	out := trimOut(r.out)
	if r.code != 0 {
		t.Fatalf("integritee-cli %v: exit %d\nstdout:\n%s\nstderr:\n%s", args, r.code, out, r.err)
	}
	lines := strings.Split(out, "\n")
	if last := lines[len(lines)-1]; !indirectLineRE.MatchString(last) {
		t.Errorf("last line %q is not the machine-readable line", last)
	}
	for _, want := range []string{
		"(0 refused, 0 not sent after a refusal)",
		"executed: 6 calls in the sidechain",
		"check: all 3 trusted accounts have nonce 2 and balance 2 planck, all 3 parentchain accounts nonce 2: every call executed exactly once",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`accounts: parentchain //BenchI(\d+)//i, trusted //BenchIT(\d+)//i`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("output does not name the accounts:\n%s", out)
	}
	for i := range 3 {
		acct := fmt.Sprintf("//BenchIT%s//%d", m[2], i)
		if got := w.mustT(t, dir, "trusted", "nonce", acct); got != "2" {
			t.Errorf("trusted nonce of %s = %s, want 2", acct, got)
		}
		if got := w.mustT(t, dir, "trusted", "balance", acct); got != "2" {
			t.Errorf("trusted balance of %s = %s, want 2", acct, got)
		}
		sender := fmt.Sprintf("//BenchI%s//%d", m[1], i)
		if got := n.balance(t, sender); got != "0" {
			t.Errorf("parentchain balance of %s = %s, want 0 (funded with the fees of its 2 extrinsics)", sender, got)
		}
	}
	t.Log(lines[len(lines)-1])
}
