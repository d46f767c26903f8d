package trusted

import "github.com/integritee-go/integritee/errcode"

// ModuleName is the codespace of these errors (the state transition
// function's, which reports them too).
const ModuleName = "stf"

// Errors of decoding and verifying operations.
var (
	ErrMalformed      = errcode.New(ModuleName, 1, "Malformed", "operation bytes do not decode or are not canonically encoded")
	ErrTooLarge       = errcode.New(ModuleName, 2, "TooLarge", "operation exceeds the maximum size")
	ErrInvalidVariant = errcode.New(ModuleName, 3, "InvalidVariant", "a union must have exactly one variant set")
	ErrBadSignature   = errcode.New(ModuleName, 4, "BadSignature", "signature does not verify")
	ErrSignerMismatch = errcode.New(ModuleName, 5, "SignerMismatch", "signer is not the account the call spends from")
	ErrGetterNotOwner = errcode.New(ModuleName, 13, "GetterNotOwner", "getter reads an account other than its signer's")
)
