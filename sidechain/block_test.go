package sidechain

import (
	"errors"
	"testing"

	"github.com/integritee-go/integritee/account"
)

func testBlock(t *testing.T) (*Codec, *Block, []byte) {
	c := NewCodec()
	p, _ := account.DevPair("//Alice")
	b := c.Seal(p, Header{Number: 3, Shard: ShardID{1}}, BlockData{Timestamp: 1000, Operations: []Hash{{9}}, EncryptedStateDiff: []byte("x")})
	return c, b, c.Encode(b)
}

func TestBlockRoundTrip(t *testing.T) {
	c, b, raw := testBlock(t)
	got, err := c.Decode(raw)
	if err != nil {
		t.Fatal(err)
	}
	if c.Hash(got) != c.Hash(b) || got.Data.Author != b.Data.Author {
		t.Fatal("round trip changed the block")
	}
}

func TestBlockRefusesTamperingAndTruncation(t *testing.T) {
	c, b, raw := testBlock(t)
	if _, err := c.Decode(raw[:len(raw)-3]); !errors.Is(err, ErrMalformedBlock) {
		t.Errorf("truncated: %v", err)
	}
	d := *b
	d.Data.Timestamp++
	if _, err := c.Decode(c.Encode(&d)); !errors.Is(err, ErrDataHashMismatch) {
		t.Errorf("tampered data: %v", err)
	}
	h := *b
	h.Header.Number++
	if _, err := c.Decode(c.Encode(&h)); !errors.Is(err, ErrBadBlockSig) {
		t.Errorf("tampered header: %v", err)
	}
	bob, _ := account.DevPair("//Bob")
	forged := *b
	forged.Data.Author = bob.ID()
	forged.Header.BlockDataHash = c.DataHash(&forged.Data)
	if _, err := c.Decode(c.Encode(&forged)); !errors.Is(err, ErrBadBlockSig) {
		t.Errorf("author swapped: %v", err)
	}
	if _, err := c.Decode(make([]byte, MaxBlockBytes+1)); !errors.Is(err, ErrBlockTooLarge) {
		t.Errorf("oversize: %v", err)
	}
}

func FuzzDecodeBlock(f *testing.F) {
	c, _, raw := testBlock(&testing.T{})
	f.Add(raw)
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		blk, err := c.Decode(b)
		if err != nil {
			return
		}
		if err := c.Verify(blk); err != nil {
			t.Fatalf("decoded block does not verify: %v", err)
		}
	})
}
