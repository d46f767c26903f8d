package types

import (
	"errors"
	"testing"

	"github.com/integritee-go/integritee/account"
)

func TestBalanceArithmetic(t *testing.T) {
	if _, err := MaxBalance.Add(NewBalance(1)); !errors.Is(err, ErrOverflow) {
		t.Errorf("max+1: %v", err)
	}
	if _, ok := NewBalance(1).Sub(NewBalance(2)); ok {
		t.Error("1-2 succeeded")
	}
	if got := TEER(1000).String(); got != "1000000000000000" {
		t.Errorf("1000 TEER = %s", got)
	}
	if _, err := MaxBalance.MulU64(2); !errors.Is(err, ErrOverflow) {
		t.Errorf("max*2: %v", err)
	}
	for _, bad := range []string{"", "-1", "+1", "1.5", "1e3", "340282366920938463463374607431768211456"} {
		if _, err := ParseBalance(bad); err == nil {
			t.Errorf("ParseBalance(%q) accepted", bad)
		}
	}
	if b, err := ParseBalance("340282366920938463463374607431768211455"); err != nil || b != MaxBalance {
		t.Errorf("max: %v %v", b, err)
	}
}

func TestTxSignVerifyAndTamper(t *testing.T) {
	c := NewCodec()
	alice, _ := account.DevPair("//Alice")
	call, _ := NewCall(c, "balances", "transfer", map[int]any{1: alice.ID()})
	genesis := GenesisHash("chain", []byte("validators"))
	raw := c.Sign(alice, Chain{ID: "chain", Genesis: genesis}, 1, call)
	tx, err := c.DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.VerifySignature(tx, genesis); err != nil {
		t.Fatal(err)
	}
	// Another chain with the same id: another genesis (validators).
	if err := c.VerifySignature(tx, GenesisHash("chain", []byte("other validators"))); !errors.Is(err, ErrTxBadSignature) {
		t.Errorf("signature for another genesis: %v", err)
	}
	tx.Body.Nonce = 2
	if err := c.VerifySignature(tx, genesis); !errors.Is(err, ErrTxBadSignature) {
		t.Errorf("tampered nonce: %v", err)
	}
	tx.Body.Nonce, tx.Body.ChainID = 1, "other"
	if err := c.VerifySignature(tx, genesis); !errors.Is(err, ErrTxBadSignature) {
		t.Errorf("tampered chain id: %v", err)
	}
	// Non-canonical: an indefinite-length or reordered map is refused.
	if _, err := c.DecodeTx(append([]byte{0xbf}, raw[1:]...)); !errors.Is(err, ErrTxMalformed) {
		t.Errorf("indefinite length: %v", err)
	}
}
