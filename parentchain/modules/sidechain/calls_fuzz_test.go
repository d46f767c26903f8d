package sidechain

import (
	"encoding/json"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/state/statetest"
	"github.com/integritee-go/integritee/parentchain/types"
)

// moduleCall names one module method the fuzz target calls.
type moduleCall struct {
	mod    types.Module
	method string
}

// callsFixture is the parentchain's modules (balances, teerex,
// enclavebridge, sidechain) over a committed state: funded dev accounts,
// simulated attestation allowed, e1 and e2 registered (mrA) and in shard
// A's status, e3 (mrB) in shard B's.
type callsFixture struct {
	codec   *types.Codec
	store   *state.Store
	calls   []moduleCall
	signers []account.ID
	quotes  map[string]bool // the genuine registration proofs
}

func newCallsFixture(tb testing.TB) *callsFixture {
	tb.Helper()
	st := statetest.Open(tb, tb.TempDir())
	codec := types.NewCodec()
	bal := balances.New(codec)
	reg := teerex.New(codec, sim.NewVerifier())
	br := enclavebridge.New(codec, bal, reg)
	m := New(codec, br)
	x := &callsFixture{codec: codec, store: st, signers: []account.ID{dev("//Alice"), e1, e2, e3, rogue}, quotes: map[string]bool{}}
	for _, c := range []struct {
		mod     types.Module
		methods []string
	}{
		{bal, []string{"transfer", "set_balance"}},
		{reg, []string{"register_enclave", "unregister_enclave", "set_security_flags"}},
		{br, []string{"invoke", "shield_funds", "unshield_funds", "confirm_processed_parentchain_block", "update_shard_config"}},
		{m, []string{"confirm_imported_sidechain_block"}},
	} {
		for _, method := range c.methods {
			x.calls = append(x.calls, moduleCall{c.mod, method})
		}
	}
	o := state.NewOverlay(st)
	ctx := x.ctx(o, account.ID{}, false)
	genesis := `{"tx_fee":"0","balances":[{"account":"` + dev("//Alice").String() + `","amount":"1000000000"}]}`
	if err := bal.InitGenesis(ctx, json.RawMessage(genesis)); err != nil {
		tb.Fatal(err)
	}
	if err := reg.InitGenesis(ctx, json.RawMessage(`{"security_flags":{"allow_sim":true}}`)); err != nil {
		tb.Fatal(err)
	}
	for _, id := range []account.ID{e1, e2, e3} {
		mr := mrA
		if id == e3 {
			mr = mrB
		}
		if err := reg.Exec(x.ctx(o, id, false), "register_enclave", x.codec.MustMarshal(x.registration(id, mr))); err != nil {
			tb.Fatal(err)
		}
	}
	for _, j := range []struct {
		id    account.ID
		shard [32]byte
	}{{e1, shardA}, {e2, shardA}, {e3, shardB}} {
		args := enclavebridge.ConfirmProcessedParentchainBlockArgs{Shard: j.shard}
		if err := br.Exec(x.ctx(o, j.id, false), "confirm_processed_parentchain_block", x.codec.MustMarshal(args)); err != nil {
			tb.Fatal(err)
		}
	}
	if _, err := st.CommitOverlay(o, 1); err != nil {
		tb.Fatal(err)
	}
	return x
}

// registration is a genuine register_enclave of id with mrenclave mr.
func (x *callsFixture) registration(id account.ID, mr [32]byte) teerex.RegisterEnclaveArgs {
	var rd [64]byte
	copy(rd[:], id[:])
	q := sim.NewQuote(mr, false, rd, t0)
	x.quotes[string(q)] = true
	return teerex.RegisterEnclaveArgs{Proof: q, URL: "wss://x", Method: sim.Method}
}

func (x *callsFixture) ctx(o *state.Overlay, signer account.ID, root bool) *types.Context {
	return &types.Context{Store: o, Codec: x.codec, Block: types.Block{Height: 2, Time: t0}, Origin: types.Origin{Signer: signer, Root: root}}
}

// callSeeds are well-formed arguments for each call (by index).
func (x *callsFixture) callSeeds() map[int]any {
	return map[int]any{
		0:  balances.TransferArgs{Dest: e1, Amount: types.NewBalance(5)},
		1:  balances.SetBalanceArgs{Who: e1, Free: types.NewBalance(5)},
		2:  x.registration(rogue, mrA),
		3:  teerex.UnregisterEnclaveArgs{Signer: e2},
		4:  teerex.SetSecurityFlagsArgs{Flags: teerex.SecurityFlags{AllowSim: true, AllowDebug: true}},
		5:  enclavebridge.InvokeArgs{Shard: shardA, Ciphertext: []byte("ciphertext")},
		6:  enclavebridge.ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: []byte("beneficiary"), Amount: types.NewBalance(7)},
		7:  enclavebridge.UnshieldFundsArgs{Shard: shardA, Beneficiary: e3, Amount: types.NewBalance(1), CallHash: [32]byte{1}, VerifiedHeight: 1},
		8:  enclavebridge.ConfirmProcessedParentchainBlockArgs{Shard: shardA, BlockNumber: 1},
		9:  enclavebridge.UpdateShardConfigArgs{Shard: shardA, Config: enclavebridge.ShardConfig{EnclaveFingerprint: mrA}},
		10: ConfirmImportedSidechainBlockArgs{Shard: shardA, Candidate: block(1, "one")},
	}
}

// FuzzCallArgs: the arguments of every call the parentchain's modules
// take (transactions carry any bytes; the enclave decodes the shard
// calls' arguments the same way) decode strictly or fail. Whatever the
// bytes, signer and origin, Exec never panics, every refusal is a named
// error that leaves no write and no event behind, root-only calls succeed
// only for root, and a registration succeeds only with a genuine quote.
func FuzzCallArgs(f *testing.F) {
	x := newCallsFixture(f)
	for i, args := range x.callSeeds() {
		for s := range x.signers {
			f.Add(uint8(i), uint8(s), i == 1 || i == 4, x.codec.MustMarshal(args))
		}
	}
	f.Fuzz(func(t *testing.T, which, signer uint8, root bool, args []byte) {
		c := x.calls[int(which)%len(x.calls)]
		o := state.NewOverlay(x.store)
		ctx := x.ctx(o, x.signers[int(signer)%len(x.signers)], root)
		err := c.mod.Exec(ctx, c.method, args)
		if err != nil {
			if types.AsError(err) == nil {
				t.Fatalf("%s.%s: unnamed error %v", c.mod.Name(), c.method, err)
			}
			if o.Len() != 0 || len(ctx.Events()) != 0 {
				t.Fatalf("%s.%s failed (%v) but left %d writes and %d events", c.mod.Name(), c.method, err, o.Len(), len(ctx.Events()))
			}
			return
		}
		switch c.method {
		case "set_balance", "set_security_flags":
			if !root {
				t.Fatalf("%s.%s succeeded without root", c.mod.Name(), c.method)
			}
		case "register_enclave":
			var a teerex.RegisterEnclaveArgs
			if err := x.codec.Unmarshal(args, &a); err != nil || !x.quotes[string(a.Proof)] {
				t.Fatalf("registered with a proof nobody attested: %x (%v)", a.Proof, err)
			}
		}
	})
}
