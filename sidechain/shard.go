// Package sidechain holds the sidechain's shared types, which the
// parentchain, the enclave, the service and the CLI all speak: shard
// identifiers and (later) blocks and headers and their encoding.
package sidechain

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/mr-tron/base58"
)

// ShardIDLen is the length of a shard identifier.
const ShardIDLen = 32

// ShardID identifies a shard: one sidechain state and the validateers that
// keep it. By default a shard's id is the mrenclave of its first enclave. It
// prints in base58; in CBOR it is a 32-byte byte string.
type ShardID [ShardIDLen]byte

// Errors of ParseShardID. All of them wrap ErrBadShardID.
var (
	// ErrBadShardID is returned when a string names no shard.
	ErrBadShardID = errors.New("sidechain: not a shard id")
	// ErrShardIDEmpty is returned for an empty string.
	ErrShardIDEmpty = fmt.Errorf("%w: empty", ErrBadShardID)
	// ErrShardIDHex is returned for a 0x string that is not hex.
	ErrShardIDHex = fmt.Errorf("%w: bad hex", ErrBadShardID)
	// ErrShardIDBase58 is returned for a string that is neither 0x-hex nor base58.
	ErrShardIDBase58 = fmt.Errorf("%w: neither base58 nor 0x-hex", ErrBadShardID)
	// ErrShardIDLength is returned when the decoded bytes are not 32.
	ErrShardIDLength = fmt.Errorf("%w: wrong length", ErrBadShardID)
)

// String returns the base58 form.
func (s ShardID) String() string { return base58.Encode(s[:]) }

// Hex returns the 0x-prefixed hex form.
func (s ShardID) Hex() string { return "0x" + hex.EncodeToString(s[:]) }

// IsZero reports whether s is all zeros.
func (s ShardID) IsZero() bool { return s == ShardID{} }

// MarshalText encodes s in base58 (and so JSON encodes it as a base58 string).
func (s ShardID) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText accepts base58 or 0x-hex.
func (s *ShardID) UnmarshalText(b []byte) error {
	v, err := ParseShardID(string(b))
	if err != nil {
		return err
	}
	*s = v
	return nil
}

// ParseShardID parses a shard id in base58 or 0x-prefixed hex.
func ParseShardID(str string) (ShardID, error) {
	str = strings.TrimSpace(str)
	var b []byte
	switch {
	case str == "":
		return ShardID{}, ErrShardIDEmpty
	case strings.HasPrefix(str, "0x") || strings.HasPrefix(str, "0X"):
		var err error
		if b, err = hex.DecodeString(str[2:]); err != nil {
			return ShardID{}, fmt.Errorf("%w: %q: %v", ErrShardIDHex, str, err)
		}
	default:
		var err error
		if b, err = base58.Decode(str); err != nil {
			return ShardID{}, fmt.Errorf("%w: %q", ErrShardIDBase58, str)
		}
	}
	if len(b) != ShardIDLen {
		return ShardID{}, fmt.Errorf("%w: %q is %d bytes, want %d", ErrShardIDLength, str, len(b), ShardIDLen)
	}
	var s ShardID
	copy(s[:], b)
	return s, nil
}
