package stf

import (
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/codec"
)

// The operations this package executes are the enclave's public wire types
// (package api/trusted); these names keep the state transition function's
// vocabulary.
type (
	Transfer           = trusted.Transfer
	Unshield           = trusted.Unshield
	SetBalance         = trusted.SetBalance
	Call               = trusted.Call
	SignedCall         = trusted.SignedCall
	TotalIssuanceQuery = trusted.TotalIssuanceQuery
	Getter             = trusted.Getter
	SignedGetter       = trusted.SignedGetter
	Operation          = trusted.Operation
)

// Signing domains and bounds (package api/trusted).
const (
	CallSigningDomain   = trusted.CallSigningDomain
	GetterSigningDomain = trusted.GetterSigningDomain
	MaxOperationBytes   = trusted.MaxOperationBytes
)

// Signing and decoding (package api/trusted).
var (
	CallSigningBytes   = trusted.CallSigningBytes
	SignCall           = trusted.SignCall
	GetterSigningBytes = trusted.GetterSigningBytes
	SignGetter         = trusted.SignGetter
	DecodeOperation    = trusted.DecodeOperation
)

// canonical is the project's canonical CBOR; safe for concurrent use.
var canonical = codec.New()
