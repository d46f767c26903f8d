package sidechain

import (
	"crypto/sha256"
	"errors"
	"testing"
)

// FuzzParseShardID: a shard argument (CLI --shard and SHARD, the untrusted
// port's params) either fails with ErrBadShardID or names a shard whose
// base58 and hex forms both parse back to it.
func FuzzParseShardID(f *testing.F) {
	s := ShardID(sha256.Sum256([]byte("shard")))
	for _, v := range []string{s.String(), s.Hex(), "\t" + s.String(), "0X" + s.Hex()[2:], ShardID{}.String(), "0x", "0x1", "0OIl", ""} {
		f.Add(v)
	}
	f.Fuzz(func(t *testing.T, str string) {
		got, err := ParseShardID(str)
		if err != nil {
			if !errors.Is(err, ErrBadShardID) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		for _, form := range []string{got.String(), got.Hex()} {
			if back, err := ParseShardID(form); err != nil || back != got {
				t.Fatalf("%q parses to %s, whose form %q parses to %s, %v", str, got.Hex(), form, back.Hex(), err)
			}
		}
	})
}
