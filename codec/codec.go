// Package codec is the project's one canonical CBOR codec: Core
// Deterministic Encoding (RFC 8949 §4.2.1) out, strict and bounded decoding
// in, with a check that what was decoded is the canonical encoding. The
// parentchain's transactions, sidechain blocks, attestation reports and the
// enclave's sealed records all use it. It imports nothing of the project, so
// every package may.
package codec

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/fxamacker/cbor/v2"
)

// Codec encodes and decodes canonical CBOR. Encoding follows the
// Core Deterministic Encoding of RFC 8949 §4.2.1; decoding is strict (no
// duplicate keys, unknown fields, indefinite lengths or tags) and bounded.
type Codec struct {
	enc cbor.EncMode
	dec cbor.DecMode
}

// New returns the codec.
func New() *Codec {
	enc, err := cbor.CoreDetEncOptions().EncMode()
	if err != nil {
		panic(err) // static options
	}
	dec, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		MaxNestedLevels:   16,
		MaxArrayElements:  4096,
		MaxMapPairs:       4096,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return &Codec{enc: enc, dec: dec}
}

// Marshal encodes v canonically.
func (c *Codec) Marshal(v any) ([]byte, error) { return c.enc.Marshal(v) }

// MustMarshal encodes v and panics on error; for values of the chain's own
// types, which always encode.
func (c *Codec) MustMarshal(v any) []byte {
	b, err := c.enc.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("cbor: %T: %v", v, err))
	}
	return b
}

// ErrNonCanonical is returned for input that decodes but is not in canonical form.
var ErrNonCanonical = errors.New("cbor: not canonically encoded")

// Unmarshal decodes data strictly into v and checks that data is the
// canonical encoding of the result, so that every value has one encoding.
func (c *Codec) Unmarshal(data []byte, v any) error {
	if err := c.dec.Unmarshal(data, v); err != nil {
		return err
	}
	again, err := c.enc.Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return ErrNonCanonical
	}
	return nil
}

// UnmarshalLoose decodes strictly but without the canonical-form check; for
// data the chain wrote itself.
func (c *Codec) UnmarshalLoose(data []byte, v any) error { return c.dec.Unmarshal(data, v) }
