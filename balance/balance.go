// Package balance is the project's amount type: an unsigned 128-bit count
// of planck (10^-12 TEER), as the parentchain's and the sidechain's
// balances, fees and issuance hold it. It imports nothing of the project.
package balance

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"math/bits"
	"strings"

	"github.com/fxamacker/cbor/v2"
	"lukechampine.com/uint128"
)

// Decimals is the number of decimals of TEER: 1 TEER = 10^12 planck.
const Decimals = 12

// ErrOverflow is returned when a balance computation leaves 128 bits.
var ErrOverflow = errors.New("balance: arithmetic overflow")

// Balance is an unsigned 128-bit amount in planck (10^-12 TEER).
// In CBOR it is a 16-byte big-endian byte string; in JSON a decimal string.
type Balance struct{ v uint128.Uint128 }

// NewBalance returns a balance of n planck.
func NewBalance(n uint64) Balance { return Balance{uint128.From64(n)} }

// TEER returns a balance of n whole TEER.
func TEER(n uint64) Balance {
	return Balance{uint128.From64(n).Mul64(1_000_000_000_000)}
}

// ParseBalance parses a non-negative decimal integer of planck.
func ParseBalance(s string) (Balance, error) {
	s = strings.TrimSpace(s)
	if s == "" || strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+") {
		return Balance{}, fmt.Errorf("balance: %q is not a non-negative integer", s)
	}
	n, ok := new(big.Int).SetString(s, 10)
	if !ok {
		return Balance{}, fmt.Errorf("balance: %q is not a non-negative integer", s)
	}
	if n.BitLen() > 128 {
		return Balance{}, fmt.Errorf("balance: %q: %w (max 2^128-1)", s, ErrOverflow)
	}
	return Balance{uint128.FromBig(n)}, nil
}

// MustParseBalance is ParseBalance for constants; it panics on error.
func MustParseBalance(s string) Balance {
	b, err := ParseBalance(s)
	if err != nil {
		panic(err)
	}
	return b
}

// MaxBalance is 2^128-1 planck.
var MaxBalance = Balance{uint128.Max}

// IsZero reports whether b is zero.
func (b Balance) IsZero() bool { return b.v.IsZero() }

// Cmp compares b and o and returns -1, 0 or +1.
func (b Balance) Cmp(o Balance) int { return b.v.Cmp(o.v) }

// Add returns b+o or ErrOverflow.
func (b Balance) Add(o Balance) (Balance, error) {
	r, carry := addCarry(b.v, o.v)
	if carry {
		return Balance{}, ErrOverflow
	}
	return Balance{r}, nil
}

// Sub returns b-o, and false if o > b.
func (b Balance) Sub(o Balance) (Balance, bool) {
	if b.v.Cmp(o.v) < 0 {
		return Balance{}, false
	}
	return Balance{b.v.Sub(o.v)}, true
}

func addCarry(a, b uint128.Uint128) (uint128.Uint128, bool) {
	r := a.AddWrap(b)
	return r, r.Cmp(a) < 0
}

// Big returns b as a big.Int.
func (b Balance) Big() *big.Int { return b.v.Big() }

// Float64 returns b approximately, for metrics.
func (b Balance) Float64() float64 {
	f, _ := new(big.Float).SetInt(b.v.Big()).Float64()
	return f
}

// String returns the decimal planck amount.
func (b Balance) String() string { return b.v.String() }

// MarshalCBOR encodes b as a 16-byte big-endian byte string.
func (b Balance) MarshalCBOR() ([]byte, error) {
	var buf [16]byte
	b.v.ReverseBytes().PutBytes(buf[:])
	return cbor.Marshal(buf[:])
}

// UnmarshalCBOR decodes a 16-byte big-endian byte string.
func (b *Balance) UnmarshalCBOR(data []byte) error {
	var raw []byte
	if err := cbor.Unmarshal(data, &raw); err != nil {
		return fmt.Errorf("balance: %w", err)
	}
	if len(raw) != 16 {
		return fmt.Errorf("balance: %d bytes, want 16", len(raw))
	}
	b.v = uint128.FromBytes(raw).ReverseBytes()
	return nil
}

// MarshalJSON encodes b as a decimal string.
func (b Balance) MarshalJSON() ([]byte, error) { return json.Marshal(b.String()) }

// UnmarshalJSON decodes a decimal string (or a JSON number).
func (b *Balance) UnmarshalJSON(data []byte) error {
	s := strings.Trim(string(data), `"`)
	v, err := ParseBalance(s)
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// MulU64 returns b*n or ErrOverflow.
func (b Balance) MulU64(n uint64) (Balance, error) {
	hi, lo := bits.Mul64(b.v.Lo, n)
	hh, hl := bits.Mul64(b.v.Hi, n)
	sum, carry := bits.Add64(hi, hl, 0)
	if hh != 0 || carry != 0 {
		return Balance{}, ErrOverflow
	}
	return Balance{uint128.New(lo, sum)}, nil
}
