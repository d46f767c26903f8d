// Package sim is the development "simulation" TEE's attestation: quotes
// signed by a published simulation attestation key.
//
// The simulation key is derived from a public constant, so anyone can make a
// valid simulation quote for any measurement, any report data and any time.
// Simulation quotes carry NO security whatsoever: they exist so that the whole
// system can run on machines without a TEE. The parentchain accepts them only
// while its security flags allow simulation (development chains).
package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"fmt"
	"time"

	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/codec"
)

// Method is the attestation method name of simulation quotes.
const Method = "sim"

// Version is the quote format version this package makes and accepts.
const Version uint8 = 1

// MaxQuoteSize bounds an encoded quote; a well-formed one is about 200 bytes.
const MaxQuoteSize = 1024

// KeySeedPhrase is the public phrase whose SHA-256 is the seed of the
// simulation attestation key.
const KeySeedPhrase = "integritee simulation attestation key v1"

// SignatureDomain prefixes the bytes a quote's signature covers, so that no
// other signature of the key can pass for a quote.
const SignatureDomain = "integritee-sim-quote:v1:"

// ErrSignatureLength is returned for a quote whose signature is not an
// ed25519 signature's length; it wraps attestation.ErrBadSignature.
var ErrSignatureLength = fmt.Errorf("sim: signature has the wrong length: %w", attestation.ErrBadSignature)

var (
	simKey = func() ed25519.PrivateKey {
		seed := sha256.Sum256([]byte(KeySeedPhrase))
		return ed25519.NewKeyFromSeed(seed[:])
	}()
	canonical = codec.New()
)

// PublicKey returns the published simulation attestation key. Its private
// key is public knowledge too (see KeySeedPhrase): a signature by it proves
// nothing.
func PublicKey() ed25519.PublicKey {
	return append(ed25519.PublicKey(nil), simKey.Public().(ed25519.PublicKey)...)
}

// Quote is a simulation quote. It is encoded in the chain's canonical CBOR;
// no other encoding is accepted.
type Quote struct {
	// Version is the format version, Version.
	Version uint8 `cbor:"1,keyasint"`
	// MrEnclave is the claimed measurement.
	MrEnclave attestation.MrEnclave `cbor:"2,keyasint"`
	// Debug is the claimed debug mode.
	Debug bool `cbor:"3,keyasint"`
	// ReportData is the enclave's 64 bytes of report data.
	ReportData [64]byte `cbor:"4,keyasint"`
	// Timestamp is when the quote was made, in Unix milliseconds.
	Timestamp int64 `cbor:"5,keyasint"`
	// Signature is the simulation key's ed25519 signature over SigningBytes.
	Signature []byte `cbor:"6,keyasint"`
}

// quoteBody is the signed part of a Quote: all fields but the signature.
type quoteBody struct {
	Version    uint8                 `cbor:"1,keyasint"`
	MrEnclave  attestation.MrEnclave `cbor:"2,keyasint"`
	Debug      bool                  `cbor:"3,keyasint"`
	ReportData [64]byte              `cbor:"4,keyasint"`
	Timestamp  int64                 `cbor:"5,keyasint"`
}

// SigningBytes returns the bytes q's signature covers: SignatureDomain
// followed by the canonical CBOR of the unsigned fields.
func (q *Quote) SigningBytes() []byte {
	body := quoteBody{Version: q.Version, MrEnclave: q.MrEnclave, Debug: q.Debug, ReportData: q.ReportData, Timestamp: q.Timestamp}
	return append([]byte(SignatureDomain), canonical.MustMarshal(body)...)
}

// Encode returns q's canonical encoding.
func (q *Quote) Encode() []byte { return canonical.MustMarshal(q) }

// NewQuote makes a simulation quote for an enclave with the given
// measurement, debug mode and report data, made at t, signed with the
// published simulation key. The enclave's sim backend makes its quotes here.
func NewQuote(mrenclave attestation.MrEnclave, debug bool, reportData [64]byte, t time.Time) []byte {
	q := Quote{Version: Version, MrEnclave: mrenclave, Debug: debug, ReportData: reportData, Timestamp: t.UnixMilli()}
	q.Signature = ed25519.Sign(simKey, q.SigningBytes())
	return q.Encode()
}

// DecodeQuote decodes a quote strictly (canonical CBOR, no unknown or
// missing fields, size bounded) without verifying its signature.
func DecodeQuote(b []byte) (*Quote, error) {
	if len(b) > MaxQuoteSize {
		return nil, fmt.Errorf("%w: sim quote of %d bytes, max %d", attestation.ErrQuoteTooLarge, len(b), MaxQuoteSize)
	}
	var q Quote
	if err := canonical.Unmarshal(b, &q); err != nil {
		return nil, fmt.Errorf("%w: sim quote: %v", attestation.ErrBadQuote, err)
	}
	return &q, nil
}

// Verifier verifies simulation quotes against the published key. It
// implements attestation.Verifier.
type Verifier struct {
	key ed25519.PublicKey
}

var _ attestation.Verifier = (*Verifier)(nil)

// NewVerifier returns a verifier of simulation quotes.
func NewVerifier() *Verifier { return &Verifier{key: PublicKey()} }

// Method returns "sim".
func (*Verifier) Method() string { return Method }

// Verify decodes quote strictly and checks its version and signature. It
// checks neither the timestamp's age nor the debug flag: that is policy, the
// caller's to decide.
func (v *Verifier) Verify(quote []byte) (*attestation.Report, error) {
	q, err := DecodeQuote(quote)
	if err != nil {
		return nil, err
	}
	if q.Version != Version {
		return nil, fmt.Errorf("%w: sim quote version %d, want %d", attestation.ErrUnsupportedVersion, q.Version, Version)
	}
	if len(q.Signature) != ed25519.SignatureSize {
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrSignatureLength, len(q.Signature), ed25519.SignatureSize)
	}
	if !ed25519.Verify(v.key, q.SigningBytes(), q.Signature) {
		return nil, fmt.Errorf("%w: not signed by the simulation key", attestation.ErrBadSignature)
	}
	return &attestation.Report{
		Method:     Method,
		MrEnclave:  q.MrEnclave,
		Debug:      q.Debug,
		ReportData: q.ReportData,
		Timestamp:  time.UnixMilli(q.Timestamp).UTC(),
	}, nil
}
