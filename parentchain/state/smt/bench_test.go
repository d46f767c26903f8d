package smt_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/integritee-go/integritee/parentchain/state/smt"
)

// accountKey is a key shaped like a balances account key.
func accountKey(i int) []byte { return fmt.Appendf(nil, "balances/acct/%032d", i) }

// benchTree builds a tree of n account-like keys and returns it with its
// heap size per key, the keys included (the heap after a GC, before and
// after).
func benchTree(b *testing.B, n int) (smt.Tree, float64) {
	b.Helper()
	var m0, m1 runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&m0)
	ws := make([]smt.Write, n)
	for i := range ws {
		ws[i] = smt.NewSet(accountKey(i), fmt.Appendf(nil, "value %d of an account record", i))
	}
	t := smt.Build(ws)
	ws = nil // the tree keeps the keys, not the writes
	runtime.GC()
	runtime.ReadMemStats(&m1)
	return t, float64(m1.HeapAlloc-m0.HeapAlloc) / float64(n)
}

// BenchmarkUpdate measures a block's tree update: keys spread over a tree
// of the given size, leaf hashes computed beforehand (writesOf does that on
// all cores before Update). keys/s counts written keys.
func BenchmarkUpdate(b *testing.B) {
	for _, c := range []struct{ size, keys int }{{100_000, 4000}, {1_000_000, 4000}} {
		b.Run(fmt.Sprintf("tree=%d/block=%d", c.size, c.keys), func(b *testing.B) {
			t, perKey := benchTree(b, c.size)
			blocks := make([][]smt.Write, 8)
			for k := range blocks {
				blocks[k] = make([]smt.Write, c.keys)
				for i := range blocks[k] {
					j := (k*7919 + i*104729) % c.size
					blocks[k][i] = smt.NewSet(accountKey(j), fmt.Appendf(nil, "new value %d %d", k, i))
				}
			}
			b.ResetTimer()
			for n := 0; n < b.N; n++ {
				t = t.Update(blocks[n%len(blocks)])
			}
			b.ReportMetric(float64(c.keys*b.N)/b.Elapsed().Seconds(), "keys/s")
			// After the loop: ResetTimer drops the metrics reported before it.
			b.ReportMetric(perKey, "tree-bytes/key")
		})
	}
}
