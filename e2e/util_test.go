package e2e

import (
	"fmt"
	"github.com/integritee-go/integritee/parentchain/types"
	"net"
	"os"
	"strings"
	"testing"
)

func mustOpen(t *testing.T, path string) *os.File {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// freePortRuns finds k runs of n consecutive free loopback ports, for
// programs (like `integritee-node init`) that number ports base+i, and
// returns each run's first port.
func freePortRuns(t *testing.T, k, n int) []int {
	t.Helper()
	var held []net.Listener
	defer func() {
		for _, l := range held {
			l.Close()
		}
	}()
	var bases []int
	for tries := 0; len(bases) < k && tries < 100; tries++ {
		first, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		base := first.Addr().(*net.TCPAddr).Port
		run := []net.Listener{first}
		for i := 1; i < n; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", base+i))
			if err != nil {
				break
			}
			run = append(run, l)
		}
		held = append(held, run...)
		if len(run) == n {
			bases = append(bases, base)
		}
	}
	if len(bases) < k {
		t.Fatalf("found no %d runs of %d free ports", k, n)
	}
	return bases
}

func trimOut(s string) string { return strings.TrimSpace(s) }

func canonicalCBOR(v any) []byte { return types.NewCodec().MustMarshal(v) }
