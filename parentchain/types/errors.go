package types

import (
	"errors"
	"fmt"
)

// Error is a named, numbered error of one module. A failed transaction's
// result carries the module as codespace and the code, so clients can tell
// errors apart without parsing text.
type Error struct {
	Module string
	Code   uint32
	Name   string
	Desc   string
}

// NewError declares a module error. Codes start at 1 within each module.
func NewError(module string, code uint32, name, desc string) *Error {
	return &Error{Module: module, Code: code, Name: name, Desc: desc}
}

// Error returns "module.Name: description".
func (e *Error) Error() string { return e.Module + "." + e.Name + ": " + e.Desc }

// Wrap returns an error that is e with more detail.
func (e *Error) Wrap(format string, args ...any) error {
	return &wrapped{e: e, detail: fmt.Sprintf(format, args...)}
}

type wrapped struct {
	e      *Error
	detail string
}

func (w *wrapped) Error() string { return w.e.Error() + ": " + w.detail }
func (w *wrapped) Unwrap() error { return w.e }

// AsError finds the module error in err's chain, or nil.
func AsError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return nil
}

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
