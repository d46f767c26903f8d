package chaintest

import (
	"bytes"
	"errors"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/enclave/lightclient"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/node"
	"github.com/integritee-go/integritee/parentchain/proof"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/types"
)

func devPair(t *testing.T, uri string) *account.Pair {
	t.Helper()
	p, err := account.DevPair(uri)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func transfer(t *testing.T, c *Chain, to account.ID, amount types.Balance) types.Call {
	t.Helper()
	call, err := types.NewCall(c.Codec(), balances.ModuleName, "transfer", balances.TransferArgs{Dest: to, Amount: amount})
	if err != nil {
		t.Fatal(err)
	}
	return call
}

func add(t *testing.T, a, b types.Balance) types.Balance {
	t.Helper()
	s, err := a.Add(b)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sub(t *testing.T, a, b types.Balance) types.Balance {
	t.Helper()
	d, ok := a.Sub(b)
	if !ok {
		t.Fatalf("%s - %s underflows", a, b)
	}
	return d
}

func mustOK(t *testing.T, h int64, rs []*abci.ExecTxResult, want ...bool) {
	t.Helper()
	if len(rs) != len(want) {
		t.Fatalf("block %d: %d results, want %d", h, len(rs), len(want))
	}
	for i, r := range rs {
		if ok := r.Code == abci.CodeTypeOK; ok != want[i] {
			t.Fatalf("block %d tx %d: code %d (%s), want ok=%v", h, i, r.Code, r.Log, want[i])
		}
	}
}

// TestChainVerifiesAndProves runs transfers through the real application,
// verifies every sealed block with a real light client and checks Ferdie's
// balance by proof against the verified app hashes.
func TestChainVerifiesAndProves(t *testing.T) {
	c := New(t)
	alice, bob, ferdie := devPair(t, "//Alice"), devPair(t, "//Bob"), devPair(t, "//Ferdie")

	// Block 1: Ferdie cannot pay the fee yet (his nonce stays 0); Alice
	// sends him 5 TEER.
	broke := c.Sign(ferdie, transfer(t, c, bob.ID(), types.TEER(1)))
	first := c.Sign(alice, transfer(t, c, ferdie.ID(), types.TEER(5)))
	h1, res := c.Block(broke, first)
	mustOK(t, h1, res, false, true)
	// Block 2: empty.
	h2, res := c.Block()
	mustOK(t, h2, res)
	// Block 3: two more transfers by Alice (nonces 1 and 2, handed out
	// before either was executed) and Ferdie's first successful one
	// (nonce 0 again, since his failed transaction did not consume it).
	a1 := c.Sign(alice, transfer(t, c, ferdie.ID(), types.TEER(7)))
	a2 := c.Sign(alice, transfer(t, c, ferdie.ID(), types.TEER(7)))
	f0 := c.Sign(ferdie, transfer(t, c, bob.ID(), types.TEER(1)))
	h3, res := c.Block(a1, a2, f0)
	mustOK(t, h3, res, true, true, true)
	if h1 != 1 || h2 != 2 || h3 != 3 || c.Height() != 3 {
		t.Fatalf("heights %d %d %d, Height %d", h1, h2, h3, c.Height())
	}

	lc, err := lightclient.New(c.ChainID(), c.GenesisValidators(), lightclient.Config{})
	if err != nil {
		t.Fatal(err)
	}
	inputs := map[int64]lightclient.Input{}
	for h := int64(1); h <= h3; h++ {
		in := c.Input(h)
		v, err := lc.Verify(in, c.Now())
		if err != nil {
			t.Fatalf("verify %d: %v", h, err)
		}
		if v.Height != h {
			t.Fatalf("verified height %d, want %d", v.Height, h)
		}
		if !bytes.Equal(in.Block.AppHash, c.AppHash(h-1)) || !bytes.Equal(in.Next.AppHash, c.AppHash(h)) {
			t.Fatalf("height %d: headers do not carry the app hashes", h)
		}
		inputs[h] = in
		switch h {
		case h1:
			if len(v.Txs) != 2 || v.Txs[0].OK || !v.Txs[1].OK || v.Txs[1].Signer != alice.ID() || v.Txs[1].Call.Method != "transfer" {
				t.Fatalf("block %d: verified txs %+v", h, v.Txs)
			}
		case h2:
			if len(v.Txs) != 0 {
				t.Fatalf("block %d: verified txs %+v", h, v.Txs)
			}
		case h3:
			if len(v.Txs) != 3 || !v.Txs[0].OK || !v.Txs[1].OK || !v.Txs[2].OK || v.Txs[2].Signer != ferdie.ID() {
				t.Fatalf("block %d: verified txs %+v", h, v.Txs)
			}
		}
	}
	// Input(h3) sealed an empty block 4 for its Next.
	if c.Height() != h3+1 {
		t.Fatalf("Height %d after Input(%d), want %d", c.Height(), h3, h3+1)
	}
	// The client's first block was checked against the genesis app hash.
	if !bytes.Equal(inputs[1].Block.AppHash, c.AppHash(0)) {
		t.Fatal("header 1 does not carry the genesis app hash")
	}

	key := balances.AccountKey(ferdie.ID())
	fee := node.DevTxFee
	want := map[int64]types.Balance{
		h1: types.TEER(5),
		h2: types.TEER(5),
		h3: sub(t, types.TEER(5+7+7), add(t, types.TEER(1), fee)),
	}
	proofs := map[int64]*state.Proof{}
	for h, bal := range want {
		p, err := c.Prove(h, key)
		if err != nil {
			t.Fatalf("prove %d: %v", h, err)
		}
		if p.Height != h || !bytes.Equal(p.Key, key) || p.Value == nil {
			t.Fatalf("prove %d: %+v", h, p)
		}
		var acct balances.Account
		if err := c.Codec().Unmarshal(p.Value, &acct); err != nil {
			t.Fatal(err)
		}
		if acct.Free.Cmp(bal) != 0 {
			t.Fatalf("Ferdie's balance after %d: %s, want %s", h, acct.Free, bal)
		}
		if err := proof.Verify(p.Ops, inputs[h].Next.AppHash, key, p.Value); err != nil {
			t.Fatalf("proof of height %d against its verified app hash: %v", h, err)
		}
		proofs[h] = p
	}
	// Against the app hash of a height where Ferdie's balance differs.
	for _, pair := range [][2]int64{{h1, h3}, {h3, h1}, {h3, h2}} {
		p, other := proofs[pair[0]], inputs[pair[1]].Next.AppHash
		if err := proof.Verify(p.Ops, other, key, p.Value); !errors.Is(err, proof.ErrMismatch) {
			t.Fatalf("proof of height %d against app hash of %d: %v, want ErrMismatch", pair[0], pair[1], err)
		}
	}
	// Before block 1 Ferdie had no account: a proof of absence against the
	// genesis app hash, which header 1 carries.
	p0, err := c.Prove(0, key)
	if err != nil {
		t.Fatal(err)
	}
	if p0.Value != nil {
		t.Fatalf("Ferdie has an account at genesis: %x", p0.Value)
	}
	if err := proof.Verify(p0.Ops, inputs[1].Block.AppHash, key, nil); err != nil {
		t.Fatalf("absence at genesis: %v", err)
	}
	if err := proof.Verify(p0.Ops, inputs[h1].Next.AppHash, key, nil); !errors.Is(err, proof.ErrMismatch) {
		t.Fatalf("absence proof against app hash of %d: %v, want ErrMismatch", h1, err)
	}
	if _, err := c.Prove(c.Height()+1, key); !errors.Is(err, state.ErrHeightUnavailable) {
		t.Fatalf("prove a future height: %v", err)
	}
}

// TestInputIsFresh checks that an Input shares nothing with the chain: a
// tampered copy is refused, a fresh one verifies.
func TestInputIsFresh(t *testing.T) {
	c := New(t)
	alice, ferdie := devPair(t, "//Alice"), devPair(t, "//Ferdie")
	c.Block(c.Sign(alice, transfer(t, c, ferdie.ID(), types.TEER(1))))

	lc, err := lightclient.New(c.ChainID(), c.GenesisValidators(), lightclient.Config{})
	if err != nil {
		t.Fatal(err)
	}
	in := c.Input(1)
	in.Results[0].Code = 1
	in.Next.AppHash[0] ^= 1
	in.Block.Txs[0][0] ^= 1
	in.Validators.Validators[0].Address[0] ^= 1
	if _, err := lc.Verify(in, c.Now()); err == nil {
		t.Fatal("tampered input verified")
	}
	if _, err := lc.Verify(c.Input(1), c.Now()); err != nil {
		t.Fatalf("fresh input after tampering: %v", err)
	}
	if _, err := lc.Verify(c.Input(2), c.Now()); err != nil {
		t.Fatalf("input 2: %v", err)
	}
	// Deterministic: a second chain seals the very same blocks.
	d := New(t)
	d.Block(d.Sign(alice, transfer(t, d, ferdie.ID(), types.TEER(1))))
	if a, b := c.Input(1).Commit.BlockID, d.Input(1).Commit.BlockID; !a.Equals(b) {
		t.Fatalf("block 1 differs between two chains: %v, %v", a, b)
	}
}
