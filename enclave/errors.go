package enclave

import (
	"errors"

	"github.com/integritee-go/integritee/parentchain/types"
)

// ModuleName names the enclave's errors.
const ModuleName = "enclave"

// Errors the enclave returns to clients and peers.
var (
	ErrBadCiphertext = types.NewError(ModuleName, 1, "BadCiphertext", "operation does not decrypt with the shard's shielding key")
	ErrUnknownShard  = types.NewError(ModuleName, 2, "UnknownShard", "this enclave does not serve the shard")
	ErrNotACall      = types.NewError(ModuleName, 3, "NotACall", "submitted operation is not a trusted call (getters go to state_executeGetter)")
	ErrBadBlock      = types.NewError(ModuleName, 4, "BadBlock", "sidechain block refused")
	ErrNoBlock       = types.NewError(ModuleName, 5, "NoBlock", "the shard has no sidechain block yet")
	ErrNotReady      = types.NewError(ModuleName, 6, "NotReady", "the enclave has not produced or imported a block yet")
	// ErrCommitFailed is fatal: a block could not be stored after its state
	// was applied in memory; the host must stop and restart the enclave.
	ErrCommitFailed = types.NewError(ModuleName, 7, "CommitFailed", "storing a block failed; restart required")
	// ErrHalted: the enclave saw, in verified parentchain state, payouts or
	// a confirmed sidechain block its own state does not know. Its state is
	// older than the chain's (an old copy of its files, or a long stop), and
	// acting on it could pay out funds again, so it acts on nothing until
	// it has caught up from its peers; alone, it stays halted.
	ErrHalted = types.NewError(ModuleName, 9, "StateBehindChain", "the parentchain knows payouts or sidechain blocks this enclave's state does not; it halts until it caught up from its peers")
	// ErrBadParentchainProof: the host's answer for a parentchain state key
	// does not verify against the app hash of a verified block.
	ErrBadParentchainProof = types.NewError(ModuleName, 8, "BadParentchainProof", "parentchain state proof does not verify")
	// ErrBlockAhead and ErrLayerOneAhead are not refusals: the block waits
	// in the import queue for its parent (which the host fetches) or for
	// its parentchain block (which the parentchain sync brings).
	ErrBlockAhead    = types.NewError(ModuleName, 10, "BlockAhead", "the block's parent is not imported yet; the block waits for it")
	ErrLayerOneAhead = types.NewError(ModuleName, 11, "LayerOneHeadAhead", "the block's parentchain head is not verified here yet; the block waits for it")
	// ErrCompetingBlock: a block at a height this enclave already holds
	// another block for (a fork); the block held stays.
	// ErrBadForward: a sidechain_forwardOperations element that does not
	// open with the shard's key (not from an enclave of the shard) or does
	// not decode.
	ErrBadForward     = types.NewError(ModuleName, 14, "BadForward", "forwarded operations are not sealed by an enclave of the shard")
	ErrCompetingBlock = types.NewError(ModuleName, 12, "CompetingBlock", "another block of the shard holds this height already")
	// ErrForkAncestor: the blocks given to ResolveFork start above the
	// common ancestor; the host fetches from further back.
	ErrForkAncestor = types.NewError(ModuleName, 13, "ForkAncestorMissing", "the fork's blocks do not reach back to a block this enclave holds")
)

// IsWaiting reports whether err means a block waits in the import queue
// (for its parent or its parentchain block) rather than a refusal.
func IsWaiting(err error) bool {
	return errors.Is(err, ErrBlockAhead) || errors.Is(err, ErrLayerOneAhead)
}

// errName is what the enclave logs of an error that may carry private data
// (the state transition function's errors name accounts and balances): the
// error's module and name only. The host reads the logs.
func errName(err error) string {
	if e := types.AsError(err); e != nil {
		return e.Module + "." + e.Name
	}
	return "unnamed error"
}
