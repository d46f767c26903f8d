package enclave

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/types"
)

// A submission reads its signers' state nonces without the enclave's lock.
// A client that pipelines (sends nonce k+1 while nonce k waits for a block)
// races the block that executes nonce k: if that block is applied and its
// operations leave the pool between the read and the pooling, the stale
// read must not park nonce k+1 as Future for good. The benchmark's clients
// saw thousands of transfers stuck that way. Here clients submit rounds of
// transfers, each its round k+1 as soon as its round k is pooled, while the
// test's goroutine produces blocks; every transfer must reach a block.
func TestPipelinedSubmissionsNeverStickInFuture(t *testing.T) {
	const clients, perClient, rounds = 8, 64, 40
	const accounts = clients * perClient
	e := newEnclave(t, newMachine(t, "v1"), newFakeHost())
	alice := dev(t, "Alice")
	pairs := make([]*account.Pair, accounts)
	fund := make([][]byte, accounts)
	for i := range pairs {
		seed := sha256.Sum256(fmt.Appendf(nil, "pipeline %d", i))
		p, err := account.PairFromSeed(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		pairs[i] = p
		fund[i] = encoded(t, signedCall(e, alice, setBalance(p.ID(), teer(1000)), uint64(i)))
	}
	k := 1
	mustBlock(t, e, k)
	if res, err := e.RPC().SubmitOperations(context.Background(), e.ShardID(), fund, nil); err != nil || res[0].Err != nil {
		t.Fatalf("funding: %v %v", err, res[0].Err)
	}
	for e.pool.Len() > 0 {
		k++
		mustBlock(t, e, k)
	}
	// batches[c][r]: client c's round r, one transfer of each of its accounts.
	batches := make([][][][]byte, clients)
	for c := range batches {
		batches[c] = make([][][]byte, rounds)
		for r := range rounds {
			for i := c * perClient; i < (c+1)*perClient; i++ {
				p := pairs[i]
				batches[c][r] = append(batches[c][r], encoded(t, signedCall(e, p, transfer(p.ID(), pairs[(i+1)%accounts].ID(), types.NewBalance(1)), uint64(r))))
			}
		}
	}
	submitted := make(chan error, clients)
	for c := range clients {
		go func() {
			for r, b := range batches[c] {
				res, err := e.RPC().SubmitOperations(context.Background(), e.ShardID(), b, nil)
				if err != nil {
					submitted <- err
					return
				}
				for i, s := range res {
					if s.Err != nil {
						submitted <- fmt.Errorf("client %d, round %d, account %d: %w", c, r, i, s.Err)
						return
					}
				}
			}
			submitted <- nil
		}()
	}
	done := 0
	for deadline := time.Now().Add(30 * time.Second); ; {
	collect:
		for done < clients {
			select {
			case err := <-submitted:
				if err != nil {
					t.Fatal(err)
				}
				done++
			default:
				break collect
			}
		}
		if done == clients && e.pool.Len() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s, %d operations are still pooled, %d of them Future (%d of %d clients done)", e.pool.Len(), e.pool.FutureLen(), done, clients)
		}
		k++
		onSlot(t, e, k)
		// An empty pool produces no block; give the submitter time to
		// pool the next round then.
		if e.pool.Len() == 0 {
			time.Sleep(time.Millisecond)
		}
	}
	for i, p := range pairs {
		if got := e.state.Account(p.ID()).Nonce; got != rounds {
			t.Fatalf("account %d: nonce %d, want %d", i, got, rounds)
		}
	}
}
