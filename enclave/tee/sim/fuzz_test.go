package sim

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// fuzzBackend starts a backend over a fixed executable and host secret in
// a directory of f's, with a fixed clock.
func fuzzBackend(f *testing.F, debug bool) (*Backend, string) {
	dir := f.TempDir()
	exe := filepath.Join(dir, "service")
	if err := os.WriteFile(exe, []byte("fuzzed service build"), 0o700); err != nil {
		f.Fatal(err)
	}
	now := time.UnixMilli(1_700_000_000_123)
	b, err := New(Config{Executable: exe, HostSecretPath: filepath.Join(dir, "secret"), Debug: debug, Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	return b, exe
}

// FuzzQuoteVerification: a quote the backend makes over any report data
// verifies with the backend's verifier to exactly what the backend is (its
// mrenclave and debug mode) and the report data it was given; the same
// quote with any byte changed does not verify.
func FuzzQuoteVerification(f *testing.F) {
	b, _ := fuzzBackend(f, true)
	v := b.Verifier()
	f.Add(make([]byte, 64), uint16(0), byte(1))
	f.Add([]byte("report data shorter than 64 bytes"), uint16(40), byte(0x80))
	f.Add(bytes.Repeat([]byte{0xff}, 80), uint16(200), byte(0xff))
	f.Fuzz(func(t *testing.T, data []byte, pos uint16, mask byte) {
		var rd [64]byte
		copy(rd[:], data)
		q, err := b.Quote(rd)
		if err != nil {
			t.Fatal(err)
		}
		r, err := v.Verify(q)
		if err != nil {
			t.Fatalf("the backend's own quote does not verify: %v", err)
		}
		if r.Method != b.Name() || r.MrEnclave != b.MrEnclave() || r.Debug != b.Debug() || r.ReportData != rd {
			t.Fatalf("report %+v does not state the backend and its report data", r)
		}
		if mask == 0 {
			return
		}
		bad := bytes.Clone(q)
		bad[int(pos)%len(bad)] ^= mask
		if r, err := v.Verify(bad); err == nil {
			t.Fatalf("a quote with byte %d changed verifies: %+v", int(pos)%len(bad), r)
		}
	})
}

// FuzzHostSecretFile: whatever the host secret file holds (the host can
// write it), New either refuses it with ErrBadHostSecret or, for exactly
// HostSecretLen bytes, derives its sealing keys from those bytes, and
// never rewrites the file.
func FuzzHostSecretFile(f *testing.F) {
	_, exe := fuzzBackend(f, false)
	dir := f.TempDir()
	f.Add(bytes.Repeat([]byte{7}, HostSecretLen))
	f.Add(bytes.Repeat([]byte{7}, HostSecretLen+1))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, secret []byte) {
		path := filepath.Join(dir, "secret")
		if err := os.WriteFile(path, secret, 0o600); err != nil {
			t.Fatal(err)
		}
		b, err := New(Config{Executable: exe, HostSecretPath: path})
		if after, rerr := os.ReadFile(path); rerr != nil || !bytes.Equal(after, secret) {
			t.Fatalf("New rewrote the host secret file: %v", rerr)
		}
		if len(secret) != HostSecretLen {
			if !errors.Is(err, ErrBadHostSecret) {
				t.Fatalf("a %d-byte host secret: error %v, want ErrBadHostSecret", len(secret), err)
			}
			return
		}
		if err != nil {
			t.Fatal(err)
		}
		want := &Backend{mrenclave: b.MrEnclave(), hostSecret: [HostSecretLen]byte(secret)}
		got, err1 := b.SealingKey("keys")
		exp, err2 := want.SealingKey("keys")
		if err1 != nil || err2 != nil || got != exp {
			t.Fatal("the sealing key does not derive from the file's bytes")
		}
		if b.MrEnclave() == (attestation.MrEnclave{}) {
			t.Fatal("no measurement")
		}
	})
}
