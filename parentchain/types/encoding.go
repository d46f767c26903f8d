package types

import "github.com/integritee-go/integritee/codec"

// Codec is the chain's codec: the canonical CBOR codec (package codec) and
// the chain's transaction encoding (tx.go).
type Codec struct {
	*codec.Codec
	// Names caches accounts' SS58 addresses for events.
	Names AccountNames
}

// NewCodec returns the chain's codec.
func NewCodec() *Codec { return &Codec{Codec: codec.New()} }

// ErrNonCanonical is returned for input that decodes but is not in
// canonical form.
var ErrNonCanonical = codec.ErrNonCanonical
