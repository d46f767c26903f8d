package types

import (
	"crypto/sha256"
	"fmt"

	"github.com/integritee-go/integritee/account"
)

// MaxTxBytes bounds an encoded transaction.
const MaxTxBytes = 64 << 10

// signingDomain separates transaction signatures from every other signature
// an account may make.
const signingDomain = "integritee-parentchain-tx:v1:"

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

// SigningBytes returns the bytes a transaction's signature covers.
func (c *Codec) SigningBytes(b *Body) []byte {
	return append([]byte(signingDomain), c.MustMarshal(b)...)
}

// Sign builds and signs a transaction and returns its encoding.
func (c *Codec) Sign(p *account.Pair, chainID string, nonce uint64, call Call) []byte {
	body := Body{ChainID: chainID, Nonce: nonce, Signer: p.ID(), Call: call}
	return c.MustMarshal(Tx{Body: body, Signature: p.Sign(c.SigningBytes(&body))})
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

// VerifySignature checks the transaction's signature.
func (c *Codec) VerifySignature(tx *Tx) error {
	if !account.Verify(tx.Body.Signer, c.SigningBytes(&tx.Body), tx.Signature) {
		return ErrTxBadSignature.Wrap("signer %s", tx.Body.Signer)
	}
	return nil
}

// TxHash is the hash CometBFT indexes a transaction by: SHA-256 of its bytes.
func TxHash(b []byte) [32]byte { return sha256.Sum256(b) }
