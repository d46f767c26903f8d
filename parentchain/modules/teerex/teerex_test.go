package teerex

import (
	"crypto/ed25519"
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
	"github.com/integritee-go/integritee/parentchain/state"
	"github.com/integritee-go/integritee/parentchain/state/statetest"
	"github.com/integritee-go/integritee/parentchain/types"
)

var (
	alice = mustDev("//Alice")
	bob   = mustDev("//Bob")
	eve   = mustDev("//Eve")

	mrA = attestation.MrEnclave(sha256.Sum256([]byte("enclave A")))
	mrB = attestation.MrEnclave(sha256.Sum256([]byte("enclave B")))

	t0 = time.UnixMilli(1_700_000_000_000).UTC()
)

func mustDev(uri string) account.ID {
	p, err := account.DevPair(uri)
	if err != nil {
		panic(err)
	}
	return p.ID()
}

// fakeTDX is a stand-in for a real TEE verifier: its "quote" is
// mrenclave(32) || debug(1) || reportdata-key(32).
type fakeTDX struct{ method string }

func (f fakeTDX) Method() string { return "tdx" }

func (f fakeTDX) Verify(q []byte) (*attestation.Report, error) {
	if len(q) != 65 {
		return nil, attestation.ErrBadQuote
	}
	r := &attestation.Report{Method: "tdx", Debug: q[32] == 1, Timestamp: t0}
	if f.method != "" {
		r.Method = f.method
	}
	copy(r.MrEnclave[:], q[:32])
	copy(r.ReportData[:], q[33:])
	return r, nil
}

func tdxQuote(mr attestation.MrEnclave, debug bool, key account.ID) []byte {
	q := append(append([]byte{}, mr[:]...), 0)
	if debug {
		q[32] = 1
	}
	return append(q, key[:]...)
}

func bind(id account.ID) [64]byte {
	var rd [64]byte
	copy(rd[:], id[:])
	rd[40] = 0xee // the rest is free for the enclave
	return rd
}

type env struct {
	t      *testing.T
	codec  *types.Codec
	store  *state.Store
	o      *state.Overlay
	m      *Module
	height int64
	now    time.Time
	hash   []byte
}

func newEnv(t *testing.T, genesis string, verifiers ...attestation.Verifier) *env {
	t.Helper()
	st, err := state.Open(t.TempDir(), statetest.Config())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	codec := types.NewCodec()
	if verifiers == nil {
		verifiers = []attestation.Verifier{sim.NewVerifier()}
	}
	e := &env{t: t, codec: codec, store: st, o: state.NewOverlay(st), m: New(codec, verifiers...), height: 1, now: t0}
	if err := e.m.InitGenesis(e.ctx(account.ID{}, false), json.RawMessage(genesis)); err != nil {
		t.Fatalf("genesis: %v", err)
	}
	return e
}

func (e *env) ctx(signer account.ID, root bool) *types.Context {
	return &types.Context{Store: e.o, Codec: e.codec, Block: types.Block{Height: e.height, Time: e.now},
		Origin: types.Origin{Signer: signer, Root: root}}
}

// exec runs a call in a child overlay. On error it checks that the call
// wrote nothing and emitted nothing; on success it applies the writes.
func (e *env) exec(signer account.ID, root bool, method string, args any) ([]types.Event, error) {
	e.t.Helper()
	child := e.o.Child()
	ctx := e.ctx(signer, root).WithStore(child)
	err := e.m.Exec(ctx, method, e.codec.MustMarshal(args))
	if err != nil {
		if child.Len() != 0 || len(ctx.Events()) != 0 {
			e.t.Fatalf("%s failed (%v) but left %d writes and %d events", method, err, child.Len(), len(ctx.Events()))
		}
		return nil, err
	}
	child.Apply()
	return ctx.Events(), nil
}

func (e *env) register(signer account.ID, method string, proof []byte, url string) ([]types.Event, error) {
	e.t.Helper()
	return e.exec(signer, false, "register_enclave", RegisterEnclaveArgs{Proof: proof, URL: url, Method: method})
}

func (e *env) mustRegister(signer account.ID, mr attestation.MrEnclave, url string) {
	e.t.Helper()
	if _, err := e.register(signer, "sim", sim.NewQuote(mr, false, bind(signer), e.now), url); err != nil {
		e.t.Fatal(err)
	}
}

func (e *env) commit() {
	e.t.Helper()
	var err error
	if e.hash, err = e.store.CommitOverlay(e.o, e.height); err != nil {
		e.t.Fatal(err)
	}
	e.o = state.NewOverlay(e.store)
	e.height++
}

func (e *env) query(path string) (any, error) {
	return e.m.Query(e.store, strings.Split(path, "/"))
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

const simGenesis = `{"security_flags":{"allow_sim":true}}`

func TestGenesisDefaults(t *testing.T) {
	e := newEnv(t, ``)
	ctx := e.ctx(alice, false)
	if f := e.m.Flags(ctx); f != (SecurityFlags{}) {
		t.Fatalf("flags %+v", f)
	}
	want := Params{MaxQuoteAgeMs: 600_000, MaxFutureSkewMs: 60_000, RenewalPeriodMs: 86_400_000, ShardSilenceBlocks: 30}
	if p := e.m.Params(ctx); p != want || DefaultParams() != want {
		t.Fatalf("params %+v", p)
	}
	if e.m.Count(ctx) != 0 {
		t.Fatal("count")
	}
}

func TestGenesisExplicit(t *testing.T) {
	e := newEnv(t, `{"security_flags":{"allow_skip":true,"allow_sim":true,"allow_debug":true},
		"params":{"max_quote_age_ms":1000,"max_future_skew_ms":2000,"renewal_period_ms":3000}}`)
	ctx := e.ctx(alice, false)
	if f := e.m.Flags(ctx); f != (SecurityFlags{true, true, true}) {
		t.Fatalf("flags %+v", f)
	}
	if p := e.m.Params(ctx); p != (Params{1000, 2000, 3000, DefaultShardSilenceBlocks}) {
		t.Fatalf("params %+v", p)
	}
	// Partially given params keep the defaults for the rest.
	e = newEnv(t, `{"params":{"renewal_period_ms":5}}`)
	if p := e.m.Params(e.ctx(alice, false)); p != (Params{DefaultMaxQuoteAgeMs, DefaultMaxFutureSkewMs, 5, DefaultShardSilenceBlocks}) {
		t.Fatalf("params %+v", p)
	}
}

func TestGenesisStrict(t *testing.T) {
	codec := types.NewCodec()
	m := New(codec)
	o := state.NewOverlay(mapGetter{})
	ctx := &types.Context{Store: o, Codec: codec}
	for _, g := range []string{`{"security_flags":{"allow_everything":true}}`, `{"bogus":1}`, `{"params":{"max_quote_age_ms":-1}}`, `[]`} {
		if err := m.InitGenesis(ctx, json.RawMessage(g)); err == nil {
			t.Errorf("genesis %s accepted", g)
		}
	}
}

type mapGetter map[string][]byte

func (m mapGetter) Get(k []byte) ([]byte, bool) { v, ok := m[string(k)]; return v, ok }

func TestNewPanicsOnBadVerifiers(t *testing.T) {
	for name, vs := range map[string][]attestation.Verifier{
		"duplicate": {sim.NewVerifier(), sim.NewVerifier()},
		"skip":      {namedVerifier("skip")},
		"empty":     {namedVerifier("")},
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: New did not panic", name)
				}
			}()
			New(types.NewCodec(), vs...)
		}()
	}
	m := New(types.NewCodec(), nil, sim.NewVerifier())
	if _, ok := m.Verifier("sim"); !ok {
		t.Fatal("sim verifier not installed")
	}
}

type namedVerifier string

func (n namedVerifier) Method() string                           { return string(n) }
func (namedVerifier) Verify([]byte) (*attestation.Report, error) { return nil, errors.New("no") }

func TestRegisterSim(t *testing.T) {
	e := newEnv(t, simGenesis)
	e.height = 7
	quoteTime := e.now.Add(-time.Minute)
	evs, err := e.register(alice, "sim", sim.NewQuote(mrA, false, bind(alice), quoteTime), "wss://a.example:2000")
	if err != nil {
		t.Fatal(err)
	}
	want := Enclave{Signer: alice, MrEnclave: mrA, Method: "sim", Timestamp: quoteTime.UnixMilli(), URL: "wss://a.example:2000", RegisteredAt: 7}
	got, ok := e.m.Enclave(e.ctx(alice, false), alice)
	if !ok || got != want {
		t.Fatalf("enclave %+v, want %+v", got, want)
	}
	if n := e.m.Count(e.ctx(alice, false)); n != 1 {
		t.Fatalf("count %d", n)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "EnclaveRegistered", "signer", alice, "mr_enclave", mrA,
		"attestation_method", "sim", "debug", false, "timestamp_ms", quoteTime.UnixMilli(), "url", "wss://a.example:2000"))
	if evs[0].Attrs[1].Value != mrA.String() || evs[0].Attrs[0].Value != alice.String() {
		t.Fatalf("event attrs %+v", evs[0].Attrs)
	}
}

func TestRenew(t *testing.T) {
	e := newEnv(t, simGenesis)
	e.height = 3
	e.mustRegister(alice, mrA, "wss://old")
	e.height, e.now = 50, e.now.Add(time.Hour)
	evs, err := e.register(alice, "sim", sim.NewQuote(mrB, false, bind(alice), e.now), "wss://new")
	if err != nil {
		t.Fatal(err)
	}
	want := Enclave{Signer: alice, MrEnclave: mrB, Method: "sim", Timestamp: e.now.UnixMilli(), URL: "wss://new", RegisteredAt: 3}
	if got, _ := e.m.Enclave(e.ctx(alice, false), alice); got != want {
		t.Fatalf("renewed %+v, want %+v", got, want)
	}
	if n := e.m.Count(e.ctx(alice, false)); n != 1 {
		t.Fatalf("count %d after renewal", n)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "EnclaveRenewed", "signer", alice, "mr_enclave", mrB,
		"attestation_method", "sim", "debug", false, "timestamp_ms", e.now.UnixMilli(), "url", "wss://new"))
}

func TestRegisterSkip(t *testing.T) {
	e := newEnv(t, `{"security_flags":{"allow_skip":true}}`)
	evs, err := e.register(bob, "skip", mrB[:], "wss://bob")
	if err != nil {
		t.Fatal(err)
	}
	want := Enclave{Signer: bob, MrEnclave: mrB, Method: "skip", Timestamp: e.now.UnixMilli(), URL: "wss://bob", RegisteredAt: 1}
	if got, _ := e.m.Enclave(e.ctx(bob, false), bob); got != want {
		t.Fatalf("enclave %+v", got)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "EnclaveRegistered", "signer", bob, "mr_enclave", mrB,
		"attestation_method", "skip", "debug", false, "timestamp_ms", e.now.UnixMilli(), "url", "wss://bob"))

	_, err = e.register(alice, "skip", mrA[:31], "wss://a")
	wantErr(t, err, ErrBadProof)
	_, err = e.register(alice, "skip", append(mrA[:], 0), "wss://a")
	wantErr(t, err, ErrBadProof)
	// Skip is refused while sim-only, and a sim quote is refused while skip-only.
	_, err = e.register(alice, "sim", sim.NewQuote(mrA, false, bind(alice), e.now), "wss://a")
	wantErr(t, err, ErrMethodNotAllowed)

	e2 := newEnv(t, simGenesis)
	_, err = e2.register(alice, "skip", mrA[:], "wss://a")
	wantErr(t, err, ErrSkipNotAllowed)
	if _, ok := e2.m.Enclave(e2.ctx(alice, false), alice); ok || e2.m.Count(e2.ctx(alice, false)) != 0 {
		t.Fatal("refused registration left state")
	}
}

func TestRegisterRealMethod(t *testing.T) {
	// A real method's verifier is used even with every flag off.
	e := newEnv(t, ``, sim.NewVerifier(), fakeTDX{})
	if _, err := e.register(alice, "tdx", tdxQuote(mrA, false, alice), "wss://tdx"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.m.Enclave(e.ctx(alice, false), alice); got.Method != "tdx" || got.MrEnclave != mrA || got.Timestamp != t0.UnixMilli() {
		t.Fatalf("enclave %+v", got)
	}
	_, err := e.register(bob, "tdx", []byte("short"), "wss://tdx")
	wantErr(t, err, ErrBadProof)
	_, err = e.register(bob, "tdx", tdxQuote(mrA, true, bob), "wss://tdx")
	wantErr(t, err, ErrDebugNotAllowed)
	_, err = e.register(bob, "tdx", tdxQuote(mrA, false, alice), "wss://tdx")
	wantErr(t, err, ErrReportDataMismatch)
	_, err = e.register(bob, "sim", sim.NewQuote(mrA, false, bind(bob), e.now), "wss://tdx")
	wantErr(t, err, ErrMethodNotAllowed)

	// A verifier whose report names another method is not trusted.
	e2 := newEnv(t, ``, fakeTDX{method: "sim"})
	_, err = e2.register(bob, "tdx", tdxQuote(mrA, false, bob), "wss://tdx")
	wantErr(t, err, ErrBadProof)
}

func TestRegisterUnknownMethod(t *testing.T) {
	e := newEnv(t, `{"security_flags":{"allow_skip":true,"allow_sim":true,"allow_debug":true}}`)
	for _, method := range []string{"tdx", "", "SIM", "sev-snp"} {
		_, err := e.register(alice, method, tdxQuote(mrA, false, alice), "wss://a")
		wantErr(t, err, ErrUnknownAttestationMethod)
	}
	// Without a sim verifier installed, "sim" is unknown too.
	e2 := newEnv(t, simGenesis, fakeTDX{})
	_, err := e2.register(alice, "sim", sim.NewQuote(mrA, false, bind(alice), e2.now), "wss://a")
	wantErr(t, err, ErrUnknownAttestationMethod)
}

func TestRegisterForgedQuotes(t *testing.T) {
	e := newEnv(t, simGenesis)
	_, otherKey, _ := ed25519.GenerateKey(nil)
	forged := sim.Quote{Version: sim.Version, MrEnclave: mrA, ReportData: bind(alice), Timestamp: e.now.UnixMilli()}
	forged.Signature = ed25519.Sign(otherKey, forged.SigningBytes())

	cases := []struct {
		name  string
		proof []byte
		want  error
	}{
		{"signed by another key", forged.Encode(), ErrBadProof},
		{"garbage", []byte{1, 2, 3}, ErrBadProof},
		{"empty", nil, ErrBadProof},
		{"bound to someone else", sim.NewQuote(mrA, false, bind(bob), e.now), ErrReportDataMismatch},
		{"bound to nobody", sim.NewQuote(mrA, false, [64]byte{}, e.now), ErrReportDataMismatch},
		{"expired", sim.NewQuote(mrA, false, bind(alice), e.now.Add(-10*time.Minute-time.Millisecond)), ErrQuoteExpired},
		{"ancient", sim.NewQuote(mrA, false, bind(alice), time.UnixMilli(-1<<62)), ErrQuoteExpired},
		{"from the future", sim.NewQuote(mrA, false, bind(alice), e.now.Add(time.Minute+time.Millisecond)), ErrQuoteFromFuture},
		{"far future", sim.NewQuote(mrA, false, bind(alice), time.UnixMilli(1<<62)), ErrQuoteFromFuture},
		{"debug while forbidden", sim.NewQuote(mrA, true, bind(alice), e.now), ErrDebugNotAllowed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.register(alice, "sim", c.proof, "wss://a")
			wantErr(t, err, c.want)
		})
	}
	if _, ok := e.m.Enclave(e.ctx(alice, false), alice); ok || e.m.Count(e.ctx(alice, false)) != 0 {
		t.Fatal("a refused registration left state")
	}
}

func TestRegisterForgedQuoteDoesNotTouchExisting(t *testing.T) {
	e := newEnv(t, simGenesis)
	e.mustRegister(alice, mrA, "wss://a")
	before, _ := e.m.Enclave(e.ctx(alice, false), alice)
	e.now = e.now.Add(time.Hour)
	_, err := e.register(alice, "sim", sim.NewQuote(mrB, false, bind(bob), e.now), "wss://evil")
	wantErr(t, err, ErrReportDataMismatch)
	if after, _ := e.m.Enclave(e.ctx(alice, false), alice); after != before {
		t.Fatalf("entry changed: %+v -> %+v", before, after)
	}
}

func TestTimeBoundaries(t *testing.T) {
	e := newEnv(t, `{"security_flags":{"allow_sim":true},"params":{"max_quote_age_ms":5000,"max_future_skew_ms":100}}`)
	if _, err := e.register(alice, "sim", sim.NewQuote(mrA, false, bind(alice), e.now.Add(-5*time.Second)), "u"); err != nil {
		t.Fatalf("exactly max age: %v", err)
	}
	_, err := e.register(bob, "sim", sim.NewQuote(mrA, false, bind(bob), e.now.Add(-5001*time.Millisecond)), "u")
	wantErr(t, err, ErrQuoteExpired)
	if _, err := e.register(bob, "sim", sim.NewQuote(mrA, false, bind(bob), e.now.Add(100*time.Millisecond)), "u"); err != nil {
		t.Fatalf("exactly max skew: %v", err)
	}
	_, err = e.register(eve, "sim", sim.NewQuote(mrA, false, bind(eve), e.now.Add(101*time.Millisecond)), "u")
	wantErr(t, err, ErrQuoteFromFuture)
}

func TestRegisterDebugAllowed(t *testing.T) {
	e := newEnv(t, `{"security_flags":{"allow_sim":true,"allow_debug":true}}`)
	if _, err := e.register(alice, "sim", sim.NewQuote(mrA, true, bind(alice), e.now), "wss://a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := e.m.Enclave(e.ctx(alice, false), alice); !got.Debug {
		t.Fatal("debug flag not recorded")
	}
}

func TestRegisterLimits(t *testing.T) {
	e := newEnv(t, simGenesis)
	q := sim.NewQuote(mrA, false, bind(alice), e.now)
	_, err := e.register(alice, "sim", q, "")
	wantErr(t, err, ErrEmptyURL)
	_, err = e.register(alice, "sim", q, strings.Repeat("x", MaxURLLen+1))
	wantErr(t, err, ErrURLTooLong)
	_, err = e.register(alice, "sim", make([]byte, MaxProofSize+1), "wss://a")
	wantErr(t, err, ErrProofTooLarge)
	if _, err := e.register(alice, "sim", q, strings.Repeat("x", MaxURLLen)); err != nil {
		t.Fatalf("max url: %v", err)
	}
}

func TestBadArgsAndUnknownCall(t *testing.T) {
	e := newEnv(t, simGenesis)
	child := e.o.Child()
	ctx := e.ctx(alice, false).WithStore(child)
	for _, method := range []string{"register_enclave", "unregister_enclave", "set_security_flags"} {
		if err := e.m.Exec(ctx, method, []byte{0xff}); !errors.Is(err, types.ErrBadArgs) {
			t.Errorf("%s: %v", method, err)
		}
	}
	// Unknown fields are refused.
	extra := e.codec.MustMarshal(map[int]any{1: []byte{1}, 2: "u", 3: "sim", 4: 0})
	if err := e.m.Exec(ctx, "register_enclave", extra); !errors.Is(err, types.ErrBadArgs) {
		t.Errorf("unknown field: %v", err)
	}
	if err := e.m.Exec(ctx, "register", nil); !errors.Is(err, types.ErrUnknownCall) {
		t.Errorf("unknown call: %v", err)
	}
	if child.Len() != 0 || len(ctx.Events()) != 0 {
		t.Fatal("refused calls changed state or emitted events")
	}
}

func TestUnregisterSelf(t *testing.T) {
	e := newEnv(t, simGenesis)
	e.mustRegister(alice, mrA, "wss://a")
	e.mustRegister(bob, mrB, "wss://b")
	evs, err := e.exec(alice, false, "unregister_enclave", UnregisterEnclaveArgs{Signer: alice})
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "EnclaveUnregistered", "signer", alice, "by", alice))
	ctx := e.ctx(alice, false)
	if _, ok := e.m.Enclave(ctx, alice); ok {
		t.Fatal("still registered")
	}
	if _, ok := e.m.Enclave(ctx, bob); !ok || e.m.Count(ctx) != 1 {
		t.Fatal("bob lost or count wrong")
	}
	_, err = e.exec(alice, false, "unregister_enclave", UnregisterEnclaveArgs{Signer: alice})
	wantErr(t, err, ErrEnclaveNotRegistered)
}

func TestUnregisterOther(t *testing.T) {
	e := newEnv(t, `{"security_flags":{"allow_sim":true},"params":{"renewal_period_ms":60000}}`)
	e.mustRegister(alice, mrA, "wss://a")
	before, _ := e.m.Enclave(e.ctx(alice, false), alice)

	for _, d := range []time.Duration{0, time.Second, time.Minute} {
		e.now = t0.Add(d)
		_, err := e.exec(eve, false, "unregister_enclave", UnregisterEnclaveArgs{Signer: alice})
		wantErr(t, err, ErrUnregisterTooEarly)
	}
	if after, ok := e.m.Enclave(e.ctx(alice, false), alice); !ok || after != before || e.m.Count(e.ctx(alice, false)) != 1 {
		t.Fatal("refused unregistration changed state")
	}
	e.now = t0.Add(time.Minute + time.Millisecond)
	evs, err := e.exec(eve, false, "unregister_enclave", UnregisterEnclaveArgs{Signer: alice})
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "EnclaveUnregistered", "signer", alice, "by", eve))
	if e.m.Count(e.ctx(alice, false)) != 0 {
		t.Fatal("count")
	}
	_, err = e.exec(eve, false, "unregister_enclave", UnregisterEnclaveArgs{Signer: bob})
	wantErr(t, err, ErrEnclaveNotRegistered)
}

func TestSetSecurityFlags(t *testing.T) {
	e := newEnv(t, simGenesis)
	flags := SecurityFlags{AllowSkip: true, AllowDebug: true}
	_, err := e.exec(alice, false, "set_security_flags", SetSecurityFlagsArgs{Flags: flags})
	wantErr(t, err, types.ErrBadOrigin)
	if f := e.m.Flags(e.ctx(alice, false)); f != (SecurityFlags{AllowSim: true}) {
		t.Fatalf("flags changed by non-root: %+v", f)
	}
	evs, err := e.exec(alice, true, "set_security_flags", SetSecurityFlagsArgs{Flags: flags})
	if err != nil {
		t.Fatal(err)
	}
	wantEvents(t, evs, types.NewEvent(ModuleName, "SecurityFlagsSet", "allow_skip", true, "allow_sim", false, "allow_debug", true))
	if f := e.m.Flags(e.ctx(alice, false)); f != flags {
		t.Fatalf("flags %+v", f)
	}
	// The new flags take effect: sim is now refused.
	_, err = e.register(alice, "sim", sim.NewQuote(mrA, false, bind(alice), e.now), "wss://a")
	wantErr(t, err, ErrMethodNotAllowed)
}

func TestQueries(t *testing.T) {
	e := newEnv(t, `{"security_flags":{"allow_sim":true},"params":{"renewal_period_ms":1234}}`)
	e.mustRegister(alice, mrA, "wss://a")
	e.mustRegister(bob, mrB, "wss://b")
	e.commit()

	res, err := e.query("enclaves")
	if err != nil {
		t.Fatal(err)
	}
	list := res.([]Enclave)
	if len(list) != 2 {
		t.Fatalf("enclaves: %+v", list)
	}
	seen := map[account.ID]Enclave{}
	for _, en := range list {
		seen[en.Signer] = en
	}
	if seen[alice].MrEnclave != mrA || seen[bob].URL != "wss://b" {
		t.Fatalf("enclaves: %+v", list)
	}

	for _, id := range []string{alice.String(), alice.Hex()} {
		res, err := e.query("enclave/" + id)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(res)
		want := fmt.Sprintf(`{"signer":"%s","mr_enclave":"%s","debug":false,"attestation_method":"sim","timestamp_ms":%d,"url":"wss://a","registered_at":1}`,
			alice, mrA, t0.UnixMilli())
		if string(b) != want {
			t.Fatalf("enclave json\n got %s\nwant %s", b, want)
		}
	}
	_, err = e.query("enclave/" + eve.String())
	wantErr(t, err, types.ErrNotFound)
	_, err = e.query("enclave/nonsense")
	wantErr(t, err, types.ErrBadQuery)

	res, err = e.query("security_flags")
	if b, _ := json.Marshal(res); err != nil || string(b) != `{"allow_skip":false,"allow_sim":true,"allow_debug":false}` {
		t.Fatalf("flags %s %v", b, err)
	}
	res, err = e.query("params")
	if b, _ := json.Marshal(res); err != nil || string(b) != `{"max_quote_age_ms":600000,"max_future_skew_ms":60000,"renewal_period_ms":1234,"shard_silence_blocks":30}` {
		t.Fatalf("params %s %v", b, err)
	}
	for _, p := range []string{"", "enclave", "enclaves/x", "nope", "enclave/a/b"} {
		_, err := e.query(p)
		wantErr(t, err, types.ErrUnknownPath)
	}
}

func TestQueryEmptyEnclaves(t *testing.T) {
	e := newEnv(t, ``)
	e.commit()
	res, err := e.query("enclaves")
	if b, _ := json.Marshal(res); err != nil || string(b) != `[]` {
		t.Fatalf("empty list %s %v", b, err)
	}
}
