package enclave

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/types"
)

// BenchmarkPlainTransfers measures the enclave's side of direct transfers:
// batches of 64 plain signed transfers among 10,000 accounts submitted
// (decode, batch signature check, pool) and executed in blocks of up to
// MaxOperationsPerBlock, each imported as a peer's block would be. RPC,
// TLS and JSON are not included. ns/op is per transfer.
func BenchmarkPlainTransfers(b *testing.B) {
	const accounts, batch = 10_000, 64
	t := &testing.T{}
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice := dev(t, "Alice")
	pairs := make([]*account.Pair, accounts)
	for i := range pairs {
		seed := sha256.Sum256([]byte(fmt.Sprintf("bench %d", i)))
		p, err := account.PairFromSeed(seed[:])
		if err != nil {
			b.Fatal(err)
		}
		pairs[i] = p
	}
	k := 1
	mustBlock(t, e, k)
	submitAll := func(raws [][]byte) {
		for i := 0; i < len(raws); i += batch {
			res, err := e.RPC().SubmitOperations(context.Background(), e.ShardID(), raws[i:min(i+batch, len(raws))], nil)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					b.Fatal(r.Err)
				}
			}
		}
	}
	drain := func() {
		for e.pool.Len() > 0 {
			k++
			if _, err := e.OnSlot(context.Background(), slotTime(k)); err != nil {
				b.Fatal(err)
			}
		}
	}
	fund := make([][]byte, accounts)
	for i, p := range pairs {
		fund[i] = encoded(t, signedCall(e, alice, setBalance(p.ID(), teer(1000)), uint64(i)))
	}
	submitAll(fund)
	drain()
	ops := make([][]byte, b.N)
	for i := range ops {
		from := i % accounts
		ops[i] = encoded(t, signedCall(e, pairs[from], transfer(pairs[from].ID(), pairs[(from+1)%accounts].ID(), types.NewBalance(1)), uint64(i/accounts)))
	}
	b.ResetTimer()
	for i := 0; i < len(ops); i += MaxOperationsPerBlock {
		submitAll(ops[i:min(i+MaxOperationsPerBlock, len(ops))])
		drain()
	}
	b.StopTimer()
	if st := e.Stats(); st.CallsFailed != 0 {
		b.Fatalf("%d calls failed", st.CallsFailed)
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "transfers/s")
	_ = stf.ErrBadSignature
}
