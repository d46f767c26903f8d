package enclavebridge

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/state/statetest"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

var (
	alice = dev("//Alice")
	bob   = dev("//Bob")
	e1    = dev("//Enclave1") // runs mrA
	e2    = dev("//Enclave2") // runs mrA
	e3    = dev("//Enclave3") // runs mrB
	rogue = dev("//Rogue")    // never registered

	mrA = attestation.MrEnclave(sha256.Sum256([]byte("enclave A")))
	mrB = attestation.MrEnclave(sha256.Sum256([]byte("enclave B")))

	shardA = sidechain.ShardID(mrA)                                   // the default shard of mrA
	shardB = sidechain.ShardID(mrB)                                   // the default shard of mrB
	shardX = sidechain.ShardID(sha256.Sum256([]byte("custom shard"))) // no enclave's mrenclave

	t0 = time.UnixMilli(1_700_000_000_000).UTC()
)

func dev(uri string) account.ID {
	p, err := account.DevPair(uri)
	if err != nil {
		panic(err)
	}
	return p.ID()
}

type env struct {
	t      *testing.T
	codec  *types.Codec
	store  *state.Store
	o      *state.Overlay
	bal    *balances.Module
	reg    *teerex.Module
	br     *Module
	height int64
	now    time.Time
	hash   []byte
}

func newEnv(t *testing.T) *env {
	t.Helper()
	st, err := state.Open(t.TempDir(), statetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	codec := types.NewCodec()
	e := &env{t: t, codec: codec, store: st, o: state.NewOverlay(st), height: 1, now: t0}
	e.bal = balances.New(codec)
	e.reg = teerex.New(codec, sim.NewVerifier())
	e.br = New(codec, e.bal, e.reg)
	ctx := e.ctx(account.ID{})
	bg := fmt.Sprintf(`{"tx_fee":"0","balances":[{"account":"%s","amount":"1000000"},{"account":"%s","amount":"50"}]}`, alice, bob)
	if err := e.bal.InitGenesis(ctx, json.RawMessage(bg)); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.InitGenesis(ctx, json.RawMessage(`{"security_flags":{"allow_sim":true}}`)); err != nil {
		t.Fatal(err)
	}
	e.registerAs(e1, mrA)
	e.registerAs(e2, mrA)
	e.registerAs(e3, mrB)
	return e
}

func (e *env) ctx(signer account.ID) *types.Context {
	return &types.Context{Store: e.o, Codec: e.codec, Block: types.Block{Height: e.height, Time: e.now},
		Origin: types.Origin{Signer: signer}}
}

// run runs a call of mod in a child overlay. On error it checks that the
// call wrote nothing and emitted nothing; on success it applies the writes.
func (e *env) run(mod types.Module, signer account.ID, method string, args any) ([]types.Event, error) {
	e.t.Helper()
	child := e.o.Child()
	ctx := e.ctx(signer).WithStore(child)
	err := mod.Exec(ctx, method, e.codec.MustMarshal(args))
	if err != nil {
		if child.Len() != 0 || len(ctx.Events()) != 0 {
			e.t.Fatalf("%s failed (%v) but left %d writes and %d events", method, err, child.Len(), len(ctx.Events()))
		}
		return nil, err
	}
	child.Apply()
	return ctx.Events(), nil
}

func (e *env) exec(signer account.ID, method string, args any) ([]types.Event, error) {
	e.t.Helper()
	return e.run(e.br, signer, method, args)
}

func (e *env) registerAs(signer account.ID, mr attestation.MrEnclave) {
	e.t.Helper()
	var rd [64]byte
	copy(rd[:], signer[:])
	args := teerex.RegisterEnclaveArgs{Proof: sim.NewQuote(mr, false, rd, e.now), URL: "wss://" + signer.String(), Method: "sim"}
	if _, err := e.run(e.reg, signer, "register_enclave", args); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) unregister(signer account.ID) {
	e.t.Helper()
	if _, err := e.run(e.reg, signer, "unregister_enclave", teerex.UnregisterEnclaveArgs{Signer: signer}); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) confirm(signer account.ID, shard sidechain.ShardID) ([]types.Event, error) {
	e.t.Helper()
	return e.exec(signer, "confirm_processed_parentchain_block", ConfirmProcessedParentchainBlockArgs{
		Shard: shard, BlockHash: [32]byte{1}, BlockNumber: e.height - 1, CallsRoot: [32]byte{2}})
}

func (e *env) mustConfirm(signer account.ID, shard sidechain.ShardID) {
	e.t.Helper()
	if _, err := e.confirm(signer, shard); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) free(id account.ID) types.Balance { return e.bal.Account(e.ctx(id), id).Free }

func (e *env) commit() {
	e.t.Helper()
	var err error
	if e.hash, err = e.store.CommitOverlay(e.o, e.height); err != nil {
		e.t.Fatal(err)
	}
	e.o = state.NewOverlay(e.store)
	e.height++
}

func (e *env) query(path string) (string, error) {
	res, err := e.br.Query(e.store, strings.Split(path, "/"))
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(res)
	if err != nil {
		e.t.Fatal(err)
	}
	return string(b), nil
}

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func wantEvents(t *testing.T, got []types.Event, want ...types.Event) {
	t.Helper()
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("events\n got %s\nwant %s", g, w)
	}
}

func wantStatus(t *testing.T, got []ShardSignerStatus, want ...ShardSignerStatus) {
	t.Helper()
	if want == nil {
		want = []ShardSignerStatus{}
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		t.Fatalf("status\n got %s\nwant %s", g, w)
	}
}

func TestBondingAccount(t *testing.T) {
	want := blake2b.Sum256(append([]byte("integritee/shard-bonding-account"), shardA[:]...))
	if BondingAccount(shardA) != account.ID(want) {
		t.Fatal("bonding account derivation")
	}
	if BondingAccount(shardA) == BondingAccount(shardX) || BondingAccount(shardA) == account.ID(shardA) {
		t.Fatal("bonding accounts collide")
	}
}

func TestDefaultShardActivity(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx(e1)
	if e.br.IsKnownShard(ctx, shardA) {
		t.Fatal("shard known before any activity")
	}
	if !e.br.IsAuthorised(ctx, e1, shardA) || e.br.IsAuthorised(ctx, e3, shardA) || e.br.IsAuthorised(ctx, rogue, shardA) {
		t.Fatal("default authorisation")
	}

	e.height = 10
	evs, err := e.confirm(e1, shardA)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "ProcessedParentchainBlock", "shard", shardA, "signer", e1,
		"block_hash", "0x01"+strings.Repeat("00", 31), "block_number", 9, "calls_root", "0x02"+strings.Repeat("00", 31)))
	if evs[0].Attrs[0].Value != shardA.String() {
		t.Fatalf("shard attr %q", evs[0].Attrs[0].Value)
	}
	if !e.br.IsKnownShard(e.ctx(e1), shardA) {
		t.Fatal("shard not known after activity")
	}

	e.height = 11
	e.mustConfirm(e2, shardA)
	e.height = 12
	e.mustConfirm(e1, shardA) // updates, keeps the order
	wantStatus(t, e.br.ShardStatus(e.ctx(e1), shardA),
		ShardSignerStatus{e1, mrA, 12}, ShardSignerStatus{e2, mrA, 11})
	if p, ok := e.br.Primary(e.ctx(e1), shardA); !ok || p != e1 {
		t.Fatalf("primary %v %v", p, ok)
	}

	// An enclave running other code is not authorised; nor is a non-enclave.
	_, err = e.confirm(e3, shardA)
	wantErr(t, err, ErrNotAuthorised)
	_, err = e.confirm(rogue, shardA)
	wantErr(t, err, ErrEnclaveNotRegistered)

	// An unregistered enclave drops out of the status; the next one is primary.
	e.unregister(e1)
	wantStatus(t, e.br.ShardStatus(e.ctx(e1), shardA), ShardSignerStatus{e2, mrA, 11})
	if p, _ := e.br.Primary(e.ctx(e1), shardA); p != e2 {
		t.Fatalf("primary %v", p)
	}
	// Its stale entry is pruned at the next activity; re-registered, it
	// comes back last.
	e.height = 13
	e.mustConfirm(e2, shardA)
	if raw := e.br.rawStatus(e.ctx(e1), shardA); len(raw) != 1 || raw[0].Signer != e2 {
		t.Fatalf("raw status %+v", raw)
	}
	e.registerAs(e1, mrA)
	e.height = 14
	e.mustConfirm(e1, shardA)
	wantStatus(t, e.br.ShardStatus(e.ctx(e1), shardA),
		ShardSignerStatus{e2, mrA, 13}, ShardSignerStatus{e1, mrA, 14})
}

func TestStatusFiltersReRegisteredEnclave(t *testing.T) {
	e := newEnv(t)
	e.mustConfirm(e1, shardA)
	e.mustConfirm(e2, shardA)
	// e1 renews its registration running other code: it is no longer
	// authorised, and drops out of the status without being unregistered.
	e.registerAs(e1, mrB)
	wantStatus(t, e.br.ShardStatus(e.ctx(e1), shardA), ShardSignerStatus{e2, mrA, 1})
	if p, _ := e.br.Primary(e.ctx(e1), shardA); p != e2 {
		t.Fatalf("primary %v", p)
	}
	_, err := e.confirm(e1, shardA)
	wantErr(t, err, ErrNotAuthorised)
}

func TestNoPrimaryForUnknownShard(t *testing.T) {
	e := newEnv(t)
	if _, ok := e.br.Primary(e.ctx(e1), shardX); ok {
		t.Fatal("primary of an unknown shard")
	}
	wantStatus(t, e.br.ShardStatus(e.ctx(e1), shardX))
}

func TestInvoke(t *testing.T) {
	e := newEnv(t)
	ct := []byte("encrypted trusted operation")
	_, err := e.exec(alice, "invoke", InvokeArgs{Shard: shardA, Ciphertext: ct})
	wantErr(t, err, ErrUnknownShard)

	e.mustConfirm(e1, shardA)
	child := e.o.Child()
	ctx := e.ctx(alice).WithStore(child)
	if err := e.br.Exec(ctx, "invoke", e.codec.MustMarshal(InvokeArgs{Shard: shardA, Ciphertext: ct})); err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(ct)
	wantEvents(t, ctx.Events(), types.NewEvent(ModuleName, "IndirectInvocationRegistered",
		"shard", shardA, "sender", alice, "ciphertext_hash", fmt.Sprintf("0x%x", h), "size", len(ct)))
	if child.Len() != 1 { // the shard's call count of this block
		t.Fatalf("invoke wrote %d state keys", child.Len())
	}

	_, err = e.exec(alice, "invoke", InvokeArgs{Shard: shardA})
	wantErr(t, err, ErrEmptyPayload)
	_, err = e.exec(alice, "invoke", InvokeArgs{Shard: shardA, Ciphertext: make([]byte, MaxInvocationSize+1)})
	wantErr(t, err, ErrPayloadTooLarge)
	if _, err := e.exec(alice, "invoke", InvokeArgs{Shard: shardA, Ciphertext: make([]byte, MaxInvocationSize)}); err != nil {
		t.Fatalf("max size: %v", err)
	}
}

// A shard takes at most MaxShardCallsPerBlock invoke and shield_funds calls
// in one block, together; the next block takes more, and another shard's
// calls are counted apart.
func TestShardCallsPerBlockAreBounded(t *testing.T) {
	e := newEnv(t)
	e.mustConfirm(e1, shardA)
	e.mustConfirm(e3, shardB)
	ct := []byte("encrypted trusted operation")
	shield := ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: []byte{1}, Amount: types.NewBalance(1)}
	for i := range MaxShardCallsPerBlock {
		var err error
		if i%2 == 0 {
			_, err = e.exec(alice, "invoke", InvokeArgs{Shard: shardA, Ciphertext: ct})
		} else {
			_, err = e.exec(alice, "shield_funds", shield)
		}
		if err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	bonded := e.free(BondingAccount(shardA))
	_, err := e.exec(alice, "invoke", InvokeArgs{Shard: shardA, Ciphertext: ct})
	wantErr(t, err, ErrShardBlockFull)
	_, err = e.exec(alice, "shield_funds", shield)
	wantErr(t, err, ErrShardBlockFull)
	if got := e.free(BondingAccount(shardA)); got != bonded {
		t.Fatalf("a refused shield_funds moved funds: bonded %s, was %s", got, bonded)
	}
	if _, err := e.exec(alice, "invoke", InvokeArgs{Shard: shardB, Ciphertext: ct}); err != nil {
		t.Fatalf("another shard's call: %v", err)
	}
	e.commit()
	if _, err := e.exec(alice, "invoke", InvokeArgs{Shard: shardA, Ciphertext: ct}); err != nil {
		t.Fatalf("the next block: %v", err)
	}
}

func TestShieldFunds(t *testing.T) {
	e := newEnv(t)
	benef := []byte{0xde, 0xad, 0xbe, 0xef}
	args := ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: benef, Amount: types.NewBalance(1000)}
	_, err := e.exec(alice, "shield_funds", args)
	wantErr(t, err, ErrUnknownShard)

	e.mustConfirm(e1, shardA)
	bonding := BondingAccount(shardA)
	evs, err := e.exec(alice, "shield_funds", args)
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs,
		types.NewEvent(balances.ModuleName, "NewAccount", "account", bonding),
		types.NewEvent(balances.ModuleName, "Transfer", "from", alice, "to", bonding, "amount", types.NewBalance(1000)),
		types.NewEvent(ModuleName, "ShieldFunds", "shard", shardA, "encrypted_beneficiary", "0xdeadbeef", "amount", types.NewBalance(1000), "from", alice))
	if e.free(alice) != types.NewBalance(999_000) || e.free(bonding) != types.NewBalance(1000) {
		t.Fatalf("balances %s %s", e.free(alice), e.free(bonding))
	}

	bad := []struct {
		name string
		args ShieldFundsArgs
		from account.ID
		want error
	}{
		{"unknown shard", ShieldFundsArgs{Shard: shardX, EncryptedBeneficiary: benef, Amount: types.NewBalance(1)}, alice, ErrUnknownShard},
		{"empty beneficiary", ShieldFundsArgs{Shard: shardA, Amount: types.NewBalance(1)}, alice, ErrEmptyPayload},
		{"beneficiary too large", ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: make([]byte, MaxEncryptedBeneficiarySize+1), Amount: types.NewBalance(1)}, alice, ErrPayloadTooLarge},
		{"zero amount", ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: benef}, alice, ErrZeroAmount},
		{"insufficient balance", ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: benef, Amount: types.NewBalance(51)}, bob, balances.ErrInsufficientBalance},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.exec(c.from, "shield_funds", c.args)
			wantErr(t, err, c.want)
		})
	}
	if e.free(alice) != types.NewBalance(999_000) || e.free(bob) != types.NewBalance(50) || e.free(bonding) != types.NewBalance(1000) {
		t.Fatal("refused shielding moved funds")
	}
}

func TestUnshieldFunds(t *testing.T) {
	e := newEnv(t)
	e.mustConfirm(e1, shardA)
	if _, err := e.exec(alice, "shield_funds", ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: []byte{1}, Amount: types.NewBalance(1000)}); err != nil {
		t.Fatal(err)
	}
	bonding := BondingAccount(shardA)
	charlie := dev("//Charlie")
	call := [32]byte{0xca, 0x11}
	e.height = 5
	evs, err := e.exec(e2, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: charlie, Amount: types.NewBalance(400), CallHash: call, VerifiedHeight: e.height})
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs,
		types.NewEvent(balances.ModuleName, "NewAccount", "account", charlie),
		types.NewEvent(balances.ModuleName, "Transfer", "from", bonding, "to", charlie, "amount", types.NewBalance(400)),
		types.NewEvent(ModuleName, "UnshieldedFunds", "shard", shardA, "beneficiary", charlie, "amount", types.NewBalance(400),
			"call_hash", "0xca11"+strings.Repeat("00", 30), "by", e2))
	if e.free(charlie) != types.NewBalance(400) || e.free(bonding) != types.NewBalance(600) {
		t.Fatal("balances after unshield")
	}
	if h, ok := e.br.UnshieldExecuted(e.ctx(e1), shardA, call); !ok || h != 5 {
		t.Fatalf("executed %d %v", h, ok)
	}
	// Unshielding does not count as activity.
	wantStatus(t, e.br.ShardStatus(e.ctx(e1), shardA), ShardSignerStatus{e1, mrA, 1})

	bad := []struct {
		name string
		from account.ID
		args UnshieldFundsArgs
		want error
	}{
		{"replay", e1, UnshieldFundsArgs{Shard: shardA, Beneficiary: charlie, Amount: types.NewBalance(1), CallHash: call, VerifiedHeight: e.height}, ErrUnshieldAlreadyProcessed},
		{"beyond bonding", e1, UnshieldFundsArgs{Shard: shardA, Beneficiary: charlie, Amount: types.NewBalance(601), CallHash: [32]byte{2}, VerifiedHeight: e.height}, ErrInsufficientBonding},
		{"zero", e1, UnshieldFundsArgs{Shard: shardA, Beneficiary: charlie, CallHash: [32]byte{3}, VerifiedHeight: e.height}, ErrZeroAmount},
		{"other code", e3, UnshieldFundsArgs{Shard: shardA, Beneficiary: e3, Amount: types.NewBalance(1), CallHash: [32]byte{4}, VerifiedHeight: e.height}, ErrNotAuthorised},
		{"not an enclave", rogue, UnshieldFundsArgs{Shard: shardA, Beneficiary: rogue, Amount: types.NewBalance(1), CallHash: [32]byte{5}, VerifiedHeight: e.height}, ErrEnclaveNotRegistered},
		{"other shard, empty bonding", e3, UnshieldFundsArgs{Shard: sidechain.ShardID(mrB), Beneficiary: e3, Amount: types.NewBalance(1), CallHash: call, VerifiedHeight: e.height}, ErrInsufficientBonding},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.exec(c.from, "unshield_funds", c.args)
			wantErr(t, err, c.want)
		})
	}
	if e.free(charlie) != types.NewBalance(400) || e.free(bonding) != types.NewBalance(600) {
		t.Fatal("refused unshielding moved funds")
	}
	// All of the bonding account can be paid out.
	if _, err := e.exec(e1, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: bob, Amount: types.NewBalance(600), CallHash: [32]byte{6}, VerifiedHeight: e.height}); err != nil {
		t.Fatal(err)
	}
	if !e.free(bonding).IsZero() || e.free(bob) != types.NewBalance(650) {
		t.Fatal("balances after draining")
	}
}

func TestShardConfigFirstClaim(t *testing.T) {
	e := newEnv(t)
	e.height = 20
	// Shard A's own enclave must name its own mrenclave; a non-enclave may
	// not claim at all.
	_, err := e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}})
	wantErr(t, err, ErrWrongFingerprint)
	cfg := ShardConfig{EnclaveFingerprint: mrA}
	_, err = e.exec(rogue, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: cfg})
	wantErr(t, err, ErrEnclaveNotRegistered)

	// e1 (mrA) claims its default shard A, not yet in use; the delay does
	// not apply.
	evs, err := e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: cfg, Delay: 100})
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "ShardConfigUpdated", "shard", shardA, "enclave_fingerprint", mrA,
		"maintenance_mode", false, "enact_at", 20, "by", e1))
	ctx := e.ctx(e1)
	if c, ok := e.br.ActiveConfig(ctx, shardA); !ok || c != cfg {
		t.Fatalf("active %+v %v", c, ok)
	}
	if u, _ := e.br.ShardConfigRecord(ctx, shardA); u.Pending != nil {
		t.Fatal("first claim left a pending upgrade")
	}
	wantStatus(t, e.br.ShardStatus(ctx, shardA), ShardSignerStatus{e1, mrA, 20})
	if !e.br.IsKnownShard(ctx, shardA) || !e.br.IsAuthorised(ctx, e1, shardA) || !e.br.IsAuthorised(ctx, e2, shardA) || e.br.IsAuthorised(ctx, e3, shardA) {
		t.Fatal("authorisation after the claim")
	}
	// Now configured, the shard takes invocations.
	if _, err := e.exec(alice, "invoke", InvokeArgs{Shard: shardA, Ciphertext: []byte{1}}); err != nil {
		t.Fatal(err)
	}

	// A shard whose id is no enclave's mrenclave cannot be claimed by any
	// enclave, whatever fingerprint it names.
	for _, c := range []struct {
		from account.ID
		fp   attestation.MrEnclave
	}{{e1, mrA}, {e3, mrB}, {e3, attestation.MrEnclave(shardX)}} {
		_, err = e.exec(c.from, "update_shard_config", UpdateShardConfigArgs{Shard: shardX, Config: ShardConfig{EnclaveFingerprint: c.fp}})
		wantErr(t, err, ErrShardClaimRefused)
	}
	if e.br.IsKnownShard(e.ctx(e3), shardX) {
		t.Fatal("refused claims made shard X known")
	}
}

// TestShardSquattingRefused is the squatting attack: an enclave of another
// mrenclave (e3, mrB) claims shard A, the default shard of mrA, before A's
// enclaves have acted on it, to control A's bonding account. With or without
// funds in that account, the claim is refused, nothing changes, e3 cannot
// unshield from it, and A's own enclaves claim and use the shard as usual.
func TestShardSquattingRefused(t *testing.T) {
	for _, funded := range []bool{true, false} {
		t.Run(fmt.Sprintf("funded=%v", funded), func(t *testing.T) {
			e := newEnv(t)
			bonding := BondingAccount(shardA)
			if funded {
				// shield_funds refuses a shard nobody acted on, but anyone
				// can derive the bonding account and transfer to it.
				_, err := e.exec(alice, "shield_funds", ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: []byte{1}, Amount: types.NewBalance(1000)})
				wantErr(t, err, ErrUnknownShard)
				if _, err := e.run(e.bal, alice, "transfer", balances.TransferArgs{Dest: bonding, Amount: types.NewBalance(1000)}); err != nil {
					t.Fatal(err)
				}
			}
			held := e.free(bonding)
			unchanged := func(step string) {
				t.Helper()
				if _, ok := e.o.Get(ConfigKey(shardA)); ok {
					t.Fatalf("%s: shard A has a configuration", step)
				}
				if _, ok := e.o.Get(StatusKey(shardA)); ok {
					t.Fatalf("%s: shard A has a status", step)
				}
				ctx := e.ctx(e3)
				if e.br.IsKnownShard(ctx, shardA) || e.br.IsAuthorised(ctx, e3, shardA) || !e.br.IsAuthorised(ctx, e1, shardA) {
					t.Fatalf("%s: authorisation changed", step)
				}
				if e.free(bonding) != held || !e.free(e3).IsZero() {
					t.Fatalf("%s: bonding %s, e3 %s", step, e.free(bonding), e.free(e3))
				}
			}

			e.height = 5
			for _, a := range []UpdateShardConfigArgs{
				{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}},
				{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}, Delay: 3},
				{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrA}},
				{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB, MaintenanceMode: true}},
			} {
				_, err := e.exec(e3, "update_shard_config", a) // run checks: no writes, no events
				wantErr(t, err, ErrShardClaimRefused)
			}
			unchanged("after the claims")

			// Without the claim e3 is not authorised for shard A: it
			// cannot unshield from A's bonding account nor act on the shard.
			_, err := e.exec(e3, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: e3, Amount: types.NewBalance(1000), CallHash: [32]byte{0xba, 0xd0}, VerifiedHeight: e.height})
			wantErr(t, err, ErrNotAuthorised)
			_, err = e.confirm(e3, shardA)
			wantErr(t, err, ErrNotAuthorised)
			unchanged("after the unshielding")

			// A's own enclave claims the shard; e3 still has no way in.
			e.height = 6
			if _, err := e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrA}}); err != nil {
				t.Fatal(err)
			}
			e.mustConfirm(e2, shardA)
			wantStatus(t, e.br.ShardStatus(e.ctx(e1), shardA), ShardSignerStatus{e1, mrA, 6}, ShardSignerStatus{e2, mrA, 6})
			_, err = e.exec(e3, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}})
			wantErr(t, err, ErrNotAuthorised)
			_, err = e.exec(e3, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: e3, Amount: types.NewBalance(1), CallHash: [32]byte{0xba, 0xd0}, VerifiedHeight: e.height})
			wantErr(t, err, ErrNotAuthorised)
			if c, _ := e.br.ActiveConfig(e.ctx(e1), shardA); c.EnclaveFingerprint != mrA {
				t.Fatalf("config %+v", c)
			}
			if funded {
				// The funds are A's enclaves' to pay out.
				if _, err := e.exec(e2, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: bob, Amount: held, CallHash: [32]byte{1}, VerifiedHeight: e.height}); err != nil {
					t.Fatal(err)
				}
				if !e.free(bonding).IsZero() || e.free(bob) != types.NewBalance(1050) {
					t.Fatalf("bonding %s, bob %s", e.free(bonding), e.free(bob))
				}
			}
			if !e.free(e3).IsZero() {
				t.Fatalf("e3 holds %s", e.free(e3))
			}
		})
	}
}

func TestShardConfigCannotHijackDefaultShard(t *testing.T) {
	e := newEnv(t)
	e.mustConfirm(e1, shardA) // shard A in use under the default rule
	_, err := e.exec(e3, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}})
	wantErr(t, err, ErrShardClaimRefused)
	if _, ok := e.br.ActiveConfig(e.ctx(e1), shardA); ok {
		t.Fatal("hijack left a configuration")
	}
	// The default enclave may configure it.
	cfg := ShardConfig{EnclaveFingerprint: mrA, MaintenanceMode: true}
	if _, err := e.exec(e2, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	if c, _ := e.br.ActiveConfig(e.ctx(e1), shardA); c != cfg {
		t.Fatalf("config %+v", c)
	}
	wantStatus(t, e.br.ShardStatus(e.ctx(e1), shardA), ShardSignerStatus{e1, mrA, 1}, ShardSignerStatus{e2, mrA, 1})
}

// router dispatches to modules by name, as the application does for sudo.
type router map[string]types.Module

func (r router) Dispatch(ctx *types.Context, call types.Call) error {
	m, ok := r[call.Module]
	if !ok {
		return types.ErrUnknownModule.Wrap("%q", call.Module)
	}
	return m.Exec(ctx, call.Method, call.Args)
}

// TestRootCreatesCustomShard: shard X's id is no enclave's mrenclave, so no
// enclave can claim it; the sudo key creates it through sudo, naming the
// mrenclave to run it, after which it belongs to that mrenclave's enclaves.
func TestRootCreatesCustomShard(t *testing.T) {
	e := newEnv(t)
	su := sudo.New(e.codec, router{ModuleName: e.br})
	if err := su.InitGenesis(e.ctx(account.ID{}), json.RawMessage(fmt.Sprintf(`{"key":"%s"}`, alice))); err != nil {
		t.Fatal(err)
	}
	create := func(shard sidechain.ShardID, cfg ShardConfig, delay uint64) sudo.SudoArgs {
		return sudo.SudoArgs{Call: types.Call{Module: ModuleName, Method: "update_shard_config",
			Args: e.codec.MustMarshal(UpdateShardConfigArgs{Shard: shard, Config: cfg, Delay: delay})}}
	}
	cfg := ShardConfig{EnclaveFingerprint: mrB}

	// Nobody else can create it: not an enclave, not the sudo key without
	// sudo, not another account through sudo.
	e.height = 7
	_, err := e.exec(e3, "update_shard_config", UpdateShardConfigArgs{Shard: shardX, Config: cfg})
	wantErr(t, err, ErrShardClaimRefused)
	_, err = e.exec(alice, "update_shard_config", UpdateShardConfigArgs{Shard: shardX, Config: cfg})
	wantErr(t, err, ErrEnclaveNotRegistered)
	_, err = e.run(su, bob, "sudo", create(shardX, cfg, 0))
	wantErr(t, err, sudo.ErrRequireSudo)
	_, err = e.confirm(e3, shardX)
	wantErr(t, err, ErrNotAuthorised)

	// The sudo key creates it for mrB; the delay does not apply, and root
	// leaves no status entry.
	evs, err := e.run(su, alice, "sudo", create(shardX, cfg, 100))
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs,
		types.NewEvent(ModuleName, "ShardConfigUpdated", "shard", shardX, "enclave_fingerprint", mrB,
			"maintenance_mode", false, "enact_at", 7, "by", "root"),
		types.NewEvent(sudo.ModuleName, "Sudid", "call", "enclavebridge.update_shard_config"))
	ctx := e.ctx(e3)
	if u, ok := e.br.ShardConfigRecord(ctx, shardX); !ok || u.Active != cfg || u.Pending != nil {
		t.Fatalf("record %+v %v", u, ok)
	}
	wantStatus(t, e.br.ShardStatus(ctx, shardX))
	if !e.br.IsKnownShard(ctx, shardX) || !e.br.IsAuthorised(ctx, e3, shardX) || e.br.IsAuthorised(ctx, e1, shardX) {
		t.Fatal("authorisation after creation")
	}

	// Root creates, it does not reconfigure: neither shard X now nor shard
	// A once A's enclaves use it.
	_, err = e.run(su, alice, "sudo", create(shardX, ShardConfig{EnclaveFingerprint: mrA}, 0))
	wantErr(t, err, ErrShardClaimRefused)
	e.mustConfirm(e1, shardA)
	_, err = e.run(su, alice, "sudo", create(shardA, cfg, 0))
	wantErr(t, err, ErrShardClaimRefused)
	if _, ok := e.br.ActiveConfig(ctx, shardA); ok {
		t.Fatal("root reconfigured shard A")
	}

	// The shard is mrB's: e3 acts on it, takes funds and upgrades it.
	e.height = 8
	e.mustConfirm(e3, shardX)
	if p, _ := e.br.Primary(e.ctx(e3), shardX); p != e3 {
		t.Fatalf("primary %v", p)
	}
	if _, err := e.exec(alice, "shield_funds", ShieldFundsArgs{Shard: shardX, EncryptedBeneficiary: []byte{1}, Amount: types.NewBalance(10)}); err != nil {
		t.Fatal(err)
	}
	_, err = e.exec(e1, "unshield_funds", UnshieldFundsArgs{Shard: shardX, Beneficiary: e1, Amount: types.NewBalance(10), CallHash: [32]byte{1}, VerifiedHeight: e.height})
	wantErr(t, err, ErrNotAuthorised)
	if _, err := e.exec(e3, "unshield_funds", UnshieldFundsArgs{Shard: shardX, Beneficiary: bob, Amount: types.NewBalance(10), CallHash: [32]byte{1}, VerifiedHeight: e.height}); err != nil {
		t.Fatal(err)
	}
	_, err = e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardX, Config: ShardConfig{EnclaveFingerprint: mrA}, Delay: 2})
	wantErr(t, err, ErrNotAuthorised)
	if _, err := e.exec(e3, "update_shard_config", UpdateShardConfigArgs{Shard: shardX, Config: ShardConfig{EnclaveFingerprint: mrA}, Delay: 2}); err != nil {
		t.Fatal(err)
	}
	e.height = 10
	if c, _ := e.br.ActiveConfig(e.ctx(e1), shardX); c.EnclaveFingerprint != mrA || !e.br.IsAuthorised(e.ctx(e1), e1, shardX) {
		t.Fatalf("active at 10: %+v", c)
	}
}

func TestShardConfigUpgrade(t *testing.T) {
	e := newEnv(t)
	e.height = 10
	if _, err := e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrA}}); err != nil {
		t.Fatal(err)
	}
	e.mustConfirm(e2, shardA)

	// An enclave of other code may not upgrade.
	_, err := e.exec(e3, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}, Delay: 5})
	wantErr(t, err, ErrNotAuthorised)
	_, err = e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}, Delay: 1 << 63})
	wantErr(t, err, ErrDelayTooLarge)

	e.height = 12
	evs, err := e.exec(e2, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}, Delay: 5})
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "ShardConfigUpdated", "shard", shardA, "enclave_fingerprint", mrB,
		"maintenance_mode", false, "enact_at", 17, "by", e2))

	// Before height 17 mrA still rules.
	e.height = 16
	ctx := e.ctx(e1)
	u, _ := e.br.ShardConfigRecord(ctx, shardA)
	if u.Active.EnclaveFingerprint != mrA || u.Pending == nil || *u.Pending != (PendingConfig{ShardConfig{EnclaveFingerprint: mrB}, 17}) {
		t.Fatalf("record at 16: %+v", u)
	}
	wantStatus(t, e.br.ShardStatus(ctx, shardA), ShardSignerStatus{e1, mrA, 10}, ShardSignerStatus{e2, mrA, 12})
	_, err = e.confirm(e3, shardA)
	wantErr(t, err, ErrNotAuthorised)

	// From height 17 mrB does; the mrA enclaves drop out of the status.
	e.height = 17
	ctx = e.ctx(e1)
	if c, _ := e.br.ActiveConfig(ctx, shardA); c.EnclaveFingerprint != mrB {
		t.Fatalf("active at 17: %+v", c)
	}
	wantStatus(t, e.br.ShardStatus(ctx, shardA))
	if _, ok := e.br.Primary(ctx, shardA); ok {
		t.Fatal("primary before any mrB activity")
	}
	_, err = e.confirm(e1, shardA)
	wantErr(t, err, ErrNotAuthorised)
	e.mustConfirm(e3, shardA)
	wantStatus(t, e.br.ShardStatus(e.ctx(e3), shardA), ShardSignerStatus{e3, mrB, 17})
	if p, _ := e.br.Primary(e.ctx(e3), shardA); p != e3 {
		t.Fatalf("primary %v", p)
	}

	// The enacted upgrade is materialised by the next change, which mrB
	// now makes, immediately (delay 0).
	e.height = 18
	final := ShardConfig{EnclaveFingerprint: mrB, MaintenanceMode: true}
	if _, err := e.exec(e3, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: final}); err != nil {
		t.Fatal(err)
	}
	var raw UpgradableShardConfig
	e.ctx(e3).Get(shardKey(prefixConfig, shardA), &raw)
	if raw.Active != final || raw.Pending != nil {
		t.Fatalf("stored %+v", raw)
	}
}

func TestShardConfigPendingReplaced(t *testing.T) {
	e := newEnv(t)
	if _, err := e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrA}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}, Delay: 10}); err != nil {
		t.Fatal(err)
	}
	e.height = 3
	if _, err := e.exec(e2, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrA, MaintenanceMode: true}, Delay: 2}); err != nil {
		t.Fatal(err)
	}
	u, _ := e.br.ShardConfigRecord(e.ctx(e1), shardA)
	if u.Active != (ShardConfig{EnclaveFingerprint: mrA}) || *u.Pending != (PendingConfig{ShardConfig{mrA, true}, 5}) {
		t.Fatalf("record %+v %+v", u, u.Pending)
	}
	e.height = 11 // the replaced upgrade to mrB never happens
	if c, _ := e.br.ActiveConfig(e.ctx(e1), shardA); c != (ShardConfig{mrA, true}) {
		t.Fatalf("active %+v", c)
	}
}

func TestTooManyEnclaves(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < MaxShardEnclaves; i++ {
		id := account.ID(sha256.Sum256([]byte(fmt.Sprint("enclave ", i))))
		e.registerAs(id, mrA)
		e.mustConfirm(id, shardA)
	}
	_, err := e.confirm(e1, shardA)
	wantErr(t, err, ErrTooManyEnclaves)
	// Known members still confirm; once one leaves, there is room.
	first := account.ID(sha256.Sum256([]byte("enclave 0")))
	e.mustConfirm(first, shardA)
	e.unregister(first)
	e.mustConfirm(e1, shardA)
	if n := len(e.br.ShardStatus(e.ctx(e1), shardA)); n != MaxShardEnclaves {
		t.Fatalf("status has %d", n)
	}
}

func TestBadArgsAndUnknownCall(t *testing.T) {
	e := newEnv(t)
	child := e.o.Child()
	ctx := e.ctx(e1).WithStore(child)
	for _, m := range []string{"invoke", "shield_funds", "unshield_funds", "confirm_processed_parentchain_block", "update_shard_config"} {
		if err := e.br.Exec(ctx, m, []byte{0xa0}); !errors.Is(err, types.ErrBadArgs) {
			t.Errorf("%s: %v", m, err)
		}
	}
	if err := e.br.Exec(ctx, "nope", nil); !errors.Is(err, types.ErrUnknownCall) {
		t.Errorf("unknown call: %v", err)
	}
	if child.Len() != 0 || len(ctx.Events()) != 0 {
		t.Fatal("refused calls changed state")
	}
}

func TestQueries(t *testing.T) {
	e := newEnv(t)
	e.mustConfirm(e1, shardA)
	if _, err := e.exec(alice, "shield_funds", ShieldFundsArgs{Shard: shardA, EncryptedBeneficiary: []byte{1}, Amount: types.NewBalance(77)}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(e1, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: bob, Amount: types.NewBalance(7), CallHash: [32]byte{9}, VerifiedHeight: e.height}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(e3, "update_shard_config", UpdateShardConfigArgs{Shard: shardB, Config: ShardConfig{EnclaveFingerprint: mrB}}); err != nil {
		t.Fatal(err)
	}
	e.commit() // height 1
	if _, err := e.exec(e3, "update_shard_config", UpdateShardConfigArgs{Shard: shardB, Config: ShardConfig{EnclaveFingerprint: mrA}, Delay: 2}); err != nil {
		t.Fatal(err)
	}
	e.commit() // height 2; upgrade enacts at 4

	got, err := e.query("shards")
	want, _ := json.Marshal(e.br.Shards(e.store))
	if err != nil || got != string(want) || !strings.Contains(got, shardA.String()) || !strings.Contains(got, shardB.String()) || strings.Count(got, ",") != 1 {
		t.Fatalf("shards %s %v", got, err)
	}

	for _, id := range []string{shardA.String(), shardA.Hex()} {
		got, err = e.query("shard_status/" + id)
		if want := fmt.Sprintf(`[{"signer":"%s","fingerprint":"%s","last_activity":1}]`, e1, mrA); err != nil || got != want {
			t.Fatalf("shard_status\n got %s %v\nwant %s", got, err, want)
		}
	}

	got, err = e.query("shard_config/" + shardB.String())
	wantCfg := fmt.Sprintf(`{"shard":"%s","height":2,"active":{"enclave_fingerprint":"%s","maintenance_mode":false},"pending_upgrade":{"config":{"enclave_fingerprint":"%s","maintenance_mode":false},"enact_at":4}}`,
		shardB, mrB, mrA)
	if err != nil || got != wantCfg {
		t.Fatalf("shard_config\n got %s %v\nwant %s", got, err, wantCfg)
	}
	got, err = e.query("shard_config/" + shardB.String() + "/4")
	wantCfg = fmt.Sprintf(`{"shard":"%s","height":4,"active":{"enclave_fingerprint":"%s","maintenance_mode":false}}`, shardB, mrA)
	if err != nil || got != wantCfg {
		t.Fatalf("shard_config at 4\n got %s %v\nwant %s", got, err, wantCfg)
	}
	// At 4, e3 (mrB) is no longer authorised for B.
	if got, err = e.query("shard_status/" + shardB.String() + "/4"); err != nil || got != `[]` {
		t.Fatalf("status at 4: %s %v", got, err)
	}
	if got, err = e.query("shard_status/" + shardB.String() + "/3"); err != nil || !strings.Contains(got, e3.String()) {
		t.Fatalf("status at 3: %s %v", got, err)
	}
	_, err = e.query("shard_config/" + shardA.String())
	wantErr(t, err, types.ErrNotFound)

	got, err = e.query("bonding_account/" + shardA.String())
	if want := fmt.Sprintf(`{"shard":"%s","account":"%s","free":"70"}`, shardA, BondingAccount(shardA)); err != nil || got != want {
		t.Fatalf("bonding_account\n got %s %v\nwant %s", got, err, want)
	}

	hash := "0x09" + strings.Repeat("00", 31)
	got, err = e.query("unshield_executed/" + shardA.String() + "/" + hash)
	if want := fmt.Sprintf(`{"shard":"%s","call_hash":"%s","executed":true,"height":1}`, shardA, hash); err != nil || got != want {
		t.Fatalf("unshield_executed\n got %s %v\nwant %s", got, err, want)
	}
	got, err = e.query("unshield_executed/" + shardB.String() + "/" + hash)
	if want := fmt.Sprintf(`{"shard":"%s","call_hash":"%s","executed":false}`, shardB, hash); err != nil || got != want {
		t.Fatalf("unshield_executed other shard\n got %s %v", got, err)
	}

	for _, p := range []string{"shard_status/xyz", "shard_status/" + shardA.String() + "/-1", "shard_config/" + shardB.String() + "/abc",
		"bonding_account/0x12", "unshield_executed/" + shardA.String() + "/09", "unshield_executed/" + shardA.String() + "/0x09"} {
		_, err := e.query(p)
		wantErr(t, err, types.ErrBadQuery)
	}
	for _, p := range []string{"", "shards/x", "shard_status", "shard_status/a/1/2", "unshield_executed/" + shardA.String(), "nope"} {
		_, err := e.query(p)
		wantErr(t, err, types.ErrUnknownPath)
	}
}

// plainReader hides the store's LastCommit, like a reader the application
// may wrap; pending upgrades then stay pending.
type plainReader struct{ s *state.Store }

func (p plainReader) Get(k []byte) ([]byte, bool)                   { return p.s.Get(k) }
func (p plainReader) Iterate(pre []byte, fn func(k, v []byte) bool) { p.s.Iterate(pre, fn) }

func TestQueryWithoutCommittedHeight(t *testing.T) {
	e := newEnv(t)
	if _, err := e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrA}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrB}, Delay: 1}); err != nil {
		t.Fatal(err)
	}
	e.commit()
	e.commit()
	e.commit() // height 3: enacted by now
	res, err := e.br.Query(plainReader{e.store}, []string{"shard_config", shardA.String()})
	if err != nil {
		t.Fatal(err)
	}
	if info := res.(ShardConfigInfo); info.Height != 0 || info.Active.EnclaveFingerprint != mrA || info.PendingUpgrade == nil {
		t.Fatalf("plain reader: %+v", info)
	}
	res, _ = e.br.Query(e.store, []string{"shard_config", shardA.String()})
	if info := res.(ShardConfigInfo); info.Height != 3 || info.Active.EnclaveFingerprint != mrB || info.PendingUpgrade != nil {
		t.Fatalf("store: %+v", info)
	}
}

func (e *env) setFlags(f teerex.SecurityFlags) {
	e.t.Helper()
	ctx := e.ctx(alice)
	ctx.Origin.Root = true
	if err := e.reg.Exec(ctx, "set_security_flags", e.codec.MustMarshal(teerex.SetSecurityFlagsArgs{Flags: f})); err != nil {
		e.t.Fatal(err)
	}
}

// TestTighterFlagsWithdrawAuthorisation: an enclave registered with a
// simulated quote while the flags allowed it loses its authorisation (status,
// confirmations, payouts, configuration) when sudo forbids simulated quotes,
// and regains it when they are allowed again.
func TestTighterFlagsWithdrawAuthorisation(t *testing.T) {
	e := newEnv(t)
	e.mustConfirm(e1, shardA)
	if !e.br.IsAuthorised(e.ctx(e1), e1, shardA) || len(e.br.ShardStatus(e.ctx(e1), shardA)) != 1 {
		t.Fatal("the sim-registered enclave is not authorised to begin with")
	}
	e.setFlags(teerex.SecurityFlags{AllowSim: false})
	ctx := e.ctx(e1)
	if e.br.IsAuthorised(ctx, e1, shardA) {
		t.Fatal("still authorised after simulated quotes were forbidden")
	}
	if st := e.br.ShardStatus(ctx, shardA); len(st) != 0 {
		t.Fatalf("status still lists %v", st)
	}
	_, err := e.confirm(e1, shardA)
	wantErr(t, err, ErrNotAuthorised)
	_, err = e.exec(e1, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: alice, Amount: types.NewBalance(1), CallHash: [32]byte{9}, VerifiedHeight: e.height})
	wantErr(t, err, ErrNotAuthorised)
	_, err = e.exec(e1, "update_shard_config", UpdateShardConfigArgs{Shard: shardA, Config: ShardConfig{EnclaveFingerprint: mrA}})
	wantErr(t, err, ErrNotAuthorised)

	e.setFlags(teerex.SecurityFlags{AllowSim: true})
	if !e.br.IsAuthorised(e.ctx(e1), e1, shardA) || len(e.br.ShardStatus(e.ctx(e1), shardA)) != 1 {
		t.Fatal("not authorised again once simulated quotes are allowed")
	}
}

// TestUnshieldFromAnEnclaveThatHasNotSeenThePreviousPayoutIsRefused: an
// enclave started from an old copy of its state verifies the chain only up
// to before a payout it no longer knows; its next unshielding names that
// height and is refused, so old balances are not paid out twice.
func TestUnshieldFromAnEnclaveThatHasNotSeenThePreviousPayoutIsRefused(t *testing.T) {
	e := newEnv(t)
	e.mustConfirm(e1, shardA)
	if _, err := e.run(e.bal, alice, "transfer", balances.TransferArgs{Dest: BondingAccount(shardA), Amount: types.NewBalance(1000)}); err != nil {
		t.Fatal(err)
	}
	bob0 := e.free(bob)
	e.height = 10
	if _, err := e.exec(e1, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: bob, Amount: types.NewBalance(100), CallHash: [32]byte{1}, VerifiedHeight: 9}); err != nil {
		t.Fatal(err)
	}
	e.height = 20
	_, err := e.exec(e1, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: bob, Amount: types.NewBalance(100), CallHash: [32]byte{2}, VerifiedHeight: 9})
	wantErr(t, err, ErrPayoutNotSeen)
	want, _ := bob0.Add(types.NewBalance(100))
	if got := e.free(bob); got != want {
		t.Fatalf("bob holds %s after a refused payout, want %s", got, want)
	}
	if _, err := e.exec(e1, "unshield_funds", UnshieldFundsArgs{Shard: shardA, Beneficiary: bob, Amount: types.NewBalance(100), CallHash: [32]byte{2}, VerifiedHeight: 10}); err != nil {
		t.Fatalf("an enclave that has seen the payout: %v", err)
	}
	var p Payouts
	if !e.ctx(e1).Get(PayoutsKey(shardA), &p) || p.Count != 2 || p.LastHeight != 20 {
		t.Fatalf("payouts recorded %+v", p)
	}
}
