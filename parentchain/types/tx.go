package types

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"

	"github.com/integritee-go/integritee/account"
)

// MaxTxBytes bounds an encoded transaction.
const MaxTxBytes = 64 << 10

// signingDomain separates transaction signatures from every other signature
// an account may make.
const signingDomain = "integritee-parentchain-tx:v2:"

// Call names a module's call and carries its CBOR-encoded arguments.
type Call struct {
	Module string `cbor:"1,keyasint"`
	Method string `cbor:"2,keyasint"`
	Args   []byte `cbor:"3,keyasint"`
}

// String returns "module.method".
func (c Call) String() string { return c.Module + "." + c.Method }

// Body is the signed part of a transaction.
type Body struct {
	ChainID string     `cbor:"1,keyasint"`
	Nonce   uint64     `cbor:"2,keyasint"`
	Signer  account.ID `cbor:"3,keyasint"`
	Call    Call       `cbor:"4,keyasint"`
}

// Tx is a signed transaction.
type Tx struct {
	Body      Body   `cbor:"1,keyasint"`
	Signature []byte `cbor:"2,keyasint"`
}

// NewCall encodes args for module.method.
func NewCall(c *Codec, module, method string, args any) (Call, error) {
	b, err := c.Marshal(args)
	if err != nil {
		return Call{}, fmt.Errorf("encode %s.%s arguments: %w", module, method, err)
	}
	return Call{Module: module, Method: method, Args: b}, nil
}

// Chain names the chain a transaction is for: its id, in the transaction,
// and its genesis hash, which the signature covers without the transaction
// carrying it (as Substrate's CheckGenesis): a signature made for another
// chain, even one with the same id, is worthless here.
type Chain struct {
	ID      string
	Genesis [32]byte
}

// genesisDomain separates genesis hashes from other hashes.
const genesisDomain = "integritee-parentchain-genesis:v1:"

// GenesisHash is a chain's genesis hash: SHA-256 over a domain, the chain
// id and the hash of its genesis validator set (CometBFT's
// ValidatorSet.Hash), which is exactly the trust root a light client of the
// chain starts from. Another chain with the same id has other validators
// (their keys sign its blocks), so another genesis hash.
func GenesisHash(chainID string, validatorsHash []byte) [32]byte {
	h := sha256.New()
	h.Write([]byte(genesisDomain))
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(chainID)))
	h.Write(n[:])
	h.Write([]byte(chainID))
	h.Write(validatorsHash)
	var out [32]byte
	copy(out[:], h.Sum(nil))
	return out
}

// SigningBytes returns the bytes a transaction's signature covers: a
// domain, the chain's genesis hash and the body.
func (c *Codec) SigningBytes(b *Body, genesis [32]byte) []byte {
	out := append([]byte(signingDomain), genesis[:]...)
	return append(out, c.MustMarshal(b)...)
}

// Sign builds and signs a transaction for chain and returns its encoding.
func (c *Codec) Sign(p *account.Pair, chain Chain, nonce uint64, call Call) []byte {
	body := Body{ChainID: chain.ID, Nonce: nonce, Signer: p.ID(), Call: call}
	return c.MustMarshal(Tx{Body: body, Signature: p.Sign(c.SigningBytes(&body, chain.Genesis))})
}

// DecodeTx decodes and checks the form of a transaction; it does not verify
// the signature (see VerifySignature).
func (c *Codec) DecodeTx(b []byte) (*Tx, error) {
	if len(b) > MaxTxBytes {
		return nil, ErrTxTooLarge.Wrap("%d bytes, max %d", len(b), MaxTxBytes)
	}
	var tx Tx
	if err := c.Unmarshal(b, &tx); err != nil {
		return nil, ErrTxMalformed.Wrap("%v", err)
	}
	if tx.Body.Call.Module == "" || tx.Body.Call.Method == "" {
		return nil, ErrTxMalformed.Wrap("call names no module or method")
	}
	return &tx, nil
}

// VerifySignature checks the transaction's signature, made for the chain
// with genesis hash genesis.
func (c *Codec) VerifySignature(tx *Tx, genesis [32]byte) error {
	if !account.Verify(tx.Body.Signer, c.SigningBytes(&tx.Body, genesis), tx.Signature) {
		return ErrTxBadSignature.Wrap("signer %s (a signature for another chain, or a forged one)", tx.Body.Signer)
	}
	return nil
}

// TxHash is the hash CometBFT indexes a transaction by: SHA-256 of its bytes.
func TxHash(b []byte) [32]byte { return sha256.Sum256(b) }
