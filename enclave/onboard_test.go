package enclave

import (
	"slices"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
)

// TestOnboardingTwoThousandBlocks: B was stopped while A authored 2,000
// blocks; B imports them as its host hands them over after fetching them
// from A's untrusted port (in order, as sidechain_fetchBlocksFromPeer
// serves them), verifying each, and ends on A's head and state. The test
// logs the import rate (no timing assertion; `go test -run Onboarding -v`).
func TestOnboardingTwoThousandBlocks(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped with -short: authors and imports 2,000 blocks")
	}
	const blocks = 2000
	// The slots run far ahead of the test chain's clock: lift the bound.
	a := newChainEnv(t, func(c *Config) { c.MaxBlockAhead = 24 * time.Hour })
	a.register()
	mustBlock(t, a.e, 1)
	b := a.peer("v1")
	a.registerPeer(b)
	if err := a.join(b); err != nil {
		t.Fatalf("join: %v", err)
	}
	envs := []*chainEnv{a, b}
	want := []account.ID{a.e.Signer(), b.e.Signer()}
	for i := 0; !slices.Equal(viewOf(a.e).Authorities, want) || !slices.Equal(viewOf(b.e).Authorities, want); i++ {
		if i == 5 {
			t.Fatalf("authorities %v", viewOf(a.e).Authorities)
		}
		round(t, envs)
	}
	alice := dev(t, "Alice")
	start := header(t, b.e).Header.Number
	mine := slices.Index(want, a.e.Signer())
	k := 100
	var raws [][]byte
	for i := 0; i < blocks; i++ {
		submit(t, a.e, alice, setBalance(dev(t, "Dave").ID(), teer(uint64(i+1))), uint64(i))
		k = slotOf(a.e, k, mine, 2)
		mustBlock(t, a.e, k)
		raws = append(raws, lastBroadcast(t, a.h))
		k++
	}
	began := time.Now()
	for i, raw := range raws {
		if err := b.e.ImportBlock(raw); err != nil {
			t.Fatalf("block %d: %v", start+uint64(i)+1, err)
		}
	}
	took := time.Since(began)
	sameShardState(t, "after on-boarding", a, b)
	if got := header(t, b.e).Header.Number; got != start+blocks {
		t.Fatalf("B's head %d, want %d", got, start+blocks)
	}
	t.Logf("imported %d blocks in %s (%.0f blocks/s)", blocks, took.Round(time.Millisecond), blocks/took.Seconds())
}
