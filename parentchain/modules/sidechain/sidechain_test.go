package sidechain

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/enclavebridge"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/state/statetest"
	"github.com/integritee-go/integritee/parentchain/types"
	sc "github.com/integritee-go/integritee/sidechain"
)

var (
	e1    = dev("//Enclave1") // mrA, the primary
	e2    = dev("//Enclave2") // mrA
	e3    = dev("//Enclave3") // mrB
	rogue = dev("//Rogue")

	mrA    = attestation.MrEnclave(sha256.Sum256([]byte("enclave A")))
	mrB    = attestation.MrEnclave(sha256.Sum256([]byte("enclave B")))
	shardA = sc.ShardID(mrA)
	shardB = sc.ShardID(mrB)

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
	reg    *teerex.Module
	br     *enclavebridge.Module
	m      *Module
	height int64
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
	e := &env{t: t, codec: codec, store: st, o: state.NewOverlay(st), height: 1}
	bal := balances.New(codec)
	e.reg = teerex.New(codec, sim.NewVerifier())
	e.br = enclavebridge.New(codec, bal, e.reg)
	e.m = New(codec, e.br)
	ctx := e.ctx(account.ID{})
	if err := bal.InitGenesis(ctx, json.RawMessage(`{"tx_fee":"0","balances":[]}`)); err != nil {
		t.Fatal(err)
	}
	if err := e.reg.InitGenesis(ctx, json.RawMessage(`{"security_flags":{"allow_sim":true}}`)); err != nil {
		t.Fatal(err)
	}
	for id, mr := range map[account.ID]attestation.MrEnclave{e1: mrA, e2: mrA, e3: mrB} {
		var rd [64]byte
		copy(rd[:], id[:])
		e.run(e.reg, id, "register_enclave", teerex.RegisterEnclaveArgs{Proof: sim.NewQuote(mr, false, rd, t0), URL: "wss://x", Method: "sim"})
	}
	// e1 then e2 join shard A (e1 is primary); e3 joins shard B.
	for _, j := range []struct {
		id    account.ID
		shard sc.ShardID
	}{{e1, shardA}, {e2, shardA}, {e3, shardB}} {
		e.run(e.br, j.id, "confirm_processed_parentchain_block", enclavebridge.ConfirmProcessedParentchainBlockArgs{Shard: j.shard})
	}
	return e
}

func (e *env) ctx(signer account.ID) *types.Context {
	return &types.Context{Store: e.o, Codec: e.codec, Block: types.Block{Height: e.height, Time: t0}, Origin: types.Origin{Signer: signer}}
}

func (e *env) run(mod types.Module, signer account.ID, method string, args any) {
	e.t.Helper()
	if _, err := e.try(mod, signer, method, e.codec.MustMarshal(args)); err != nil {
		e.t.Fatal(err)
	}
}

// try runs a call in a child overlay. On error it checks that the call
// wrote nothing and emitted nothing; on success it applies the writes.
func (e *env) try(mod types.Module, signer account.ID, method string, args []byte) ([]types.Event, error) {
	e.t.Helper()
	child := e.o.Child()
	ctx := e.ctx(signer).WithStore(child)
	if err := mod.Exec(ctx, method, args); err != nil {
		if child.Len() != 0 || len(ctx.Events()) != 0 {
			e.t.Fatalf("%s failed (%v) but left %d writes and %d events", method, err, child.Len(), len(ctx.Events()))
		}
		return nil, err
	}
	child.Apply()
	return ctx.Events(), nil
}

func (e *env) confirm(signer account.ID, shard sc.ShardID, ancestor *BlockConfirmation, candidate BlockConfirmation) ([]types.Event, error) {
	e.t.Helper()
	args := ConfirmImportedSidechainBlockArgs{Shard: shard, Ancestor: ancestor, Candidate: candidate}
	return e.try(e.m, signer, "confirm_imported_sidechain_block", e.codec.MustMarshal(args))
}

func (e *env) latest(shard sc.ShardID) (BlockConfirmation, bool) { return e.m.Latest(e.ctx(e1), shard) }

func wantErr(t *testing.T, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want %v", err, want)
	}
}

func block(n uint64, tag string) BlockConfirmation {
	return BlockConfirmation{Number: n, Hash: sha256.Sum256([]byte(tag))}
}

func TestFirstConfirmation(t *testing.T) {
	e := newEnv(t)
	b50 := block(50, "b50")
	_, err := e.confirm(e1, shardA, &BlockConfirmation{Number: 0}, b50)
	wantErr(t, err, ErrUnexpectedAncestor)
	if _, ok := e.latest(shardA); ok {
		t.Fatal("refused confirmation stored")
	}
	evs, err := e.confirm(e1, shardA, nil, b50)
	if err != nil {
		t.Fatal(err)
	}
	want := []types.Event{types.NewEvent(ModuleName, "FinalizedSidechainBlock", "shard", shardA, "block_number", 50,
		"block_hash", fmt.Sprintf("0x%x", b50.Hash), "by", e1)}
	if g, w := fmt.Sprint(evs), fmt.Sprint(want); g != w {
		t.Fatalf("events %s, want %s", g, w)
	}
	if evs[0].Attrs[0].Value != shardA.String() {
		t.Fatalf("shard attr %s", evs[0].Attrs[0].Value)
	}
	if got, ok := e.latest(shardA); !ok || got != b50 {
		t.Fatalf("latest %+v %v", got, ok)
	}
	if _, ok := e.latest(shardB); ok {
		t.Fatal("other shard confirmed")
	}
}

func TestOnlyPrimary(t *testing.T) {
	e := newEnv(t)
	for _, who := range []account.ID{e2, e3, rogue} {
		_, err := e.confirm(who, shardA, nil, block(1, "x"))
		wantErr(t, err, ErrNotPrimary)
	}
	// No shard, no primary.
	_, err := e.confirm(e1, sc.ShardID{7}, nil, block(1, "x"))
	wantErr(t, err, ErrNotPrimary)
	// Each shard has its own primary.
	if _, err := e.confirm(e3, shardB, nil, block(1, "b")); err != nil {
		t.Fatal(err)
	}
}

func TestChainOfConfirmations(t *testing.T) {
	e := newEnv(t)
	b50, b100 := block(50, "b50"), block(100, "b100")
	if _, err := e.confirm(e1, shardA, nil, b50); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name      string
		ancestor  *BlockConfirmation
		candidate BlockConfirmation
		want      error
	}{
		{"no ancestor", nil, b100, ErrAncestorMismatch},
		{"wrong hash", &BlockConfirmation{Number: 50, Hash: [32]byte{1}}, b100, ErrAncestorMismatch},
		{"wrong number", &BlockConfirmation{Number: 49, Hash: b50.Hash}, b100, ErrAncestorMismatch},
		{"same number", &b50, block(50, "fork"), ErrNotDescendant},
		{"lower number", &b50, block(10, "old"), ErrNotDescendant},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.confirm(e1, shardA, c.ancestor, c.candidate)
			wantErr(t, err, c.want)
			if got, _ := e.latest(shardA); got != b50 {
				t.Fatalf("latest changed to %+v", got)
			}
		})
	}
	if _, err := e.confirm(e1, shardA, &b50, b100); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.latest(shardA); got != b100 {
		t.Fatalf("latest %+v", got)
	}
	// The old ancestor no longer fits.
	_, err := e.confirm(e1, shardA, &b50, block(150, "b150"))
	wantErr(t, err, ErrAncestorMismatch)

	// When the primary leaves, the next enclave in the status takes over.
	e.run(e.reg, e1, "unregister_enclave", teerex.UnregisterEnclaveArgs{Signer: e1})
	_, err = e.confirm(e1, shardA, &b100, block(150, "b150"))
	wantErr(t, err, ErrNotPrimary)
	if _, err := e.confirm(e2, shardA, &b100, block(150, "b150")); err != nil {
		t.Fatal(err)
	}
}

func TestArgsEncoding(t *testing.T) {
	e := newEnv(t)
	// The absent ancestor is omitted; an explicit null is not canonical.
	withNull := e.codec.MustMarshal(map[int]any{1: shardA[:], 2: nil, 3: block(1, "x")})
	_, err := e.try(e.m, e1, "confirm_imported_sidechain_block", withNull)
	wantErr(t, err, types.ErrBadArgs)
	_, err = e.try(e.m, e1, "confirm_imported_sidechain_block", []byte{0x01})
	wantErr(t, err, types.ErrBadArgs)
	_, err = e.try(e.m, e1, "confirm", nil)
	wantErr(t, err, types.ErrUnknownCall)
	omitted := e.codec.MustMarshal(map[int]any{1: shardA[:], 3: block(1, "x")})
	if _, err := e.try(e.m, e1, "confirm_imported_sidechain_block", omitted); err != nil {
		t.Fatal(err)
	}
}

func TestQuery(t *testing.T) {
	e := newEnv(t)
	b := block(42, "b42")
	if _, err := e.confirm(e1, shardA, nil, b); err != nil {
		t.Fatal(err)
	}
	var err error
	if e.hash, err = e.store.CommitOverlay(e.o, 1); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{shardA.String(), shardA.Hex()} {
		res, err := e.m.Query(e.store, []string{"latest", id})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := json.Marshal(res)
		want := fmt.Sprintf(`{"shard":"%s","block_number":42,"block_hash":"0x%x"}`, shardA, b.Hash)
		if string(got) != want {
			t.Fatalf("latest\n got %s\nwant %s", got, want)
		}
	}
	_, err = e.m.Query(e.store, []string{"latest", shardB.String()})
	wantErr(t, err, types.ErrNotFound)
	_, err = e.m.Query(e.store, []string{"latest", "zz"})
	wantErr(t, err, types.ErrBadQuery)
	for _, p := range []string{"latest", "", "latest/a/b", "blocks"} {
		_, err := e.m.Query(e.store, strings.Split(p, "/"))
		wantErr(t, err, types.ErrUnknownPath)
	}
}
