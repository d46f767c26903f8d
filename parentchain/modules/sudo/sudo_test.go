package sudo_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/sudo"
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/state/statetest"
	"github.com/integritee-go/integritee/parentchain/types"
)

var (
	alice = mustDev("//Alice")
	bob   = mustDev("//Bob")
	eve   = mustDev("//Eve")
)

func mustDev(uri string) account.ID {
	p, err := account.DevPair(uri)
	if err != nil {
		panic(err)
	}
	return p.ID()
}

// recorder is a fake Dispatcher: it records each call and the origin it ran
// with, writes a marker key through the context and emits an event, then
// returns err.
type recorder struct {
	err   error
	calls []types.Call
	orig  []types.Origin
}

var markerKey = []byte("fake/ran")

func (r *recorder) Dispatch(ctx *types.Context, call types.Call) error {
	r.calls = append(r.calls, call)
	r.orig = append(r.orig, ctx.Origin)
	ctx.Store.Set(markerKey, []byte(call.String()))
	ctx.Emit(types.NewEvent("fake", "Ran", "method", call.Method))
	return r.err
}

// router dispatches to real modules by name, as the application does.
type router map[string]types.Module

func (r router) Dispatch(ctx *types.Context, call types.Call) error {
	m, ok := r[call.Module]
	if !ok {
		return types.ErrUnknownModule.Wrap("%q", call.Module)
	}
	return m.Exec(ctx, call.Method, call.Args)
}

type env struct {
	t     *testing.T
	codec *types.Codec
	store *state.Store
	block *state.Overlay
	m     *sudo.Module
}

func newEnv(t *testing.T, d sudo.Dispatcher) *env {
	t.Helper()
	s, err := state.Open(filepath.Join(t.TempDir(), "state"), statetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	c := types.NewCodec()
	return &env{t: t, codec: c, store: s, block: state.NewOverlay(s), m: sudo.New(c, d)}
}

func (e *env) ctx(signer account.ID) *types.Context {
	return &types.Context{Store: e.block, Codec: e.codec, Origin: types.Origin{Signer: signer}}
}

// scratch is a context over a child of the block overlay, to see what one
// call writes.
func (e *env) scratch(signer account.ID) (*types.Context, *state.Overlay) {
	o := e.block.Child()
	return &types.Context{Store: o, Codec: e.codec, Origin: types.Origin{Signer: signer}}, o
}

func (e *env) genesisKey(id account.ID) {
	e.t.Helper()
	if err := e.m.InitGenesis(e.ctx(account.ID{}), json.RawMessage(fmt.Sprintf(`{"key":%q}`, id))); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) args(v any) []byte {
	e.t.Helper()
	b, err := e.codec.Marshal(v)
	if err != nil {
		e.t.Fatal(err)
	}
	return b
}

func (e *env) call(module, method string, args any) types.Call {
	e.t.Helper()
	c, err := types.NewCall(e.codec, module, method, args)
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *env) sudoArgs(c types.Call) []byte { return e.args(sudo.SudoArgs{Call: c}) }

func (e *env) key() (account.ID, bool) { return e.m.Key(e.ctx(account.ID{})) }

func (e *env) commit() {
	e.t.Helper()
	h, _ := e.store.LastCommit()
	if _, err := e.store.CommitOverlay(e.block, h+1); err != nil {
		e.t.Fatal(err)
	}
	e.block = state.NewOverlay(e.store)
}

func eventTypes(evs []types.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Type())
	}
	return out
}

func hasEvent(evs []types.Event, typ string) bool {
	for _, e := range evs {
		if e.Type() == typ {
			return true
		}
	}
	return false
}

func wantNoEffect(t *testing.T, ctx *types.Context, o *state.Overlay) {
	t.Helper()
	if o.Len() != 0 {
		t.Errorf("refused call buffered %d writes", o.Len())
	}
	if len(ctx.Events()) != 0 {
		t.Errorf("refused call emitted %q", eventTypes(ctx.Events()))
	}
}

// ---- sudo.sudo ----

func TestSudoByTheKeyDispatchesAsRoot(t *testing.T) {
	r := &recorder{}
	e := newEnv(t, r)
	e.genesisKey(alice)
	inner := e.call("fake", "do", map[int]any{1: "x"})
	ctx := e.ctx(alice)

	err := e.m.Exec(ctx, "sudo", e.sudoArgs(inner))

	if err != nil {
		t.Fatal(err)
	}
	if len(r.calls) != 1 {
		t.Fatalf("dispatched %d calls, want 1", len(r.calls))
	}
	if got := r.calls[0]; got.Module != inner.Module || got.Method != inner.Method || string(got.Args) != string(inner.Args) {
		t.Errorf("dispatched %+v, want %+v", got, inner)
	}
	if want := (types.Origin{Signer: alice, Root: true}); r.orig[0] != want {
		t.Errorf("inner origin %+v, want %+v", r.orig[0], want)
	}
	if ctx.Origin.Root {
		t.Error("the outer context became root")
	}
	if v, ok := ctx.Store.Get(markerKey); !ok || string(v) != "fake.do" {
		t.Errorf("inner write not in the caller's store: %q, %v", v, ok)
	}
	evs := ctx.Events()
	if got := strings.Join(eventTypes(evs), ","); got != "fake.Ran,sudo.Sudid" {
		t.Fatalf("events %s, want fake.Ran,sudo.Sudid", got)
	}
	if a := evs[1].Attrs; len(a) != 1 || a[0] != (types.Attr{Key: "call", Value: "fake.do"}) {
		t.Errorf("Sudid attributes %+v", a)
	}
}

func TestSudoByAnyoneElseIsRefused(t *testing.T) {
	r := &recorder{}
	e := newEnv(t, r)
	e.genesisKey(alice)
	ctx, o := e.scratch(eve)

	err := e.m.Exec(ctx, "sudo", e.sudoArgs(e.call("fake", "do", 1)))

	if !errors.Is(err, sudo.ErrRequireSudo) {
		t.Fatalf("err = %v, want ErrRequireSudo", err)
	}
	if len(r.calls) != 0 {
		t.Errorf("dispatched %d calls for a non-sudo signer", len(r.calls))
	}
	wantNoEffect(t, ctx, o)
}

// A context that is already root (a nested call) is still not the sudo key.
func TestRootOriginAloneIsNotTheSudoKey(t *testing.T) {
	r := &recorder{}
	e := newEnv(t, r)
	e.genesisKey(alice)
	ctx, o := e.scratch(eve)
	ctx.Origin.Root = true

	err := e.m.Exec(ctx, "sudo", e.sudoArgs(e.call("fake", "do", 1)))

	if !errors.Is(err, sudo.ErrRequireSudo) {
		t.Fatalf("err = %v, want ErrRequireSudo", err)
	}
	if len(r.calls) != 0 {
		t.Errorf("dispatched %d calls", len(r.calls))
	}
	wantNoEffect(t, ctx, o)
}

func TestSudoWithoutAKeyIsNoKey(t *testing.T) {
	for name, section := range map[string]json.RawMessage{"no section": nil, "empty": json.RawMessage(`{}`), "null key": json.RawMessage(`{"key":null}`)} {
		t.Run(name, func(t *testing.T) {
			r := &recorder{}
			e := newEnv(t, r)
			if err := e.m.InitGenesis(e.ctx(account.ID{}), section); err != nil {
				t.Fatal(err)
			}
			if _, ok := e.key(); ok {
				t.Fatal("genesis without a key set one")
			}

			for _, c := range []struct {
				method string
				args   []byte
			}{
				{"sudo", e.sudoArgs(e.call("fake", "do", 1))},
				{"set_key", e.args(sudo.SetKeyArgs{New: alice})},
			} {
				ctx, o := e.scratch(alice)

				err := e.m.Exec(ctx, c.method, c.args)

				if !errors.Is(err, sudo.ErrNoKey) {
					t.Errorf("%s: err = %v, want ErrNoKey", c.method, err)
				}
				wantNoEffect(t, ctx, o)
			}
			if len(r.calls) != 0 {
				t.Errorf("dispatched %d calls without a key", len(r.calls))
			}
		})
	}
}

func TestSudoInnerFailurePropagatesWithoutSudid(t *testing.T) {
	errInner := types.NewError("fake", 7, "Nope", "the inner call fails")
	r := &recorder{err: errInner.Wrap("detail")}
	e := newEnv(t, r)
	e.genesisKey(alice)
	ctx := e.ctx(alice)

	err := e.m.Exec(ctx, "sudo", e.sudoArgs(e.call("fake", "do", 1)))

	if !errors.Is(err, errInner) {
		t.Fatalf("err = %v, want the inner error", err)
	}
	if len(r.calls) != 1 {
		t.Errorf("dispatched %d calls, want 1", len(r.calls))
	}
	if hasEvent(ctx.Events(), "sudo.Sudid") {
		t.Errorf("failed inner call emitted Sudid: %q", eventTypes(ctx.Events()))
	}
}

func TestSudoBadArgsAndUnknownMethod(t *testing.T) {
	r := &recorder{}
	e := newEnv(t, r)
	e.genesisKey(alice)
	for _, c := range []struct {
		name, method string
		args         []byte
		want         error
	}{
		{"sudo garbage", "sudo", []byte("garbage"), types.ErrBadArgs},
		{"sudo unknown field", "sudo", e.args(map[int]any{1: e.call("fake", "do", 1), 2: 0}), types.ErrBadArgs},
		{"sudo call is not a call", "sudo", e.args(map[int]any{1: "fake.do"}), types.ErrBadArgs},
		{"set_key garbage", "set_key", []byte{0xff}, types.ErrBadArgs},
		{"set_key short id", "set_key", e.args(map[int]any{1: []byte{1, 2, 3}}), types.ErrBadArgs},
		{"unknown method", "sudo_as", e.sudoArgs(e.call("fake", "do", 1)), types.ErrUnknownCall},
		{"empty method", "", nil, types.ErrUnknownCall},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, o := e.scratch(alice)

			err := e.m.Exec(ctx, c.method, c.args)

			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			wantNoEffect(t, ctx, o)
		})
	}
	if len(r.calls) != 0 {
		t.Errorf("dispatched %d calls", len(r.calls))
	}
	if k, _ := e.key(); k != alice {
		t.Errorf("key changed to %s", k)
	}
}

// ---- sudo with the real balances module ----

func newBalancesEnv(t *testing.T) (*env, *balances.Module) {
	t.Helper()
	c := types.NewCodec()
	bal := balances.New(c)
	rt := router{}
	e := newEnv(t, rt)
	rt[bal.Name()] = bal
	rt[e.m.Name()] = e.m
	e.genesisKey(alice)
	g, _ := json.Marshal(balances.Genesis{Balances: []balances.Endowment{
		{Account: alice, Amount: types.TEER(100)},
		{Account: bob, Amount: types.TEER(50)},
	}})
	if err := bal.InitGenesis(e.ctx(account.ID{}), g); err != nil {
		t.Fatal(err)
	}
	return e, bal
}

func TestSudoSetBalanceThroughRealBalances(t *testing.T) {
	e, bal := newBalancesEnv(t)
	setBob := e.call("balances", "set_balance", balances.SetBalanceArgs{Who: bob, Free: types.TEER(7)})
	ctx := e.ctx(alice)

	err := e.m.Exec(ctx, "sudo", e.sudoArgs(setBob))

	if err != nil {
		t.Fatal(err)
	}
	if got := bal.Account(ctx, bob).Free; got != types.TEER(7) {
		t.Errorf("bob = %s, want 7 TEER", got)
	}
	if got := bal.TotalIssuance(ctx); got != types.TEER(107) {
		t.Errorf("issuance = %s, want 107 TEER", got)
	}
	if got := strings.Join(eventTypes(ctx.Events()), ","); got != "balances.BalanceSet,sudo.Sudid" {
		t.Errorf("events %s", got)
	}
}

func TestSetBalanceWithoutSudoIsBadOriginEvenForTheKey(t *testing.T) {
	e, bal := newBalancesEnv(t)
	ctx, o := e.scratch(alice)

	err := bal.Exec(ctx, "set_balance", e.args(balances.SetBalanceArgs{Who: bob, Free: types.TEER(7)}))

	if !errors.Is(err, types.ErrBadOrigin) {
		t.Fatalf("err = %v, want ErrBadOrigin", err)
	}
	wantNoEffect(t, ctx, o)
}

func TestSudoSetBalanceByNonKeyChangesNothing(t *testing.T) {
	e, bal := newBalancesEnv(t)
	ctx, o := e.scratch(bob)

	err := e.m.Exec(ctx, "sudo", e.sudoArgs(e.call("balances", "set_balance",
		balances.SetBalanceArgs{Who: bob, Free: types.TEER(1_000_000)})))

	if !errors.Is(err, sudo.ErrRequireSudo) {
		t.Fatalf("err = %v, want ErrRequireSudo", err)
	}
	wantNoEffect(t, ctx, o)
	if got := bal.Account(ctx, bob).Free; got != types.TEER(50) {
		t.Errorf("bob = %s", got)
	}
}

func TestSudoRealInnerFailurePropagates(t *testing.T) {
	e, _ := newBalancesEnv(t)
	for _, c := range []struct {
		name  string
		inner types.Call
		want  error
	}{
		{"insufficient balance", e.call("balances", "transfer",
			balances.TransferArgs{Dest: bob, Amount: types.TEER(101)}), balances.ErrInsufficientBalance},
		{"bad inner args", types.Call{Module: "balances", Method: "set_balance", Args: []byte("junk")}, types.ErrBadArgs},
		{"unknown inner method", e.call("balances", "mint", 1), types.ErrUnknownCall},
		{"unknown module", e.call("nosuch", "x", 1), types.ErrUnknownModule},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx, _ := e.scratch(alice)

			err := e.m.Exec(ctx, "sudo", e.sudoArgs(c.inner))

			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
			if hasEvent(ctx.Events(), "sudo.Sudid") {
				t.Errorf("emitted Sudid for a failed call")
			}
		})
	}
}

// ---- set_key ----

func TestSetKeyHandsOverSudoRights(t *testing.T) {
	r := &recorder{}
	e := newEnv(t, r)
	e.genesisKey(alice)
	ctx := e.ctx(alice)

	err := e.m.Exec(ctx, "set_key", e.args(sudo.SetKeyArgs{New: bob}))

	if err != nil {
		t.Fatal(err)
	}
	if k, ok := e.key(); !ok || k != bob {
		t.Fatalf("key = %s, %v; want bob", k, ok)
	}
	evs := ctx.Events()
	if len(evs) != 1 || evs[0].Type() != "sudo.KeyChanged" || len(evs[0].Attrs) != 1 ||
		evs[0].Attrs[0] != (types.Attr{Key: "new", Value: bob.String()}) {
		t.Errorf("events %+v", evs)
	}

	// The old key has lost its rights...
	old, o := e.scratch(alice)
	if err := e.m.Exec(old, "sudo", e.sudoArgs(e.call("fake", "do", 1))); !errors.Is(err, sudo.ErrRequireSudo) {
		t.Errorf("old key sudo: err = %v, want ErrRequireSudo", err)
	}
	if err := e.m.Exec(old, "set_key", e.args(sudo.SetKeyArgs{New: alice})); !errors.Is(err, sudo.ErrRequireSudo) {
		t.Errorf("old key set_key: err = %v, want ErrRequireSudo", err)
	}
	wantNoEffect(t, old, o)
	if len(r.calls) != 0 {
		t.Fatalf("old key dispatched %d calls", len(r.calls))
	}
	// ...and the new one has them.
	if err := e.m.Exec(e.ctx(bob), "sudo", e.sudoArgs(e.call("fake", "do", 1))); err != nil {
		t.Errorf("new key sudo: %v", err)
	}
	if len(r.calls) != 1 || r.orig[0] != (types.Origin{Signer: bob, Root: true}) {
		t.Errorf("new key dispatch: %+v", r.orig)
	}
}

func TestSetKeyByNonKeyIsRefused(t *testing.T) {
	e := newEnv(t, &recorder{})
	e.genesisKey(alice)
	ctx, o := e.scratch(eve)

	err := e.m.Exec(ctx, "set_key", e.args(sudo.SetKeyArgs{New: eve}))

	if !errors.Is(err, sudo.ErrRequireSudo) {
		t.Fatalf("err = %v, want ErrRequireSudo", err)
	}
	wantNoEffect(t, ctx, o)
	if k, _ := e.key(); k != alice {
		t.Errorf("key = %s, want alice", k)
	}
}

func TestSetKeyThroughSudo(t *testing.T) {
	e, _ := newBalancesEnv(t)
	ctx := e.ctx(alice)

	err := e.m.Exec(ctx, "sudo", e.sudoArgs(e.call("sudo", "set_key", sudo.SetKeyArgs{New: bob})))

	if err != nil {
		t.Fatal(err)
	}
	if k, _ := e.key(); k != bob {
		t.Errorf("key = %s, want bob", k)
	}
	if got := strings.Join(eventTypes(ctx.Events()), ","); got != "sudo.KeyChanged,sudo.Sudid" {
		t.Errorf("events %s", got)
	}
}

// ---- genesis and queries ----

func TestGenesisRefusesUnknownField(t *testing.T) {
	e := newEnv(t, &recorder{})
	ctx, o := e.scratch(account.ID{})

	err := e.m.InitGenesis(ctx, json.RawMessage(fmt.Sprintf(`{"key":%q,"keys":[]}`, alice)))

	if err == nil {
		t.Fatal("unknown genesis field accepted")
	}
	wantNoEffect(t, ctx, o)
}

func TestGenesisRefusesABadKey(t *testing.T) {
	e := newEnv(t, &recorder{})
	ctx, o := e.scratch(account.ID{})

	err := e.m.InitGenesis(ctx, json.RawMessage(`{"key":"//Alice"}`))

	if err == nil {
		t.Fatal("dev seed accepted as a sudo key")
	}
	wantNoEffect(t, ctx, o)
}

func TestGenesisKeyAsHex(t *testing.T) {
	e := newEnv(t, &recorder{})

	if err := e.m.InitGenesis(e.ctx(account.ID{}), json.RawMessage(fmt.Sprintf(`{"key":%q}`, bob.Hex()))); err != nil {
		t.Fatal(err)
	}

	if k, ok := e.key(); !ok || k != bob {
		t.Errorf("key = %s, %v; want bob", k, ok)
	}
}

func TestQueryKey(t *testing.T) {
	e := newEnv(t, &recorder{})

	got, err := e.m.Query(e.store, []string{"key"})
	if err != nil {
		t.Fatal(err)
	}
	if js, _ := json.Marshal(got); string(js) != `{"key":null}` {
		t.Errorf("no key: %s", js)
	}

	e.genesisKey(alice)
	got, _ = e.m.Query(e.store, []string{"key"})
	if got.(sudo.KeyInfo).Key != nil {
		t.Errorf("query saw the uncommitted key")
	}
	e.commit()

	got, err = e.m.Query(e.store, []string{"key"})

	if err != nil {
		t.Fatal(err)
	}
	ki, ok := got.(sudo.KeyInfo)
	if !ok || ki.Key == nil || *ki.Key != alice {
		t.Fatalf("key query = %+v", got)
	}
	if js, _ := json.Marshal(got); string(js) != fmt.Sprintf(`{"key":%q}`, alice) {
		t.Errorf("JSON %s", js)
	}
}

func TestQueryBadPaths(t *testing.T) {
	e := newEnv(t, &recorder{})
	for _, path := range [][]string{nil, {""}, {"Key"}, {"key", "x"}, {"keys"}} {
		_, err := e.m.Query(e.store, path)

		if !errors.Is(err, types.ErrUnknownPath) {
			t.Errorf("%q: err = %v, want ErrUnknownPath", path, err)
		}
	}
}
