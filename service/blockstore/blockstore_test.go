package blockstore

import (
	"bytes"
	"errors"
	"math"
	"testing"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/sidechain"
)

var (
	shardA = sidechain.ShardID{0xA}
	shardB = sidechain.ShardID{0xB} // sorts after shardA in the key space
	codec  = sidechain.NewCodec()
)

func open(t *testing.T, dir string) *Store {
	t.Helper()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// block seals a block of shard at number n; salt tells forks apart.
func block(t *testing.T, shard sidechain.ShardID, n uint64, salt int64) (*sidechain.Block, []byte) {
	t.Helper()
	p, err := account.DevPair("//Alice")
	if err != nil {
		t.Fatal(err)
	}
	b := codec.Seal(p, sidechain.Header{Number: n, Shard: shard}, sidechain.BlockData{Timestamp: 1000*int64(n) + salt, EncryptedStateDiff: []byte{byte(n), byte(salt)}})
	return b, codec.Encode(b)
}

func put(t *testing.T, s *Store, shard sidechain.ShardID, n uint64, salt int64) (sidechain.Hash, []byte) {
	t.Helper()
	b, raw := block(t, shard, n, salt)
	if err := s.Put(b, raw); err != nil {
		t.Fatal(err)
	}
	return codec.Hash(b), raw
}

func numberOf(t *testing.T, raw []byte) uint64 {
	t.Helper()
	b, err := codec.Decode(raw)
	if err != nil {
		t.Fatalf("stored block does not decode: %v", err)
	}
	return b.Header.Number
}

func TestPutThenGetByNumberHashAndLast(t *testing.T) {
	s := open(t, t.TempDir())
	var hashes []sidechain.Hash
	var raws [][]byte
	for n := uint64(1); n <= 3; n++ {
		h, raw := put(t, s, shardA, n, 0)
		hashes, raws = append(hashes, h), append(raws, raw)
	}
	for i, raw := range raws {
		n := uint64(i + 1)
		got, err := s.ByNumber(shardA, n)
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ByNumber(%d) = %d bytes, %v; want the stored block", n, len(got), err)
		}
		got, err = s.ByHash(hashes[i])
		if err != nil || !bytes.Equal(got, raw) {
			t.Errorf("ByHash(block %d) = %d bytes, %v; want the stored block", n, len(got), err)
		}
	}
	last, err := s.Last(shardA)
	if err != nil || !bytes.Equal(last, raws[2]) {
		t.Fatalf("Last = block %v, %v; want block 3", last, err)
	}
}

func TestAbsentBlocksAreErrNotFound(t *testing.T) {
	s := open(t, t.TempDir())
	if _, err := s.Last(shardA); !errors.Is(err, ErrNotFound) {
		t.Errorf("Last of an empty store: %v", err)
	}
	put(t, s, shardA, 1, 0)
	if _, err := s.ByNumber(shardA, 2); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByNumber of a missing number: %v", err)
	}
	if _, err := s.ByNumber(shardB, 1); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByNumber in another shard: %v", err)
	}
	if _, err := s.ByHash(sidechain.Hash{1, 2, 3}); !errors.Is(err, ErrNotFound) {
		t.Errorf("ByHash of an unknown hash: %v", err)
	}
	if _, err := s.Last(shardB); !errors.Is(err, ErrNotFound) {
		t.Errorf("Last of a shard without blocks: %v", err)
	}
	if got, err := s.Range(shardB, 0, 100, 10, 0); err != nil || len(got) != 0 {
		t.Errorf("Range of a shard without blocks = %d blocks, %v", len(got), err)
	}
}

func TestShardsDoNotMix(t *testing.T) {
	s := open(t, t.TempDir())
	for n := uint64(1); n <= 5; n++ {
		put(t, s, shardA, n, 0)
	}
	_, rawB := put(t, s, shardB, 2, 0)
	// shardB's keys sort after all of shardA's: Last(shardA) must not see them.
	last, err := s.Last(shardA)
	if err != nil || numberOf(t, last) != 5 {
		t.Fatalf("Last(A) = %v; want A's block 5", err)
	}
	if b, _ := codec.Decode(last); b.Header.Shard != shardA {
		t.Fatalf("Last(A) returned a block of shard %s", b.Header.Shard)
	}
	last, err = s.Last(shardB)
	if err != nil || !bytes.Equal(last, rawB) {
		t.Fatalf("Last(B) = %v; want B's block 2", err)
	}
	got, err := s.Range(shardB, 0, 10, 10, 0)
	if err != nil || len(got) != 1 || !bytes.Equal(got[0], rawB) {
		t.Fatalf("Range(B) = %d blocks, %v; want B's only block", len(got), err)
	}
}

func TestForkAtTheSameNumberReplacesTheBlock(t *testing.T) {
	s := open(t, t.TempDir())
	put(t, s, shardA, 1, 0)
	oldHash, _ := put(t, s, shardA, 2, 0)
	newHash, newRaw := put(t, s, shardA, 2, 7) // the anchored fork's block 2
	if oldHash == newHash {
		t.Fatal("test set-up: the fork's block has the same hash")
	}
	got, err := s.ByNumber(shardA, 2)
	if err != nil || !bytes.Equal(got, newRaw) {
		t.Fatalf("ByNumber(2) after the fork: %v; want the new block", err)
	}
	if got, err := s.ByHash(newHash); err != nil || !bytes.Equal(got, newRaw) {
		t.Fatalf("ByHash(new) = %v", err)
	}
	last, err := s.Last(shardA)
	if err != nil || !bytes.Equal(last, newRaw) {
		t.Fatalf("Last after the fork: %v; want the new block 2", err)
	}
	if got, _ := s.Range(shardA, 1, 2, 10, 0); len(got) != 2 || !bytes.Equal(got[1], newRaw) {
		t.Fatalf("Range after the fork holds %d blocks, or the old block 2", len(got))
	}
}

// The replaced block's hash must not answer with a different block: a peer
// that asks for block X by hash must get X or nothing.
func TestForkReplacedBlockIsNotFoundByItsHash(t *testing.T) {
	s := open(t, t.TempDir())
	oldHash, _ := put(t, s, shardA, 2, 0)
	_, newRaw := put(t, s, shardA, 2, 7)
	got, err := s.ByHash(oldHash)
	if err == nil {
		if bytes.Equal(got, newRaw) {
			t.Fatal("ByHash(replaced block) returned the replacing block, whose hash differs")
		}
		t.Fatal("ByHash(replaced block) returned a block")
	}
	if !errors.Is(err, ErrNotFound) {
		t.Fatalf("ByHash(replaced block): %v, want ErrNotFound", err)
	}
}

func TestRangeIsInclusiveAndBoundedByMax(t *testing.T) {
	s := open(t, t.TempDir())
	for n := uint64(1); n <= 10; n++ {
		put(t, s, shardA, n, 0)
	}
	numbers := func(raws [][]byte) []uint64 {
		var out []uint64
		for _, r := range raws {
			out = append(out, numberOf(t, r))
		}
		return out
	}
	cases := []struct {
		name     string
		from, to uint64
		max      int
		want     []uint64
	}{
		{"inclusive both ends", 3, 5, 100, []uint64{3, 4, 5}},
		{"single block", 7, 7, 100, []uint64{7}},
		{"max cuts from the low end", 2, 10, 3, []uint64{2, 3, 4}},
		{"max equal to the count", 1, 3, 3, []uint64{1, 2, 3}},
		{"past the head", 9, 20, 100, []uint64{9, 10}},
		{"entirely past the head", 11, 20, 100, nil},
		{"from zero", 0, 2, 100, []uint64{1, 2}},
		{"to the largest number", 10, math.MaxUint64, 100, []uint64{10}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := s.Range(shardA, c.from, c.to, c.max, 0)
			if err != nil {
				t.Fatal(err)
			}
			if g := numbers(got); len(g) != len(c.want) || (len(g) > 0 && !equal(g, c.want)) {
				t.Fatalf("Range(%d, %d, max %d) = %v, want %v", c.from, c.to, c.max, g, c.want)
			}
		})
	}
}

func TestRangeWithFromAfterToIsEmpty(t *testing.T) {
	s := open(t, t.TempDir())
	for n := uint64(1); n <= 5; n++ {
		put(t, s, shardA, n, 0)
	}
	got, err := s.Range(shardA, 4, 2, 10, 0)
	if err == nil && len(got) != 0 {
		t.Fatalf("Range(4, 2) returned %d blocks", len(got))
	}
}

func TestRangeWithMaxZeroReturnsNothing(t *testing.T) {
	s := open(t, t.TempDir())
	for n := uint64(1); n <= 5; n++ {
		put(t, s, shardA, n, 0)
	}
	if got, err := s.Range(shardA, 1, 5, 0, 0); err != nil || len(got) != 0 {
		t.Fatalf("Range(max 0) = %d blocks, %v; want none", len(got), err)
	}
}

func TestBlocksSurviveCloseAndReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	var hashes []sidechain.Hash
	var raws [][]byte
	for n := uint64(1); n <= 4; n++ {
		h, raw := put(t, s, shardA, n, 0)
		hashes, raws = append(hashes, h), append(raws, raw)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir)
	last, err := s2.Last(shardA)
	if err != nil || !bytes.Equal(last, raws[3]) {
		t.Fatalf("Last after reopen: %v", err)
	}
	for i := range raws {
		if got, err := s2.ByHash(hashes[i]); err != nil || !bytes.Equal(got, raws[i]) {
			t.Errorf("ByHash(block %d) after reopen: %v", i+1, err)
		}
	}
	got, err := s2.Range(shardA, 1, 4, 10, 0)
	if err != nil || len(got) != 4 {
		t.Fatalf("Range after reopen = %d blocks, %v", len(got), err)
	}
}

func equal(a, b []uint64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestRangeIsCappedInBytesButAlwaysGivesOneBlock(t *testing.T) {
	s := open(t, t.TempDir())
	var size int
	for n := uint64(1); n <= 5; n++ {
		_, raw := put(t, s, shardA, n, 0)
		size = len(raw) // all the same size
	}
	got, err := s.Range(shardA, 1, 5, 10, 2*size+size/2)
	if err != nil || len(got) != 2 {
		t.Fatalf("Range capped at 2.5 blocks' bytes: %d blocks, %v; want the 2 that fit", len(got), err)
	}
	got, _ = s.Range(shardA, 3, 5, 10, 1)
	if len(got) != 1 || numberOf(t, got[0]) != 3 {
		t.Fatalf("a cap below one block gives %d blocks, want block 3 alone", len(got))
	}
	if got, _ = s.Range(shardA, 1, 5, 10, 0); len(got) != 5 {
		t.Fatalf("no byte cap: %d blocks", len(got))
	}
}
