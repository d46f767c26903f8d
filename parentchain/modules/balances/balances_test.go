package balances

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/state/statetest"
	"github.com/integritee-go/integritee/parentchain/types"
)

var (
	alice   = mustDev("//Alice")
	bob     = mustDev("//Bob")
	charlie = mustDev("//Charlie")
)

func mustDev(uri string) account.ID {
	p, err := account.DevPair(uri)
	if err != nil {
		panic(err)
	}
	return p.ID()
}

// env is a balances module over a fresh store, with a block overlay on top.
type env struct {
	t      *testing.T
	codec  *types.Codec
	store  *state.Store
	block  *state.Overlay
	m      *Module
	height int64
}

func newEnv(t *testing.T) *env {
	t.Helper()
	s, err := state.Open(filepath.Join(t.TempDir(), "state"), statetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := types.NewCodec()
	return &env{t: t, codec: c, store: s, block: state.NewOverlay(s), m: New(c)}
}

// ctx returns a context over the block overlay, signed by signer.
func (e *env) ctx(signer account.ID) *types.Context {
	return &types.Context{Store: e.block, Codec: e.codec, Origin: types.Origin{Signer: signer}}
}

// root returns a root context (as sudo would run it).
func (e *env) root(signer account.ID) *types.Context {
	c := e.ctx(signer)
	c.Origin.Root = true
	return c
}

// scratch returns a context over a child of the block overlay, to run a
// call whose writes the test inspects (and that is expected to write nothing).
func (e *env) scratch(signer account.ID, root bool) (*types.Context, *state.Overlay) {
	o := e.block.Child()
	return &types.Context{Store: o, Codec: e.codec, Origin: types.Origin{Signer: signer, Root: root}}, o
}

// genesis runs InitGenesis with g encoded as JSON.
func (e *env) genesis(g Genesis) {
	e.t.Helper()
	section, err := json.Marshal(g)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := e.m.InitGenesis(e.ctx(account.ID{}), section); err != nil {
		e.t.Fatalf("InitGenesis: %v", err)
	}
}

// standard: fee 1 TEER, Alice 100 TEER, Bob 50 TEER.
func (e *env) standard() {
	e.genesis(Genesis{TxFee: types.TEER(1), Balances: []Endowment{
		{Account: alice, Amount: types.TEER(100)},
		{Account: bob, Amount: types.TEER(50)},
	}})
}

// commit commits the block overlay so that queries see it.
func (e *env) commit() {
	e.t.Helper()
	e.height++
	if _, err := e.store.CommitOverlay(e.block, e.height); err != nil {
		e.t.Fatal(err)
	}
	e.block = state.NewOverlay(e.store)
}

func (e *env) args(v any) []byte {
	e.t.Helper()
	b, err := e.codec.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) free(id account.ID) types.Balance {
	return e.m.Account(e.ctx(id), id).Free
}

func (e *env) issuance() types.Balance { return e.m.TotalIssuance(e.ctx(alice)) }

func (e *env) accounts() uint64 {
	var n uint64
	e.ctx(alice).Get(keyAccounts, &n)
	return n
}

func (e *env) wantFree(id account.ID, want types.Balance) {
	e.t.Helper()
	if got := e.free(id); got != want {
		e.t.Errorf("free(%s) = %s, want %s", id, got, want)
	}
}

func (e *env) wantIssuance(want types.Balance) {
	e.t.Helper()
	if got := e.issuance(); got != want {
		e.t.Errorf("total issuance = %s, want %s", got, want)
	}
}

func (e *env) wantAccounts(want uint64) {
	e.t.Helper()
	if got := e.accounts(); got != want {
		e.t.Errorf("accounts = %d, want %d", got, want)
	}
}

func add(t *testing.T, bs ...types.Balance) types.Balance {
	t.Helper()
	var sum types.Balance
	for _, b := range bs {
		var err error
		if sum, err = sum.Add(b); err != nil {
			t.Fatal(err)
		}
	}
	return sum
}

func sub(t *testing.T, a, b types.Balance) types.Balance {
	t.Helper()
	d, ok := a.Sub(b)
	if !ok {
		t.Fatalf("%s - %s underflows", a, b)
	}
	return d
}

func eventStrings(evs []types.Event) []string {
	var out []string
	for _, e := range evs {
		s := e.Type()
		for _, a := range e.Attrs {
			s += " " + a.Key + "=" + a.Value
		}
		out = append(out, s)
	}
	return out
}

func wantEvents(t *testing.T, got []types.Event, want ...string) {
	t.Helper()
	g := eventStrings(got)
	if strings.Join(g, "\n") != strings.Join(want, "\n") {
		t.Errorf("events:\n got %q\nwant %q", g, want)
	}
}

// wantNoEffect checks that a failed call wrote nothing and emitted nothing.
func wantNoEffect(t *testing.T, ctx *types.Context, o *state.Overlay) {
	t.Helper()
	if o.Len() != 0 {
		t.Errorf("failed call buffered %d writes", o.Len())
	}
	if len(ctx.Events()) != 0 {
		t.Errorf("failed call emitted %q", eventStrings(ctx.Events()))
	}
}

// ---- genesis ----

func TestGenesisSetsFeeEndowmentsIssuanceAndAccountCount(t *testing.T) {
	e := newEnv(t)
	section := fmt.Sprintf(`{
		"tx_fee": "1000000000000",
		"balances": [
			{"account": %q, "amount": "100000000000000"},
			{"account": %q, "amount": "7"}
		]
	}`, alice.String(), bob.Hex())
	ctx := e.ctx(account.ID{})

	if err := e.m.InitGenesis(ctx, json.RawMessage(section)); err != nil {
		t.Fatal(err)
	}

	if got := e.m.Fee(ctx); got != types.TEER(1) {
		t.Errorf("fee = %s, want 1 TEER", got)
	}
	e.wantFree(alice, types.TEER(100))
	e.wantFree(bob, types.NewBalance(7))
	e.wantFree(charlie, types.Balance{})
	e.wantIssuance(add(t, types.TEER(100), types.NewBalance(7)))
	e.wantAccounts(2)
	if n := e.m.Account(ctx, alice).Nonce; n != 0 {
		t.Errorf("genesis nonce = %d", n)
	}
	wantEvents(t, ctx.Events(),
		"balances.NewAccount account="+alice.String(),
		"balances.NewAccount account="+bob.String())
}

func TestGenesisEndowingAnAccountTwiceAddsUp(t *testing.T) {
	e := newEnv(t)

	e.genesis(Genesis{Balances: []Endowment{
		{Account: alice, Amount: types.TEER(3)},
		{Account: alice, Amount: types.TEER(4)},
	}})

	e.wantFree(alice, types.TEER(7))
	e.wantIssuance(types.TEER(7))
	e.wantAccounts(1)
}

func TestGenesisEmptySectionIsNoFeeNoAccounts(t *testing.T) {
	e := newEnv(t)
	ctx := e.ctx(account.ID{})

	if err := e.m.InitGenesis(ctx, nil); err != nil {
		t.Fatal(err)
	}

	if fee := e.m.Fee(ctx); !fee.IsZero() {
		t.Errorf("fee = %s", fee)
	}
	e.wantIssuance(types.Balance{})
	e.wantAccounts(0)
}

func TestGenesisRefusesUnknownField(t *testing.T) {
	e := newEnv(t)
	ctx, o := e.scratch(account.ID{}, false)

	err := e.m.InitGenesis(ctx, json.RawMessage(`{"tx_fee":"1","balances":[],"existential_deposit":"5"}`))

	if err == nil || !strings.Contains(err.Error(), "existential_deposit") {
		t.Fatalf("unknown field: err = %v, want one naming the field", err)
	}
	wantNoEffect(t, ctx, o)
}

func TestGenesisRefusesUnknownEndowmentField(t *testing.T) {
	e := newEnv(t)
	ctx, o := e.scratch(account.ID{}, false)
	section := fmt.Sprintf(`{"balances":[{"account":%q,"amount":"1","locked":"1"}]}`, alice)

	err := e.m.InitGenesis(ctx, json.RawMessage(section))

	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Fatalf("unknown endowment field: err = %v", err)
	}
	wantNoEffect(t, ctx, o)
}

func TestGenesisRefusesMalformedAmountsAndAccounts(t *testing.T) {
	for name, section := range map[string]string{
		"negative amount": fmt.Sprintf(`{"balances":[{"account":%q,"amount":"-1"}]}`, alice),
		"amount > 2^128":  fmt.Sprintf(`{"balances":[{"account":%q,"amount":"340282366920938463463374607431768211456"}]}`, alice),
		"bad account":     `{"balances":[{"account":"5NotAnAddress","amount":"1"}]}`,
		"bad fee":         `{"tx_fee":"1.5"}`,
	} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)
			ctx, o := e.scratch(account.ID{}, false)

			if err := e.m.InitGenesis(ctx, json.RawMessage(section)); err == nil {
				t.Fatal("accepted")
			}
			wantNoEffect(t, ctx, o)
		})
	}
}

func TestGenesisEndowmentOverflow(t *testing.T) {
	for name, second := range map[string]account.ID{"same account": alice, "total issuance": bob} {
		t.Run(name, func(t *testing.T) {
			e := newEnv(t)

			err := e.m.InitGenesis(e.ctx(account.ID{}), e.mustJSON(Genesis{Balances: []Endowment{
				{Account: alice, Amount: types.MaxBalance},
				{Account: second, Amount: types.NewBalance(1)},
			}}))

			if !errors.Is(err, ErrOverflow) {
				t.Fatalf("err = %v, want ErrOverflow", err)
			}
		})
	}
}

func (e *env) mustJSON(v any) json.RawMessage {
	e.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

// ---- transfer ----

func TestTransferMovesExactAmount(t *testing.T) {
	e := newEnv(t)
	e.standard()
	amount := add(t, types.TEER(30), types.NewBalance(7))
	ctx := e.ctx(alice)

	err := e.m.Exec(ctx, "transfer", e.args(TransferArgs{Dest: bob, Amount: amount}))

	if err != nil {
		t.Fatal(err)
	}
	e.wantFree(alice, sub(t, types.TEER(100), amount))
	e.wantFree(bob, add(t, types.TEER(50), amount))
	e.wantIssuance(types.TEER(150))
	e.wantAccounts(2)
	if n := e.m.Account(ctx, alice).Nonce; n != 0 {
		t.Errorf("transfer touched the nonce: %d", n)
	}
	wantEvents(t, ctx.Events(), fmt.Sprintf("balances.Transfer from=%s to=%s amount=30000000000007", alice, bob))
}

func TestTransferToANewAccountCreatesIt(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx := e.ctx(alice)

	err := e.m.Transfer(ctx, alice, charlie, types.TEER(10))

	if err != nil {
		t.Fatal(err)
	}
	e.wantFree(alice, types.TEER(90))
	e.wantFree(charlie, types.TEER(10))
	e.wantAccounts(3)
	e.wantIssuance(types.TEER(150))
	wantEvents(t, ctx.Events(),
		"balances.NewAccount account="+charlie.String(),
		fmt.Sprintf("balances.Transfer from=%s to=%s amount=%s", alice, charlie, types.TEER(10)))
}

func TestTransferOfTheWholeBalance(t *testing.T) {
	e := newEnv(t)
	e.standard()

	if err := e.m.Transfer(e.ctx(bob), bob, alice, types.TEER(50)); err != nil {
		t.Fatal(err)
	}

	e.wantFree(bob, types.Balance{})
	e.wantFree(alice, types.TEER(150))
	e.wantIssuance(types.TEER(150))
}

func TestSelfTransferChangesNothingButEmitsTheEvent(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx, o := e.scratch(alice, false)

	err := e.m.Exec(ctx, "transfer", e.args(TransferArgs{Dest: alice, Amount: types.TEER(60)}))

	if err != nil {
		t.Fatal(err)
	}
	if o.Len() != 0 {
		t.Errorf("self-transfer wrote %d keys", o.Len())
	}
	if got := e.m.Account(ctx, alice).Free; got != types.TEER(100) {
		t.Errorf("alice = %s, want 100 TEER", got)
	}
	wantEvents(t, ctx.Events(), fmt.Sprintf("balances.Transfer from=%s to=%s amount=%s", alice, alice, types.TEER(60)))
}

func TestSelfTransferBeyondBalanceFails(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx, o := e.scratch(alice, false)

	err := e.m.Transfer(ctx, alice, alice, add(t, types.TEER(100), types.NewBalance(1)))

	if !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("err = %v, want ErrInsufficientBalance", err)
	}
	wantNoEffect(t, ctx, o)
}

func TestTransferBeyondBalanceLeavesStateUnchanged(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx, o := e.scratch(bob, false)

	err := e.m.Exec(ctx, "transfer", e.args(TransferArgs{Dest: charlie, Amount: add(t, types.TEER(50), types.NewBalance(1))}))

	if !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("err = %v, want ErrInsufficientBalance", err)
	}
	wantNoEffect(t, ctx, o)
	e.wantFree(bob, types.TEER(50))
	e.wantAccounts(2)
}

func TestTransferFromAnEmptyAccountFails(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx, o := e.scratch(charlie, false)

	err := e.m.Transfer(ctx, charlie, alice, types.NewBalance(1))

	if !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("err = %v, want ErrInsufficientBalance", err)
	}
	wantNoEffect(t, ctx, o)
}

// set_balance cannot push the total issuance past 2^128-1: Bob may be set to
// exactly what is left, not one planck more.
func TestSetBalanceNearMaxStopsAtTotalIssuance(t *testing.T) {
	e := newEnv(t)
	e.genesis(Genesis{Balances: []Endowment{{Account: alice, Amount: types.TEER(100)}}})
	room := sub(t, types.MaxBalance, types.TEER(100))
	tooMuch := add(t, room, types.NewBalance(1))
	ctx, o := e.scratch(alice, true)

	err := e.m.Exec(ctx, "set_balance", e.args(SetBalanceArgs{Who: bob, Free: tooMuch}))

	if !errors.Is(err, ErrOverflow) {
		t.Fatalf("set_balance past the issuance limit: err = %v, want ErrOverflow", err)
	}
	wantNoEffect(t, ctx, o)

	if err := e.m.Exec(e.root(alice), "set_balance", e.args(SetBalanceArgs{Who: bob, Free: room})); err != nil {
		t.Fatalf("set_balance to the limit: %v", err)
	}
	e.wantIssuance(types.MaxBalance)
	// Alice can now send Bob everything: he ends at exactly 2^128-1.
	if err := e.m.Transfer(e.ctx(alice), alice, bob, types.TEER(100)); err != nil {
		t.Fatalf("transfer up to 2^128-1: %v", err)
	}
	e.wantFree(bob, types.MaxBalance)
	e.wantFree(alice, types.Balance{})
}

// With the total issuance bounded, a receiver cannot overflow through the
// calls; the check still has to hold if a record gets there (e.g. by a future
// migration), so Bob's record is written directly.
func TestTransferOverflowAtReceiverLeavesStateUnchanged(t *testing.T) {
	e := newEnv(t)
	e.standard()
	near := sub(t, types.MaxBalance, types.NewBalance(5))
	e.ctx(bob).Set(AccountKey(bob), Account{Free: near, Nonce: 3})
	ctx, o := e.scratch(alice, false)

	err := e.m.Exec(ctx, "transfer", e.args(TransferArgs{Dest: bob, Amount: types.NewBalance(6)}))

	if !errors.Is(err, ErrOverflow) {
		t.Fatalf("err = %v, want ErrOverflow", err)
	}
	wantNoEffect(t, ctx, o)
	e.wantFree(alice, types.TEER(100))
	e.wantFree(bob, near)

	// Five planck still fit.
	if err := e.m.Transfer(e.ctx(alice), alice, bob, types.NewBalance(5)); err != nil {
		t.Fatalf("transfer to exactly 2^128-1: %v", err)
	}
	e.wantFree(bob, types.MaxBalance)
}

// ---- burn, nonce ----

func TestBurnReducesBalanceAndIssuance(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx := e.ctx(alice)

	err := e.m.Burn(ctx, alice, types.NewBalance(1234))

	if err != nil {
		t.Fatal(err)
	}
	e.wantFree(alice, sub(t, types.TEER(100), types.NewBalance(1234)))
	e.wantIssuance(sub(t, types.TEER(150), types.NewBalance(1234)))
	e.wantFree(bob, types.TEER(50))
	e.wantAccounts(2)
	wantEvents(t, ctx.Events())
}

func TestBurnOfTheWholeBalanceKeepsTheAccount(t *testing.T) {
	e := newEnv(t)
	e.standard()
	e.m.IncNonce(e.ctx(bob), bob)

	if err := e.m.Burn(e.ctx(bob), bob, types.TEER(50)); err != nil {
		t.Fatal(err)
	}

	e.wantFree(bob, types.Balance{})
	e.wantIssuance(types.TEER(100))
	e.wantAccounts(2)
	if n := e.m.Account(e.ctx(bob), bob).Nonce; n != 1 {
		t.Errorf("burn lost the nonce: %d", n)
	}
}

func TestBurnBeyondBalanceLeavesStateUnchanged(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx, o := e.scratch(bob, false)

	err := e.m.Burn(ctx, bob, add(t, types.TEER(50), types.NewBalance(1)))

	if !errors.Is(err, ErrInsufficientBalance) {
		t.Fatalf("err = %v, want ErrInsufficientBalance", err)
	}
	wantNoEffect(t, ctx, o)
}

func TestIncNonceCountsUpAndKeepsTheBalance(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx := e.ctx(alice)

	for i := 0; i < 3; i++ {
		e.m.IncNonce(ctx, alice)
	}

	a := e.m.Account(ctx, alice)
	if a.Nonce != 3 {
		t.Errorf("nonce = %d, want 3", a.Nonce)
	}
	if a.Free != types.TEER(100) {
		t.Errorf("free = %s, want 100 TEER", a.Free)
	}
	if n := e.m.Account(ctx, bob).Nonce; n != 0 {
		t.Errorf("bob's nonce = %d", n)
	}
	e.wantIssuance(types.TEER(150))
	e.wantAccounts(2)
	wantEvents(t, ctx.Events())
}

func TestIncNonceOfANewAccountCreatesIt(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx := e.ctx(charlie)

	e.m.IncNonce(ctx, charlie)

	if n := e.m.Account(ctx, charlie).Nonce; n != 1 {
		t.Errorf("nonce = %d", n)
	}
	e.wantAccounts(3)
	wantEvents(t, ctx.Events(), "balances.NewAccount account="+charlie.String())
}

// ---- set_balance ----

func TestSetBalanceRequiresRoot(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx, o := e.scratch(alice, false)

	err := e.m.Exec(ctx, "set_balance", e.args(SetBalanceArgs{Who: alice, Free: types.TEER(1_000_000)}))

	if !errors.Is(err, types.ErrBadOrigin) {
		t.Fatalf("err = %v, want ErrBadOrigin", err)
	}
	wantNoEffect(t, ctx, o)
	e.wantFree(alice, types.TEER(100))
}

func TestSetBalanceUpRaisesIssuance(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx := e.root(alice)

	err := e.m.Exec(ctx, "set_balance", e.args(SetBalanceArgs{Who: bob, Free: types.TEER(80)}))

	if err != nil {
		t.Fatal(err)
	}
	e.wantFree(bob, types.TEER(80))
	e.wantFree(alice, types.TEER(100))
	e.wantIssuance(types.TEER(180))
	e.wantAccounts(2)
	wantEvents(t, ctx.Events(), fmt.Sprintf("balances.BalanceSet who=%s free=%s", bob, types.TEER(80)))
}

func TestSetBalanceDownLowersIssuance(t *testing.T) {
	e := newEnv(t)
	e.standard()

	err := e.m.Exec(e.root(alice), "set_balance", e.args(SetBalanceArgs{Who: bob, Free: types.TEER(10)}))

	if err != nil {
		t.Fatal(err)
	}
	e.wantFree(bob, types.TEER(10))
	e.wantIssuance(types.TEER(110))
}

func TestSetBalanceToZeroAndOfANewAccount(t *testing.T) {
	e := newEnv(t)
	e.standard()
	ctx := e.root(alice)

	if err := e.m.Exec(ctx, "set_balance", e.args(SetBalanceArgs{Who: alice, Free: types.Balance{}})); err != nil {
		t.Fatal(err)
	}
	if err := e.m.Exec(ctx, "set_balance", e.args(SetBalanceArgs{Who: charlie, Free: types.TEER(5)})); err != nil {
		t.Fatal(err)
	}

	e.wantFree(alice, types.Balance{})
	e.wantFree(charlie, types.TEER(5))
	e.wantIssuance(types.TEER(55))
	e.wantAccounts(3)
	wantEvents(t, ctx.Events(),
		fmt.Sprintf("balances.BalanceSet who=%s free=0", alice),
		"balances.NewAccount account="+charlie.String(),
		fmt.Sprintf("balances.BalanceSet who=%s free=%s", charlie, types.TEER(5)))
}

func TestSetBalanceKeepsTheNonce(t *testing.T) {
	e := newEnv(t)
	e.standard()
	e.m.IncNonce(e.ctx(bob), bob)
	e.m.IncNonce(e.ctx(bob), bob)

	if err := e.m.Exec(e.root(alice), "set_balance", e.args(SetBalanceArgs{Who: bob, Free: types.TEER(1)})); err != nil {
		t.Fatal(err)
	}

	if n := e.m.Account(e.ctx(bob), bob).Nonce; n != 2 {
		t.Errorf("nonce = %d, want 2", n)
	}
}

// ---- malformed calls ----

// nonCanonicalTransfer is a transfer's arguments with the map keys in the
// wrong order: it decodes, but it is not the canonical encoding.
func nonCanonicalTransfer(dest account.ID) []byte {
	b := []byte{0xa2, 0x02, 0x50}
	b = append(b, make([]byte, 15)...)
	b = append(b, 1)
	b = append(b, 0x01, 0x58, 0x20)
	return append(b, dest[:]...)
}

func TestMalformedArgumentsAreBadArgs(t *testing.T) {
	e := newEnv(t)
	e.standard()
	cases := []struct {
		name, method string
		root         bool
		args         []byte
	}{
		{"transfer garbage", "transfer", false, []byte("garbage")},
		{"transfer empty", "transfer", false, nil},
		{"transfer unknown field", "transfer", false, e.args(map[int]any{1: bob, 2: types.NewBalance(1), 3: 1})},
		{"transfer short amount", "transfer", false, e.args(map[int]any{1: bob, 2: []byte{1}})},
		{"transfer short account", "transfer", false, e.args(map[int]any{1: bob[:31], 2: types.NewBalance(1)})},
		{"transfer amount as integer", "transfer", false, e.args(map[int]any{1: bob, 2: 5})},
		{"transfer non-canonical", "transfer", false, nonCanonicalTransfer(bob)},
		{"transfer trailing bytes", "transfer", false, append(e.args(TransferArgs{Dest: bob, Amount: types.NewBalance(1)}), 0)},
		{"set_balance garbage as root", "set_balance", true, []byte{0xff}},
		{"set_balance unknown field as root", "set_balance", true, e.args(map[int]any{1: bob, 2: types.NewBalance(1), 9: true})},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctx, o := e.scratch(alice, c.root)

			err := e.m.Exec(ctx, c.method, c.args)

			if !errors.Is(err, types.ErrBadArgs) {
				t.Fatalf("err = %v, want ErrBadArgs", err)
			}
			wantNoEffect(t, ctx, o)
		})
	}
	// The hand-built encoding is the valid transfer in disguise.
	var a TransferArgs
	if err := e.codec.UnmarshalLoose(nonCanonicalTransfer(bob), &a); err != nil || a.Dest != bob || a.Amount != types.NewBalance(1) {
		t.Fatalf("non-canonical fixture decodes to %+v, %v", a, err)
	}
}

func TestUnknownMethodIsUnknownCall(t *testing.T) {
	e := newEnv(t)
	e.standard()
	for _, method := range []string{"burn", "Transfer", "transfer_all", ""} {
		ctx, o := e.scratch(alice, true)

		err := e.m.Exec(ctx, method, e.args(TransferArgs{Dest: bob, Amount: types.NewBalance(1)}))

		if !errors.Is(err, types.ErrUnknownCall) {
			t.Errorf("%q: err = %v, want ErrUnknownCall", method, err)
		}
		wantNoEffect(t, ctx, o)
	}
}

// ---- queries ----

func TestQueryAccountBySS58AndHex(t *testing.T) {
	e := newEnv(t)
	e.standard()
	e.m.IncNonce(e.ctx(alice), alice)
	e.commit()
	want := AccountInfo{Account: alice, Free: types.TEER(100), Nonce: 1}

	for _, arg := range []string{alice.String(), alice.Hex()} {
		got, err := e.m.Query(e.store, []string{"account", arg})

		if err != nil {
			t.Fatalf("%s: %v", arg, err)
		}
		if got != want {
			t.Errorf("%s: %+v, want %+v", arg, got, want)
		}
	}
	got, _ := e.m.Query(e.store, []string{"account", alice.Hex()})
	js, err := json.Marshal(got)
	if err != nil {
		t.Fatal(err)
	}
	wantJSON := fmt.Sprintf(`{"account":%q,"free":"100000000000000","nonce":1}`, alice)
	if string(js) != wantJSON {
		t.Errorf("JSON %s, want %s", js, wantJSON)
	}
}

func TestQueryUnknownAccountIsZero(t *testing.T) {
	e := newEnv(t)
	e.standard()
	e.commit()

	got, err := e.m.Query(e.store, []string{"account", charlie.String()})

	if err != nil {
		t.Fatal(err)
	}
	if want := (AccountInfo{Account: charlie}); got != want {
		t.Errorf("%+v, want %+v", got, want)
	}
}

func TestQuerySeesOnlyCommittedState(t *testing.T) {
	e := newEnv(t)
	e.standard()
	e.commit()
	if err := e.m.Transfer(e.ctx(alice), alice, bob, types.TEER(1)); err != nil {
		t.Fatal(err)
	}

	got, err := e.m.Query(e.store, []string{"account", alice.String()})

	if err != nil {
		t.Fatal(err)
	}
	if got.(AccountInfo).Free != types.TEER(100) {
		t.Errorf("query saw uncommitted state: %+v", got)
	}
}

func TestQuerySummary(t *testing.T) {
	e := newEnv(t)
	e.standard()
	if err := e.m.Burn(e.ctx(alice), alice, types.TEER(1)); err != nil {
		t.Fatal(err)
	}
	e.m.IncNonce(e.ctx(charlie), charlie)
	e.commit()

	got, err := e.m.Query(e.store, []string{"summary"})

	if err != nil {
		t.Fatal(err)
	}
	want := Summary{TotalIssuance: types.TEER(149), Accounts: 3, TxFee: types.TEER(1)}
	if got != want {
		t.Errorf("%+v, want %+v", got, want)
	}
	js, _ := json.Marshal(got)
	if s := `{"total_issuance":"149000000000000","accounts":3,"tx_fee":"1000000000000"}`; string(js) != s {
		t.Errorf("JSON %s, want %s", js, s)
	}
}

func TestQuerySummaryOfAnEmptyChain(t *testing.T) {
	e := newEnv(t)

	got, err := e.m.Query(e.store, []string{"summary"})

	if err != nil {
		t.Fatal(err)
	}
	if got != (Summary{}) {
		t.Errorf("%+v, want zero", got)
	}
}

func TestQueryBadAccountIsBadQuery(t *testing.T) {
	e := newEnv(t)
	for _, arg := range []string{"", "alice", "//Alice", "0x1234", "0x" + strings.Repeat("zz", 32), alice.String() + "x"} {
		_, err := e.m.Query(e.store, []string{"account", arg})

		if !errors.Is(err, types.ErrBadQuery) {
			t.Errorf("account/%s: err = %v, want ErrBadQuery", arg, err)
		}
	}
}

func TestQueryBadPathsAreUnknownPath(t *testing.T) {
	e := newEnv(t)
	for _, path := range [][]string{
		nil,
		{""},
		{"account"},
		{"account", alice.String(), "nonce"},
		{"summary", "x"},
		{"accounts", alice.String()},
		{"Summary"},
		{"fee"},
	} {
		_, err := e.m.Query(e.store, path)

		if !errors.Is(err, types.ErrUnknownPath) {
			t.Errorf("%q: err = %v, want ErrUnknownPath", path, err)
		}
	}
}

func TestName(t *testing.T) {
	if got := New(types.NewCodec()).Name(); got != "balances" {
		t.Errorf("Name = %q", got)
	}
}
