package sidechain

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/codec"
)

// MaxBlockBytes bounds an encoded sidechain block.
const MaxBlockBytes = 16 << 20

// blockSigningDomain separates block signatures from every other signature
// an enclave key makes.
const blockSigningDomain = "integritee-sidechain-block:v1:"

// Hash is a 32-byte SHA-256 hash; it prints as 0x-hex.
type Hash [32]byte

// String returns the 0x-hex form.
func (h Hash) String() string { return "0x" + hex.EncodeToString(h[:]) }

// MarshalText implements encoding.TextMarshaler.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses 0x-hex.
func (h *Hash) UnmarshalText(b []byte) error {
	s := string(b)
	if len(s) != 66 || s[:2] != "0x" {
		return fmt.Errorf("sidechain: hash %q: want 0x and 64 hex digits", s)
	}
	_, err := hex.Decode(h[:], b[2:])
	return err
}

// Header is a sidechain block's header. Its hash is the block's hash.
type Header struct {
	Number     uint64  `cbor:"1,keyasint" json:"number"`
	ParentHash Hash    `cbor:"2,keyasint" json:"parent_hash"`
	Shard      ShardID `cbor:"3,keyasint" json:"shard"`
	// BlockDataHash commits to the block's data.
	BlockDataHash Hash `cbor:"4,keyasint" json:"block_data_hash"`
	// NextFinalizationNumber is the number of the next block the primary
	// will confirm on the parentchain.
	NextFinalizationNumber uint64 `cbor:"5,keyasint" json:"next_finalization_block_number"`
}

// LayerOneHead names a parentchain block.
type LayerOneHead struct {
	Number int64 `cbor:"1,keyasint" json:"number"`
	Hash   Hash  `cbor:"2,keyasint" json:"hash"`
}

// BlockData is what a block carries.
type BlockData struct {
	// Timestamp is the author's clock in Unix milliseconds; it gives the slot.
	Timestamp int64 `cbor:"1,keyasint" json:"timestamp"`
	// LayerOneHead is the last parentchain block the author had imported.
	LayerOneHead LayerOneHead `cbor:"2,keyasint" json:"layer_one_head"`
	Author       account.ID   `cbor:"3,keyasint" json:"author"`
	// Operations are the hashes of the trusted operations executed.
	Operations []Hash `cbor:"4,keyasint" json:"operations"`
	// EncryptedStateDiff is the state diff under the shard's state key.
	EncryptedStateDiff []byte `cbor:"5,keyasint" json:"-"`
	StateHashBefore    Hash   `cbor:"6,keyasint" json:"state_hash_before"`
	StateHashAfter     Hash   `cbor:"7,keyasint" json:"state_hash_after"`
}

// Block is a signed sidechain block.
type Block struct {
	Header    Header    `cbor:"1,keyasint"`
	Data      BlockData `cbor:"2,keyasint"`
	Signature []byte    `cbor:"3,keyasint"`
}

// Errors of DecodeBlock and Verify.
var (
	ErrMalformedBlock   = errors.New("sidechain: malformed block")
	ErrBlockTooLarge    = errors.New("sidechain: block too large")
	ErrDataHashMismatch = errors.New("sidechain: block data does not match the header's data hash")
	ErrBadBlockSig      = errors.New("sidechain: block signature does not verify")
)

// Codec encodes the sidechain's types canonically (package codec).
type Codec struct{ c *codec.Codec }

// NewCodec returns the sidechain codec.
func NewCodec() *Codec { return &Codec{c: codec.New()} }

// HeaderHash is the block hash: SHA-256 of the header's canonical encoding.
func (c *Codec) HeaderHash(h *Header) Hash { return sha256.Sum256(c.c.MustMarshal(h)) }

// DataHash is SHA-256 of the data's canonical encoding.
func (c *Codec) DataHash(d *BlockData) Hash { return sha256.Sum256(c.c.MustMarshal(d)) }

func signingBytes(h Hash) []byte { return append([]byte(blockSigningDomain), h[:]...) }

// Seal fills in the header's data hash and signs the block as p.
func (c *Codec) Seal(p *account.Pair, h Header, d BlockData) *Block {
	d.Author = p.ID()
	h.BlockDataHash = c.DataHash(&d)
	return &Block{Header: h, Data: d, Signature: p.Sign(signingBytes(c.HeaderHash(&h)))}
}

// Encode returns the block's canonical encoding.
func (c *Codec) Encode(b *Block) []byte { return c.c.MustMarshal(b) }

// Decode decodes a block strictly and checks its data hash and its
// author's signature. It does not judge the block's place in the chain.
func (c *Codec) Decode(raw []byte) (*Block, error) {
	if len(raw) > MaxBlockBytes {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrBlockTooLarge, len(raw), MaxBlockBytes)
	}
	var b Block
	if err := c.c.Unmarshal(raw, &b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedBlock, err)
	}
	if err := c.Verify(&b); err != nil {
		return nil, err
	}
	return &b, nil
}

// Verify checks the data hash and the author's signature.
func (c *Codec) Verify(b *Block) error {
	if c.DataHash(&b.Data) != b.Header.BlockDataHash {
		return ErrDataHashMismatch
	}
	if !account.Verify(b.Data.Author, signingBytes(c.HeaderHash(&b.Header)), b.Signature) {
		return fmt.Errorf("%w: author %s", ErrBadBlockSig, b.Data.Author)
	}
	return nil
}

// Hash returns the block's hash.
func (c *Codec) Hash(b *Block) Hash { return c.HeaderHash(&b.Header) }
