// Package balances is the parentchain's token module: TEER balances of
// 128-bit planck, per-account nonces, total issuance, the transaction fee
// (burned) and transfers.
package balances

import (
	"encoding/json"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/parentchain/types"
)

// ModuleName is the module's name in calls, events, errors and queries.
const ModuleName = "balances"

// Errors.
var (
	ErrInsufficientBalance = types.NewError(ModuleName, 1, "InsufficientBalance", "balance too low")
	ErrOverflow            = types.NewError(ModuleName, 2, "Overflow", "balance would exceed 2^128-1")
)

var (
	prefixAccount = []byte("balances/acct/")
	keyIssuance   = []byte("balances/issuance")
	keyAccounts   = []byte("balances/accounts")
	keyFee        = []byte("balances/fee")
)

// AccountKey is the state key of an account (its Account record).
func AccountKey(id account.ID) []byte { return append(append([]byte{}, prefixAccount...), id[:]...) }

// Account is an account's on-chain record.
type Account struct {
	Free  types.Balance `cbor:"1,keyasint" json:"free"`
	Nonce uint64        `cbor:"2,keyasint" json:"nonce"`
}

// TransferArgs are the arguments of balances.transfer.
type TransferArgs struct {
	Dest   account.ID    `cbor:"1,keyasint"`
	Amount types.Balance `cbor:"2,keyasint"`
}

// SetBalanceArgs are the arguments of balances.set_balance (root only).
type SetBalanceArgs struct {
	Who  account.ID    `cbor:"1,keyasint"`
	Free types.Balance `cbor:"2,keyasint"`
}

// Endowment is a genesis balance.
type Endowment struct {
	Account account.ID    `json:"account"`
	Amount  types.Balance `json:"amount"`
}

// Genesis is the module's genesis state.
type Genesis struct {
	// TxFee is burned from the signer of every transaction.
	TxFee    types.Balance `json:"tx_fee"`
	Balances []Endowment   `json:"balances"`
}

// Module is the balances module.
type Module struct {
	codec *types.Codec
}

// New returns the balances module.
func New(codec *types.Codec) *Module { return &Module{codec: codec} }

// Name implements types.Module.
func (*Module) Name() string { return ModuleName }

// InitGenesis writes the genesis balances and fee.
func (m *Module) InitGenesis(ctx *types.Context, section json.RawMessage) error {
	var g Genesis
	if err := types.DecodeGenesis(ModuleName, section, &g); err != nil {
		return err
	}
	ctx.Set(keyFee, g.TxFee)
	for _, e := range g.Balances {
		a := m.Account(ctx, e.Account)
		free, err := a.Free.Add(e.Amount)
		if err != nil {
			return ErrOverflow.Wrap("genesis balance of %s", e.Account)
		}
		if err := m.setFree(ctx, e.Account, free); err != nil {
			return err
		}
	}
	return nil
}

// Fee returns the transaction fee.
func (m *Module) Fee(ctx *types.Context) types.Balance {
	var fee types.Balance
	ctx.Get(keyFee, &fee)
	return fee
}

// Account returns id's record (zero if it has none).
func (m *Module) Account(ctx *types.Context, id account.ID) Account {
	var a Account
	ctx.Get(AccountKey(id), &a)
	return a
}

// TotalIssuance returns the sum of all balances.
func (m *Module) TotalIssuance(ctx *types.Context) types.Balance {
	var b types.Balance
	ctx.Get(keyIssuance, &b)
	return b
}

func (m *Module) putAccount(ctx *types.Context, id account.ID, a Account) {
	key := AccountKey(id)
	if _, exists := ctx.Store.Get(key); !exists {
		var n uint64
		ctx.Get(keyAccounts, &n)
		ctx.Set(keyAccounts, n+1)
		ctx.Event(ModuleName, "NewAccount", "account", id)
	}
	ctx.Set(key, a)
}

// setFree sets id's free balance and adjusts the total issuance.
func (m *Module) setFree(ctx *types.Context, id account.ID, free types.Balance) error {
	a := m.Account(ctx, id)
	iss := m.TotalIssuance(ctx)
	if d, ok := free.Sub(a.Free); ok {
		var err error
		if iss, err = iss.Add(d); err != nil {
			return ErrOverflow.Wrap("total issuance")
		}
	} else {
		d, _ := a.Free.Sub(free)
		iss, _ = iss.Sub(d)
	}
	ctx.Set(keyIssuance, iss)
	a.Free = free
	m.putAccount(ctx, id, a)
	return nil
}

// IncNonce increments id's nonce.
func (m *Module) IncNonce(ctx *types.Context, id account.ID) {
	a := m.Account(ctx, id)
	a.Nonce++
	m.putAccount(ctx, id, a)
}

// Burn removes amount from id's balance and from the total issuance.
func (m *Module) Burn(ctx *types.Context, id account.ID, amount types.Balance) error {
	a := m.Account(ctx, id)
	free, ok := a.Free.Sub(amount)
	if !ok {
		return ErrInsufficientBalance.Wrap("%s has %s, needs %s", id, a.Free, amount)
	}
	return m.setFree(ctx, id, free)
}

// Transfer moves amount from one account to another.
func (m *Module) Transfer(ctx *types.Context, from, to account.ID, amount types.Balance) error {
	src := m.Account(ctx, from)
	rest, ok := src.Free.Sub(amount)
	if !ok {
		return ErrInsufficientBalance.Wrap("%s has %s, needs %s", from, src.Free, amount)
	}
	if from != to {
		dst := m.Account(ctx, to)
		got, err := dst.Free.Add(amount)
		if err != nil {
			return ErrOverflow.Wrap("balance of %s", to)
		}
		src.Free = rest
		m.putAccount(ctx, from, src)
		dst.Free = got
		m.putAccount(ctx, to, dst)
	}
	ctx.Event(ModuleName, "Transfer", "from", from, "to", to, "amount", amount)
	return nil
}

// Exec implements types.Module.
func (m *Module) Exec(ctx *types.Context, method string, args []byte) error {
	switch method {
	case "transfer":
		var a TransferArgs
		if err := ctx.DecodeArgs("balances.transfer", args, &a); err != nil {
			return err
		}
		return m.Transfer(ctx, ctx.Origin.Signer, a.Dest, a.Amount)
	case "set_balance":
		var a SetBalanceArgs
		if err := ctx.DecodeArgs("balances.set_balance", args, &a); err != nil {
			return err
		}
		if err := ctx.RequireRoot("balances.set_balance"); err != nil {
			return err
		}
		if err := m.setFree(ctx, a.Who, a.Free); err != nil {
			return err
		}
		ctx.Event(ModuleName, "BalanceSet", "who", a.Who, "free", a.Free)
		return nil
	}
	return types.ErrUnknownCall.Wrap("balances.%s", method)
}

// AccountInfo is the answer to the account query.
type AccountInfo struct {
	Account account.ID    `json:"account"`
	Free    types.Balance `json:"free"`
	Nonce   uint64        `json:"nonce"`
}

// Summary is the answer to the summary query.
type Summary struct {
	TotalIssuance types.Balance `json:"total_issuance"`
	Accounts      uint64        `json:"accounts"`
	TxFee         types.Balance `json:"tx_fee"`
}

// Query implements types.Module. Paths: account/<ss58|0xhex>, summary.
func (m *Module) Query(r types.Reader, path []string) (any, error) {
	ctx := types.QueryContext(r, m.codec)
	switch {
	case len(path) == 2 && path[0] == "account":
		id, err := account.ParseID(path[1])
		if err != nil {
			return nil, types.ErrBadQuery.Wrap("%v", err)
		}
		a := m.Account(ctx, id)
		return AccountInfo{Account: id, Free: a.Free, Nonce: a.Nonce}, nil
	case len(path) == 1 && path[0] == "summary":
		var n uint64
		ctx.Get(keyAccounts, &n)
		return Summary{TotalIssuance: m.TotalIssuance(ctx), Accounts: n, TxFee: m.Fee(ctx)}, nil
	}
	return nil, types.ErrUnknownPath.Wrap("/balances/%v", path)
}
