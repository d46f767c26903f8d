// Package trusted holds the wire types of a shard's trusted operations, as
// clients build them and the enclave checks them: calls (transfer, unshield,
// set-balance), getters, their signing payloads and the Operation union the
// trusted RPC and indirect invocations carry (encrypted with the shard's
// shielding key; package api/shielding). It is the enclave's public API: a
// client imports this, never the enclave's state transition function
// (enclave/stf), which executes these operations.
package trusted

import (
	"crypto/ed25519"
	"crypto/sha256"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/balance"
	"github.com/integritee-go/integritee/codec"
	"github.com/integritee-go/integritee/sidechain"
)

// Signing domains. A trusted call's signature covers
//
//	"integritee-trusted-call:v1:" || CBOR{1: call, 2: nonce, 3: mrenclave, 4: shard}
//
// and a getter's
//
//	"integritee-trusted-getter:v1:" || CBOR{1: getter, 2: shard}
//
// so a call cannot be replayed under another nonce, in another shard or
// against another enclave version, and no signature of one kind is valid as
// one of another kind (or as a parentchain transaction or sidechain block).
const (
	CallSigningDomain   = "integritee-trusted-call:v1:"
	GetterSigningDomain = "integritee-trusted-getter:v1:"
)

// MaxOperationBytes bounds an encoded Operation. Every field of every
// operation has a fixed size except the signature, which must be 64 bytes,
// so real operations stay well below it.
const MaxOperationBytes = 4096

// canonical is the project's canonical CBOR; safe for concurrent use.
var canonical = codec.New()

// Transfer moves Amount from From to To on the sidechain. There is no fee.
type Transfer struct {
	From   account.ID      `cbor:"1,keyasint"`
	To     account.ID      `cbor:"2,keyasint"`
	Amount balance.Balance `cbor:"3,keyasint"`
}

// Unshield moves Amount from From on the sidechain to To on the parentchain:
// the sidechain debits From and burns the amount, and the enclave asks the
// parentchain to pay To from the shard's bonding account.
type Unshield struct {
	From account.ID `cbor:"1,keyasint"`
	// To is the beneficiary on the parentchain.
	To     account.ID        `cbor:"2,keyasint"`
	Amount balance.Balance   `cbor:"3,keyasint"`
	Shard  sidechain.ShardID `cbor:"4,keyasint"`
}

// SetBalance sets Who's free balance to Free and adjusts the total issuance.
// Only the sidechain's root account may call it.
type SetBalance struct {
	Who  account.ID      `cbor:"1,keyasint"`
	Free balance.Balance `cbor:"2,keyasint"`
}

// Call is a trusted call: a union of which exactly one variant is set.
type Call struct {
	Transfer   *Transfer   `cbor:"1,keyasint,omitempty"`
	Unshield   *Unshield   `cbor:"2,keyasint,omitempty"`
	SetBalance *SetBalance `cbor:"3,keyasint,omitempty"`
}

// Validate reports ErrInvalidVariant unless exactly one variant is set.
func (c *Call) Validate() error {
	n := 0
	for _, set := range []bool{c.Transfer != nil, c.Unshield != nil, c.SetBalance != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return ErrInvalidVariant.Wrap("call has %d variants set", n)
	}
	return nil
}

// Name returns the call's name as the CLI and logs spell it: "transfer",
// "unshield_funds", "set_balance", or "" for an invalid union.
func (c *Call) Name() string {
	if c.Validate() != nil {
		return ""
	}
	switch {
	case c.Transfer != nil:
		return "transfer"
	case c.Unshield != nil:
		return "unshield_funds"
	default:
		return "set_balance"
	}
}

// spender returns the account the call spends from, if it has one.
func (c *Call) spender() (account.ID, bool) {
	switch {
	case c.Transfer != nil:
		return c.Transfer.From, true
	case c.Unshield != nil:
		return c.Unshield.From, true
	}
	return account.ID{}, false
}

// SignedCall is a trusted call signed by its Signer.
type SignedCall struct {
	Call      Call       `cbor:"1,keyasint"`
	Signer    account.ID `cbor:"2,keyasint"`
	Nonce     uint64     `cbor:"3,keyasint"`
	Signature []byte     `cbor:"4,keyasint"`
}

type callPayload struct {
	Call      Call                  `cbor:"1,keyasint"`
	Nonce     uint64                `cbor:"2,keyasint"`
	MrEnclave attestation.MrEnclave `cbor:"3,keyasint"`
	Shard     sidechain.ShardID     `cbor:"4,keyasint"`
}

// CallSigningBytes returns the bytes a trusted call's signature covers.
func CallSigningBytes(call Call, nonce uint64, mrenclave attestation.MrEnclave, shard sidechain.ShardID) []byte {
	p := callPayload{Call: call, Nonce: nonce, MrEnclave: mrenclave, Shard: shard}
	return append([]byte(CallSigningDomain), canonical.MustMarshal(&p)...)
}

// SignCall signs call as p with the given nonce, for the enclave measured
// mrenclave serving shard. It does not check the call; the STF does.
func SignCall(p *account.Pair, call Call, nonce uint64, mrenclave attestation.MrEnclave, shard sidechain.ShardID) *SignedCall {
	return &SignedCall{
		Call:      call,
		Signer:    p.ID(),
		Nonce:     nonce,
		Signature: p.Sign(CallSigningBytes(call, nonce, mrenclave, shard)),
	}
}

// Verify checks the call's form, that the signer is the account the call
// spends from and the signature for the given enclave and shard. It does not
// look at the state (nonce, balances, root).
//
// Signatures are checked under the ZIP-215 rules (account.VerifyZIP215),
// the same whether one call is verified or a batch (VerifyCalls).
func (sc *SignedCall) Verify(mrenclave attestation.MrEnclave, shard sidechain.ShardID) error {
	if err := sc.checkForm(); err != nil {
		return err
	}
	if !account.VerifyZIP215(sc.Signer, CallSigningBytes(sc.Call, sc.Nonce, mrenclave, shard), sc.Signature) {
		return sc.badSignature()
	}
	return nil
}

func (sc *SignedCall) checkForm() error {
	if sc == nil {
		return ErrMalformed.Wrap("no call")
	}
	if err := sc.Call.Validate(); err != nil {
		return err
	}
	if from, ok := sc.Call.spender(); ok && from != sc.Signer {
		return ErrSignerMismatch.Wrap("%s signs a %s from %s", sc.Signer, sc.Call.Name(), from)
	}
	return nil
}

func (sc *SignedCall) badSignature() error {
	return ErrBadSignature.Wrap("trusted call of %s", sc.Signer)
}

// VerifyCalls verifies calls as Verify does, their signatures as one batch
// (account.BatchVerifier): errs[i] is calls[i]'s verdict. A nil call is
// ErrMalformed. keys, if not nil, caches the signers' decompressed keys.
func VerifyCalls(calls []*SignedCall, mrenclave attestation.MrEnclave, shard sidechain.ShardID, keys *account.KeyCache) []error {
	errs := make([]error, len(calls))
	b := account.NewBatchVerifier(len(calls), keys)
	idx := make([]int, 0, len(calls))
	for i, sc := range calls {
		if errs[i] = sc.checkForm(); errs[i] != nil {
			continue
		}
		b.Add(sc.Signer, CallSigningBytes(sc.Call, sc.Nonce, mrenclave, shard), sc.Signature)
		idx = append(idx, i)
	}
	for j, ok := range b.Verify() {
		if !ok {
			errs[idx[j]] = calls[idx[j]].badSignature()
		}
	}
	return errs
}

// Hash returns the hash of the call as an Operation; see Operation.Hash.
func (sc *SignedCall) Hash() [32]byte { return (&Operation{Call: sc}).Hash() }

// TotalIssuanceQuery is the (empty) argument of the TotalIssuance getter.
type TotalIssuanceQuery struct{}

// Getter is a trusted getter: a union of which exactly one variant is set.
type Getter struct {
	// FreeBalance reads an account's free balance; only its owner may.
	FreeBalance *account.ID `cbor:"1,keyasint,omitempty"`
	// Nonce reads an account's next nonce; only its owner may.
	Nonce *account.ID `cbor:"2,keyasint,omitempty"`
	// TotalIssuance reads the shard's total issuance; any signer may.
	TotalIssuance *TotalIssuanceQuery `cbor:"3,keyasint,omitempty"`
}

// Validate reports ErrInvalidVariant unless exactly one variant is set.
func (g *Getter) Validate() error {
	n := 0
	for _, set := range []bool{g.FreeBalance != nil, g.Nonce != nil, g.TotalIssuance != nil} {
		if set {
			n++
		}
	}
	if n != 1 {
		return ErrInvalidVariant.Wrap("getter has %d variants set", n)
	}
	return nil
}

// SignedGetter is a trusted getter signed by its Signer.
type SignedGetter struct {
	Getter    Getter     `cbor:"1,keyasint"`
	Signer    account.ID `cbor:"2,keyasint"`
	Signature []byte     `cbor:"3,keyasint"`
}

type getterPayload struct {
	Getter Getter            `cbor:"1,keyasint"`
	Shard  sidechain.ShardID `cbor:"2,keyasint"`
}

// GetterSigningBytes returns the bytes a trusted getter's signature covers.
func GetterSigningBytes(g Getter, shard sidechain.ShardID) []byte {
	p := getterPayload{Getter: g, Shard: shard}
	return append([]byte(GetterSigningDomain), canonical.MustMarshal(&p)...)
}

// SignGetter signs g as p for shard.
func SignGetter(p *account.Pair, g Getter, shard sidechain.ShardID) *SignedGetter {
	return &SignedGetter{Getter: g, Signer: p.ID(), Signature: p.Sign(GetterSigningBytes(g, shard))}
}

// Verify checks the getter's form, its signature for shard, and that the
// signer owns the account it reads (ErrGetterNotOwner); TotalIssuance may be
// read by any signer.
func (sg *SignedGetter) Verify(shard sidechain.ShardID) error {
	if sg == nil {
		return ErrMalformed.Wrap("no getter")
	}
	if err := sg.Getter.Validate(); err != nil {
		return err
	}
	if !account.Verify(sg.Signer, GetterSigningBytes(sg.Getter, shard), sg.Signature) {
		return ErrBadSignature.Wrap("trusted getter of %s", sg.Signer)
	}
	var who *account.ID
	switch {
	case sg.Getter.FreeBalance != nil:
		who = sg.Getter.FreeBalance
	case sg.Getter.Nonce != nil:
		who = sg.Getter.Nonce
	}
	if who != nil && *who != sg.Signer {
		return ErrGetterNotOwner.Wrap("%s reads %s", sg.Signer, *who)
	}
	return nil
}

// Operation is a trusted operation as clients submit it, directly over the
// trusted RPC or indirectly through the parentchain: a union of which
// exactly one variant is set.
type Operation struct {
	Call   *SignedCall   `cbor:"1,keyasint,omitempty"`
	Getter *SignedGetter `cbor:"2,keyasint,omitempty"`
}

// Validate checks the operation's form: exactly one variant at each union,
// and 64-byte signatures. It does not verify signatures.
func (o *Operation) Validate() error {
	switch {
	case o.Call != nil && o.Getter != nil:
		return ErrInvalidVariant.Wrap("operation has 2 variants set")
	case o.Call != nil:
		if err := o.Call.Call.Validate(); err != nil {
			return err
		}
		return checkSigLen(o.Call.Signature)
	case o.Getter != nil:
		if err := o.Getter.Getter.Validate(); err != nil {
			return err
		}
		return checkSigLen(o.Getter.Signature)
	}
	return ErrInvalidVariant.Wrap("operation has 0 variants set")
}

func checkSigLen(sig []byte) error {
	if len(sig) != ed25519.SignatureSize {
		return ErrMalformed.Wrap("signature is %d bytes, want %d", len(sig), ed25519.SignatureSize)
	}
	return nil
}

// Encode validates the operation and returns its canonical encoding.
func (o *Operation) Encode() ([]byte, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	b, err := canonical.Marshal(o)
	if err != nil {
		return nil, ErrMalformed.Wrap("%v", err)
	}
	if len(b) > MaxOperationBytes {
		return nil, ErrTooLarge.Wrap("%d bytes, max %d", len(b), MaxOperationBytes)
	}
	return b, nil
}

// DecodeOperation decodes an operation strictly: canonical CBOR only (no
// unknown or duplicate fields, indefinite lengths or tags), at most
// MaxOperationBytes, exactly one variant in every union and 64-byte
// signatures. Errors are ErrTooLarge, ErrMalformed or ErrInvalidVariant. It
// does not verify signatures.
func DecodeOperation(b []byte) (*Operation, error) {
	if len(b) > MaxOperationBytes {
		return nil, ErrTooLarge.Wrap("%d bytes, max %d", len(b), MaxOperationBytes)
	}
	var o Operation
	if err := canonical.Unmarshal(b, &o); err != nil {
		return nil, ErrMalformed.Wrap("%v", err)
	}
	if err := o.Validate(); err != nil {
		return nil, err
	}
	return &o, nil
}

// Hash identifies the operation: SHA-256 of its canonical encoding, the hash
// function every other identifier of the system uses (parentchain
// transactions, sidechain blocks, state hashes). The pool, the status
// notifications, the sidechain block's operation list and the parentchain's
// unshield_funds call hash all use it. The signature is part of the
// encoding, so two signatures of one call have two hashes; the nonce makes
// sure only one of them can execute.
func (o *Operation) Hash() [32]byte { return sha256.Sum256(canonical.MustMarshal(o)) }
