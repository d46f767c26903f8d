package types

import "github.com/integritee-go/integritee/errcode"

// Error is a named, numbered error of one module (package errcode).
type Error = errcode.Error

// NewError declares a module error (errcode.New).
func NewError(module string, code uint32, name, desc string) *Error {
	return errcode.New(module, code, name, desc)
}

// AsError finds the module error in err's chain, or nil (errcode.As).
func AsError(err error) *Error { return errcode.As(err) }

// Transaction-level errors: the envelope, before any module runs.
var (
	ErrTxMalformed    = NewError("tx", 1, "Malformed", "transaction bytes do not decode")
	ErrTxTooLarge     = NewError("tx", 2, "TooLarge", "transaction exceeds the maximum size")
	ErrTxWrongChain   = NewError("tx", 3, "WrongChainID", "transaction is for another chain")
	ErrTxBadSignature = NewError("tx", 4, "BadSignature", "signature does not verify")
	ErrTxStaleNonce   = NewError("tx", 5, "StaleNonce", "nonce already used (replay)")
	ErrTxFutureNonce  = NewError("tx", 6, "FutureNonce", "nonce is ahead of the account's next nonce")
	ErrTxCannotPayFee = NewError("tx", 7, "CannotPayFee", "account cannot pay the transaction fee")
	ErrUnknownModule  = NewError("tx", 8, "UnknownModule", "no such module")
	ErrUnknownCall    = NewError("tx", 9, "UnknownCall", "no such call in the module")
	ErrBadArgs        = NewError("tx", 10, "BadArguments", "call arguments do not decode")
	ErrBadOrigin      = NewError("tx", 11, "BadOrigin", "call requires the root origin")
	ErrTxInternal     = NewError("tx", 12, "Internal", "internal error")
)
