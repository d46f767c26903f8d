package account

import (
	"fmt"

	"github.com/mr-tron/base58"
	"golang.org/x/crypto/blake2b"
)

// DefaultSS58Prefix is the address prefix addresses print with: 42, the generic
// Substrate prefix that Substrate's own tools use for development chains.
const DefaultSS58Prefix uint16 = 42

var ss58Context = []byte("SS58PRE")

func ss58Checksum(data []byte) []byte {
	h, _ := blake2b.New512(nil)
	h.Write(ss58Context)
	h.Write(data)
	return h.Sum(nil)[:2]
}

// EncodeSS58 encodes id as an SS58 address with the given network prefix.
func EncodeSS58(id ID, prefix uint16) string {
	var data []byte
	switch {
	case prefix < 64:
		data = []byte{byte(prefix)}
	default:
		// Two-byte form, as Substrate's sp-core encodes prefixes 64..16383.
		p := prefix & 0x3fff
		data = []byte{byte((p&0xfc)>>2) | 0x40, byte(p>>8) | byte((p&0x03)<<6)}
	}
	data = append(data, id[:]...)
	data = append(data, ss58Checksum(data)...)
	return base58.Encode(data)
}

// DecodeSS58 decodes an SS58 address of a 32-byte account, checking its
// checksum, and returns the account and the network prefix.
func DecodeSS58(s string) (ID, uint16, error) {
	b, err := base58.Decode(s)
	if err != nil || len(b) == 0 {
		return ID{}, 0, fmt.Errorf("%w: %q is neither an SS58 address nor 0x-hex", ErrBadAccount, s)
	}
	var prefix uint16
	var n int
	switch {
	case b[0] < 64:
		prefix, n = uint16(b[0]), 1
	case b[0] < 128 && len(b) > 1:
		lower := (b[0] << 2) | (b[1] >> 6)
		upper := b[1] & 0x3f
		prefix, n = uint16(lower)|uint16(upper)<<8, 2
	default:
		return ID{}, 0, fmt.Errorf("%w: %q: unsupported SS58 prefix byte %d", ErrBadAccount, s, b[0])
	}
	if len(b) != n+IDLen+2 {
		return ID{}, 0, fmt.Errorf("%w: %q: SS58 payload is %d bytes, want %d", ErrBadAccount, s, len(b)-n-2, IDLen)
	}
	body := b[:n+IDLen]
	sum := ss58Checksum(body)
	if sum[0] != b[n+IDLen] || sum[1] != b[n+IDLen+1] {
		return ID{}, 0, fmt.Errorf("%w: %q: bad SS58 checksum", ErrBadAccount, s)
	}
	var id ID
	copy(id[:], b[n:n+IDLen])
	return id, prefix, nil
}
