package enclave

import (
	"crypto/sha256"
	"fmt"
	"runtime/debug"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
)

// onboardBlocks is how many existing blocks BenchmarkOnboardTenThousandBlocks
// on-boards: the target is 10,000 in under 30 s.
const onboardBlocks = 10_000

// onboardFetchBlocks is how many blocks one fetch from a peer returns at
// most: service.MaxFetchBlocks (the enclave cannot import the host).
const onboardFetchBlocks = 500

// BenchmarkOnboardTenThousandBlocks measures on-boarding a validateer onto
// 10,000 existing blocks at the enclave's level; end to end that would need
// 10,000 sidechain slots (50 min at 300 ms).
//
// Outside the timer, as TestOnboardingTwoThousandBlocks does: A starts the
// shard on an in-process parentchain (package chaintest), b.N fresh
// validateers register, join it over MU-RA (keys, state, head) and become
// authorities; then A authors 10,000 blocks, each with one trusted call (a
// set-balance of an account of its own, so that the state grows to 10,000
// accounts), which the joined validateers never see. Both use the service's
// snapshot settings (a sealed snapshot every 100 blocks, 3 kept).
//
// Timed, per joined validateer: what service.catchUp does, fetching the
// blocks from A's block store in order, at most 500 a fetch (what the
// untrusted port's sidechain_fetchBlocksFromPeer serves), and importing
// each with ImportBlock, the ECALL service.importFetched makes; afterwards
// its head and state hash must be A's. Not timed, because not in-process:
// the peer's websocket and hex encoding, the host's block store on disk,
// and verifying the parentchain blocks the shard's blocks point at (the
// validateer verified them before; they do not advance here, as in the test).
//
// Run it once: go test -run '^$' -bench BenchmarkOnboardTenThousandBlocks
// -benchtime 1x ./enclave/ (scripts/bench-onboarding.sh). It reports
// blocks/s and the seconds one on-boarding took (s/onboarding), and prints
// progress, how long building the blocks took, and the figures.
func BenchmarkOnboardTenThousandBlocks(b *testing.B) {
	// The helpers take a *testing.T, which a benchmark has not: they get a
	// bare one (as BenchmarkPlainTransfers does), whose temporary
	// directories go under the benchmark's own so that they are removed.
	tmp := b.TempDir()
	b.Setenv("GOTMPDIR", tmp)
	if b.N > 1 {
		fmt.Println() // after the benchmark's name, which runs of b.N > 1 print first
	}
	fmt.Printf("onboarding benchmark: %d blocks, %d joined validateer(s) to on-board (b.N)\n", onboardBlocks, b.N)

	var a *chainEnv
	var joiners []*chainEnv
	var start uint64 // the joiners' head: the blocks to on-board are start+1 ... start+onboardBlocks
	setup := time.Now()
	onBareT(b, "starting the shard and joining the validateers", func(t *testing.T) {
		// The service's snapshot settings; the slots run far ahead of the
		// test chain's clock: lift the bound.
		a = newChainEnv(t, func(c *Config) {
			c.SnapshotInterval, c.KeepSnapshots = 100, 3
			c.MaxBlockAhead = 24 * time.Hour
		})
		a.register()
		mustBlock(t, a.e, 1)
		want := []account.ID{a.e.Signer()}
		for range b.N {
			j := a.peer("v1")
			a.registerPeer(j)
			if err := a.join(j); err != nil {
				t.Fatalf("join: %v", err)
			}
			joiners = append(joiners, j)
			want = append(want, j.e.Signer())
		}
		envs := append([]*chainEnv{a}, joiners...)
		for i := 0; ; i++ {
			round(t, envs)
			all := true
			for _, x := range envs {
				all = all && slices.Equal(viewOf(x.e).Authorities, want)
			}
			if all {
				break
			}
			if i == 5 {
				t.Fatalf("authorities %v, want %v", viewOf(a.e).Authorities, want)
			}
		}
		start = header(t, a.e).Header.Number
		for _, j := range joiners {
			if h := header(t, j.e); h != header(t, a.e) {
				t.Fatalf("a joined validateer's head %d, A's %d", h.Header.Number, start)
			}
		}
	})
	fmt.Printf("shard started and %d validateer(s) joined at head %d in %s\n", len(joiners), start, time.Since(setup).Round(time.Millisecond))

	built := time.Now()
	onBareT(b, "authoring the blocks", func(t *testing.T) {
		alice := dev(t, "Alice")
		mine := slices.Index(viewOf(a.e).Authorities, a.e.Signer())
		n := len(viewOf(a.e).Authorities)
		last := time.Now()
		k := 100
		for i := range onboardBlocks {
			who := account.ID(sha256.Sum256([]byte("onboarding account " + strconv.Itoa(i))))
			submit(t, a.e, alice, setBalance(who, teer(uint64(i+1))), uint64(i))
			k = slotOf(a.e, k, mine, n)
			mustBlock(t, a.e, k)
			k++
			if time.Since(last) >= 2*time.Second {
				fmt.Printf("  authored %d/%d blocks (%s, %.0f blocks/s)\n", i+1, onboardBlocks, time.Since(built).Round(time.Millisecond), float64(i+1)/time.Since(built).Seconds())
				last = time.Now()
			}
		}
	})
	took := time.Since(built)
	fmt.Printf("built the shard's %d blocks (one trusted call each) in %s: %.0f blocks/s, outside the timer\n",
		onboardBlocks, took.Round(time.Millisecond), onboardBlocks/took.Seconds())
	head, err := a.e.RPC().LatestHeader(a.e.ShardID())
	if err != nil {
		b.Fatal(err)
	}
	if head.Header.Number != start+onboardBlocks {
		b.Fatalf("A's head is %d, want %d", head.Header.Number, start+onboardBlocks)
	}

	b.ResetTimer()
	for i, j := range joiners {
		onboard(b, a, j, start+1, start+onboardBlocks)
		b.StopTimer()
		got, err := j.e.RPC().LatestHeader(j.e.ShardID())
		if err != nil {
			b.Fatal(err)
		}
		if got != head {
			b.Fatalf("joined validateer %d: head %d %s after on-boarding, A's %d %s", i, got.Header.Number, got.Hash, head.Header.Number, head.Hash)
		}
		if s, want := stateHashOf(j.e), stateHashOf(a.e); s != want {
			b.Fatalf("joined validateer %d: state hash %x after on-boarding, A's %x", i, s[:8], want[:8])
		}
		b.StartTimer()
	}
	b.StopTimer()
	per := b.Elapsed().Seconds() / float64(b.N)
	rate := float64(onboardBlocks) / per
	fmt.Printf("on-boarded %d blocks in %.3f s: %.0f blocks/s (each joined validateer ended on A's head %d and state)\n", onboardBlocks, per, rate, head.Header.Number)
	b.ReportMetric(rate, "blocks/s")
	b.ReportMetric(per, "s/onboarding")
}

// onboard has the joined validateer j fetch A's blocks from..to and import
// them, as service.catchUp does: in order, at most onboardFetchBlocks a
// fetch, each block imported with ImportBlock. It prints progress every
// second.
func onboard(b *testing.B, a, j *chainEnv, from, to uint64) {
	b.Helper()
	shard := a.e.ShardID()
	began, last := time.Now(), time.Now()
	for next := from; next <= to; {
		end := min(next+onboardFetchBlocks-1, to)
		raws := make([][]byte, 0, end-next+1)
		for n := next; n <= end; n++ {
			raw, err := a.h.BlockByNumber(shard, n)
			if err != nil {
				b.Fatalf("fetch block %d: %v", n, err)
			}
			raws = append(raws, raw)
		}
		for _, raw := range raws {
			if err := j.e.ImportBlock(raw); err != nil {
				b.Fatalf("import block %d: %v", next, err)
			}
			next++
		}
		if time.Since(last) >= time.Second {
			fmt.Printf("  imported %d/%d blocks (%s)\n", next-from, to-from+1, time.Since(began).Round(time.Millisecond))
			last = time.Now()
		}
	}
}

// onBareT runs f, which uses the package's test helpers, with a bare
// *testing.T. Such a T prints nothing: a helper's t.Fatal just ends the
// goroutine. So f runs on a goroutine of its own, and a failure fails the
// benchmark with what f was doing and the stack of the helper that failed.
func onBareT(b *testing.B, what string, f func(t *testing.T)) {
	b.Helper()
	t := &testing.T{}
	done := make(chan struct{})
	var stack string
	go func() {
		defer close(done)
		finished := false
		defer func() {
			// Runs on t.FailNow's runtime.Goexit (or a panic) with the
			// failing helper's frames still on the stack.
			switch r := recover(); {
			case r != nil:
				stack = fmt.Sprintf("panic: %v\n%s", r, debug.Stack())
			case !finished:
				stack = string(debug.Stack())
			}
		}()
		f(t)
		finished = true
	}()
	<-done
	if stack != "" || t.Failed() {
		b.Fatalf("%s failed; a bare testing.T keeps the helper's message to itself, this is where it failed:\n%s", what, stack)
	}
}
