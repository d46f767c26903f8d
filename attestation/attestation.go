// Package attestation holds what every attestation method shares: the
// measurement of an enclave (MrEnclave), the report a verified quote yields,
// and the Verifier interface that each TEE's quote verifier implements. The
// parentchain's teerex module verifies registration proofs with it, and the
// enclave's mutual remote attestation verifies its peers' quotes with it.
//
// A quote carries 64 bytes of report data chosen by the enclave. By
// convention the first 32 bytes bind a public key (the enclave's signing key
// on the parentchain, or the TLS key in mutual attestation); the rest are
// free for the method's caller.
package attestation

import (
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/mr-tron/base58"
)

// MrEnclaveLen is the length of an enclave measurement.
const MrEnclaveLen = 32

// MrEnclave is the measurement of an enclave's code: what a quote proves is
// running. It prints in base58, as the original Integritee tools print it.
// In CBOR it is a 32-byte byte string; in JSON and text a base58 string.
type MrEnclave [MrEnclaveLen]byte

// Sentinel errors. Verifiers wrap them with detail, so callers tell failures
// apart with errors.Is.
var (
	// ErrBadMrEnclave is returned when a string names no measurement.
	ErrBadMrEnclave = errors.New("attestation: not an mrenclave")
	// ErrBadQuote is returned for a quote that does not decode in its
	// method's one accepted encoding.
	ErrBadQuote = errors.New("attestation: malformed quote")
	// ErrQuoteTooLarge is returned for a quote above its method's size limit.
	ErrQuoteTooLarge = errors.New("attestation: quote too large")
	// ErrUnsupportedVersion is returned for a quote of a format version the
	// verifier does not know.
	ErrUnsupportedVersion = errors.New("attestation: unsupported quote version")
	// ErrBadSignature is returned when a quote's signature (or its chain of
	// trust) does not verify.
	ErrBadSignature = errors.New("attestation: quote signature does not verify")
)

// String returns the base58 form.
func (m MrEnclave) String() string { return base58.Encode(m[:]) }

// Hex returns the 0x-prefixed hex form.
func (m MrEnclave) Hex() string { return "0x" + hex.EncodeToString(m[:]) }

// IsZero reports whether m is all zeros.
func (m MrEnclave) IsZero() bool { return m == MrEnclave{} }

// MarshalText encodes m in base58 (and so JSON encodes it as a base58 string).
func (m MrEnclave) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText accepts base58 or 0x-hex.
func (m *MrEnclave) UnmarshalText(b []byte) error {
	v, err := ParseMrEnclave(string(b))
	if err != nil {
		return err
	}
	*m = v
	return nil
}

// ParseMrEnclave parses a measurement in base58 or 0x-prefixed hex.
func ParseMrEnclave(s string) (MrEnclave, error) {
	s = strings.TrimSpace(s)
	var b []byte
	switch {
	case s == "":
		return MrEnclave{}, fmt.Errorf("%w: empty string", ErrBadMrEnclave)
	case strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X"):
		var err error
		if b, err = hex.DecodeString(s[2:]); err != nil {
			return MrEnclave{}, fmt.Errorf("%w: %q: bad hex: %v", ErrBadMrEnclave, s, err)
		}
	default:
		var err error
		if b, err = base58.Decode(s); err != nil {
			return MrEnclave{}, fmt.Errorf("%w: %q: neither base58 nor 0x-hex", ErrBadMrEnclave, s)
		}
	}
	if len(b) != MrEnclaveLen {
		return MrEnclave{}, fmt.Errorf("%w: %q: %d bytes, want %d", ErrBadMrEnclave, s, len(b), MrEnclaveLen)
	}
	var m MrEnclave
	copy(m[:], b)
	return m, nil
}

// Report is what a verified quote attests: which code runs, in which mode,
// with which report data, and when the quote was made.
type Report struct {
	// Method is the attestation method that verified the quote ("sim", "tdx", ...).
	Method string
	// MrEnclave is the measurement of the quoted enclave.
	MrEnclave MrEnclave
	// Debug is set when the enclave runs in a debug mode whose memory the
	// host can read; such an enclave keeps no secret.
	Debug bool
	// ReportData is the 64 bytes the enclave put in the quote.
	ReportData [64]byte
	// Timestamp is when the quote was made, as the quote states it.
	Timestamp time.Time
}

// Verifier verifies the quotes of one attestation method. Real TEE verifiers
// (Intel TDX, AMD SEV-SNP) plug in behind it.
type Verifier interface {
	// Method names the attestation method, e.g. "sim" or "tdx".
	Method() string
	// Verify checks quote and returns what it attests. Errors wrap the
	// package's sentinel errors where one fits.
	Verify(quote []byte) (*Report, error)
}
