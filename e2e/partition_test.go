package e2e

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/rpc"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/rpcclient"
	"github.com/integritee-go/integritee/sidechain"
)

// A partition of the shard's validateers, made with SIGSTOP, and its
// healing: forks, rollbacks, and every operation a client saw in a block
// executed exactly once in the one chain that remains.

const mRollbacks = "integritee_worker_enclave_sidechain_rollbacks_total"

// watchedOp is one trusted operation submitted with
// author_submitAndWatchExtrinsic, and every status its watcher received.
type watchedOp struct {
	what  string
	nonce uint64

	inBlock chan struct{} // closed at the first InSidechainBlock or final status
	done    chan struct{} // closed when the watch ends

	mu        sync.Mutex
	statuses  []string
	sawBlock  bool
	retracted int
	final     rpc.Status
}

func (o *watchedOp) follow(ch <-chan rpc.Status) {
	var once sync.Once
	markInBlock := func() { once.Do(func() { close(o.inBlock) }) }
	defer close(o.done)
	defer markInBlock()
	for st := range ch {
		o.mu.Lock()
		s := st.Kind
		switch st.Kind {
		case rpc.InSidechainBlock, rpc.Finalized:
			o.sawBlock = true
			s += " " + st.BlockHash.String()[:10]
		case rpc.Retracted:
			o.retracted++
		case rpc.Invalid:
			s += " (" + st.Reason + ")"
		}
		o.statuses = append(o.statuses, s)
		if st.Final() {
			o.final = st
		}
		o.mu.Unlock()
		if st.Kind == rpc.InSidechainBlock || st.Final() {
			markInBlock()
		}
	}
}

// outcome returns whether the op saw a block, its final status kind ("" if
// its watch has not ended with one), and its statuses.
func (o *watchedOp) outcome() (bool, string, string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.sawBlock, o.final.Kind, strings.Join(o.statuses, " → ")
}

func (o *watchedOp) retractions() int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.retracted
}

// trustedSender signs a trusted account's operations with nonces it counts
// itself (one after the other, whichever validateer gets them), so that no
// two of its operations share a nonce, whatever a stale validateer says.
type trustedSender struct {
	name  string
	pair  *account.Pair
	mr    attestation.MrEnclave
	shard sidechain.ShardID
	key   []byte

	mu        sync.Mutex
	next      uint64
	spent     uint64 // planck the submitted operations move away
	transfers uint64 // planck the submitted transfers move to the sink
	ops       []*watchedOp
}

// submit signs call with the next nonce and submits it to c (validateer
// via) with a watch.
func (s *trustedSender) submit(c *rpcclient.Client, via string, call stf.Call) (*watchedOp, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sc := stf.SignCall(s.pair, call, s.next, s.mr, s.shard)
	plain, err := (&stf.Operation{Call: sc}).Encode()
	if err != nil {
		return nil, err
	}
	ct, err := keys.ShieldingEncrypt(s.key, plain)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, ch, err := c.SubmitAndWatch(ctx, s.shard, ct)
	what := fmt.Sprintf("%s of %s nonce %d via %s", call.Name(), s.name, s.next, via)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	op := &watchedOp{what: what, nonce: s.next, inBlock: make(chan struct{}), done: make(chan struct{})}
	s.next++
	switch {
	case call.Transfer != nil:
		s.spent += call.Transfer.Amount.Big().Uint64()
		s.transfers += call.Transfer.Amount.Big().Uint64()
	case call.Unshield != nil:
		s.spent += call.Unshield.Amount.Big().Uint64()
	}
	s.ops = append(s.ops, op)
	go op.follow(ch)
	return op, nil
}

func (s *trustedSender) allOps() []*watchedOp {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*watchedOp(nil), s.ops...)
}

// nextSlotStart returns the start of the first slot after t (slots of d)
// whose number is r modulo n.
func nextSlotStart(t time.Time, d time.Duration, n, r uint64) time.Time {
	s := uint64(t.UnixMilli()/d.Milliseconds()) + 1
	for s%n != r {
		s++
	}
	return time.UnixMilli(int64(s) * d.Milliseconds())
}

// signerOf reads the validateer's enclave account from its log.
func signerOf(t *testing.T, w *workerProc) account.ID {
	t.Helper()
	m := regexp.MustCompile(`msg="validateer serving".* signer=(\w+)`).FindStringSubmatch(procLog(w.proc))
	if m == nil {
		t.Fatalf("%s's log names no signer", w.name)
	}
	id, err := account.ResolveID(m[1])
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// TestPartitionHealsIntoOneChain: one dev node, three validateers (300 ms
// slots). Two incognito accounts, shielded, each send a stream of direct
// transfers (their own clients count their nonces and follow every watch
// to its end).
//
// Phase 1, a partition: validateer2 is stopped (SIGSTOP) for 4 s while the
// streams go to validateer0 and validateer1 and an unshielding to //Ferdie
// is submitted to validateer0; then it resumes (SIGCONT), and the streams
// go to all three, each first to validateer2 at once. A fork may or may not
// happen (timing).
//
// Phase 2, a forced fork: a transfer is pooled on validateer2 just after
// its slot and validateer2 is stopped at once; the others execute it (it
// was forwarded) and more transfers in several blocks; validateer2 resumes
// at the very start of one of its own slots, with the transfer still ready
// in its pool and its head stale, and authors a block that competes with
// the others' (whose pending sends to it are forwarded operations, not
// blocks). It must lose the fork (the others' first block has the lower
// slot): rollbacks_total rises on validateer2.
//
// After each phase: one head (number and hash) everywhere; every operation
// a client submitted saw InSidechainBlock and ended Finalized (anchored),
// the signers' trusted nonces show each executed exactly once, the
// balances on all three are what the clients' operations make them, the
// bonding account equals the sidechain's total issuance, and //Ferdie got
// the unshielded amount exactly once (still so 15 parentchain blocks after
// the payout).
func TestPartitionHealsIntoOneChain(t *testing.T) {
	began := time.Now()
	const (
		slot     = 300 * time.Millisecond // run --dev's slot duration
		fund     = 20000000000
		amount   = 1000000
		unshield = 2000000000
		stopFor  = 4 * time.Second
		sinkSeed = "//PartitionSink"
	)
	n := startDevNode(t, "")
	vals := make([]*workerProc, 3)
	for i := range vals {
		vals[i] = startValidateer(t, fmt.Sprintf("validateer%d", i), n, "", "", nil)
		waitInitialized(t, vals[i], 90*time.Second)
	}
	// However the test ends, validateer2 must not stay stopped (its
	// SIGKILL at cleanup works anyway, but a stopped process holds its
	// peers' connections).
	var stopped atomic.Bool
	pid := vals[2].proc.cmd.Process.Pid
	sigstop := func() { stopped.Store(true); syscall.Kill(pid, syscall.SIGSTOP) }
	sigcont := func() { syscall.Kill(pid, syscall.SIGCONT); stopped.Store(false) }
	t.Cleanup(func() {
		if stopped.Load() {
			sigcont()
		}
	})
	t.Logf("node and three validateers up after %s", time.Since(began).Round(time.Millisecond))

	dir := t.TempDir()
	shard := vals[0].mustT(t, dir, "trusted", "get-fingerprint")
	mr, sid := shardOf(t, shard)
	vals[0].mustT(t, dir, "shield-funds", "//Alice", "//AliceIncognito", strconv.Itoa(fund), shard)
	vals[1].mustT(t, dir, "shield-funds", "//Alice", "//BobIncognito", strconv.Itoa(fund), shard)
	eventually(t, "every validateer to show both shieldings", 30*time.Second, func() (bool, string) {
		var got []string
		for _, w := range vals {
			for _, a := range []string{"//AliceIncognito", "//BobIncognito"} {
				b := w.mustT(t, dir, "trusted", "--mrenclave", shard, "balance", a)
				got = append(got, w.name+" "+a+"="+b)
				if b != strconv.Itoa(fund) {
					return false, strings.Join(got, " ")
				}
			}
		}
		return true, ""
	})
	ferdie0 := types.MustParseBalance(n.balance(t, "//Ferdie"))

	clients := make([]*rpcclient.Client, len(vals))
	for i, w := range vals {
		c, err := trustedClient(w)
		if err != nil {
			t.Fatalf("%s: %v", w.name, err)
		}
		clients[i] = c
		t.Cleanup(func() { c.Close() })
	}
	key, err := shieldingKeyOf(vals[0])
	if err != nil {
		t.Fatal(err)
	}
	sink, _ := account.DevPair(sinkSeed)
	ferdie, _ := account.DevPair("//Ferdie")
	newSender := func(seed string) *trustedSender {
		p, err := account.DevPair(seed)
		if err != nil {
			t.Fatal(err)
		}
		nonce, err := strconv.ParseUint(vals[0].mustT(t, dir, "trusted", "--mrenclave", shard, "nonce", seed), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		return &trustedSender{name: seed, pair: p, mr: mr, shard: sid, key: key, next: nonce}
	}
	alice, bob := newSender("//AliceIncognito"), newSender("//BobIncognito")
	senders := []*trustedSender{alice, bob}
	transfer := func(s *trustedSender) stf.Call {
		return stf.Call{Transfer: &stf.Transfer{From: s.pair.ID(), To: sink.ID(), Amount: types.NewBalance(amount)}}
	}

	// checkConverged waits until every operation's watch ended and the
	// validateers agree on one settled head, then checks the head, the
	// nonces, the balances, the issuance and the bonding account.
	checkConverged := func(phase string) {
		t.Helper()
		var all []*watchedOp
		for _, s := range senders {
			all = append(all, s.allOps()...)
		}
		eventually(t, phase+": every operation's watch to end", 45*time.Second, func() (bool, string) {
			var open []string
			for _, o := range all {
				select {
				case <-o.done:
				default:
					_, _, st := o.outcome()
					open = append(open, o.what+": "+st)
				}
			}
			if len(open) > 5 {
				open = append(open[:5], fmt.Sprintf("… %d more", len(open)-5))
			}
			return len(open) == 0, strings.Join(open, "; ")
		})
		retracted, finalized := 0, 0
		for _, o := range all {
			saw, final, st := o.outcome()
			if o.retractions() > 0 {
				retracted++
				t.Logf("%s: retracted: %s", o.what, st)
			}
			if final == rpc.Finalized {
				finalized++
			}
			switch {
			case saw && final == rpc.Invalid && o.retractions() > 0:
				// Whether it executed shows in the signer's nonce,
				// checked below.
				t.Errorf("%s: its block lost a fork, and its watcher was told it is Invalid instead of being pooled again at its nonce (want InSidechainBlock again and Finalized): %s", o.what, st)
			case !saw || final != rpc.Finalized:
				t.Errorf("%s: the client saw %s, want InSidechainBlock and in the end Finalized", o.what, st)
			}
		}
		head := waitQuiet(t, vals, sid, 30*time.Second)
		num, hash := sameHeaders(t, vals, dir, shard)
		t.Logf("%s: %d operations, %d of them retracted once or more, %d Finalized; head everywhere #%d %s (%s)", phase, len(all), retracted, finalized, num, hash, headerString(head))
		var sunk, issuance uint64 = 0, 2 * fund
		for _, s := range senders {
			s.mu.Lock()
			next, spent, transfers := s.next, s.spent, s.transfers
			s.mu.Unlock()
			for _, w := range vals {
				if got := w.mustT(t, dir, "trusted", "--mrenclave", shard, "nonce", s.name); got != strconv.FormatUint(next, 10) {
					t.Errorf("%s: %s's trusted nonce is %s, but its client signed nonces up to %d (each must execute exactly once)", w.name, s.name, got, next-1)
				}
			}
			wantBalances(t, vals, dir, shard, map[string]string{s.name: strconv.FormatUint(fund-spent, 10)})
			sunk += transfers
			issuance -= spent - transfers
		}
		wantBalances(t, vals, dir, shard, map[string]string{sinkSeed: strconv.FormatUint(sunk, 10)})
		var bond enclavebridge.BondingAccountInfo
		n.query(t, "/enclavebridge/bonding_account/"+shard, &bond)
		for _, w := range vals {
			if iss := w.mustT(t, dir, "trusted", "--mrenclave", shard, "get-total-issuance"); iss != strconv.FormatUint(issuance, 10) || bond.Free.String() != iss {
				t.Errorf("%s: total issuance %s, bonding account %s, want both %d", w.name, iss, bond.Free, issuance)
			}
		}
		for _, w := range vals {
			t.Logf("%s: %s rollbacks=%g", phase, metricsLine(w), mustMetric(t, w, mRollbacks))
		}
	}

	// ---- Phase 1: a partition under a stream of transfers ----

	// Stream i (sender i) sends one transfer at a time and waits until it
	// is in a block. Targets by phase: 0 all three in turn; 1 (validateer2
	// stopped) validateer0 and validateer1; 2 (resumed) validateer2 first,
	// then all three in turn.
	var phase atomic.Int32
	var stop atomic.Bool
	stopCh := make(chan struct{})
	var wg sync.WaitGroup
	var failMu sync.Mutex
	var failures []string
	fail := func(msg string) {
		failMu.Lock()
		defer failMu.Unlock()
		failures = append(failures, msg)
	}
	unshieldReq := make(chan chan *watchedOp, 1)
	completed := make([]atomic.Int64, 2)
	healedOK := make([]atomic.Int64, 2)
	viaV2OK := make([]atomic.Bool, 2)
	for i, s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sentToV2 := false
			for k := i; !stop.Load(); k++ {
				ph := phase.Load()
				var v int
				switch {
				case ph == 1:
					v = k % 2
				case ph == 2 && !sentToV2:
					v, sentToV2 = 2, true
				default:
					v = k % 3
				}
				call := transfer(s)
				var reply chan *watchedOp
				if i == 0 {
					select {
					case reply = <-unshieldReq:
						v = 0
						call = stf.Call{Unshield: &stf.Unshield{From: s.pair.ID(), To: ferdie.ID(), Amount: types.NewBalance(unshield), Shard: sid}}
					default:
					}
				}
				op, err := s.submit(clients[v], vals[v].name, call)
				if reply != nil {
					reply <- op
				}
				if err != nil {
					fail(fmt.Sprintf("phase %d: %v", ph, err))
					return
				}
				select {
				case <-op.inBlock:
				case <-stopCh:
					return
				case <-time.After(30 * time.Second):
					_, _, st := op.outcome()
					fail(fmt.Sprintf("phase %d: %s: not in a block within 30 s: %s", ph, op.what, st))
					return
				}
				if saw, final, st := op.outcome(); !saw {
					fail(fmt.Sprintf("phase %d: %s ended %s: %s", ph, op.what, final, st))
					return
				}
				completed[i].Add(1)
				if ph == 2 {
					healedOK[i].Add(1)
					if v == 2 {
						viaV2OK[i].Store(true)
					}
				}
			}
		}()
	}
	stopStreams := sync.OnceFunc(func() { stop.Store(true); close(stopCh); wg.Wait() })
	t.Cleanup(stopStreams)
	counts := func() string {
		failMu.Lock()
		defer failMu.Unlock()
		return fmt.Sprintf("streams completed %d and %d (after the heal %d and %d), failures %d %q",
			completed[0].Load(), completed[1].Load(), healedOK[0].Load(), healedOK[1].Load(), len(failures), failures)
	}
	streamsFailed := func() bool {
		failMu.Lock()
		defer failMu.Unlock()
		return len(failures) > 0
	}
	eventually(t, "three transfers of each stream through all three validateers", 30*time.Second, func() (bool, string) {
		if streamsFailed() {
			t.Fatalf("a stream failed: %s", counts())
		}
		return completed[0].Load() >= 3 && completed[1].Load() >= 3, counts()
	})
	// Only validateer0 and validateer1 from now; stop validateer2 once
	// neither stream waits on it.
	phase.Store(1)
	c0, c1 := completed[0].Load(), completed[1].Load()
	eventually(t, "both streams to move to validateer0 and validateer1", 30*time.Second, func() (bool, string) {
		return completed[0].Load() >= c0+2 && completed[1].Load() >= c1+2, counts()
	})
	headAtStop, _ := headerOf(vals[0], sid)
	sigstop()
	stopAt := time.Now()
	t.Logf("phase 1: validateer2 stopped (SIGSTOP) at head %s; %s", headerString(headAtStop), counts())

	// An unshielding to //Ferdie through validateer0, in Alice's stream.
	reply := make(chan *watchedOp, 1)
	unshieldReq <- reply
	var unshieldOp *watchedOp
	select {
	case unshieldOp = <-reply:
	case <-time.After(30 * time.Second):
		t.Fatalf("the unshielding was not submitted: %s", counts())
	}
	if unshieldOp == nil {
		t.Fatalf("the unshielding was not submitted: %s", counts())
	}
	time.Sleep(time.Until(stopAt.Add(stopFor))) // the partition: deliberate
	during := counts()
	headBefore, _ := headerOf(vals[0], sid)
	sigcont()
	phase.Store(2)
	// Right after it resumes, one more transfer of each sender straight to
	// validateer2, on top of the streams (which go there first too).
	for _, s := range senders {
		if _, err := s.submit(clients[2], vals[2].name, transfer(s)); err != nil {
			t.Errorf("phase 1: a transfer to validateer2 right after SIGCONT: %v", err)
		}
	}
	t.Logf("phase 1: validateer2 resumed (SIGCONT) after %s; the others went from %s to %s; %s", time.Since(stopAt).Round(time.Millisecond),
		headerString(headAtStop), headerString(headBefore), during)
	if headBefore.Number <= headAtStop.Number {
		t.Errorf("phase 1: validateer0 and validateer1 authored no block while validateer2 was stopped")
	}
	eventually(t, "four transfers of each stream after the heal, one through validateer2", 45*time.Second, func() (bool, string) {
		if streamsFailed() {
			t.Fatalf("a stream failed: %s", counts())
		}
		return healedOK[0].Load() >= 4 && healedOK[1].Load() >= 4 && viaV2OK[0].Load() && viaV2OK[1].Load(), counts()
	})
	stopStreams()
	t.Logf("phase 1: streams stopped: %s", counts())

	// The payout: exactly once.
	wantFerdie, _ := ferdie0.Add(planck(unshield))
	var paidAt int64
	eventually(t, "//Ferdie to be paid the unshielded amount", 30*time.Second, func() (bool, string) {
		got := types.MustParseBalance(n.balance(t, "//Ferdie"))
		paidAt = n.height()
		return got == wantFerdie, fmt.Sprintf("//Ferdie has %s, want %s; the unshielding's statuses: %s", got, wantFerdie, func() string { _, _, s := unshieldOp.outcome(); return s }())
	})
	t.Logf("phase 1: //Ferdie paid by parentchain block %d", paidAt)
	checkConverged("phase 1")
	p1 := make([]float64, len(vals))
	for i, w := range vals {
		p1[i] = mustMetric(t, w, mRollbacks)
	}
	t.Logf("phase 1 done after %s", time.Since(began).Round(time.Millisecond))

	// ---- Phase 2: a forced fork ----

	// The slot author is authorities[slot mod n]; the authorities are the
	// shard status in order.
	var status []enclavebridge.ShardSignerStatus
	n.query(t, "/enclavebridge/shard_status/"+shard, &status)
	self2 := signerOf(t, vals[2])
	r2 := -1
	for i, s := range status {
		if s.Signer == self2 {
			r2 = i
		}
	}
	if len(status) != 3 || r2 < 0 {
		t.Fatalf("shard status %+v: want three authorities, validateer2 (%s) among them", status, self2)
	}
	auth := uint64(len(status))
	base2 := mustMetric(t, vals[2], mRollbacks)
	var forks0 []float64
	for _, w := range vals {
		forks0 = append(forks0, mustMetric(t, w, mForks))
	}
	var forced *watchedOp
	for attempt := 1; attempt <= 3 && forced == nil; attempt++ {
		waitQuiet(t, vals, sid, 30*time.Second)
		at, _ := headerOf(vals[0], sid)
		logFrom := len(procLog(vals[2].proc))
		// Just after validateer2's slot: its next one is two slots away.
		start := nextSlotStart(time.Now(), slot, auth, (uint64(r2)+1)%auth).Add(15 * time.Millisecond)
		time.Sleep(time.Until(start))
		op, err := bob.submit(clients[2], vals[2].name, transfer(bob))
		if err != nil {
			t.Fatalf("phase 2: %v", err)
		}
		sigstop()
		stopAt := time.Now()
		pooled := stopAt.Sub(start)
		// The others' first sends to validateer2 are these forwarded
		// operations, so the blocks they author queue behind them.
		var pending []*watchedOp
		for v := range 2 {
			o, err := alice.submit(clients[v], vals[v].name, transfer(alice))
			if err != nil {
				t.Fatalf("phase 2: %v", err)
			}
			pending = append(pending, o)
		}
		// Several blocks of the others while validateer2 is stopped, then
		// resume it at the very start of one of its slots.
		resume := nextSlotStart(stopAt.Add(2400*time.Millisecond), slot, auth, uint64(r2)).Add(10 * time.Millisecond)
		for v := 0; time.Until(resume) > 500*time.Millisecond; v++ {
			o, err := alice.submit(clients[v%2], vals[v%2].name, transfer(alice))
			if err != nil {
				t.Fatalf("phase 2: %v", err)
			}
			select {
			case <-o.inBlock:
			case <-time.After(time.Until(resume)):
			}
		}
		for _, o := range pending {
			select {
			case <-o.inBlock:
			case <-time.After(time.Until(resume)):
			}
		}
		mid, _ := headerOf(vals[0], sid)
		time.Sleep(time.Until(resume))
		sigcont()
		// And one more transfer straight to it.
		extra, err := bob.submit(clients[2], vals[2].name, transfer(bob))
		if err != nil {
			t.Fatalf("phase 2: a transfer to validateer2 right after SIGCONT: %v", err)
		}
		t.Logf("phase 2, attempt %d: a transfer pooled on validateer2 %s into slot %d, validateer2 stopped for %s; the others went from %s to %s; resumed at slot %d (validateer2's: %d mod %d)",
			attempt, pooled.Round(time.Millisecond), start.UnixMilli()/slot.Milliseconds(), time.Since(stopAt).Round(time.Millisecond),
			headerString(at), headerString(mid), resume.UnixMilli()/slot.Milliseconds(), r2, auth)
		if mid.Number <= at.Number {
			t.Errorf("phase 2: validateer0 and validateer1 authored no block while validateer2 was stopped")
		}
		lost := false
		eventually(t, "phase 2: the fork to resolve and the transfers to be in blocks", 20*time.Second, func() (bool, string) {
			v, _ := metric(vals[2], mRollbacks)
			lost = v > base2
			saw, _, st := op.outcome()
			saw2, _, st2 := extra.outcome()
			return saw && saw2 && (lost || time.Since(stopAt) > 8*time.Second),
				fmt.Sprintf("rollbacks %g (before %g); the pooled transfer: %s; the one after SIGCONT: %s", v, base2, st, st2)
		})
		var fresh []string
		for _, l := range strings.Split(procLog(vals[2].proc)[logFrom:], "\n") {
			if strings.Contains(l, `msg="sidechain block"`) || strings.Contains(l, "fork") || strings.Contains(l, "competing") {
				fresh = append(fresh, l)
			}
		}
		if lost {
			forced = op
			t.Logf("phase 2, attempt %d: validateer2 authored on its stale head and lost the fork; its log: %q", attempt, fresh)
		} else {
			t.Logf("phase 2, attempt %d: no fork lost by validateer2 (it did not author on its stale head first); its log: %q", attempt, fresh)
		}
	}
	if forced == nil {
		t.Errorf("phase 2: three attempts, and validateer2 never lost a fork (rollbacks_total stayed %g)", base2)
	} else {
		_, _, st := forced.outcome()
		t.Logf("phase 2: the transfer pooled on validateer2 before the stop (nonce %d of %s): %s", forced.nonce, bob.name, st)
		if forced.retractions() == 0 {
			t.Logf("phase 2: (its watcher saw no Retracted: validateer2's lost block did not hold it)")
		}
		if l := logLines(vals[2].proc, "fork lost: rolled back to the common ancestor"); len(l) == 0 {
			t.Errorf("phase 2: validateer2's rollbacks_total rose but it never logged the rollback")
		}
	}
	checkConverged("phase 2")
	if forced != nil {
		// With the signer's nonce equal to the nonces its client signed
		// (checked above), each of its operations executed exactly once.
		got := vals[2].mustT(t, dir, "trusted", "--mrenclave", shard, "nonce", bob.name)
		if nonce, _ := strconv.ParseUint(got, 10, 64); nonce > forced.nonce {
			t.Logf("phase 2: %s's trusted nonce is %s: the transfer of validateer2's lost block (nonce %d) is in the chain that remained", bob.name, got, forced.nonce)
		} else {
			t.Errorf("phase 2: %s's trusted nonce is %s: the transfer of validateer2's lost block (nonce %d) is not in the chain that remained", bob.name, got, forced.nonce)
		}
	}
	for i, w := range vals {
		t.Logf("forks_total %s: %g (phase 2: +%g); rollbacks_total: %g (phase 1: %g)", w.name, mustMetric(t, w, mForks),
			mustMetric(t, w, mForks)-forks0[i], mustMetric(t, w, mRollbacks), p1[i])
	}

	// Paid once: also 15 parentchain blocks after the payout.
	n.waitHeight(t, paidAt+15, 30*time.Second)
	if got := types.MustParseBalance(n.balance(t, "//Ferdie")); got != wantFerdie {
		t.Errorf("//Ferdie has %s at parentchain height %d, want %s (paid once)", got, n.height(), wantFerdie)
	}
	t.Logf("done after %s", time.Since(began).Round(time.Millisecond))
}
