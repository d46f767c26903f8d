// Package enclavebridge connects the parentchain to the shards' enclaves, the
// Substrate enclave-bridge pallet's counterpart: clients invoke a shard's
// trusted calls indirectly through it, shield funds into a shard's bonding
// account, and the shard's enclaves unshield funds out of it, confirm the
// parentchain blocks they processed and configure their shard.
//
// An enclave is authorised for a shard when it is registered with teerex and
// its mrenclave equals the fingerprint of the shard's active configuration or,
// while the shard has no configuration, the shard id itself (a shard's id
// defaults to the mrenclave of its enclaves). A configuration change by an
// authorised enclave becomes active after an enactment delay, in blocks; the
// change is enacted lazily: whoever reads the configuration at or after the
// enactment height sees the new one.
//
// A shard's first configuration (its claim) keeps the default rule: only an
// enclave whose mrenclave equals the shard id may make it, naming that
// mrenclave. No enclave of other code can claim a shard, used or not, so none
// can squat a default shard before its own enclaves act and unshield from its
// bonding account. A shard whose id is no enclave's mrenclave can only be
// created by the root origin (through sudo), which may make the first
// configuration of a shard not yet in use (neither configured nor active),
// naming any fingerprint; after that the shard belongs to its authorised
// enclaves and root cannot reconfigure it.
//
// ShardStatus[shard] lists the shard's enclaves in the order of their first
// activity (a processed-block confirmation or a configuration call); its
// first authorised, still registered entry is the shard's primary.
package enclavebridge

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"sort"
	"strconv"
	"strings"

	"golang.org/x/crypto/blake2b"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/parentchain/modules/balances"
	"github.com/integritee-go/integritee/parentchain/modules/teerex"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// ModuleName is the module's name in calls, events, errors and queries.
const ModuleName = "enclavebridge"

// Limits.
const (
	// MaxInvocationSize bounds the ciphertext of an indirect invocation.
	MaxInvocationSize = 16 << 10
	// MaxEncryptedBeneficiarySize bounds shield_funds' encrypted beneficiary.
	MaxEncryptedBeneficiarySize = 4 << 10
	// MaxShardEnclaves bounds the entries of one shard's status.
	MaxShardEnclaves = 256
	// MaxShardCallsPerBlock bounds a shard's invoke and shield_funds calls
	// in one parentchain block. The shard's validateers execute a
	// parentchain block's calls in one sidechain block (never split), so
	// the bound keeps that block within the sidechain's operations limit
	// (enclave.MaxOperationsPerBlock, 4,000) and its time budget (each
	// call is decrypted: about 0.1 ms). A call beyond it is refused, in
	// CheckTx already; it goes into a later block.
	MaxShardCallsPerBlock = 1000
)

// BondingAccountDomain prefixes the shard id in the bonding account's hash.
const BondingAccountDomain = "integritee/shard-bonding-account"

// Errors.
var (
	ErrUnknownShard             = types.NewError(ModuleName, 1, "UnknownShard", "shard has neither a configuration nor any enclave activity")
	ErrEnclaveNotRegistered     = types.NewError(ModuleName, 2, "EnclaveNotRegistered", "sender is not a registered enclave")
	ErrNotAuthorised            = types.NewError(ModuleName, 3, "NotAuthorised", "sender's enclave is not authorised for the shard")
	ErrWrongFingerprint         = types.NewError(ModuleName, 4, "WrongFingerprint", "first configuration of a shard must name the sender's own mrenclave")
	ErrEmptyPayload             = types.NewError(ModuleName, 5, "EmptyPayload", "ciphertext is empty")
	ErrPayloadTooLarge          = types.NewError(ModuleName, 6, "PayloadTooLarge", "ciphertext too large")
	ErrZeroAmount               = types.NewError(ModuleName, 7, "ZeroAmount", "amount must be positive")
	ErrUnshieldAlreadyProcessed = types.NewError(ModuleName, 8, "UnshieldAlreadyProcessed", "an unshielding with this call hash was already executed for the shard")
	ErrInsufficientBonding      = types.NewError(ModuleName, 9, "InsufficientBonding", "shard's bonding account holds too little")
	ErrDelayTooLarge            = types.NewError(ModuleName, 10, "DelayTooLarge", "enactment delay overflows the block height")
	ErrTooManyEnclaves          = types.NewError(ModuleName, 11, "TooManyEnclaves", "shard status is full")
	ErrShardClaimRefused        = types.NewError(ModuleName, 12, "ShardClaimRefused", "a shard without configuration can only be claimed by an enclave whose mrenclave is the shard id, or created by root while not in use")
	ErrPayoutSeqReused          = types.NewError(ModuleName, 14, "PayoutSeqReused", "the shard already paid another call under this unshielding sequence number (the sender's state forked from an old copy)")
	ErrPayoutNotSeen            = types.NewError(ModuleName, 13, "PayoutNotSeen", "the enclave has not verified the shard's previous payout (its state may be an old copy)")
	ErrShardBlockFull           = types.NewError(ModuleName, 15, "ShardBlockFull", "this block holds the most invoke and shield_funds calls a shard takes in one block; send the call again after the next block")
)

var (
	prefixConfig    = []byte("enclavebridge/config/")
	prefixStatus    = []byte("enclavebridge/status/")
	prefixUnshield  = []byte("enclavebridge/unshield/")
	prefixPayouts   = []byte("enclavebridge/payouts/")
	prefixPayoutSeq = []byte("enclavebridge/payoutseq/")
	prefixCalls     = []byte("enclavebridge/calls/")
)

// shardCalls counts a shard's invoke and shield_funds calls in one block.
type shardCalls struct {
	Height int64  `cbor:"1,keyasint"`
	Count  uint32 `cbor:"2,keyasint"`
}

// shardCallsNow returns the count of shard's calls in the current block.
func shardCallsNow(ctx *types.Context, shard sidechain.ShardID) shardCalls {
	var c shardCalls
	if ctx.Get(shardKey(prefixCalls, shard), &c) && c.Height == ctx.Block.Height {
		return c
	}
	return shardCalls{Height: ctx.Block.Height}
}

// shardCallAllowed refuses a call of shard with ErrShardBlockFull once the
// current block holds MaxShardCallsPerBlock of them.
func shardCallAllowed(ctx *types.Context, shard sidechain.ShardID) error {
	if c := shardCallsNow(ctx, shard); c.Count >= MaxShardCallsPerBlock {
		return ErrShardBlockFull.Wrap("shard %s: %d calls at height %d", shard, c.Count, c.Height)
	}
	return nil
}

// countShardCall counts one more call of shard in the current block.
func countShardCall(ctx *types.Context, shard sidechain.ShardID) {
	c := shardCallsNow(ctx, shard)
	c.Count++
	ctx.Set(shardKey(prefixCalls, shard), c)
}

func shardKey(prefix []byte, shard sidechain.ShardID) []byte {
	return append(append([]byte{}, prefix...), shard[:]...)
}

// StatusKey is the state key of a shard's ShardStatus.
func StatusKey(shard sidechain.ShardID) []byte { return shardKey(prefixStatus, shard) }

// ConfigKey is the state key of a shard's configuration (UpgradableShardConfig).
func ConfigKey(shard sidechain.ShardID) []byte { return shardKey(prefixConfig, shard) }

// UnshieldKey is the state key recording that the unshielding with callHash
// was executed for shard; its value is the height it ran at.
func UnshieldKey(shard sidechain.ShardID, callHash [32]byte) []byte {
	return append(shardKey(prefixUnshield, shard), callHash[:]...)
}

func hex0x(b []byte) string { return "0x" + hex.EncodeToString(b) }

// BondingAccount returns the account holding a shard's shielded funds:
// BLAKE2b-256(BondingAccountDomain || shard). Nobody has its key; only the
// module moves its funds.
func BondingAccount(shard sidechain.ShardID) account.ID {
	h, _ := blake2b.New256(nil)
	h.Write([]byte(BondingAccountDomain))
	h.Write(shard[:])
	var id account.ID
	copy(id[:], h.Sum(nil))
	return id
}

// ShardConfig is a shard's configuration.
type ShardConfig struct {
	// EnclaveFingerprint is the mrenclave authorised for the shard.
	EnclaveFingerprint attestation.MrEnclave `cbor:"1,keyasint" json:"enclave_fingerprint"`
	// MaintenanceMode tells the shard's enclaves to pause. The bridge records
	// it; it does not refuse calls because of it.
	MaintenanceMode bool `cbor:"2,keyasint" json:"maintenance_mode"`
}

// PendingConfig is a configuration waiting for its enactment height.
type PendingConfig struct {
	Config ShardConfig `cbor:"1,keyasint" json:"config"`
	// EnactAt is the first height at which Config is active.
	EnactAt int64 `cbor:"2,keyasint" json:"enact_at"`
}

// UpgradableShardConfig is a shard's stored configuration: the active one
// and an upgrade that may be pending.
type UpgradableShardConfig struct {
	Active  ShardConfig    `cbor:"1,keyasint" json:"active"`
	Pending *PendingConfig `cbor:"2,keyasint,omitempty" json:"pending_upgrade,omitempty"`
}

// At returns the configuration as it stands at height: a pending upgrade
// whose enactment height has come is active.
func (u UpgradableShardConfig) At(height int64) UpgradableShardConfig {
	if u.Pending != nil && u.Pending.EnactAt <= height {
		return UpgradableShardConfig{Active: u.Pending.Config}
	}
	return u
}

// ShardSignerStatus is one enclave's entry in a shard's status.
type ShardSignerStatus struct {
	// Signer is the enclave's account.
	Signer account.ID `cbor:"1,keyasint" json:"signer"`
	// Fingerprint is the enclave's mrenclave at its last activity.
	Fingerprint attestation.MrEnclave `cbor:"2,keyasint" json:"fingerprint"`
	// LastActivity is the height of its last activity.
	LastActivity int64 `cbor:"3,keyasint" json:"last_activity"`
}

// InvokeArgs are the arguments of enclavebridge.invoke.
type InvokeArgs struct {
	Shard sidechain.ShardID `cbor:"1,keyasint"`
	// Ciphertext is a trusted operation encrypted to the shard's shielding key.
	Ciphertext []byte `cbor:"2,keyasint"`
}

// ShieldFundsArgs are the arguments of enclavebridge.shield_funds.
type ShieldFundsArgs struct {
	Shard sidechain.ShardID `cbor:"1,keyasint"`
	// EncryptedBeneficiary is the sidechain account to credit, encrypted to
	// the shard's shielding key.
	EncryptedBeneficiary []byte        `cbor:"2,keyasint"`
	Amount               types.Balance `cbor:"3,keyasint"`
}

// UnshieldFundsArgs are the arguments of enclavebridge.unshield_funds.
type UnshieldFundsArgs struct {
	Shard       sidechain.ShardID `cbor:"1,keyasint"`
	Beneficiary account.ID        `cbor:"2,keyasint"`
	Amount      types.Balance     `cbor:"3,keyasint"`
	// CallHash identifies the trusted unshield call; each executes once.
	CallHash [32]byte `cbor:"4,keyasint"`
	// VerifiedHeight is the parentchain height up to which the sending
	// enclave has verified the chain (and read the shard's payouts by
	// proof). A payout of the shard above it is one the enclave cannot
	// have seen: its state may be an old copy, so the chain refuses.
	VerifiedHeight int64 `cbor:"5,keyasint"`
	// Seq is the unshielding's place in the sending enclave's history of
	// unshieldings (0: none given). The chain pays each (shard, Seq) for
	// one call hash only: a second call under a paid Seq comes from a state
	// that forked from the one that requested the first (an old copy).
	Seq uint64 `cbor:"6,keyasint,omitempty"`
}

// PayoutSeqKey is the state key recording which call hash the shard paid
// under an unshielding sequence number.
func PayoutSeqKey(shard sidechain.ShardID, seq uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], seq)
	return append(shardKey(prefixPayoutSeq, shard), b[:]...)
}

// Payouts is what the chain records of a shard's unshieldings (value of
// PayoutsKey): how many it executed, and at which height the last.
type Payouts struct {
	Count      uint64 `cbor:"1,keyasint" json:"count"`
	LastHeight int64  `cbor:"2,keyasint" json:"last_height"`
}

// PayoutsKey is the state key of a shard's Payouts.
func PayoutsKey(shard sidechain.ShardID) []byte { return shardKey(prefixPayouts, shard) }

// ConfirmProcessedParentchainBlockArgs are the arguments of
// enclavebridge.confirm_processed_parentchain_block.
type ConfirmProcessedParentchainBlockArgs struct {
	Shard       sidechain.ShardID `cbor:"1,keyasint"`
	BlockHash   [32]byte          `cbor:"2,keyasint"`
	BlockNumber int64             `cbor:"3,keyasint"`
	// CallsRoot is the merkle root of the calls the enclave executed from the block.
	CallsRoot [32]byte `cbor:"4,keyasint"`
}

// UpdateShardConfigArgs are the arguments of enclavebridge.update_shard_config.
type UpdateShardConfigArgs struct {
	Shard  sidechain.ShardID `cbor:"1,keyasint"`
	Config ShardConfig       `cbor:"2,keyasint"`
	// Delay is the enactment delay in blocks; 0 enacts immediately. It does
	// not apply to a shard's first configuration, which is always immediate.
	Delay uint64 `cbor:"3,keyasint"`
}

// Module is the enclave-bridge module.
type Module struct {
	codec *types.Codec
	bal   *balances.Module
	reg   *teerex.Module
}

// New returns the enclave-bridge module, moving funds with bal and looking
// enclaves up in reg.
func New(codec *types.Codec, bal *balances.Module, reg *teerex.Module) *Module {
	return &Module{codec: codec, bal: bal, reg: reg}
}

// Name implements types.Module.
func (*Module) Name() string { return ModuleName }

// ShardConfigRecord returns a shard's stored configuration, with any pending
// upgrade evaluated at the context's block height.
func (m *Module) ShardConfigRecord(ctx *types.Context, shard sidechain.ShardID) (UpgradableShardConfig, bool) {
	var u UpgradableShardConfig
	if !ctx.Get(shardKey(prefixConfig, shard), &u) {
		return UpgradableShardConfig{}, false
	}
	return u.At(ctx.Block.Height), true
}

// ActiveConfig returns the shard's configuration active at the context's
// block height.
func (m *Module) ActiveConfig(ctx *types.Context, shard sidechain.ShardID) (ShardConfig, bool) {
	u, ok := m.ShardConfigRecord(ctx, shard)
	return u.Active, ok
}

// AuthorisedFingerprint returns the mrenclave authorised for the shard: the
// active configuration's fingerprint, or the shard id if it has none.
func (m *Module) AuthorisedFingerprint(ctx *types.Context, shard sidechain.ShardID) attestation.MrEnclave {
	u, ok := m.ShardConfigRecord(ctx, shard)
	if !ok {
		return AuthorisedFingerprintOf(shard, nil, ctx.Block.Height)
	}
	return AuthorisedFingerprintOf(shard, &u, ctx.Block.Height)
}

// AuthorisedFingerprintOf is the rule of AuthorisedFingerprint on a stored
// configuration (nil: none) read at height: the fingerprint of the
// configuration active then, or the shard id itself.
func AuthorisedFingerprintOf(shard sidechain.ShardID, cfg *UpgradableShardConfig, height int64) attestation.MrEnclave {
	if cfg == nil {
		return attestation.MrEnclave(shard)
	}
	return cfg.At(height).Active.EnclaveFingerprint
}

// FilterStatus is the rule of ShardStatus on stored data at height: the
// raw status entries, in order, whose enclave lookup finds registered with
// the authorised fingerprint fp and admissible under the security flags f
// (teerex.Admissible), and that were active within the last silence blocks
// (teerex.Params.ShardSilenceBlocks; 0 keeps silent ones too). The enclave
// applies it to state it read by proof, so it derives a shard's authorities
// exactly as the chain does.
func FilterStatus(raw []ShardSignerStatus, fp attestation.MrEnclave, f teerex.SecurityFlags, height int64, silence uint64, lookup func(account.ID) (teerex.Enclave, bool)) []ShardSignerStatus {
	out := []ShardSignerStatus{}
	for _, s := range raw {
		if silence > 0 && height-s.LastActivity > int64(min(silence, math.MaxInt64)) {
			continue
		}
		if e, ok := lookup(s.Signer); ok && Authorises(e, fp, f) {
			out = append(out, s)
		}
	}
	return out
}

// Authorises is the rule for one registration: the authorised fingerprint,
// and a method and debug mode the flags in force allow.
func Authorises(e teerex.Enclave, fp attestation.MrEnclave, f teerex.SecurityFlags) bool {
	return e.MrEnclave == fp && teerex.Admissible(e, f)
}

// IsAuthorised reports whether signer is a registered enclave authorised for
// the shard.
func (m *Module) IsAuthorised(ctx *types.Context, signer account.ID, shard sidechain.ShardID) bool {
	e, ok := m.reg.Enclave(ctx, signer)
	return ok && Authorises(e, m.AuthorisedFingerprint(ctx, shard), m.reg.Flags(ctx))
}

// IsKnownShard reports whether the shard has a configuration or a status.
func (m *Module) IsKnownShard(ctx *types.Context, shard sidechain.ShardID) bool {
	if _, ok := ctx.Store.Get(shardKey(prefixConfig, shard)); ok {
		return true
	}
	_, ok := ctx.Store.Get(shardKey(prefixStatus, shard))
	return ok
}

// rawStatus returns the stored status list, unfiltered.
func (m *Module) rawStatus(ctx *types.Context, shard sidechain.ShardID) []ShardSignerStatus {
	var s []ShardSignerStatus
	ctx.Get(shardKey(prefixStatus, shard), &s)
	return s
}

// ShardStatus returns the shard's enclaves in order of first activity,
// leaving out those no longer registered, no longer authorised, or silent
// for longer than the registry's ShardSilenceBlocks.
func (m *Module) ShardStatus(ctx *types.Context, shard sidechain.ShardID) []ShardSignerStatus {
	return FilterStatus(m.rawStatus(ctx, shard), m.AuthorisedFingerprint(ctx, shard), m.reg.Flags(ctx), ctx.Block.Height, m.reg.Params(ctx).ShardSilenceBlocks, func(id account.ID) (teerex.Enclave, bool) {
		return m.reg.Enclave(ctx, id)
	})
}

// Primary returns the shard's primary enclave: the first of its status.
func (m *Module) Primary(ctx *types.Context, shard sidechain.ShardID) (account.ID, bool) {
	s := m.ShardStatus(ctx, shard)
	if len(s) == 0 {
		return account.ID{}, false
	}
	return s[0].Signer, true
}

// UnshieldExecuted reports whether the unshielding with callHash was
// executed for the shard, and at which height.
func (m *Module) UnshieldExecuted(ctx *types.Context, shard sidechain.ShardID, callHash [32]byte) (int64, bool) {
	var h int64
	ok := ctx.Get(UnshieldKey(shard, callHash), &h)
	return h, ok
}

// requireEnclave returns the sender's registration.
func (m *Module) requireEnclave(ctx *types.Context) (teerex.Enclave, error) {
	e, ok := m.reg.Enclave(ctx, ctx.Origin.Signer)
	if !ok {
		return teerex.Enclave{}, ErrEnclaveNotRegistered.Wrap("%s", ctx.Origin.Signer)
	}
	return e, nil
}

// requireAuthorised returns the sender's registration if it is authorised
// for the shard.
func (m *Module) requireAuthorised(ctx *types.Context, shard sidechain.ShardID) (teerex.Enclave, error) {
	e, err := m.requireEnclave(ctx)
	if err != nil {
		return e, err
	}
	if fp := m.AuthorisedFingerprint(ctx, shard); e.MrEnclave != fp {
		return e, ErrNotAuthorised.Wrap("enclave %s runs %s, shard %s wants %s", e.Signer, e.MrEnclave, shard, fp)
	}
	if !teerex.Admissible(e, m.reg.Flags(ctx)) {
		return e, ErrNotAuthorised.Wrap("enclave %s is registered with method %q (debug %v), which the security flags in force forbid", e.Signer, e.Method, e.Debug)
	}
	return e, nil
}

// touched returns the shard's status after an activity of e: e's entry
// updated, or appended if new, and entries of enclaves no longer registered
// dropped. It writes nothing.
func (m *Module) touched(ctx *types.Context, shard sidechain.ShardID, e teerex.Enclave) ([]ShardSignerStatus, error) {
	var out []ShardSignerStatus
	found := false
	for _, s := range m.rawStatus(ctx, shard) {
		if s.Signer == e.Signer {
			s.Fingerprint, s.LastActivity, found = e.MrEnclave, ctx.Block.Height, true
		} else if _, ok := m.reg.Enclave(ctx, s.Signer); !ok {
			continue
		}
		out = append(out, s)
	}
	if !found {
		if len(out) >= MaxShardEnclaves {
			return nil, ErrTooManyEnclaves.Wrap("shard %s has %d enclaves", shard, len(out))
		}
		out = append(out, ShardSignerStatus{Signer: e.Signer, Fingerprint: e.MrEnclave, LastActivity: ctx.Block.Height})
	}
	return out, nil
}

// Exec implements types.Module.
func (m *Module) Exec(ctx *types.Context, method string, args []byte) error {
	call := "enclavebridge." + method
	switch method {
	case "invoke":
		return types.Run(ctx, call, args, m.invoke)
	case "shield_funds":
		return types.Run(ctx, call, args, m.shieldFunds)
	case "unshield_funds":
		return types.Run(ctx, call, args, m.unshieldFunds)
	case "confirm_processed_parentchain_block":
		return types.Run(ctx, call, args, m.confirmProcessed)
	case "update_shard_config":
		return types.Run(ctx, call, args, m.updateShardConfig)
	}
	return types.ErrUnknownCall.Wrap("%s", call)
}

func checkPayload(what string, b []byte, max int) error {
	if len(b) == 0 {
		return ErrEmptyPayload.Wrap("%s", what)
	}
	if len(b) > max {
		return ErrPayloadTooLarge.Wrap("%s of %d bytes, max %d", what, len(b), max)
	}
	return nil
}

func (m *Module) invoke(ctx *types.Context, a InvokeArgs) error {
	if !m.IsKnownShard(ctx, a.Shard) {
		return ErrUnknownShard.Wrap("%s", a.Shard)
	}
	if err := checkPayload("ciphertext", a.Ciphertext, MaxInvocationSize); err != nil {
		return err
	}
	if err := shardCallAllowed(ctx, a.Shard); err != nil {
		return err
	}
	countShardCall(ctx, a.Shard)
	h := sha256.Sum256(a.Ciphertext)
	ctx.Event(ModuleName, "IndirectInvocationRegistered",
		"shard", a.Shard, "sender", ctx.Origin.Signer, "ciphertext_hash", hex0x(h[:]), "size", len(a.Ciphertext))
	return nil
}

func (m *Module) shieldFunds(ctx *types.Context, a ShieldFundsArgs) error {
	if !m.IsKnownShard(ctx, a.Shard) {
		return ErrUnknownShard.Wrap("%s", a.Shard)
	}
	if err := checkPayload("encrypted beneficiary", a.EncryptedBeneficiary, MaxEncryptedBeneficiarySize); err != nil {
		return err
	}
	if a.Amount.IsZero() {
		return ErrZeroAmount
	}
	if err := shardCallAllowed(ctx, a.Shard); err != nil {
		return err
	}
	if err := m.bal.Transfer(ctx, ctx.Origin.Signer, BondingAccount(a.Shard), a.Amount); err != nil {
		return err
	}
	countShardCall(ctx, a.Shard)
	ctx.Event(ModuleName, "ShieldFunds",
		"shard", a.Shard, "encrypted_beneficiary", hex0x(a.EncryptedBeneficiary), "amount", a.Amount, "from", ctx.Origin.Signer)
	return nil
}

func (m *Module) unshieldFunds(ctx *types.Context, a UnshieldFundsArgs) error {
	if _, err := m.requireAuthorised(ctx, a.Shard); err != nil {
		return err
	}
	if a.Amount.IsZero() {
		return ErrZeroAmount
	}
	if h, done := m.UnshieldExecuted(ctx, a.Shard, a.CallHash); done {
		return ErrUnshieldAlreadyProcessed.Wrap("call %s on shard %s, at height %d", hex0x(a.CallHash[:]), a.Shard, h)
	}
	var p Payouts
	ctx.Get(PayoutsKey(a.Shard), &p)
	if p.Count > 0 && p.LastHeight > a.VerifiedHeight {
		return ErrPayoutNotSeen.Wrap("shard %s paid out at height %d; the enclave has verified up to %d", a.Shard, p.LastHeight, a.VerifiedHeight)
	}
	if a.Seq != 0 {
		var paid [32]byte
		if ctx.Get(PayoutSeqKey(a.Shard, a.Seq), &paid) && paid != a.CallHash {
			return ErrPayoutSeqReused.Wrap("shard %s paid unshielding %d for call %s, not %s", a.Shard, a.Seq, hex0x(paid[:]), hex0x(a.CallHash[:]))
		}
	}
	bonding := BondingAccount(a.Shard)
	if have := m.bal.Account(ctx, bonding).Free; have.Cmp(a.Amount) < 0 {
		return ErrInsufficientBonding.Wrap("shard %s holds %s, unshielding %s", a.Shard, have, a.Amount)
	}
	if err := m.bal.Transfer(ctx, bonding, a.Beneficiary, a.Amount); err != nil {
		return err
	}
	ctx.Set(UnshieldKey(a.Shard, a.CallHash), ctx.Block.Height)
	ctx.Set(PayoutsKey(a.Shard), Payouts{Count: p.Count + 1, LastHeight: ctx.Block.Height})
	if a.Seq != 0 {
		ctx.Set(PayoutSeqKey(a.Shard, a.Seq), a.CallHash)
	}
	ctx.Event(ModuleName, "UnshieldedFunds",
		"shard", a.Shard, "beneficiary", a.Beneficiary, "amount", a.Amount, "call_hash", hex0x(a.CallHash[:]), "by", ctx.Origin.Signer)
	return nil
}

func (m *Module) confirmProcessed(ctx *types.Context, a ConfirmProcessedParentchainBlockArgs) error {
	e, err := m.requireAuthorised(ctx, a.Shard)
	if err != nil {
		return err
	}
	status, err := m.touched(ctx, a.Shard, e)
	if err != nil {
		return err
	}
	ctx.Set(shardKey(prefixStatus, a.Shard), status)
	ctx.Event(ModuleName, "ProcessedParentchainBlock",
		"shard", a.Shard, "signer", e.Signer, "block_hash", hex0x(a.BlockHash[:]),
		"block_number", a.BlockNumber, "calls_root", hex0x(a.CallsRoot[:]))
	return nil
}

func (m *Module) updateShardConfig(ctx *types.Context, a UpdateShardConfigArgs) error {
	if ctx.Origin.Root {
		return m.createShard(ctx, a)
	}
	e, err := m.requireEnclave(ctx)
	if err != nil {
		return err
	}
	if !teerex.Admissible(e, m.reg.Flags(ctx)) {
		return ErrNotAuthorised.Wrap("enclave %s is registered with method %q (debug %v), which the security flags in force forbid", e.Signer, e.Method, e.Debug)
	}
	height := ctx.Block.Height
	u, exists := m.ShardConfigRecord(ctx, a.Shard)
	enactAt := height
	if !exists {
		// First claim: only the shard's default enclaves (mrenclave = shard
		// id) may claim it, naming their own mrenclave, whether or not the
		// shard is in use yet. An enclave of other code claiming it would
		// control its bonding account.
		if e.MrEnclave != attestation.MrEnclave(a.Shard) {
			return ErrShardClaimRefused.Wrap("enclave %s runs %s, not the shard id %s", e.Signer, e.MrEnclave, a.Shard)
		}
		if e.MrEnclave != a.Config.EnclaveFingerprint {
			return ErrWrongFingerprint.Wrap("enclave runs %s, configuration names %s", e.MrEnclave, a.Config.EnclaveFingerprint)
		}
		u = UpgradableShardConfig{Active: a.Config}
	} else {
		if e.MrEnclave != u.Active.EnclaveFingerprint {
			return ErrNotAuthorised.Wrap("enclave %s runs %s, shard %s wants %s", e.Signer, e.MrEnclave, a.Shard, u.Active.EnclaveFingerprint)
		}
		if a.Delay == 0 {
			u = UpgradableShardConfig{Active: a.Config}
		} else {
			if a.Delay > uint64(math.MaxInt64-height) {
				return ErrDelayTooLarge.Wrap("delay %d at height %d", a.Delay, height)
			}
			enactAt = height + int64(a.Delay)
			u.Pending = &PendingConfig{Config: a.Config, EnactAt: enactAt}
		}
	}
	status, err := m.touched(ctx, a.Shard, e)
	if err != nil {
		return err
	}
	ctx.Set(shardKey(prefixConfig, a.Shard), u)
	ctx.Set(shardKey(prefixStatus, a.Shard), status)
	ctx.Event(ModuleName, "ShardConfigUpdated",
		"shard", a.Shard, "enclave_fingerprint", a.Config.EnclaveFingerprint,
		"maintenance_mode", a.Config.MaintenanceMode, "enact_at", enactAt, "by", e.Signer)
	return nil
}

// createShard is update_shard_config with the root origin: the first
// configuration of a shard not yet in use (neither configured nor active),
// naming any fingerprint, enacted immediately. It is how a shard whose id is
// no enclave's mrenclave comes to exist. Root is no enclave: the shard's
// status is left empty.
func (m *Module) createShard(ctx *types.Context, a UpdateShardConfigArgs) error {
	if m.IsKnownShard(ctx, a.Shard) {
		return ErrShardClaimRefused.Wrap("root may only create a shard not yet in use; shard %s is configured or active", a.Shard)
	}
	ctx.Set(shardKey(prefixConfig, a.Shard), UpgradableShardConfig{Active: a.Config})
	ctx.Event(ModuleName, "ShardConfigUpdated",
		"shard", a.Shard, "enclave_fingerprint", a.Config.EnclaveFingerprint,
		"maintenance_mode", a.Config.MaintenanceMode, "enact_at", ctx.Block.Height, "by", "root")
	return nil
}

// ShardConfigInfo is the answer to the shard_config query.
type ShardConfigInfo struct {
	Shard sidechain.ShardID `json:"shard"`
	// Height is the height the configuration was evaluated at.
	Height         int64          `json:"height"`
	Active         ShardConfig    `json:"active"`
	PendingUpgrade *PendingConfig `json:"pending_upgrade,omitempty"`
}

// BondingAccountInfo is the answer to the bonding_account query.
type BondingAccountInfo struct {
	Shard   sidechain.ShardID `json:"shard"`
	Account account.ID        `json:"account"`
	Free    types.Balance     `json:"free"`
}

// UnshieldInfo is the answer to the unshield_executed query.
type UnshieldInfo struct {
	Shard    sidechain.ShardID `json:"shard"`
	CallHash string            `json:"call_hash"`
	Executed bool              `json:"executed"`
	// Height is where it was executed, if it was.
	Height int64 `json:"height,omitempty"`
}

// lastCommitter is what state.Store offers to tell the committed height.
type lastCommitter interface {
	LastCommit() (int64, []byte)
}

// queryContext returns a read-only context at the height given as the
// optional path argument, or else at the reader's last committed height
// (when the reader tells it), or else at height 0, where no pending upgrade
// is active yet.
func (m *Module) queryContext(r types.Reader, heightArg []string) (*types.Context, error) {
	ctx := types.QueryContext(r, m.codec)
	switch {
	case len(heightArg) == 1:
		h, err := strconv.ParseInt(heightArg[0], 10, 64)
		if err != nil || h < 0 {
			return nil, types.ErrBadQuery.Wrap("height %q", heightArg[0])
		}
		ctx.Block.Height = h
	default:
		if lc, ok := r.(lastCommitter); ok {
			ctx.Block.Height, _ = lc.LastCommit()
		}
	}
	return ctx, nil
}

func parseShard(s string) (sidechain.ShardID, error) {
	shard, err := sidechain.ParseShardID(s)
	if err != nil {
		return shard, types.ErrBadQuery.Wrap("%v", err)
	}
	return shard, nil
}

// Shards returns every known shard (with a configuration or a status) in
// id order, from committed state.
func (m *Module) Shards(r types.Reader) []sidechain.ShardID {
	set := map[sidechain.ShardID]bool{}
	for _, p := range [][]byte{prefixConfig, prefixStatus} {
		r.Iterate(p, func(key, _ []byte) bool {
			if len(key) == len(p)+sidechain.ShardIDLen {
				set[sidechain.ShardID(key[len(p):])] = true
			}
			return true
		})
	}
	out := make([]sidechain.ShardID, 0, len(set))
	for s := range set {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return string(out[i][:]) < string(out[j][:]) })
	return out
}

// Query implements types.Module. Paths: shard_status/<shard>[/<height>],
// shard_config/<shard>[/<height>], shards, bonding_account/<shard>,
// unshield_executed/<shard>/<0xhex call hash>. Shards are base58 or 0x-hex.
// Without a height, configuration upgrades are evaluated at the last
// committed height.
func (m *Module) Query(r types.Reader, path []string) (any, error) {
	switch {
	case len(path) == 1 && path[0] == "shards":
		return m.Shards(r), nil
	case (len(path) == 2 || len(path) == 3) && path[0] == "shard_status":
		shard, err := parseShard(path[1])
		if err != nil {
			return nil, err
		}
		ctx, err := m.queryContext(r, path[2:])
		if err != nil {
			return nil, err
		}
		return m.ShardStatus(ctx, shard), nil
	case (len(path) == 2 || len(path) == 3) && path[0] == "shard_config":
		shard, err := parseShard(path[1])
		if err != nil {
			return nil, err
		}
		ctx, err := m.queryContext(r, path[2:])
		if err != nil {
			return nil, err
		}
		u, ok := m.ShardConfigRecord(ctx, shard)
		if !ok {
			return nil, types.ErrNotFound.Wrap("shard %s has no configuration", shard)
		}
		return ShardConfigInfo{Shard: shard, Height: ctx.Block.Height, Active: u.Active, PendingUpgrade: u.Pending}, nil
	case len(path) == 2 && path[0] == "bonding_account":
		shard, err := parseShard(path[1])
		if err != nil {
			return nil, err
		}
		ctx := types.QueryContext(r, m.codec)
		acct := BondingAccount(shard)
		return BondingAccountInfo{Shard: shard, Account: acct, Free: m.bal.Account(ctx, acct).Free}, nil
	case len(path) == 3 && path[0] == "unshield_executed":
		shard, err := parseShard(path[1])
		if err != nil {
			return nil, err
		}
		hash, err := parseHash(path[2])
		if err != nil {
			return nil, err
		}
		h, ok := m.UnshieldExecuted(types.QueryContext(r, m.codec), shard, hash)
		return UnshieldInfo{Shard: shard, CallHash: hex0x(hash[:]), Executed: ok, Height: h}, nil
	}
	return nil, types.ErrUnknownPath.Wrap("/enclavebridge/%v", path)
}

func parseHash(s string) ([32]byte, error) {
	var h [32]byte
	if !strings.HasPrefix(s, "0x") && !strings.HasPrefix(s, "0X") {
		return h, types.ErrBadQuery.Wrap("call hash %q: want 0x-hex", s)
	}
	b, err := hex.DecodeString(s[2:])
	if err != nil || len(b) != len(h) {
		return h, types.ErrBadQuery.Wrap("call hash %q: want 32 bytes of 0x-hex", s)
	}
	copy(h[:], b)
	return h, nil
}
