package enclave

import (
	"bytes"
	"context"
	"slices"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/stf"
	"github.com/integritee-go/integritee/enclave/tee/sim"
	"github.com/integritee-go/integritee/parentchain/chaintest"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/types"
)

// fuzzTB lends a fixture built with a fuzz target's F (chaintest keeps
// the testing.TB it was made with) the *testing.T of the input running: an
// F's Fatal and Helper may not be called inside the fuzz function.
type fuzzTB struct {
	testing.TB // the F, for setup
	t          *testing.T
}

func (x *fuzzTB) Helper() {}

func (x *fuzzTB) Fatal(args ...any) {
	if x.t != nil {
		x.t.Fatal(args...)
	}
	x.TB.Fatal(args...)
}

func (x *fuzzTB) Fatalf(format string, args ...any) {
	if x.t != nil {
		x.t.Fatalf(format, args...)
	}
	x.TB.Fatalf(format, args...)
}

// chainWorld is an enclave on a real parentchain (package chaintest),
// registered and the author of its shard's block 1; //Alice deposits.
type chainWorld struct {
	tb      *fuzzTB
	c       *chaintest.Chain
	h       *fakeHost
	e       *Enclave
	alice   *account.Pair
	relayed int // the enclave's sent transactions already put in blocks
	slot    int // the last sidechain slot used
}

func newChainWorld(f *testing.F) *chainWorld {
	tb := &fuzzTB{TB: f}
	c := chaintest.New(tb)
	h := newFakeHost()
	h.chain = c
	cfg := testConfig()
	cfg.ChainID, cfg.GenesisValidators = c.ChainID(), c.GenesisValidators()
	m := fuzzMachine(tb, "v1")
	b, err := sim.New(sim.Config{Executable: m.exe, HostSecretPath: m.secret})
	if err != nil {
		tb.Fatal(err)
	}
	e, err := New(context.Background(), b, h, cfg, quiet)
	if err != nil {
		tb.Fatal(err)
	}
	w := &chainWorld{tb: tb, c: c, h: h, e: e}
	if w.alice, err = account.DevPair("//Alice"); err != nil {
		tb.Fatal(err)
	}
	w.block(tb, w.sign(tb, balances.ModuleName, "transfer", balances.TransferArgs{Dest: e.Signer(), Amount: teer(10)}))
	if _, err := e.Register(context.Background(), "wss://me", true); err != nil {
		tb.Fatal(err)
	}
	for range 2 {
		w.block(tb)
	}
	w.sync(tb)
	for range 2 {
		w.block(tb)
	}
	w.sync(tb)
	w.author(tb)
	if _, _, ok := e.Head(); !ok {
		tb.Fatal("the enclave made no block 1")
	}
	return w
}

func (w *chainWorld) sign(tb testing.TB, module, method string, args any) []byte {
	tb.Helper()
	call, err := types.NewCall(w.c.Codec(), module, method, args)
	if err != nil {
		tb.Fatal(err)
	}
	return w.c.Sign(w.alice, call)
}

// block seals a parentchain block with the enclave's sent transactions,
// then txs, and returns the results of txs.
func (w *chainWorld) block(tb testing.TB, txs ...[]byte) []*abci.ExecTxResult {
	tb.Helper()
	sent := w.h.sentTxs()[w.relayed:]
	w.relayed += len(sent)
	_, res := w.c.Block(append(sent, txs...)...)
	return res[len(sent):]
}

// sync has the enclave verify every sealed block whose successor is sealed.
func (w *chainWorld) sync(tb testing.TB) {
	tb.Helper()
	for h := w.e.NextParentchainHeight(); h < w.c.Height(); h++ {
		if err := w.e.ImportParentchainBlock(context.Background(), w.c.Input(h), w.c.Now()); err != nil {
			tb.Fatalf("import parentchain block %d: %v", h, err)
		}
	}
	w.e.SendDue(context.Background())
}

// author runs the next sidechain slot.
func (w *chainWorld) author(tb testing.TB) {
	tb.Helper()
	w.slot++
	if _, err := w.e.OnSlot(context.Background(), slotTime(w.slot)); err != nil {
		tb.Fatalf("slot %d: %v", w.slot, err)
	}
}

// FuzzParentchainDeposit: a parentchain transaction for the shard
// (shield_funds with an encrypted beneficiary, or invoke with an encrypted
// trusted call) carries bytes anyone chose. The enclave verifies the block,
// takes the call into its next sidechain block and decrypts it: only a
// genuine encryption to the shard's key credits (exactly the amount, to
// the beneficiary it names) or executes (a genuinely signed call, once);
// anything else leaves the sidechain state as it was.
func FuzzParentchainDeposit(f *testing.F) {
	w := newChainWorld(f)
	pub := w.e.ShieldingPublicKey()
	bob, err := account.DevPair("//Bob")
	if err != nil {
		f.Fatal(err)
	}
	bobID := bob.ID()
	credit, err := keys.ShieldingEncrypt(pub, bobID[:])
	if err != nil {
		f.Fatal(err)
	}
	short, err := keys.ShieldingEncrypt(pub, bobID[:31])
	if err != nil {
		f.Fatal(err)
	}
	// //Alice is the shard's root on a dev chain: her set_balance executes
	// once (nonce 0), then is stale.
	op, err := (&stf.Operation{Call: stf.SignCall(w.alice, stf.Call{SetBalance: &stf.SetBalance{Who: bobID, Free: teer(7)}}, 0, w.e.MrEnclave(), w.e.ShardID())}).Encode()
	if err != nil {
		f.Fatal(err)
	}
	call, err := keys.ShieldingEncrypt(pub, op)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(credit, uint64(5), false)
	f.Add(short, uint64(5), false)
	f.Add(credit[:len(credit)-1], uint64(5), false)
	f.Add(call, uint64(0), true)
	f.Add([]byte("not a ciphertext"), uint64(1), true)
	f.Fuzz(func(t *testing.T, ct []byte, amount uint64, invoke bool) {
		w.tb.t = t
		defer func() { w.tb.t = nil }()
		st := w.e.currentState()
		before, issuance, bobFree := st.Snapshot(), st.TotalIssuance(), st.Account(bobID).Free
		var tx []byte
		if invoke {
			tx = w.sign(t, enclavebridge.ModuleName, "invoke", enclavebridge.InvokeArgs{Shard: w.e.ShardID(), Ciphertext: ct})
		} else {
			tx = w.sign(t, enclavebridge.ModuleName, "shield_funds", enclavebridge.ShieldFundsArgs{Shard: w.e.ShardID(), EncryptedBeneficiary: ct, Amount: types.NewBalance(amount)})
		}
		onChain := w.block(t, tx)[0].Code == abci.CodeTypeOK
		w.block(t)
		w.sync(t)
		w.author(t)
		st = w.e.currentState()
		changed := !bytes.Equal(st.Snapshot(), before)
		switch {
		case !changed:
			if !invoke && onChain && bytes.Equal(ct, credit) {
				t.Fatalf("a genuine deposit of %d was not credited", amount)
			}
		case !onChain:
			t.Fatal("a transaction the parentchain refused changed the sidechain state")
		case invoke && !bytes.Equal(ct, call):
			t.Fatalf("an invocation nobody encrypted changed the state: %x", ct)
		case !invoke && !bytes.Equal(ct, credit):
			t.Fatalf("a deposit with a ciphertext nobody encrypted changed the state: %x", ct)
		case !invoke:
			wantIssuance, err1 := issuance.Add(types.NewBalance(amount))
			wantBob, err2 := bobFree.Add(types.NewBalance(amount))
			if err1 != nil || err2 != nil || st.TotalIssuance() != wantIssuance || st.Account(bobID).Free != wantBob {
				t.Fatalf("depositing %d: issuance %s -> %s, Bob %s -> %s", amount, issuance, st.TotalIssuance(), bobFree, st.Account(bobID).Free)
			}
		}
	})
}

// FuzzParentchainStateRead: the host answers the enclave's parentchain
// state reads (abci_query with proofs) and may answer anything. One answer
// of a view refresh is replaced by fuzzed parts (key, value, proof ops);
// the enclave either refuses the whole refresh (a proof failure, and its
// old view stands) or takes the answer, which then holds the chain's own
// key and value: no lie about the parentchain's state gets through.
func FuzzParentchainStateRead(f *testing.F) {
	w := newChainWorld(f)
	// Honest answers of a refresh, as seeds.
	var honest []StateRead
	w.h.mu.Lock()
	w.h.lie = func(_ int64, reads []StateRead) []StateRead {
		if honest == nil {
			honest = reads
		}
		return reads
	}
	w.h.mu.Unlock()
	w.block(f)
	w.block(f)
	w.sync(f)
	for i, r := range honest {
		ops := []byte{}
		if r.Ops != nil {
			var err error
			if ops, err = r.Ops.Marshal(); err != nil {
				f.Fatal(err)
			}
		}
		f.Add(uint8(i), uint8(0), r.Key, r.Value, ops)                  // the honest answer, later stale
		f.Add(uint8(i), uint8(2), r.Key, []byte{0xa0}, ops)             // another value
		f.Add(uint8(i), uint8(1), []byte("teerex/flags"), r.Value, ops) // another key
	}
	f.Fuzz(func(t *testing.T, which, mask uint8, key, value, ops []byte) {
		w.tb.t = t
		defer func() { w.tb.t = nil }()
		var (
			lied   bool
			truth  StateRead
			called bool
		)
		// Bits of mask: 1 key, 2 value, 4 proof ops replaced; 8 the
		// second read of the refresh (the registrations) instead of the
		// first.
		w.h.mu.Lock()
		call := 0
		w.h.lie = func(_ int64, reads []StateRead) []StateRead {
			defer func() { call++ }()
			if called || len(reads) == 0 || call != int(mask>>3&1) {
				return reads
			}
			called = true
			i := int(which) % len(reads)
			truth = reads[i]
			r := truth
			if mask&1 != 0 {
				r.Key = key
			}
			if mask&2 != 0 {
				r.Value = value
			}
			if mask&4 != 0 {
				var po cmtcrypto.ProofOps
				if po.Unmarshal(ops) == nil {
					r.Ops = &po
				} else {
					r.Ops = nil
				}
			}
			lied = !bytes.Equal(r.Key, truth.Key) || !bytes.Equal(r.Value, truth.Value) || (r.Value == nil) != (truth.Value == nil)
			out := slices.Clone(reads)
			out[i] = r
			return out
		}
		w.h.mu.Unlock()
		defer func() {
			w.h.mu.Lock()
			w.h.lie = nil
			w.h.mu.Unlock()
		}()
		failures := w.e.Stats().ProofFailures
		w.block(t)
		w.sync(t)
		if lied && w.e.Stats().ProofFailures == failures {
			t.Fatalf("the enclave took a false answer for %q: %x instead of %x", truth.Key, value, truth.Value)
		}
	})
}
