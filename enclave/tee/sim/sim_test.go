package sim

import (
	"bytes"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// writeFile writes data to a new file in dir and returns its path.
func writeFile(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, data, 0o700); err != nil {
		t.Fatal(err)
	}
	return p
}

// newBackend starts a backend over the given executable and host secret path.
func newBackend(t *testing.T, exe, secret string) *Backend {
	t.Helper()
	b, err := New(Config{Executable: exe, HostSecretPath: secret})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func sealingKey(t *testing.T, b *Backend, label string) [32]byte {
	t.Helper()
	k, err := b.SealingKey(label)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestMrEnclaveIsSHA256OfExecutable(t *testing.T) {
	dir := t.TempDir()
	code := []byte("#!/bin/false\nservice build 1\n")
	b := newBackend(t, writeFile(t, dir, "service", code), filepath.Join(dir, "secret"))

	if want := attestation.MrEnclave(sha256.Sum256(code)); b.MrEnclave() != want {
		t.Fatalf("mrenclave %s, want %s", b.MrEnclave(), want)
	}
	if b.Name() != "sim" {
		t.Fatalf("name %q, want sim", b.Name())
	}
}

func TestAnotherExecutableGetsAnotherMrEnclaveAndSealingKey(t *testing.T) {
	dir := t.TempDir()
	secret := filepath.Join(dir, "secret")
	v1 := newBackend(t, writeFile(t, dir, "v1", []byte("service build 1")), secret)
	v2 := newBackend(t, writeFile(t, dir, "v2", []byte("service build 2")), secret)

	if v1.MrEnclave() == v2.MrEnclave() {
		t.Fatal("two different executables share an mrenclave")
	}
	if sealingKey(t, v1, "keys") == sealingKey(t, v2, "keys") {
		t.Fatal("two different executables share a sealing key")
	}
}

func TestSameInputsGiveTheSameSealingKey(t *testing.T) {
	dir := t.TempDir()
	exe := writeFile(t, dir, "service", []byte("service build 1"))
	secret := filepath.Join(dir, "secret")
	first := newBackend(t, exe, secret)
	restarted := newBackend(t, exe, secret)

	if sealingKey(t, first, "keys") != sealingKey(t, restarted, "keys") {
		t.Fatal("the same executable on the same host derived two different sealing keys")
	}
}

func TestAnotherHostSecretGivesAnotherSealingKey(t *testing.T) {
	dir := t.TempDir()
	exe := writeFile(t, dir, "service", []byte("service build 1"))
	hostA := newBackend(t, exe, filepath.Join(dir, "host-a"))
	hostB := newBackend(t, exe, filepath.Join(dir, "host-b"))

	if hostA.MrEnclave() != hostB.MrEnclave() {
		t.Fatal("the host secret changed the measurement")
	}
	if sealingKey(t, hostA, "keys") == sealingKey(t, hostB, "keys") {
		t.Fatal("two hosts derived the same sealing key")
	}
}

func TestLabelsGiveIndependentKeys(t *testing.T) {
	dir := t.TempDir()
	b := newBackend(t, writeFile(t, dir, "service", []byte("x")), filepath.Join(dir, "secret"))

	if sealingKey(t, b, "keys") == sealingKey(t, b, "state") {
		t.Fatal("two labels share a sealing key")
	}
	if sealingKey(t, b, "") == sealingKey(t, b, "keys") {
		t.Fatal("the empty label shares a sealing key")
	}
}

// The derivation is part of the on-disk format: sealed data of one release
// must unseal in the next build of the same code.
func TestSealingKeyDerivationIsHKDFOverHostSecretAndMrEnclave(t *testing.T) {
	dir := t.TempDir()
	code := []byte("service build 1")
	secret := bytes.Repeat([]byte{0x42}, HostSecretLen)
	b := newBackend(t, writeFile(t, dir, "service", code), writeFile(t, dir, "secret", secret))

	mr := sha256.Sum256(code)
	want, err := hkdf.Key(sha256.New, secret, mr[:], "integritee sim sealing v1:keys", 32)
	if err != nil {
		t.Fatal(err)
	}
	if got := sealingKey(t, b, "keys"); !bytes.Equal(got[:], want) {
		t.Fatalf("sealing key %x, want %x", got, want)
	}
}

func TestHostSecretIsCreatedPrivatelyOnFirstUseAndThenKept(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state", "integritee", "sim-host-secret")
	exe := writeFile(t, t.TempDir(), "service", []byte("x"))
	first := newBackend(t, exe, path)

	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("host secret mode %v, want 0600", fi.Mode().Perm())
	}
	if fi.Size() != HostSecretLen {
		t.Fatalf("host secret of %d bytes, want %d", fi.Size(), HostSecretLen)
	}
	if di, err := os.Stat(filepath.Dir(path)); err != nil || di.Mode().Perm() != 0o700 {
		t.Fatalf("host secret directory: %v, %v; want mode 0700", di.Mode().Perm(), err)
	}
	content, _ := os.ReadFile(path)
	if bytes.Equal(content, make([]byte, HostSecretLen)) {
		t.Fatal("host secret is all zeros")
	}

	second := newBackend(t, exe, path)
	if sealingKey(t, first, "keys") != sealingKey(t, second, "keys") {
		t.Fatal("the host secret was replaced on the second start")
	}
	after, _ := os.ReadFile(path)
	if !bytes.Equal(content, after) {
		t.Fatal("the host secret file changed on the second start")
	}
	leftovers, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".sim-host-secret-*"))
	if len(leftovers) != 0 {
		t.Fatalf("temporary files left behind: %v", leftovers)
	}
}

func TestConcurrentFirstStartsAgreeOnOneHostSecret(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sim-host-secret")
	exe := writeFile(t, t.TempDir(), "service", []byte("x"))

	const n = 8
	keys := make([][32]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			b, err := New(Config{Executable: exe, HostSecretPath: path})
			if err != nil {
				errs[i] = err
				return
			}
			keys[i], errs[i] = b.SealingKey("keys")
		})
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		if keys[i] != keys[0] {
			t.Fatalf("start %d derived another sealing key than start 0", i)
		}
	}
}

func TestMalformedHostSecretIsRefused(t *testing.T) {
	dir := t.TempDir()
	exe := writeFile(t, dir, "service", []byte("x"))
	for _, size := range []int{0, 5, HostSecretLen + 1} {
		secret := writeFile(t, dir, "secret", make([]byte, size))
		_, err := New(Config{Executable: exe, HostSecretPath: secret})
		if !errors.Is(err, ErrBadHostSecret) {
			t.Fatalf("%d-byte host secret: error %v, want ErrBadHostSecret", size, err)
		}
	}
}

func TestHostSecretPathDefaultsToEnvironmentThenHome(t *testing.T) {
	exe := writeFile(t, t.TempDir(), "service", []byte("x"))

	envPath := filepath.Join(t.TempDir(), "from-env")
	t.Setenv(HostSecretEnv, envPath)
	if _, err := New(Config{Executable: exe}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(envPath); err != nil {
		t.Fatalf("host secret not created at $%s: %v", HostSecretEnv, err)
	}

	home := t.TempDir()
	t.Setenv(HostSecretEnv, "")
	t.Setenv("HOME", home)
	if _, err := New(Config{Executable: exe}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(home, ".local", "state", "integritee", "sim-host-secret")); err != nil {
		t.Fatalf("host secret not created under HOME: %v", err)
	}
}

func TestDefaultExecutableIsTheRunningOne(t *testing.T) {
	b, err := New(Config{HostSecretPath: filepath.Join(t.TempDir(), "secret")})
	if err != nil {
		t.Fatal(err)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	want, err := Measure(exe)
	if err != nil {
		t.Fatal(err)
	}
	if b.MrEnclave() != want {
		t.Fatalf("mrenclave %s, want the test binary's %s", b.MrEnclave(), want)
	}
}

func TestMissingExecutableFails(t *testing.T) {
	dir := t.TempDir()
	_, err := New(Config{Executable: filepath.Join(dir, "absent"), HostSecretPath: filepath.Join(dir, "secret")})
	if !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("error %v, want one wrapping fs.ErrNotExist", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "secret")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatal("a failed start created the host secret")
	}
}

func TestQuoteVerifiesWithTheBackendsVerifier(t *testing.T) {
	dir := t.TempDir()
	now := time.UnixMilli(1_700_000_000_000).UTC()
	b, err := New(Config{
		Executable:     writeFile(t, dir, "service", []byte("x")),
		HostSecretPath: filepath.Join(dir, "secret"),
		Debug:          true,
		Now:            func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	var rd [64]byte
	copy(rd[:], "report data")

	q, err := b.Quote(rd)
	if err != nil {
		t.Fatal(err)
	}
	r, err := b.Verifier().Verify(q)
	if err != nil {
		t.Fatal(err)
	}
	if r.Method != b.Name() || b.Verifier().Method() != b.Name() {
		t.Fatalf("method %q / verifier %q, want %q", r.Method, b.Verifier().Method(), b.Name())
	}
	if r.MrEnclave != b.MrEnclave() || !r.Debug || !b.Debug() || r.ReportData != rd || !r.Timestamp.Equal(now) {
		t.Fatalf("report %+v does not state what the backend quoted", r)
	}
}

func TestValidateBasic(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		ok   bool
	}{
		{"zero value", Config{}, true},
		{"explicit paths", Config{Executable: "/usr/bin/integritee-service", HostSecretPath: "/var/lib/integritee/secret"}, true},
		{"blank executable", Config{Executable: "  "}, false},
		{"blank secret path", Config{HostSecretPath: "\t"}, false},
		{"NUL in executable", Config{Executable: "a\x00b"}, false},
		{"NUL in secret path", Config{HostSecretPath: "a\x00b"}, false},
		{"secret path is a directory", Config{HostSecretPath: "/var/lib/integritee/"}, false},
		{"secret is the executable", Config{Executable: "/bin/x", HostSecretPath: "/bin/./x"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.ValidateBasic()
			if tc.ok && err != nil {
				t.Fatalf("unexpected error %v", err)
			}
			if !tc.ok && !errors.Is(err, ErrBadConfig) {
				t.Fatalf("error %v, want ErrBadConfig", err)
			}
			if !tc.ok {
				if _, nerr := New(tc.cfg); !errors.Is(nerr, ErrBadConfig) {
					t.Fatalf("New accepted an invalid config: %v", nerr)
				}
			}
		})
	}
}
