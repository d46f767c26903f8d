package enclave

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/codec"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/enclave/tee/sim"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// Fuzz targets of what the enclave reads from outside: peers' blocks
// (imported one by one, or handed over for fork resolution), MU-RA
// provisioning messages, operations and getters from clients, and its own
// sealed records handed back by the host.
//
// The enclave's keys are random, so blocks and ciphertexts in the committed
// corpora do not verify under the fixture's keys: on replay they exercise
// the refusal paths, while the seeds the targets add in memory exercise the
// acceptance paths too.

// fuzzBlocks is how many blocks the fixture's author makes.
const fuzzBlocks = 4

// fuzzWorld is an enclave (the author, on a host without a parentchain)
// that made blocks 1..fuzzBlocks: block 1 with the dev root, block 2
// setting //Alice's balance, then transfers to //Bob.
type fuzzWorld struct {
	tb         testing.TB
	m          machine
	host       *fakeHost
	author     *Enclave
	blocks     [][]byte // blocks[i] is block i+1
	alice, bob *account.Pair
}

// fuzzMachine is newMachine for any testing.TB.
func fuzzMachine(tb testing.TB, code string) machine {
	tb.Helper()
	dir := tb.TempDir()
	m := machine{exe: filepath.Join(dir, "integritee-service"), secret: filepath.Join(dir, "host-secret")}
	if err := os.WriteFile(m.exe, []byte(code), 0o700); err != nil {
		tb.Fatal(err)
	}
	return m
}

// startEnclave starts an enclave of machine m on host h.
func startEnclave(tb testing.TB, m machine, h *fakeHost) *Enclave {
	tb.Helper()
	b, err := sim.New(sim.Config{Executable: m.exe, HostSecretPath: m.secret})
	if err != nil {
		tb.Fatal(err)
	}
	e, err := New(context.Background(), b, h, testConfig(), quiet)
	if err != nil {
		tb.Fatal(err)
	}
	return e
}

func newFuzzWorld(tb testing.TB) *fuzzWorld {
	tb.Helper()
	w := &fuzzWorld{tb: tb, m: fuzzMachine(tb, "v1"), host: newFakeHost()}
	var err error
	if w.alice, err = account.DevPair("//Alice"); err != nil {
		tb.Fatal(err)
	}
	if w.bob, err = account.DevPair("//Bob"); err != nil {
		tb.Fatal(err)
	}
	w.author = startEnclave(tb, w.m, w.host)
	giveDevRoot(w.author)
	w.slot(1)
	w.submit(w.call(w.alice, setBalance(w.alice.ID(), teer(100)), 0))
	w.slot(2)
	for k := 3; k <= fuzzBlocks; k++ {
		w.submit(w.call(w.alice, transfer(w.alice.ID(), w.bob.ID(), types.NewBalance(uint64(k))), uint64(k-2)))
		w.slot(k)
	}
	for n := uint64(1); n <= fuzzBlocks; n++ {
		raw, err := w.host.BlockByNumber(w.author.ShardID(), n)
		if err != nil {
			tb.Fatal(err)
		}
		w.blocks = append(w.blocks, raw)
	}
	return w
}

// call returns the encoding of call signed by p for the author's enclave.
func (w *fuzzWorld) call(p *account.Pair, call stf.Call, nonce uint64) []byte {
	b, err := signedCall(w.author, p, call, nonce).Encode()
	if err != nil {
		w.tb.Fatal(err)
	}
	return b
}

// getter returns the encoding of g signed by p for the author's shard.
func (w *fuzzWorld) getter(p *account.Pair, g stf.Getter) []byte {
	b, err := (&stf.Operation{Getter: stf.SignGetter(p, g, w.author.ShardID())}).Encode()
	if err != nil {
		w.tb.Fatal(err)
	}
	return b
}

func (w *fuzzWorld) submit(op []byte) {
	w.tb.Helper()
	res, err := w.author.RPC().SubmitOperations(context.Background(), w.author.ShardID(), [][]byte{op}, nil)
	if err != nil || res[0].Err != nil {
		w.tb.Fatalf("submit: %v %v", err, res)
	}
}

func (w *fuzzWorld) slot(k int) {
	w.tb.Helper()
	b, err := w.author.OnSlot(context.Background(), slotTime(k))
	if err != nil || b == nil {
		w.tb.Fatalf("slot %d: block %v, %v", k, b, err)
	}
	w.author.waitSnapshots() // the world's host holds every record when it is built
}

// replica starts another host of the author's enclave instance (its sealed
// keys only) and imports blocks 1..n. tb is the caller's (a fuzz target's
// t, not the world's f).
func (w *fuzzWorld) replica(tb testing.TB, n int) *Enclave {
	tb.Helper()
	r := startEnclave(tb, w.m, w.host.cloneSealed())
	for _, raw := range w.blocks[:n] {
		if err := r.ImportBlock(raw); err != nil {
			tb.Fatal(err)
		}
	}
	return r
}

// isBlock reports whether raw is one of the author's blocks.
func (w *fuzzWorld) isBlock(raw []byte) bool {
	for _, b := range w.blocks {
		if bytes.Equal(b, raw) {
			return true
		}
	}
	return false
}

// headState is what an import may change.
type headState struct {
	number    uint64
	hash      sidechain.Hash
	stateHash [32]byte
}

func headOf(e *Enclave) headState {
	n, h, _ := e.Head()
	e.mu.Lock()
	defer e.mu.Unlock()
	return headState{n, h, e.stateHash}
}

// tampered returns raw with one byte flipped.
func tampered(raw []byte, i int) []byte {
	b := bytes.Clone(raw)
	b[i%len(b)] ^= 0x01
	return b
}

// FuzzImportBlock: a block a peer sends (sidechain_importBlock) or the host
// fetched (sidechain_fetchBlocksFromPeer) is imported only if it is one of
// the shard's genuine blocks; anything else is refused with a named error
// and moves neither the head nor the state.
func FuzzImportBlock(f *testing.F) {
	w := newFuzzWorld(f)
	const have = fuzzBlocks - 2 // the replica holds 1..2: 3 is next, 4 ahead
	r := w.replica(f, have)
	f.Add(w.blocks[have])
	f.Add(w.blocks[have+1])
	f.Add(w.blocks[have-1])
	f.Add(tampered(w.blocks[have], 40))
	f.Add(tampered(w.blocks[have], len(w.blocks[have])-3))
	f.Add([]byte("not a block"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		before := headOf(r)
		err := r.ImportBlock(raw)
		after := headOf(r)
		if err != nil && types.AsError(err) == nil {
			t.Fatalf("unnamed error %v", err)
		}
		if err != nil && after != before {
			t.Fatalf("a refused block (%v) moved the head from %+v to %+v", err, before, after)
		}
		if (err == nil || after != before) && !w.isBlock(raw) {
			t.Fatalf("imported a block the shard never made: %x", raw)
		}
		if after != before {
			r = w.replica(t, have)
		}
	})
}

// FuzzResolveFork: the blocks a peer hands over for fork resolution (a
// CBOR list, as the host passes the fetched answer on) never switch this
// enclave to another branch unless it wins, which no forged branch can;
// refusals are named and change nothing; blocks that extend the head are
// the shard's own.
func FuzzResolveFork(f *testing.F) {
	w := newFuzzWorld(f)
	const have = fuzzBlocks - 1
	r := w.replica(f, have)
	c := codec.New()
	b := w.blocks
	for _, list := range [][][]byte{
		b[:have],                     // all common
		b[have-1:],                   // the head, then the next
		b[have:],                     // the next alone
		{b[1], tampered(b[2], 60)},   // a forged competitor
		{b[0], b[2]},                 // not a chain
		{tampered(b[have], 3), b[0]}, // garbage first
		{b[1], b[2], b[3], b[3]},     // a repeated block
	} {
		f.Add(c.MustMarshal(list))
	}
	f.Fuzz(func(t *testing.T, list []byte) {
		var raws [][]byte
		if c.Unmarshal(list, &raws) != nil {
			return
		}
		before := headOf(r)
		switched, err := r.ResolveFork(context.Background(), raws)
		after := headOf(r)
		if switched {
			t.Fatal("switched to a branch the shard never made")
		}
		if err != nil && types.AsError(err) == nil {
			t.Fatalf("unnamed error %v", err)
		}
		if after == before {
			return
		}
		if err != nil {
			t.Fatalf("a refused branch (%v) moved the head", err)
		}
		for _, raw := range raws {
			if !w.isBlock(raw) {
				t.Fatalf("the head moved on blocks the shard never made")
			}
		}
		r = w.replica(t, have)
	})
}

// FuzzMuRaMessage: the length-prefixed CBOR messages a MU-RA peer sends
// (provisionRequest, provision) decode without panicking, re-encode to the
// bytes read, and cost memory in proportion to the bytes that arrived, not
// to the length the prefix claims.
func FuzzMuRaMessage(f *testing.F) {
	w := newFuzzWorld(f)
	e := w.author
	var req, prov bytes.Buffer
	if err := writeMsg(&req, e, provisionRequest{Shard: e.ShardID()}); err != nil {
		f.Fatal(err)
	}
	e.mu.Lock()
	p, err := e.provisionLocked(e.ShardID())
	e.mu.Unlock()
	if err != nil {
		f.Fatal(err)
	}
	if err := writeMsg(&prov, e, p); err != nil {
		f.Fatal(err)
	}
	f.Add(req.Bytes())
	f.Add(prov.Bytes())
	f.Add([]byte{0x0f, 0xff, 0xff, 0xff, 0xa0})
	f.Add([]byte{0, 0, 0, 1, 0xa0, 0xa0})
	f.Fuzz(func(t *testing.T, stream []byte) {
		var r provisionRequest
		checkMuRaRead(t, e, stream, &r)
		var p provision
		checkMuRaRead(t, e, stream, &p)
	})
}

// checkMuRaRead reads one message into v from stream.
func checkMuRaRead[T any](t *testing.T, e *Enclave, stream []byte, v *T) {
	t.Helper()
	var err error
	allocated := allocatedBy(func() { err = readMsg(bytes.NewReader(stream), e, v) })
	if limit := uint64(4*len(stream)) + 128<<10; allocated > limit {
		t.Fatalf("reading %d bytes allocated %d bytes", len(stream), allocated)
	}
	if err != nil {
		return
	}
	var out bytes.Buffer
	if err := writeMsg(&out, e, *v); err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(stream, out.Bytes()) {
		t.Fatalf("read %+v from %x, which encodes as %x", *v, stream, out.Bytes())
	}
}

// FuzzInstallProvision: the provision a MU-RA provider sends (its shard
// secrets, state snapshot and head block) is refused, leaving the joining
// enclave as it was (no head, its own keys, its genesis state, nothing
// stored), or taken whole: the joiner's head is the provision's block,
// signed, of the shard, and its state hash, state and shielding key are
// the provision's.
func FuzzInstallProvision(f *testing.F) {
	w := newFuzzWorld(f)
	e := w.author
	e.mu.Lock()
	good, err := e.provisionLocked(e.ShardID())
	e.mu.Unlock()
	if err != nil {
		f.Fatal(err)
	}
	jm := fuzzMachine(f, "v1") // the same build on another machine
	joiner := func(tb testing.TB) *Enclave { return startEnclave(tb, jm, newFakeHost()) }
	j := joiner(f)
	seeds := []provision{
		good,
		{Error: "no"},
		{ShardSecrets: good.ShardSecrets, Snapshot: good.Snapshot, StateHash: good.StateHash, Block: w.blocks[0]},
		{ShardSecrets: good.ShardSecrets[1:], Snapshot: good.Snapshot, StateHash: good.StateHash, Block: good.Block},
		{ShardSecrets: good.ShardSecrets, Snapshot: good.Snapshot[:len(good.Snapshot)-1], StateHash: good.StateHash, Block: good.Block},
		{ShardSecrets: good.ShardSecrets, Snapshot: good.Snapshot, StateHash: good.StateHash, Block: tampered(good.Block, 50)},
	}
	for _, p := range seeds {
		f.Add(e.codec.MustMarshal(p))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		var p provision
		if j.codec.Unmarshal(msg, &p) != nil {
			return // readMsg refuses it
		}
		pub, before := j.ShieldingPublicKey(), headOf(j)
		err := j.install(p)
		if err != nil {
			if after := headOf(j); after != before || !bytes.Equal(j.ShieldingPublicKey(), pub) {
				t.Fatalf("a refused provision (%v) changed the joiner", err)
			}
			if _, lerr := j.host.LastBlock(j.ShardID()); lerr == nil {
				t.Fatalf("a refused provision (%v) stored a block", err)
			}
			return
		}
		b, derr := j.sc.Decode(p.Block)
		if derr != nil || b.Header.Shard != j.ShardID() {
			t.Fatalf("joined on a head block that is not the shard's (%v)", derr)
		}
		after := headOf(j)
		if after.number != b.Header.Number || after.hash != j.sc.Hash(b) || after.stateHash != p.StateHash || sidechain.Hash(p.StateHash) != b.Data.StateHashAfter {
			t.Fatalf("joined at %+v, the provision's block is %d %s", after, b.Header.Number, j.sc.Hash(b))
		}
		if !bytes.Equal(j.currentState().Snapshot(), p.Snapshot) {
			t.Fatal("the joiner's state is not the provision's snapshot")
		}
		if exported, _ := j.keys.ExportShardSecrets(); !bytes.Equal(exported, p.ShardSecrets) {
			t.Fatal("the joiner's shard secrets are not the provision's")
		}
		j = joiner(t)
	})
}

// FuzzSubmitCiphertext: what a client submits (author_submitExtrinsic) is
// pooled only if it is a genuine encryption, to the shard's key, of a
// genuinely signed call; everything else is refused with a named error and
// leaves the pool as it was.
func FuzzSubmitCiphertext(f *testing.F) {
	w := newFuzzWorld(f)
	e := w.author
	pub := e.ShieldingPublicKey()
	alice, bob := w.alice.ID(), w.bob.ID()
	genuine := map[string]bool{}
	for _, op := range [][]byte{
		w.call(w.alice, transfer(alice, bob, teer(1)), fuzzBlocks-1),
		w.call(w.bob, transfer(bob, alice, teer(1)), 0),
		w.call(w.alice, transfer(alice, bob, teer(1)), 0), // stale
		w.getter(w.alice, stf.Getter{FreeBalance: &alice}),
	} {
		ct, err := keys.ShieldingEncrypt(pub, op)
		if err != nil {
			f.Fatal(err)
		}
		genuine[string(ct)] = true
		f.Add(ct)
	}
	f.Add(make([]byte, keys.ShieldingOverhead+10))
	f.Fuzz(func(t *testing.T, ct []byte) {
		pooled := e.pool.Len()
		_, err := e.RPC().Submit(context.Background(), e.ShardID(), ct, nil)
		if err != nil {
			if types.AsError(err) == nil {
				t.Fatalf("unnamed error %v", err)
			}
			if e.pool.Len() != pooled {
				t.Fatalf("a refused submission (%v) changed the pool", err)
			}
			return
		}
		if !genuine[string(ct)] {
			t.Fatalf("pooled a submission nobody made: %x", ct)
		}
	})
}

// FuzzExecuteGetter: a getter over the trusted RPC (state_executeGetter)
// is answered only if it is genuinely signed by the account it reads (or
// asks the total issuance), and then with the state's own value.
func FuzzExecuteGetter(f *testing.F) {
	w := newFuzzWorld(f)
	e := w.author
	alice, bob := w.alice.ID(), w.bob.ID()
	answers := map[string]string{
		string(w.getter(w.alice, stf.Getter{FreeBalance: &alice})):                    balanceOf(e, alice),
		string(w.getter(w.bob, stf.Getter{FreeBalance: &bob})):                        balanceOf(e, bob),
		string(w.getter(w.alice, stf.Getter{Nonce: &alice})):                          strconv.Itoa(fuzzBlocks - 1),
		string(w.getter(w.bob, stf.Getter{TotalIssuance: &stf.TotalIssuanceQuery{}})): e.currentState().TotalIssuance().String(),
	}
	for _, g := range slices.Sorted(maps.Keys(answers)) {
		f.Add([]byte(g))
	}
	f.Add(w.getter(w.bob, stf.Getter{FreeBalance: &alice}))
	f.Add(w.call(w.alice, transfer(alice, bob, teer(1)), 3))
	f.Fuzz(func(t *testing.T, raw []byte) {
		v, err := e.RPC().ExecuteGetter(context.Background(), e.ShardID(), raw)
		if err != nil {
			if types.AsError(err) == nil {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		want, ok := answers[string(raw)]
		if !ok {
			t.Fatalf("answered a getter nobody signed: %x", raw)
		}
		if v != want {
			t.Fatalf("answered %q, want %q", v, want)
		}
	})
}

func balanceOf(e *Enclave, id account.ID) string { return e.currentState().Account(id).Free.String() }

// allocatedBy returns how many bytes fn allocated (the process's total,
// so fn must run alone).
func allocatedBy(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestForgedForkBlockRollsNothingBack is what FuzzResolveFork found: a
// block of the shard signed by any key, with an earlier slot than this
// enclave's block at its height, won the fork choice, rolled the enclave
// back to genesis and only then failed to import (its author is no
// enclave of the shard). The challenger is now checked before the fork
// choice.
func TestForgedForkBlockRollsNothingBack(t *testing.T) {
	w := newFuzzWorld(t)
	r := w.replica(t, fuzzBlocks)
	seed := sha256.Sum256([]byte("a stranger"))
	stranger, err := account.PairFromSeed(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	sc := sidechain.NewCodec()
	first, err := sc.Decode(w.blocks[0])
	if err != nil {
		t.Fatal(err)
	}
	// Block 1 as the author made it, but earlier and signed by the stranger.
	d := first.Data
	d.Timestamp = 1
	forged := sc.Encode(sc.Seal(stranger, first.Header, d))
	before := headOf(r)
	switched, err := r.ResolveFork(context.Background(), [][]byte{forged})
	if switched || !errors.Is(err, ErrBadBlock) {
		t.Fatalf("ResolveFork: switched %v, error %v; want no switch and ErrBadBlock", switched, err)
	}
	if after := headOf(r); after != before || r.Stats().Rollbacks != 0 {
		t.Fatalf("the head moved from %+v to %+v (%d rollbacks)", before, after, r.Stats().Rollbacks)
	}
}

// sealedRecord names a record the enclave seals at the host.
type sealedRecord struct{ key, purpose string }

// FuzzSealedRecord: the records the enclave seals at the host (the
// parentchain progress of each block, the snapshot index, the snapshots,
// the progress between blocks) come back when it restarts. The host cannot
// forge them (they are sealed with the state key), but another version of
// the enclave may have written them: whatever plaintext a record holds, a
// restart never panics, and it either fails or comes back at the head the
// host stores.
func FuzzSealedRecord(f *testing.F) {
	w := newFuzzWorld(f)
	e := w.author
	e.mu.Lock()
	e.saveIdleLocked()
	e.mu.Unlock()
	records := []sealedRecord{
		{numberKey(keySyncPrefix, fuzzBlocks), "sync"},
		{keySnapshotIndex, "snapshot-index"},
		{keyIdleSync, "sync-idle"},
	}
	for _, k := range w.host.stateKeys(keySnapshotPrefix) {
		records = append(records, sealedRecord{k, "snapshot"})
	}
	for i, r := range records {
		blob, err := w.host.GetState(r.key)
		if err != nil {
			f.Fatalf("record %s: %v", r.key, err)
		}
		plain, err := e.keys.State().Decrypt(blob, e.recordAAD(r.key, r.purpose))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), plain)
	}
	f.Add(uint8(0), []byte{0xa0})
	head, _, _ := e.Head()
	f.Fuzz(func(t *testing.T, which uint8, plain []byte) {
		r := records[int(which)%len(records)]
		h := w.host.snapshotFiles()
		h.state[r.key] = e.keys.State().Encrypt(plain, e.recordAAD(r.key, r.purpose))
		b, err := sim.New(sim.Config{Executable: w.m.exe, HostSecretPath: w.m.secret})
		if err != nil {
			t.Fatal(err)
		}
		restarted, err := New(context.Background(), b, h, testConfig(), quiet)
		if err != nil {
			return
		}
		if n, _, ok := restarted.Head(); !ok || n != head {
			t.Fatalf("restarted at block %d (%v), the host stores %d", n, ok, head)
		}
	})
}
