package stf

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"sync"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/types"
)

// workload runs a fixed sequence of operations on a fresh fixture and
// returns the fixture and the diff of each step.
func workload(t testing.TB) (*fixture, []Diff) {
	x := newFixture(t)
	var diffs []Diff
	step := func(op *SignedCall) {
		diffs = append(diffs, x.exec(op).Diff)
	}
	step(x.sign(x.alice, transferCall(x.aliceID, x.bobID, teer(10))))
	step(x.sign(x.bob, transferCall(x.bobID, x.chID, teer(5))))
	step(x.sign(x.charlie, Call{Unshield: &Unshield{From: x.chID, To: x.chID, Amount: teer(2), Shard: testShard}}))
	step(x.sign(x.alice, Call{SetBalance: &SetBalance{Who: x.bobID, Free: teer(1)}}))
	d, err := x.f.ShieldFunds(x.st, x.chID, planck(7))
	if err != nil {
		t.Fatal(err)
	}
	diffs = append(diffs, d)
	return x, diffs
}

func TestDiffRoundTrip(t *testing.T) {
	_, diffs := workload(t)
	for i, d := range diffs {
		raw := d.Encode()
		got, err := DecodeDiff(raw)
		if err != nil {
			t.Fatalf("diff %d: %v", i, err)
		}
		if len(got) != len(d) {
			t.Fatalf("diff %d: %d changes, want %d", i, len(got), len(d))
		}
		for j := range d {
			if got[j].Key != d[j].Key || !bytes.Equal(got[j].Value, d[j].Value) || got[j].Deleted() != d[j].Deleted() {
				t.Errorf("diff %d change %d differs", i, j)
			}
		}
		if !bytes.Equal(got.Encode(), raw) {
			t.Errorf("diff %d re-encodes differently", i)
		}
	}
	// Deletions survive the round trip as deletions.
	del := Diff{{Key: keyIssuance}}
	got, err := DecodeDiff(del.Encode())
	if err != nil || len(got) != 1 || !got[0].Deleted() {
		t.Errorf("deletion: %v %v", got, err)
	}
	// Empty and nil diffs are the same diff.
	if !bytes.Equal(Diff(nil).Encode(), Diff{}.Encode()) || Diff(nil).Hash() != (Diff{}).Hash() {
		t.Error("nil and empty diffs differ")
	}
	if d, err := DecodeDiff(Diff(nil).Encode()); err != nil || len(d) != 0 {
		t.Errorf("empty diff: %v %v", d, err)
	}
}

func TestDecodeDiffErrors(t *testing.T) {
	alice := dev(t, "Alice")
	acctKey := accountKey(alice.ID())
	good := canonical.MustMarshal(Account{Free: teer(1)})
	enc := func(v any) []byte { return canonical.MustMarshal(v) }
	entry := func(k string, v []byte) diffEntry { return diffEntry{Key: []byte(k), Value: v} }
	cases := map[string][]byte{
		"garbage":             {0xff},
		"null":                {0xf6},
		"map":                 enc(map[int]int{1: 1}),
		"indefinite":          {0x9f, 0xff},
		"unknown key":         enc([]diffEntry{entry("nope", good)}),
		"empty key":           enc([]diffEntry{entry("", nil)}),
		"short account key":   enc([]diffEntry{entry(acctKey[:10], good)}),
		"bad account value":   enc([]diffEntry{entry(acctKey, []byte{0x01})}),
		"empty value":         enc([]diffEntry{entry(acctKey, []byte{})}),
		"zero account stored": enc([]diffEntry{entry(acctKey, enc(Account{}))}),
		"zero issuance":       enc([]diffEntry{entry(keyIssuance, enc(types.Balance{}))}),
		"outbox hash mismatch": enc([]diffEntry{entry(outboxKey([32]byte{1}),
			enc(outboxRecord{Seq: 1, Unshielding: Unshielding{CallHash: [32]byte{2}}}))}),
		"non-canonical value": enc([]diffEntry{entry(keyOutboxSeq, []byte{0x19, 0x00, 0x01})}),
		"three-element entry": enc([][]any{{[]byte(keyRoot), enc(alice.ID()), 1}}),
		"text key":            enc([][]any{{keyRoot, enc(alice.ID())}}),
	}
	for name, raw := range cases {
		if _, err := DecodeDiff(raw); !errors.Is(err, ErrBadDiff) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestApplyIsAtomicAndValidated(t *testing.T) {
	x := newFixture(t)
	before := x.st.Snapshot()
	bad := Diff{
		{Key: accountKey(x.chID), Value: canonical.MustMarshal(Account{Free: teer(1)})},
		{Key: "junk", Value: []byte{1}},
	}
	if err := x.st.Apply(bad); !errors.Is(err, ErrBadDiff) {
		t.Fatalf("bad diff: %v", err)
	}
	if !bytes.Equal(before, x.st.Snapshot()) {
		t.Fatal("refused diff was partly applied")
	}
	// Later changes of a key override earlier ones.
	d := Diff{
		{Key: accountKey(x.chID), Value: canonical.MustMarshal(Account{Free: teer(1)})},
		{Key: accountKey(x.chID), Value: canonical.MustMarshal(Account{Free: teer(2)})},
		{Key: accountKey(x.bobID)},
	}
	if err := x.st.Apply(d); err != nil {
		t.Fatal(err)
	}
	x.wantBalance(x.chID, teer(2))
	x.wantBalance(x.bobID, types.Balance{})
	// Apply does not keep the caller's slices.
	d[1].Value[len(d[1].Value)-1] ^= 0xff
	x.wantBalance(x.chID, teer(2))
}

func TestStateHashChain(t *testing.T) {
	x1, d1 := workload(t)
	x2, d2 := workload(t)
	if len(d1) != len(d2) {
		t.Fatal("workloads differ in length")
	}
	genesis := New(testMr, testShard, x1.aliceID).Genesis()
	h1, h2 := genesis.SnapshotHash(), genesis.SnapshotHash()
	for i := range d1 {
		if !bytes.Equal(d1[i].Encode(), d2[i].Encode()) {
			t.Fatalf("step %d: same operations from the same state made different diffs", i)
		}
		prev := h1
		h1, h2 = NextStateHash(h1, d1[i]), NextStateHash(h2, d2[i])
		dh := sha256.Sum256(d1[i].Encode())
		if want := sha256.Sum256(append(prev[:], dh[:]...)); h1 != want {
			t.Fatal("NextStateHash is not SHA-256(prev || SHA-256(diff))")
		}
	}
	if h1 != h2 {
		t.Error("same diffs from the same start gave different hashes")
	}
	if !bytes.Equal(x1.st.Snapshot(), x2.st.Snapshot()) {
		t.Error("same operations gave different states")
	}

	// A third validateer replays the (encoded, decoded) diffs and reaches
	// the same state and hash.
	replica := New(testMr, testShard, x1.aliceID).Genesis()
	// The fixture's shield diffs are not in d1; replay them first.
	pre := newFixture(t).st
	if err := replica.RestoreSnapshot(pre.Snapshot()); err != nil {
		t.Fatal(err)
	}
	hr := pre.SnapshotHash()
	hx := pre.SnapshotHash()
	for _, d := range d1 {
		dd, err := DecodeDiff(d.Encode())
		if err != nil {
			t.Fatal(err)
		}
		if err := replica.Apply(dd); err != nil {
			t.Fatal(err)
		}
		hr, hx = NextStateHash(hr, dd), NextStateHash(hx, d)
	}
	if hr != hx || !bytes.Equal(replica.Snapshot(), x1.st.Snapshot()) {
		t.Error("replica diverged")
	}

	// Order matters, and so does every byte.
	if NextStateHash(NextStateHash([32]byte{}, d1[0]), d1[1]) == NextStateHash(NextStateHash([32]byte{}, d1[1]), d1[0]) {
		t.Error("hash chain ignores order")
	}
	if NextStateHash([32]byte{}, d1[0]) == NextStateHash([32]byte{1}, d1[0]) {
		t.Error("hash chain ignores prev")
	}
}

func TestMergeDiffs(t *testing.T) {
	x, diffs := workload(t)
	start := newFixture(t).st
	merged := MergeDiffs(diffs...)
	for i := 1; i < len(merged); i++ {
		if merged[i-1].Key >= merged[i].Key {
			t.Fatal("merged diff not sorted by key")
		}
	}
	if err := start.Apply(merged); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(start.Snapshot(), x.st.Snapshot()) {
		t.Error("merged diff has another effect than its parts")
	}
	if len(MergeDiffs()) != 0 || !bytes.Equal(MergeDiffs().Encode(), Diff{}.Encode()) {
		t.Error("empty merge")
	}
}

func TestSnapshotRestore(t *testing.T) {
	x, _ := workload(t)
	snap := x.st.Snapshot()
	if !bytes.Equal(snap, x.st.Snapshot()) {
		t.Fatal("snapshot not deterministic")
	}
	st, err := StateFromSnapshot(snap)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Snapshot(), snap) {
		t.Error("restored state snapshots differently")
	}
	if st.Size() != x.st.Size() || st.Len() != x.st.Len() {
		t.Errorf("size %d/%d, len %d/%d", st.Size(), x.st.Size(), st.Len(), x.st.Len())
	}
	if st.SnapshotHash() != sha256.Sum256(snap) {
		t.Error("SnapshotHash")
	}
	// Reads, the outbox index and root come back too.
	if st.Root() != x.aliceID || st.TotalIssuance() != x.st.TotalIssuance() ||
		st.Account(x.bobID) != x.st.Account(x.bobID) || len(st.Outbox()) != 1 || st.Outbox()[0] != x.st.Outbox()[0] {
		t.Error("restored state reads differently")
	}
	// Restoring in place replaces everything.
	other := New(testMr, testShard, x.bobID).Genesis()
	if err := other.RestoreSnapshot(snap); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(other.Snapshot(), snap) || other.Root() != x.aliceID {
		t.Error("in-place restore")
	}
	// An empty state round-trips.
	empty := NewState(account.ID{})
	if e2, err := StateFromSnapshot(empty.Snapshot()); err != nil || e2.Len() != 0 || e2.Size() != 0 {
		t.Errorf("empty: %v", err)
	}
}

func TestRestoreSnapshotErrors(t *testing.T) {
	x, _ := workload(t)
	var snap snapshotV1
	if err := canonical.UnmarshalLoose(x.st.Snapshot(), &snap); err != nil {
		t.Fatal(err)
	}
	enc := func(s snapshotV1) []byte { return canonical.MustMarshal(&s) }
	swapped := snap
	swapped.Entries = append([]diffEntry{}, snap.Entries...)
	swapped.Entries[0], swapped.Entries[1] = swapped.Entries[1], swapped.Entries[0]
	dup := snap
	dup.Entries = append(append([]diffEntry{}, snap.Entries...), snap.Entries[len(snap.Entries)-1])
	deletion := snap
	deletion.Entries = append([]diffEntry{}, snap.Entries...)
	deletion.Entries[0].Value = nil
	junk := snap
	junk.Entries = append([]diffEntry{{Key: []byte("zzz"), Value: []byte{1}}}, snap.Entries...)
	v2 := snap
	v2.Version = 2
	cases := map[string][]byte{
		"garbage":       {0x01},
		"version":       enc(v2),
		"unsorted":      enc(swapped),
		"duplicate":     enc(dup),
		"no value":      enc(deletion),
		"unknown key":   enc(junk),
		"non-canonical": append([]byte{0xbf}, append(append([]byte{}, enc(snap)[1:]...), 0xff)...),
		"trailing":      append(enc(snap), 0),
		"null entries":  canonical.MustMarshal(map[int]any{1: 1, 2: nil}),
	}
	target, _ := workload(t)
	before := target.st.Snapshot()
	for name, raw := range cases {
		if err := target.st.RestoreSnapshot(raw); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
		if _, err := StateFromSnapshot(raw); !errors.Is(err, ErrBadSnapshot) {
			t.Errorf("%s (new): %v", name, err)
		}
	}
	if !bytes.Equal(before, target.st.Snapshot()) {
		t.Error("refused snapshot changed the state")
	}
}

func TestSize(t *testing.T) {
	st := NewState(account.ID{})
	if st.Size() != 0 {
		t.Fatal("empty state has size")
	}
	alice := dev(t, "Alice").ID()
	tx := st.Begin()
	tx.SetAccount(alice, Account{Free: teer(1)})
	d, _ := tx.Commit()
	want := len(d[0].Key) + len(d[0].Value)
	if st.Size() != want {
		t.Errorf("size %d, want %d", st.Size(), want)
	}
	tx = st.Begin()
	tx.SetAccount(alice, Account{})
	tx.Commit()
	if st.Size() != 0 || st.Len() != 0 {
		t.Errorf("size %d after deleting", st.Size())
	}
}

func TestTx(t *testing.T) {
	x := newFixture(t)
	before := x.st.Snapshot()
	tx := x.st.Begin()
	tx.SetAccount(x.chID, Account{Free: teer(3), Nonce: 2})
	tx.SetTotalIssuance(teer(153))
	if tx.Account(x.chID).Free != teer(3) || tx.TotalIssuance() != teer(153) {
		t.Error("tx does not read its own writes")
	}
	if x.st.Account(x.chID).Free != (types.Balance{}) || x.st.TotalIssuance() != teer(150) {
		t.Error("uncommitted write visible in the state")
	}
	if len(tx.Diff()) != 2 {
		t.Errorf("pending diff %v", tx.Diff())
	}
	tx.Discard()
	if !bytes.Equal(before, x.st.Snapshot()) {
		t.Fatal("discarded tx changed the state")
	}
	if _, err := tx.Commit(); !errors.Is(err, ErrTxClosed) {
		t.Errorf("commit after discard: %v", err)
	}

	// Writes that change nothing make no diff.
	tx = x.st.Begin()
	tx.SetAccount(x.aliceID, x.st.Account(x.aliceID))
	tx.SetAccount(x.chID, Account{})
	tx.SetRoot(x.aliceID)
	tx.RemoveFromOutbox([32]byte{1})
	if d, err := tx.Commit(); err != nil || len(d) != 0 {
		t.Errorf("no-op tx: %v %v", d, err)
	}
	if _, err := tx.Commit(); !errors.Is(err, ErrTxClosed) {
		t.Errorf("second commit: %v", err)
	}

	// Outbox through a tx: duplicates refused; remove what was just added.
	tx = x.st.Begin()
	u := Unshielding{CallHash: [32]byte{7}, Beneficiary: x.bobID, Amount: teer(1), Shard: testShard}
	if err := tx.AddToOutbox(u); err != nil {
		t.Fatal(err)
	}
	if err := tx.AddToOutbox(u); !errors.Is(err, ErrDuplicateUnshield) {
		t.Errorf("duplicate: %v", err)
	}
	if !tx.RemoveFromOutbox(u.CallHash) || tx.RemoveFromOutbox(u.CallHash) {
		t.Error("remove in tx")
	}
	if err := tx.AddToOutbox(u); err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
	if out := x.st.Outbox(); len(out) != 1 || out[0] != withSeq(u, 2) {
		t.Errorf("outbox %v", out)
	}
	tx = x.st.Begin()
	if err := tx.AddToOutbox(u); !errors.Is(err, ErrDuplicateUnshield) {
		t.Errorf("duplicate of committed entry: %v", err)
	}
	tx.Discard()

	// Root can be changed and removed through a tx.
	tx = x.st.Begin()
	tx.SetRoot(x.bobID)
	tx.Commit()
	if x.st.Root() != x.bobID {
		t.Error("root not set")
	}
	tx = x.st.Begin()
	tx.SetRoot(account.ID{})
	tx.Commit()
	if !x.st.Root().IsZero() {
		t.Error("root not removed")
	}
}

func TestTxConflict(t *testing.T) {
	x := newFixture(t)
	t1, t2 := x.st.Begin(), x.st.Begin()
	t1.SetAccount(x.chID, Account{Free: teer(1)})
	t2.SetAccount(x.chID, Account{Free: teer(2)})
	if _, err := t1.Commit(); err != nil {
		t.Fatal(err)
	}
	before := x.st.Snapshot()
	if _, err := t2.Commit(); !errors.Is(err, ErrConflict) {
		t.Fatalf("second commit: %v", err)
	}
	if !bytes.Equal(before, x.st.Snapshot()) {
		t.Error("conflicting commit changed the state")
	}
	// A tx with no effect does not invalidate others.
	t3, t4 := x.st.Begin(), x.st.Begin()
	t3.Commit()
	t4.SetAccount(x.chID, Account{Free: teer(4)})
	if _, err := t4.Commit(); err != nil {
		t.Errorf("after empty commit: %v", err)
	}
	// Apply and RestoreSnapshot invalidate open transactions.
	t5 := x.st.Begin()
	if err := x.st.Apply(Diff{{Key: accountKey(x.chID), Value: canonical.MustMarshal(Account{Free: teer(5)})}}); err != nil {
		t.Fatal(err)
	}
	t5.SetTotalIssuance(teer(1))
	if _, err := t5.Commit(); !errors.Is(err, ErrConflict) {
		t.Errorf("after apply: %v", err)
	}
	t6 := x.st.Begin()
	if err := x.st.RestoreSnapshot(x.st.Snapshot()); err != nil {
		t.Fatal(err)
	}
	t6.SetTotalIssuance(teer(1))
	if _, err := t6.Commit(); !errors.Is(err, ErrConflict) {
		t.Errorf("after restore: %v", err)
	}
}

// TestConcurrentExecution runs calls of many accounts from many goroutines
// while readers snapshot; with optimistic commits, every call either
// executes once or reports ErrConflict, and the totals add up.
func TestConcurrentExecution(t *testing.T) {
	x := newFixture(t)
	const workers, per = 8, 50
	pairs := make([]*account.Pair, workers)
	for i := range pairs {
		seed := sha256.Sum256([]byte{byte(i)})
		p, err := account.PairFromSeed(seed[:])
		if err != nil {
			t.Fatal(err)
		}
		pairs[i] = p
		if _, err := x.f.ShieldFunds(x.st, p.ID(), teer(per)); err != nil {
			t.Fatal(err)
		}
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	go func() {
		for {
			select {
			case <-stop:
				return
			default:
				x.st.Snapshot()
				x.st.Outbox()
			}
		}
	}()
	for _, p := range pairs {
		wg.Add(1)
		go func(p *account.Pair) {
			defer wg.Done()
			for n := uint64(0); n < per; {
				op := SignCall(p, transferCall(p.ID(), x.bobID, teer(1)), n, testMr, testShard)
				_, err := x.f.ExecuteCall(x.st, op)
				switch {
				case err == nil:
					n++
				case errors.Is(err, ErrConflict):
				default:
					t.Error(err)
					return
				}
			}
		}(p)
	}
	wg.Wait()
	close(stop)
	x.wantBalance(x.bobID, teer(50+workers*per))
	for _, p := range pairs {
		x.wantBalance(p.ID(), types.Balance{})
		x.wantNonce(p.ID(), per)
	}
	x.wantIssuance(teer(150 + workers*per))
}

// FuzzDecodeDiff: accepted diffs re-encode to themselves and apply to a
// state whose typed reads then work.
func FuzzDecodeDiff(f *testing.F) {
	x, diffs := workload(f)
	for _, d := range diffs {
		f.Add(d.Encode())
	}
	f.Add(x.st.Snapshot())
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDiff(b)
		if err != nil {
			if !errors.Is(err, ErrBadDiff) {
				t.Fatalf("unnamed error %v", err)
			}
		} else {
			if !bytes.Equal(d.Encode(), b) {
				t.Fatal("accepted diff re-encodes differently")
			}
			st := NewState(account.ID{1})
			if err := st.Apply(d); err != nil {
				t.Fatal(err)
			}
			st.Outbox()
			st.TotalIssuance()
			st.Root()
			for _, c := range d {
				if len(c.Key) == len(prefixAccount)+account.IDLen {
					st.Account(account.ID([]byte(c.Key[len(prefixAccount):])))
				}
			}
		}
		st, err := StateFromSnapshot(b)
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		if !bytes.Equal(st.Snapshot(), b) {
			t.Fatal("accepted snapshot re-encodes differently")
		}
		st.Outbox()
	})
}

func withSeq(u Unshielding, seq uint64) Unshielding { u.Seq = seq; return u }
