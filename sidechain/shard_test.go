package sidechain

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/mr-tron/base58"
)

func TestShardIDRoundTrip(t *testing.T) {
	s := ShardID(sha256.Sum256([]byte("shard")))
	if s.String() != base58.Encode(s[:]) {
		t.Fatalf("String = %s", s)
	}
	for _, in := range []string{s.String(), s.Hex(), "0X" + strings.ToUpper(s.Hex()[2:]), "  " + s.String() + "\n"} {
		got, err := ParseShardID(in)
		if err != nil || got != s {
			t.Errorf("ParseShardID(%q) = %v, %v", in, got, err)
		}
	}
	var zero ShardID
	if !zero.IsZero() || s.IsZero() {
		t.Fatal("IsZero")
	}
	if got, err := ParseShardID(zero.String()); err != nil || got != zero {
		t.Fatalf("zero shard: %v", err)
	}
}

func TestShardIDJSON(t *testing.T) {
	s := ShardID{0xff, 1}
	b, err := json.Marshal(map[string]ShardID{"shard": s})
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != `{"shard":"`+s.String()+`"}` {
		t.Fatalf("json %s", b)
	}
	var back map[string]ShardID
	if err := json.Unmarshal(b, &back); err != nil || back["shard"] != s {
		t.Fatalf("back: %v %v", back, err)
	}
	var one ShardID
	if err := json.Unmarshal([]byte(`"`+s.Hex()+`"`), &one); err != nil || one != s {
		t.Fatalf("hex json: %v", err)
	}
}

func TestParseShardIDErrors(t *testing.T) {
	cases := []struct {
		in   string
		want error
	}{
		{"", ErrShardIDEmpty},
		{"  ", ErrShardIDEmpty},
		{"0x", ErrShardIDLength},
		{"0x1234", ErrShardIDLength},
		{"0x" + strings.Repeat("00", 33), ErrShardIDLength},
		{"0xzz", ErrShardIDHex},
		{"0x123", ErrShardIDHex},
		{"0OIl", ErrShardIDBase58},
		{"not-base58!", ErrShardIDBase58},
		{base58.Encode(make([]byte, 31)), ErrShardIDLength},
		{base58.Encode(append(make([]byte, 32), 1)), ErrShardIDLength},
	}
	for _, c := range cases {
		_, err := ParseShardID(c.in)
		if !errors.Is(err, c.want) || !errors.Is(err, ErrBadShardID) {
			t.Errorf("ParseShardID(%q) = %v, want %v", c.in, err, c.want)
		}
	}
}
