// Package teerex is the parentchain's enclave registry, the Substrate teerex
// pallet's counterpart. An enclave registers with an attestation proof whose
// report data binds the enclave's signing key, which is the transaction's
// sender; the registry records its measurement (mrenclave), debug mode,
// attestation time and URL. Re-registering renews the entry. Anyone may
// remove an enclave whose attestation is older than the renewal period.
//
// Which proofs count is policy, held in the security flags (set by root):
// "skip" registrations (no proof at all) only while allow_skip, simulation
// quotes only while allow_sim, debug enclaves only while allow_debug. Quotes
// of a real TEE method are accepted whenever a verifier for it is installed.
package teerex

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/parentchain/types"
)

// ModuleName is the module's name in calls, events, errors and queries.
const ModuleName = "teerex"

// MethodSkip is the attestation method that skips attestation: the proof is
// the bare 32-byte mrenclave, unverified. Only for development chains.
const MethodSkip = "skip"

// Limits of register_enclave.
const (
	// MaxURLLen bounds an enclave's URL, in bytes.
	MaxURLLen = 256
	// MaxProofSize bounds an attestation proof, in bytes.
	MaxProofSize = 16 << 10
)

// Default parameters.
const (
	// DefaultMaxQuoteAgeMs is the default of Params.MaxQuoteAgeMs: 10 minutes.
	DefaultMaxQuoteAgeMs = uint64(10 * time.Minute / time.Millisecond)
	// DefaultMaxFutureSkewMs is the default of Params.MaxFutureSkewMs: 1 minute.
	DefaultMaxFutureSkewMs = uint64(time.Minute / time.Millisecond)
	// DefaultRenewalPeriodMs is the default of Params.RenewalPeriodMs: 24 hours.
	DefaultRenewalPeriodMs = uint64(24 * time.Hour / time.Millisecond)
	// DefaultShardSilenceBlocks is the default of Params.ShardSilenceBlocks.
	DefaultShardSilenceBlocks = 30
)

// Errors.
var (
	ErrSkipNotAllowed           = types.NewError(ModuleName, 1, "SkipNotAllowed", "registration without attestation is not allowed on this chain")
	ErrMethodNotAllowed         = types.NewError(ModuleName, 2, "MethodNotAllowed", "attestation method is not allowed on this chain")
	ErrUnknownAttestationMethod = types.NewError(ModuleName, 3, "UnknownAttestationMethod", "no verifier for this attestation method")
	ErrBadProof                 = types.NewError(ModuleName, 4, "BadProof", "attestation proof does not verify")
	ErrReportDataMismatch       = types.NewError(ModuleName, 5, "ReportDataMismatch", "report data does not bind the sender's key")
	ErrQuoteExpired             = types.NewError(ModuleName, 6, "QuoteExpired", "attestation is too old")
	ErrQuoteFromFuture          = types.NewError(ModuleName, 7, "QuoteFromFuture", "attestation is dated in the future")
	ErrDebugNotAllowed          = types.NewError(ModuleName, 8, "DebugNotAllowed", "debug enclaves are not allowed on this chain")
	ErrURLTooLong               = types.NewError(ModuleName, 9, "URLTooLong", "enclave URL too long")
	ErrEmptyURL                 = types.NewError(ModuleName, 10, "EmptyURL", "enclave URL is empty")
	ErrProofTooLarge            = types.NewError(ModuleName, 11, "ProofTooLarge", "attestation proof too large")
	ErrEnclaveNotRegistered     = types.NewError(ModuleName, 12, "EnclaveNotRegistered", "no enclave registered with this signer")
	ErrUnregisterTooEarly       = types.NewError(ModuleName, 13, "UnregisterTooEarly", "only the enclave itself may unregister it before its attestation is older than the renewal period")
)

var (
	keyFlags      = []byte("teerex/flags")
	keyParams     = []byte("teerex/params")
	keyCount      = []byte("teerex/count")
	prefixEnclave = []byte("teerex/enclave/")
)

// Admissible reports whether a registration is acceptable under the
// security flags in force: its method ("skip", "sim") and its debug mode
// must still be allowed. Tightening the flags thus withdraws authorisation
// from registrations made under looser ones.
func Admissible(e Enclave, f SecurityFlags) bool {
	switch {
	case e.Method == "skip" && !f.AllowSkip, e.Method == "sim" && !f.AllowSim, e.Debug && !f.AllowDebug:
		return false
	}
	return true
}

// FlagsKey is the state key of the security flags (SecurityFlags).
func FlagsKey() []byte { return bytes.Clone(keyFlags) }

// ParamsKey is the state key of the registry's parameters (Params; absent
// fields take their defaults, see ParamsOf).
func ParamsKey() []byte { return bytes.Clone(keyParams) }

// ParamsOf returns stored parameters with their defaults filled in.
func ParamsOf(p Params) Params { return p.withDefaults() }

// EnclaveKey is the state key of an enclave's registration.
func EnclaveKey(id account.ID) []byte {
	return append(append([]byte{}, prefixEnclave...), id[:]...)
}

// SecurityFlags say which attestations the registry accepts.
type SecurityFlags struct {
	// AllowSkip admits registrations without attestation (method "skip").
	AllowSkip bool `cbor:"1,keyasint" json:"allow_skip"`
	// AllowSim admits simulation quotes (method "sim"), which carry no security.
	AllowSim bool `cbor:"2,keyasint" json:"allow_sim"`
	// AllowDebug admits enclaves running in debug mode.
	AllowDebug bool `cbor:"3,keyasint" json:"allow_debug"`
}

// Params are the registry's time limits, in milliseconds. In genesis, zero
// (or absent) means the default.
type Params struct {
	// MaxQuoteAgeMs is how old an attestation may be at registration.
	MaxQuoteAgeMs uint64 `cbor:"1,keyasint" json:"max_quote_age_ms"`
	// MaxFutureSkewMs is how far an attestation may be dated ahead of the
	// block time.
	MaxFutureSkewMs uint64 `cbor:"2,keyasint" json:"max_future_skew_ms"`
	// RenewalPeriodMs is how long an attestation is good for: an enclave
	// whose attestation is older may be unregistered by anyone.
	RenewalPeriodMs uint64 `cbor:"3,keyasint" json:"renewal_period_ms"`
	// ShardSilenceBlocks is how many parentchain blocks a shard's enclave
	// may stay silent (no processed-block confirmation, no configuration
	// call) before the shard's status leaves it out of the authority set.
	// It comes back with its next activity.
	ShardSilenceBlocks uint64 `cbor:"4,keyasint" json:"shard_silence_blocks"`
}

// DefaultParams returns the default parameters: quotes at most 10 minutes
// old and 1 minute ahead, renewal every 24 hours, a shard's enclave out of
// its authority set after 30 silent blocks.
func DefaultParams() Params {
	return Params{MaxQuoteAgeMs: DefaultMaxQuoteAgeMs, MaxFutureSkewMs: DefaultMaxFutureSkewMs, RenewalPeriodMs: DefaultRenewalPeriodMs, ShardSilenceBlocks: DefaultShardSilenceBlocks}
}

func (p Params) withDefaults() Params {
	d := DefaultParams()
	if p.MaxQuoteAgeMs == 0 {
		p.MaxQuoteAgeMs = d.MaxQuoteAgeMs
	}
	if p.MaxFutureSkewMs == 0 {
		p.MaxFutureSkewMs = d.MaxFutureSkewMs
	}
	if p.RenewalPeriodMs == 0 {
		p.RenewalPeriodMs = d.RenewalPeriodMs
	}
	if p.ShardSilenceBlocks == 0 {
		p.ShardSilenceBlocks = d.ShardSilenceBlocks
	}
	return p
}

// since returns how many milliseconds later is than earlier, or 0 if it is
// not later; exact over the whole int64 range.
func since(earlier, later int64) uint64 {
	if later <= earlier {
		return 0
	}
	return uint64(later) - uint64(earlier)
}

// Enclave is a registered enclave.
type Enclave struct {
	// Signer is the enclave's signing key and parentchain account.
	Signer account.ID `cbor:"1,keyasint" json:"signer"`
	// MrEnclave is the attested measurement.
	MrEnclave attestation.MrEnclave `cbor:"2,keyasint" json:"mr_enclave"`
	// Debug is set for an enclave in debug mode.
	Debug bool `cbor:"3,keyasint" json:"debug"`
	// Method is the attestation method of the last registration.
	Method string `cbor:"4,keyasint" json:"attestation_method"`
	// Timestamp is the attestation's time, Unix milliseconds (the block
	// time for "skip").
	Timestamp int64 `cbor:"5,keyasint" json:"timestamp_ms"`
	// URL is where the enclave's service is reached.
	URL string `cbor:"6,keyasint" json:"url"`
	// RegisteredAt is the height of the first registration.
	RegisteredAt int64 `cbor:"7,keyasint" json:"registered_at"`
}

// RegisterEnclaveArgs are the arguments of teerex.register_enclave.
type RegisterEnclaveArgs struct {
	// Proof is the attestation quote, or for "skip" the 32-byte mrenclave.
	Proof []byte `cbor:"1,keyasint"`
	// URL is the enclave's service URL.
	URL string `cbor:"2,keyasint"`
	// Method is the attestation method: "skip", "sim" or a real TEE's.
	Method string `cbor:"3,keyasint"`
}

// UnregisterEnclaveArgs are the arguments of teerex.unregister_enclave.
type UnregisterEnclaveArgs struct {
	Signer account.ID `cbor:"1,keyasint"`
}

// SetSecurityFlagsArgs are the arguments of teerex.set_security_flags (root only).
type SetSecurityFlagsArgs struct {
	Flags SecurityFlags `cbor:"1,keyasint"`
}

// Genesis is the module's genesis state.
type Genesis struct {
	SecurityFlags SecurityFlags `json:"security_flags"`
	Params        Params        `json:"params"`
}

// Module is the teerex module.
type Module struct {
	codec     *types.Codec
	verifiers map[string]attestation.Verifier
}

// New returns the teerex module with verifiers for the attestation methods
// it can check. It panics if two verifiers share a method or one claims the
// method "skip"; that is a wiring mistake.
func New(codec *types.Codec, verifiers ...attestation.Verifier) *Module {
	m := &Module{codec: codec, verifiers: make(map[string]attestation.Verifier)}
	for _, v := range verifiers {
		if v == nil {
			continue
		}
		name := v.Method()
		if name == MethodSkip || name == "" {
			panic(fmt.Sprintf("teerex: verifier may not claim method %q", name))
		}
		if _, dup := m.verifiers[name]; dup {
			panic(fmt.Sprintf("teerex: two verifiers for method %q", name))
		}
		m.verifiers[name] = v
	}
	return m
}

// Name implements types.Module.
func (*Module) Name() string { return ModuleName }

// InitGenesis writes the security flags and parameters.
func (m *Module) InitGenesis(ctx *types.Context, section json.RawMessage) error {
	var g Genesis
	if err := types.DecodeGenesis(ModuleName, section, &g); err != nil {
		return err
	}
	ctx.Set(keyFlags, g.SecurityFlags)
	ctx.Set(keyParams, g.Params.withDefaults())
	return nil
}

// Flags returns the security flags (all false if never set).
func (m *Module) Flags(ctx *types.Context) SecurityFlags {
	var f SecurityFlags
	ctx.Get(keyFlags, &f)
	return f
}

// Params returns the parameters (the defaults if never set).
func (m *Module) Params(ctx *types.Context) Params {
	var p Params
	ctx.Get(keyParams, &p)
	return p.withDefaults()
}

// Enclave returns the enclave registered with signer.
func (m *Module) Enclave(ctx *types.Context, signer account.ID) (Enclave, bool) {
	var e Enclave
	ok := ctx.Get(EnclaveKey(signer), &e)
	return e, ok
}

// Count returns the number of registered enclaves.
func (m *Module) Count(ctx *types.Context) uint64 {
	var n uint64
	ctx.Get(keyCount, &n)
	return n
}

// Enclaves returns all registered enclaves in signer order, from committed
// state.
func (m *Module) Enclaves(r types.Reader) []Enclave {
	out := []Enclave{}
	r.Iterate(prefixEnclave, func(_, value []byte) bool {
		var e Enclave
		if err := m.codec.UnmarshalLoose(value, &e); err != nil {
			panic(fmt.Sprintf("teerex: corrupt enclave entry: %v", err))
		}
		out = append(out, e)
		return true
	})
	return out
}

// Verifier returns the installed verifier of method.
func (m *Module) Verifier(method string) (attestation.Verifier, bool) {
	v, ok := m.verifiers[method]
	return v, ok
}

// Exec implements types.Module.
func (m *Module) Exec(ctx *types.Context, method string, args []byte) error {
	switch method {
	case "register_enclave":
		return types.Run(ctx, "teerex.register_enclave", args, m.register)
	case "unregister_enclave":
		var a UnregisterEnclaveArgs
		if err := ctx.DecodeArgs("teerex.unregister_enclave", args, &a); err != nil {
			return err
		}
		return m.unregister(ctx, a.Signer)
	case "set_security_flags":
		var a SetSecurityFlagsArgs
		if err := ctx.DecodeArgs("teerex.set_security_flags", args, &a); err != nil {
			return err
		}
		if err := ctx.RequireRoot("teerex.set_security_flags"); err != nil {
			return err
		}
		ctx.Set(keyFlags, a.Flags)
		ctx.Event(ModuleName, "SecurityFlagsSet",
			"allow_skip", a.Flags.AllowSkip, "allow_sim", a.Flags.AllowSim, "allow_debug", a.Flags.AllowDebug)
		return nil
	}
	return types.ErrUnknownCall.Wrap("teerex.%s", method)
}

// attest checks a registration's proof under the security flags and returns
// the attested report. For "skip" the report carries the proof as mrenclave,
// the sender's key as report data and the block time.
func (m *Module) attest(ctx *types.Context, a RegisterEnclaveArgs) (*attestation.Report, error) {
	flags := m.Flags(ctx)
	if a.Method == MethodSkip {
		if !flags.AllowSkip {
			return nil, ErrSkipNotAllowed
		}
		if len(a.Proof) != attestation.MrEnclaveLen {
			return nil, ErrBadProof.Wrap("skip proof is %d bytes, want the %d-byte mrenclave", len(a.Proof), attestation.MrEnclaveLen)
		}
		r := &attestation.Report{Method: MethodSkip, Timestamp: ctx.Block.Time}
		copy(r.MrEnclave[:], a.Proof)
		copy(r.ReportData[:], ctx.Origin.Signer[:])
		return r, nil
	}
	v, ok := m.verifiers[a.Method]
	if !ok {
		return nil, ErrUnknownAttestationMethod.Wrap("%q", a.Method)
	}
	if a.Method == sim.Method && !flags.AllowSim {
		return nil, ErrMethodNotAllowed.Wrap("simulated attestation (%q) is not allowed", a.Method)
	}
	r, err := v.Verify(a.Proof)
	if err != nil {
		return nil, ErrBadProof.Wrap("%s: %v", a.Method, err)
	}
	if r == nil || r.Method != a.Method {
		return nil, ErrBadProof.Wrap("%s verifier returned a report of another method", a.Method)
	}
	return r, nil
}

func (m *Module) register(ctx *types.Context, a RegisterEnclaveArgs) error {
	if a.URL == "" {
		return ErrEmptyURL
	}
	if len(a.URL) > MaxURLLen {
		return ErrURLTooLong.Wrap("%d bytes, max %d", len(a.URL), MaxURLLen)
	}
	if len(a.Proof) > MaxProofSize {
		return ErrProofTooLarge.Wrap("%d bytes, max %d", len(a.Proof), MaxProofSize)
	}
	r, err := m.attest(ctx, a)
	if err != nil {
		return err
	}
	sender := ctx.Origin.Signer
	if account.ID(r.ReportData[:account.IDLen]) != sender {
		return ErrReportDataMismatch.Wrap("report data binds %x, sender is %s", r.ReportData[:account.IDLen], sender)
	}
	params := m.Params(ctx)
	quoteMs, blockMs := r.Timestamp.UnixMilli(), ctx.Block.Time.UnixMilli()
	if age := since(quoteMs, blockMs); age > params.MaxQuoteAgeMs {
		return ErrQuoteExpired.Wrap("attested %d ms before the block, max %d", age, params.MaxQuoteAgeMs)
	}
	if ahead := since(blockMs, quoteMs); ahead > params.MaxFutureSkewMs {
		return ErrQuoteFromFuture.Wrap("attested %d ms after the block, max %d", ahead, params.MaxFutureSkewMs)
	}
	if r.Debug && !m.Flags(ctx).AllowDebug {
		return ErrDebugNotAllowed.Wrap("mrenclave %s", r.MrEnclave)
	}

	e, renewal := m.Enclave(ctx, sender)
	if !renewal {
		e = Enclave{Signer: sender, RegisteredAt: ctx.Block.Height}
		ctx.Set(keyCount, m.Count(ctx)+1)
	}
	e.MrEnclave, e.Debug, e.Method, e.Timestamp, e.URL = r.MrEnclave, r.Debug, a.Method, quoteMs, a.URL
	ctx.Set(EnclaveKey(sender), e)
	name := "EnclaveRegistered"
	if renewal {
		name = "EnclaveRenewed"
	}
	ctx.Event(ModuleName, name,
		"signer", sender, "mr_enclave", e.MrEnclave, "attestation_method", e.Method,
		"debug", e.Debug, "timestamp_ms", e.Timestamp, "url", e.URL)
	return nil
}

func (m *Module) unregister(ctx *types.Context, signer account.ID) error {
	e, ok := m.Enclave(ctx, signer)
	if !ok {
		return ErrEnclaveNotRegistered.Wrap("%s", signer)
	}
	sender := ctx.Origin.Signer
	if sender != signer {
		period := m.Params(ctx).RenewalPeriodMs
		if age := since(e.Timestamp, ctx.Block.Time.UnixMilli()); age <= period {
			return ErrUnregisterTooEarly.Wrap("%s attested %d ms ago, renewal period %d ms", signer, age, period)
		}
	}
	ctx.Store.Delete(EnclaveKey(signer))
	ctx.Set(keyCount, m.Count(ctx)-1)
	ctx.Event(ModuleName, "EnclaveUnregistered", "signer", signer, "by", sender)
	return nil
}

// Query implements types.Module. Paths: enclaves, enclave/<ss58|0xhex>,
// security_flags, params.
func (m *Module) Query(r types.Reader, path []string) (any, error) {
	ctx := types.QueryContext(r, m.codec)
	switch {
	case len(path) == 1 && path[0] == "enclaves":
		return m.Enclaves(r), nil
	case len(path) == 2 && path[0] == "enclave":
		id, err := account.ParseID(path[1])
		if err != nil {
			return nil, types.ErrBadQuery.Wrap("%v", err)
		}
		e, ok := m.Enclave(ctx, id)
		if !ok {
			return nil, types.ErrNotFound.Wrap("no enclave registered with signer %s", id)
		}
		return e, nil
	case len(path) == 1 && path[0] == "security_flags":
		return m.Flags(ctx), nil
	case len(path) == 1 && path[0] == "params":
		return m.Params(ctx), nil
	}
	return nil, types.ErrUnknownPath.Wrap("/teerex/%v", path)
}
