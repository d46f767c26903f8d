package account

import (
	"crypto/ed25519"
	"fmt"
	"testing"
)

func batchFixture(t testing.TB, n int) ([]*Pair, [][]byte, [][]byte) {
	t.Helper()
	pairs := make([]*Pair, n)
	msgs := make([][]byte, n)
	sigs := make([][]byte, n)
	for i := range pairs {
		p, err := DevPair(fmt.Sprintf("//Batch%d", i))
		if err != nil {
			t.Fatal(err)
		}
		pairs[i], msgs[i] = p, []byte(fmt.Sprintf("message %d", i))
		sigs[i] = p.Sign(msgs[i])
	}
	return pairs, msgs, sigs
}

func TestBatchVerifierFindsEachBadSignature(t *testing.T) {
	pairs, msgs, sigs := batchFixture(t, 9)
	sigs[2] = append([]byte(nil), sigs[2]...)
	sigs[2][5] ^= 1               // flipped bit
	sigs[4] = sigs[4][:63]        // short
	msgs[6] = []byte("other msg") // signature over another message
	sigs[8] = append(sigs[8], 0)  // long
	b := NewBatchVerifier(len(pairs), nil)
	for i, p := range pairs {
		b.Add(p.ID(), msgs[i], sigs[i])
	}
	if b.Len() != len(pairs) {
		t.Fatalf("Len %d", b.Len())
	}
	got := b.Verify()
	keys := NewKeyCache(4) // smaller than the batch: entries are evicted
	for round := 0; round < 2; round++ {
		cached := NewBatchVerifier(len(pairs), keys)
		for i, p := range pairs {
			cached.Add(p.ID(), msgs[i], sigs[i])
		}
		for i, ok := range cached.Verify() {
			if ok != got[i] || keys.Verify(pairs[i].ID(), msgs[i], sigs[i]) != ok {
				t.Errorf("round %d entry %d: through the cache %v, without %v", round, i, ok, got[i])
			}
		}
	}
	for i, ok := range got {
		want := i != 2 && i != 4 && i != 6 && i != 8
		if ok != want {
			t.Errorf("entry %d: valid %v, want %v", i, ok, want)
		}
		if single := VerifyZIP215(pairs[i].ID(), msgs[i], sigs[i]); single != ok {
			t.Errorf("entry %d: batch says %v, VerifyZIP215 %v", i, ok, single)
		}
	}
}

func TestBatchVerifierAllValidAndEmpty(t *testing.T) {
	if got := NewBatchVerifier(0, nil).Verify(); got != nil {
		t.Fatalf("empty batch: %v", got)
	}
	pairs, msgs, sigs := batchFixture(t, 64)
	b := NewBatchVerifier(len(pairs), nil)
	for i, p := range pairs {
		b.Add(p.ID(), msgs[i], sigs[i])
	}
	for i, ok := range b.Verify() {
		if !ok {
			t.Errorf("entry %d refused", i)
		}
	}
}

// FuzzVerifyZIP215AgreesWithStdlib: every signature crypto/ed25519
// accepts, VerifyZIP215 accepts too.
func FuzzVerifyZIP215AgreesWithStdlib(f *testing.F) {
	p, _ := DevPair("//Alice")
	f.Add([]byte("msg"), p.Sign([]byte("msg")))
	f.Fuzz(func(t *testing.T, msg, sig []byte) {
		if len(sig) == ed25519.SignatureSize && ed25519.Verify(p.ID().PublicKey(), msg, sig) && !VerifyZIP215(p.ID(), msg, sig) {
			t.Fatal("crypto/ed25519 accepts a signature VerifyZIP215 refuses")
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	pairs, msgs, sigs := batchFixture(b, 64)
	b.Run("stdlib", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			j := i % 64
			Verify(pairs[j].ID(), msgs[j], sigs[j])
		}
	})
	b.Run("zip215", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			j := i % 64
			VerifyZIP215(pairs[j].ID(), msgs[j], sigs[j])
		}
	})
	b.Run("batch64-cached", func(b *testing.B) {
		keys := NewKeyCache(64)
		for i := 0; i < b.N; i += 64 {
			v := NewBatchVerifier(64, keys)
			for j := range pairs {
				v.Add(pairs[j].ID(), msgs[j], sigs[j])
			}
			v.Verify()
		}
	})
	b.Run("batch64", func(b *testing.B) {
		for i := 0; i < b.N; i += 64 {
			v := NewBatchVerifier(64, nil)
			for j := range pairs {
				v.Add(pairs[j].ID(), msgs[j], sigs[j])
			}
			v.Verify()
		}
	})
}
