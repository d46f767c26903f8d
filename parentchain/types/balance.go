package types

import "github.com/integritee-go/integritee/balance"

// Balance is an amount in planck (package balance).
type Balance = balance.Balance

// Decimals is the number of decimal places of one TEER.
const Decimals = balance.Decimals

// ErrOverflow is the error of balance arithmetic that overflows.
var ErrOverflow = balance.ErrOverflow

// MaxBalance is the largest balance.
var MaxBalance = balance.MaxBalance

// NewBalance, TEER, ParseBalance and MustParseBalance build balances
// (package balance).
var (
	NewBalance       = balance.NewBalance
	TEER             = balance.TEER
	ParseBalance     = balance.ParseBalance
	MustParseBalance = balance.MustParseBalance
)
