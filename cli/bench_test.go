package cli

import (
	"bytes"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// benchmark-transfers ends with one machine-readable line:
// committed_per_s=N accepted_per_s=N ceiling_per_s=N ratio=R.
func TestBenchResultEndsWithMachineReadableLine(t *testing.T) {
	var out bytes.Buffer
	printBenchResult(&out, 10000, 1250*time.Millisecond, 2*time.Second, 40000)
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	last := lines[len(lines)-1]
	m := regexp.MustCompile(`^committed_per_s=(\d+) accepted_per_s=(\d+) ceiling_per_s=(\d+) ratio=([0-9.]+)$`).FindStringSubmatch(last)
	if m == nil {
		t.Fatalf("last line %q", last)
	}
	if m[1] != "5000" || m[2] != "8000" || m[3] != "40000" {
		t.Errorf("figures %v", m[1:])
	}
	if r, _ := strconv.ParseFloat(m[4], 64); r != 0.125 {
		t.Errorf("ratio %s, want 5000/40000", m[4])
	}
	if !strings.Contains(out.String(), "committed: 10000 transfers in 2s: 5000/s") {
		t.Errorf("human-readable lines missing:\n%s", out.String())
	}
}

func TestVerifyCeilingCounts(t *testing.T) {
	if v := verifyCeiling(2, 20*time.Millisecond); v <= 0 {
		t.Fatalf("ceiling %v", v)
	}
}

func TestProcessCPU(t *testing.T) {
	before, ok := processCPU()
	if !ok {
		t.Skip("no /proc/self/stat")
	}
	x := 0
	for i := range 50_000_000 {
		x += i
	}
	after, _ := processCPU()
	if after < before || x == 0 {
		t.Fatalf("CPU time %s then %s", before, after)
	}
}
