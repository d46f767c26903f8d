package stf

import (
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/parentchain/types"
)

// ModuleName is the codespace of the STF's errors, as the trusted JSON-RPC
// reports them.
const ModuleName = trusted.ModuleName

// Named errors. Errors returned by this package are one of these or wrap one
// of them with detail, so callers tell them apart with errors.Is or
// types.AsError.
var (
	ErrMalformed           = trusted.ErrMalformed
	ErrTooLarge            = trusted.ErrTooLarge
	ErrInvalidVariant      = trusted.ErrInvalidVariant
	ErrBadSignature        = trusted.ErrBadSignature
	ErrSignerMismatch      = trusted.ErrSignerMismatch
	ErrStaleNonce          = types.NewError(ModuleName, 6, "StaleNonce", "nonce already used (replay)")
	ErrFutureNonce         = types.NewError(ModuleName, 7, "FutureNonce", "nonce is ahead of the account's next nonce")
	ErrInsufficientBalance = types.NewError(ModuleName, 8, "InsufficientBalance", "balance too low")
	ErrOverflow            = types.NewError(ModuleName, 9, "Overflow", "balance or total issuance would exceed 2^128-1")
	ErrWrongShard          = types.NewError(ModuleName, 10, "WrongShard", "call names another shard")
	ErrNotRoot             = types.NewError(ModuleName, 11, "NotRoot", "call requires the sidechain's root account")
	ErrZeroAmount          = types.NewError(ModuleName, 12, "ZeroAmount", "amount must be positive")
	ErrGetterNotOwner      = trusted.ErrGetterNotOwner
	ErrBadDiff             = types.NewError(ModuleName, 14, "BadDiff", "state diff does not decode or writes an invalid entry")
	ErrBadSnapshot         = types.NewError(ModuleName, 15, "BadSnapshot", "state snapshot does not decode or holds an invalid entry")
	ErrConflict            = types.NewError(ModuleName, 16, "Conflict", "state changed since the transaction began")
	ErrTxClosed            = types.NewError(ModuleName, 17, "TxClosed", "transaction already committed or discarded")
	ErrNotInOutbox         = types.NewError(ModuleName, 18, "NotInOutbox", "no pending unshielding with this call hash")
	ErrDuplicateUnshield   = types.NewError(ModuleName, 19, "DuplicateUnshielding", "an unshielding with this call hash is already pending")
)
