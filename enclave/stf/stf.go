// Package stf is the sidechain's state transition function, run inside the
// enclave: the trusted calls and getters clients sign, the shard's state (a
// key/value map of accounts, total issuance, root account and pending
// unshieldings), the diffs that record every change to it, and the chained
// state hash that sidechain blocks carry.
//
// Execution is all-or-nothing: a call that fails changes nothing at all,
// not even its signer's nonce. (A Substrate extrinsic that fails after its
// fee was taken still bumps the nonce; the sidechain takes no fee, so there
// is nothing to keep from a failed call, and a client can correct the call
// and resubmit it with the same nonce.) The pool and the block producer
// drop failed calls, which therefore never appear in a block.
package stf

import (
	"strconv"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/api/trusted"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/parentchain/types"
	"github.com/integritee-go/integritee/sidechain"
)

// STF executes trusted operations for one shard on behalf of an enclave of
// one measurement; signatures made for another shard or another enclave
// version do not verify.
type STF struct {
	mrenclave attestation.MrEnclave
	shard     sidechain.ShardID
	root      account.ID
	keys      *account.KeyCache // signers' decompressed keys, for VerifyCalls
}

// New returns the STF of shard for the enclave measured mrenclave. root is
// the root account Genesis writes into a new shard's state; after genesis
// the root stored in the state is the one that counts, so validateers
// joining with another root setting cannot fork the state.
func New(mrenclave attestation.MrEnclave, shard sidechain.ShardID, root account.ID) *STF {
	return &STF{mrenclave: mrenclave, shard: shard, root: root, keys: account.NewKeyCache(KeyCacheSize)}
}

// DevRoot returns //Alice's account, the root of a --dev shard.
func DevRoot() account.ID {
	p, err := account.DevPair("//Alice")
	if err != nil {
		panic(err) // static input
	}
	return p.ID()
}

// MrEnclave returns the enclave measurement signatures must name.
func (f *STF) MrEnclave() attestation.MrEnclave { return f.mrenclave }

// Shard returns the shard signatures must name.
func (f *STF) Shard() sidechain.ShardID { return f.shard }

// Root returns the root account Genesis uses.
func (f *STF) Root() account.ID { return f.root }

// Genesis returns a new shard's initial state: no accounts, zero issuance,
// the STF's root account.
func (f *STF) Genesis() *State { return NewState(f.root) }

// Result is what a successful call did.
type Result struct {
	// Hash is the operation's hash (SignedCall.Hash).
	Hash [32]byte
	// Diff holds the call's changes, already applied to the state.
	Diff Diff
	// Unshielding is set for an unshield call: the outbox entry it added.
	Unshielding *Unshielding
}

// VerifyCall checks what can be checked of a call without the state: its
// form, that the signer is the account it spends from (ErrSignerMismatch)
// and its signature for this shard and enclave (ErrBadSignature). The RPC
// runs it before a call enters the pool.
func (f *STF) VerifyCall(op *SignedCall) error { return op.Verify(f.mrenclave, f.shard) }

// VerifyCalls is VerifyCall of many calls, their signatures checked as one
// batch: errs[i] is calls[i]'s verdict.
func (f *STF) VerifyCalls(calls []*SignedCall) []error {
	return trusted.VerifyCalls(calls, f.mrenclave, f.shard, f.keys)
}

// KeyCacheSize is how many signers' decompressed public keys the STF keeps
// for signature checks (about 200 bytes each).
const KeyCacheSize = 1 << 15

// ExecuteCall verifies op and executes it on st. On success the changes are
// applied to st and returned in the result; on failure st is unchanged,
// including the signer's nonce. Errors: ErrMalformed, ErrInvalidVariant,
// ErrSignerMismatch, ErrBadSignature, ErrStaleNonce, ErrFutureNonce, then
// per call ErrInsufficientBalance, ErrOverflow, ErrWrongShard, ErrZeroAmount,
// ErrNotRoot; and ErrConflict if st was changed concurrently.
func (f *STF) ExecuteCall(st *State, op *SignedCall) (Result, error) {
	if err := f.VerifyCall(op); err != nil {
		return Result{}, err
	}
	tx := st.Begin()
	res, err := f.execute(tx, op, op.Hash())
	if err != nil {
		tx.Discard()
		return Result{}, err
	}
	if res.Diff, err = tx.Commit(); err != nil {
		return Result{}, err
	}
	return res, nil
}

// ExecuteInTx executes a call VerifyCall has already accepted inside tx,
// in a nested transaction: on success its writes join tx (the result's
// diff holds them, relative to the state), on failure tx is unchanged.
// Block production runs a block's calls this way without touching the
// state, which then takes the block's diff like any imported block's.
// hash is op.Hash(), which the caller has (the pool keys operations by
// it): encoding the call again to hash it was 2% of a validateer's CPU.
func (f *STF) ExecuteInTx(tx *Tx, op *SignedCall, hash [32]byte) (Result, error) {
	inner := tx.Begin()
	res, err := f.execute(inner, op, hash)
	if err != nil {
		inner.Discard()
		return Result{}, err
	}
	if res.Diff, err = inner.Commit(); err != nil {
		return Result{}, err
	}
	return res, nil
}

func (f *STF) execute(tx *Tx, op *SignedCall, hash [32]byte) (Result, error) {
	res := Result{Hash: hash}
	signer := tx.Account(op.Signer)
	switch {
	case op.Nonce < signer.Nonce:
		return res, ErrStaleNonce.Wrap("%s: nonce %d, next is %d", op.Signer, op.Nonce, signer.Nonce)
	case op.Nonce > signer.Nonce:
		return res, ErrFutureNonce.Wrap("%s: nonce %d, next is %d", op.Signer, op.Nonce, signer.Nonce)
	}
	c := op.Call
	switch {
	case c.Transfer != nil:
		if err := transfer(tx, c.Transfer.From, c.Transfer.To, c.Transfer.Amount); err != nil {
			return res, err
		}
	case c.Unshield != nil:
		u := c.Unshield
		if u.Shard != f.shard {
			return res, ErrWrongShard.Wrap("call names %s, this is %s", u.Shard, f.shard)
		}
		if u.Amount.IsZero() {
			return res, ErrZeroAmount.Wrap("unshield_funds")
		}
		if err := burn(tx, u.From, u.Amount); err != nil {
			return res, err
		}
		res.Unshielding = &Unshielding{CallHash: res.Hash, Beneficiary: u.To, Amount: u.Amount, Shard: u.Shard}
		if err := tx.AddToOutbox(*res.Unshielding); err != nil {
			return res, err
		}
	case c.SetBalance != nil:
		root := tx.Root()
		if root.IsZero() || op.Signer != root {
			return res, ErrNotRoot.Wrap("%s is not root", op.Signer)
		}
		if err := setFree(tx, c.SetBalance.Who, c.SetBalance.Free); err != nil {
			return res, err
		}
	}
	// Re-read: the call may have changed the signer's own record.
	a := tx.Account(op.Signer)
	a.Nonce++
	tx.SetAccount(op.Signer, a)
	return res, nil
}

func transfer(tx *Tx, from, to account.ID, amount types.Balance) error {
	src := tx.Account(from)
	rest, ok := src.Free.Sub(amount)
	if !ok {
		return ErrInsufficientBalance.Wrap("%s has %s, needs %s", from, src.Free, amount)
	}
	if from == to {
		return nil
	}
	dst := tx.Account(to)
	got, err := dst.Free.Add(amount)
	if err != nil {
		return ErrOverflow.Wrap("balance of %s", to)
	}
	src.Free, dst.Free = rest, got
	tx.SetAccount(from, src)
	tx.SetAccount(to, dst)
	return nil
}

func burn(tx *Tx, who account.ID, amount types.Balance) error {
	a := tx.Account(who)
	rest, ok := a.Free.Sub(amount)
	if !ok {
		return ErrInsufficientBalance.Wrap("%s has %s, needs %s", who, a.Free, amount)
	}
	iss, ok := tx.TotalIssuance().Sub(amount)
	if !ok {
		// Issuance is the sum of all balances; only a corrupt diff gets here.
		return ErrOverflow.Wrap("total issuance below a balance")
	}
	a.Free = rest
	tx.SetAccount(who, a)
	tx.SetTotalIssuance(iss)
	return nil
}

func mint(tx *Tx, who account.ID, amount types.Balance) error {
	a := tx.Account(who)
	free, err := a.Free.Add(amount)
	if err != nil {
		return ErrOverflow.Wrap("balance of %s", who)
	}
	iss, err := tx.TotalIssuance().Add(amount)
	if err != nil {
		return ErrOverflow.Wrap("total issuance")
	}
	a.Free = free
	tx.SetAccount(who, a)
	tx.SetTotalIssuance(iss)
	return nil
}

func setFree(tx *Tx, who account.ID, free types.Balance) error {
	cur := tx.Account(who).Free
	if up, ok := free.Sub(cur); ok {
		return mint(tx, who, up)
	}
	down, _ := cur.Sub(free)
	return burn(tx, who, down)
}

// ShieldFunds credits amount to beneficiary and raises the total issuance.
// It returns the changes (already applied), or ErrZeroAmount or ErrOverflow
// with st unchanged.
func (f *STF) ShieldFunds(st *State, beneficiary account.ID, amount types.Balance) (Diff, error) {
	tx := st.Begin()
	if err := f.ShieldFundsInTx(tx, beneficiary, amount); err != nil {
		tx.Discard()
		return nil, err
	}
	return tx.Commit()
}

// ShieldFundsInTx is ShieldFunds inside tx: the block author runs each
// shield_funds of its shard found in a verified parentchain block this
// way. On failure tx is unchanged.
func (f *STF) ShieldFundsInTx(tx *Tx, beneficiary account.ID, amount types.Balance) error {
	if amount.IsZero() {
		return ErrZeroAmount.Wrap("shield_funds")
	}
	inner := tx.Begin()
	if err := mint(inner, beneficiary, amount); err != nil {
		inner.Discard()
		return err
	}
	_, err := inner.Commit()
	return err
}

// ExecuteGetter verifies g (signature for this shard, and that its signer
// owns the account it reads) and answers it from st: a balance, nonce or
// total issuance as a decimal string. Errors: ErrMalformed,
// ErrInvalidVariant, ErrBadSignature, ErrGetterNotOwner.
func (f *STF) ExecuteGetter(st *State, g *SignedGetter) ([]byte, error) {
	if err := g.Verify(f.shard); err != nil {
		return nil, err
	}
	switch {
	case g.Getter.FreeBalance != nil:
		return []byte(st.Account(*g.Getter.FreeBalance).Free.String()), nil
	case g.Getter.Nonce != nil:
		return strconv.AppendUint(nil, st.Account(*g.Getter.Nonce).Nonce, 10), nil
	default:
		return []byte(st.TotalIssuance().String()), nil
	}
}
