// Package sim is the simulation TEE backend, the default for development: it
// lets the whole system run on a machine without a TEE.
//
// It carries NO security whatsoever. The "enclave" is an ordinary process
// whose memory the host can read; its measurement is the SHA-256 of the
// executable file; its quotes are signed with the published simulation
// attestation key (package attestation/sim), which anyone can use; and its
// sealing keys derive from a per-host secret in an ordinary file that any
// process of the same user can read. The parentchain accepts simulated
// quotes only while its security flags allow them.
//
// The measurement and sealing keys still behave like a real TEE's: another
// build of the executable gets another mrenclave and other sealing keys, so
// the system's upgrade and on-boarding paths are exercised for real.
package sim

import (
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/integritee-go/integritee/attestation"
	attsim "github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave/tee"
)

// Method is the backend's attestation method, "sim".
const Method = attsim.Method

// HostSecretEnv names the environment variable that, when set, overrides the
// default host secret path.
const HostSecretEnv = "INTEGRITEE_SIM_HOST_SECRET"

// HostSecretLen is the length of the host secret: the file holds exactly
// this many raw bytes.
const HostSecretLen = 32

// SealingInfoPrefix prefixes the HKDF info of every sealing key; the label
// follows it.
const SealingInfoPrefix = "integritee sim sealing v1:"

// Errors of the simulation backend.
var (
	// ErrBadConfig is returned by Config.ValidateBasic.
	ErrBadConfig = errors.New("tee/sim: invalid config")
	// ErrBadHostSecret is returned when the host secret file exists but
	// does not hold exactly HostSecretLen bytes.
	ErrBadHostSecret = errors.New("tee/sim: malformed host secret file")
)

// Config configures the simulation backend. The zero value is valid and
// measures the running executable with the default host secret.
type Config struct {
	// Executable is the file whose SHA-256 is the mrenclave. Empty means
	// the running executable (on Linux the file the process was started
	// from, even if it has since been replaced on disk).
	Executable string
	// HostSecretPath is the file holding the per-host secret that sealing
	// keys derive from. Empty means DefaultHostSecretPath. The file is
	// created, readable by its owner only, with HostSecretLen random bytes
	// on first use; losing it makes all data sealed on this host
	// unreadable.
	HostSecretPath string
	// Debug is the debug flag the quotes carry.
	Debug bool
	// Now is the clock that timestamps quotes. Nil means time.Now.
	Now func() time.Time
}

// ValidateBasic checks the configuration without touching the file system.
func (c Config) ValidateBasic() error {
	for _, f := range []struct{ name, path string }{
		{"executable", c.Executable},
		{"host secret path", c.HostSecretPath},
	} {
		if f.path == "" {
			continue
		}
		if strings.TrimSpace(f.path) == "" {
			return fmt.Errorf("%w: %s is blank", ErrBadConfig, f.name)
		}
		if strings.ContainsRune(f.path, 0) {
			return fmt.Errorf("%w: %s %q contains a NUL byte", ErrBadConfig, f.name, f.path)
		}
	}
	if c.HostSecretPath != "" && strings.HasSuffix(c.HostSecretPath, string(filepath.Separator)) {
		return fmt.Errorf("%w: host secret path %q names a directory, want a file", ErrBadConfig, c.HostSecretPath)
	}
	if c.Executable != "" && c.HostSecretPath != "" && filepath.Clean(c.Executable) == filepath.Clean(c.HostSecretPath) {
		return fmt.Errorf("%w: host secret path and executable are the same file %q", ErrBadConfig, c.Executable)
	}
	return nil
}

// DefaultHostSecretPath returns $INTEGRITEE_SIM_HOST_SECRET if it is set and
// not empty, else ~/.local/state/integritee/sim-host-secret.
func DefaultHostSecretPath() (string, error) {
	if p := os.Getenv(HostSecretEnv); p != "" {
		return p, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("tee/sim: no host secret path: set %s or HOME: %w", HostSecretEnv, err)
	}
	return filepath.Join(home, ".local", "state", "integritee", "sim-host-secret"), nil
}

// Measure returns the simulated measurement of an executable: the SHA-256 of
// the file's bytes. The host and the CLI may use it to print the mrenclave
// of a build without running it.
func Measure(path string) (attestation.MrEnclave, error) {
	f, err := os.Open(path)
	if err != nil {
		return attestation.MrEnclave{}, fmt.Errorf("tee/sim: measure: %w", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return attestation.MrEnclave{}, fmt.Errorf("tee/sim: measure %s: %w", path, err)
	}
	var m attestation.MrEnclave
	h.Sum(m[:0])
	return m, nil
}

// measureRunning measures the running executable. On Linux /proc/self/exe
// is the very file the process was started from, even after an upgrade
// replaced the path on disk, so the measurement matches the running code.
func measureRunning() (attestation.MrEnclave, error) {
	if runtime.GOOS == "linux" {
		if m, err := Measure("/proc/self/exe"); err == nil {
			return m, nil
		}
	}
	exe, err := os.Executable()
	if err != nil {
		return attestation.MrEnclave{}, fmt.Errorf("tee/sim: locate the running executable: %w", err)
	}
	return Measure(exe)
}

// Backend is the simulation backend. It implements tee.Backend and is safe
// for concurrent use.
type Backend struct {
	mrenclave  attestation.MrEnclave
	debug      bool
	hostSecret [HostSecretLen]byte
	now        func() time.Time
	verifier   *attsim.Verifier
}

var _ tee.Backend = (*Backend)(nil)

// New measures the executable and loads (or creates) the host secret.
func New(cfg Config) (*Backend, error) {
	if err := cfg.ValidateBasic(); err != nil {
		return nil, err
	}
	var (
		mr  attestation.MrEnclave
		err error
	)
	if cfg.Executable == "" {
		mr, err = measureRunning()
	} else {
		mr, err = Measure(cfg.Executable)
	}
	if err != nil {
		return nil, err
	}
	path := cfg.HostSecretPath
	if path == "" {
		if path, err = DefaultHostSecretPath(); err != nil {
			return nil, err
		}
	}
	secret, err := loadOrCreateHostSecret(path)
	if err != nil {
		return nil, err
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	return &Backend{mrenclave: mr, debug: cfg.Debug, hostSecret: secret, now: now, verifier: attsim.NewVerifier()}, nil
}

// Name returns "sim".
func (*Backend) Name() string { return Method }

// MrEnclave returns the SHA-256 of the executable.
func (b *Backend) MrEnclave() attestation.MrEnclave { return b.mrenclave }

// Debug returns the configured debug flag.
func (b *Backend) Debug() bool { return b.debug }

// Quote returns a simulation quote over reportData, timestamped by the
// configured clock. It never fails.
func (b *Backend) Quote(reportData [64]byte) ([]byte, error) {
	return attsim.NewQuote(b.mrenclave, b.debug, reportData, b.now()), nil
}

// SealingKey returns HKDF-SHA256(host secret, salt = mrenclave,
// info = SealingInfoPrefix + label).
func (b *Backend) SealingKey(label string) ([32]byte, error) {
	k, err := hkdf.Key(sha256.New, b.hostSecret[:], b.mrenclave[:], SealingInfoPrefix+label, 32)
	if err != nil {
		return [32]byte{}, fmt.Errorf("tee/sim: sealing key %q: %w", label, err)
	}
	return [32]byte(k), nil
}

// Verifier returns a verifier of simulation quotes.
func (b *Backend) Verifier() attestation.Verifier { return b.verifier }

// loadOrCreateHostSecret reads the host secret at path, creating it with
// fresh random bytes if it does not exist. Creation never clobbers: if two
// processes race, both end up with the secret that reached the path first.
func loadOrCreateHostSecret(path string) ([HostSecretLen]byte, error) {
	s, err := readHostSecret(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return s, err
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return s, fmt.Errorf("tee/sim: create host secret: %w", err)
	}
	rand.Read(s[:]) // never fails (crypto/rand crashes the program instead)

	// Write the whole secret to a private temporary file, then link it into
	// place: the path appears complete or not at all, and an existing file
	// wins.
	tmp, err := os.CreateTemp(dir, ".sim-host-secret-*") // mode 0600
	if err != nil {
		return s, fmt.Errorf("tee/sim: create host secret: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, werr := tmp.Write(s[:])
	if werr == nil {
		werr = tmp.Sync()
	}
	if cerr := tmp.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return s, fmt.Errorf("tee/sim: create host secret: %w", werr)
	}
	err = os.Link(tmp.Name(), path)
	switch {
	case err == nil:
		syncDir(dir)
		return s, nil
	case errors.Is(err, fs.ErrExist):
		return readHostSecret(path) // another process was first
	}
	// The file system has no hard links: fall back to an exclusive create.
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return readHostSecret(path)
	}
	if err != nil {
		return s, fmt.Errorf("tee/sim: create host secret: %w", err)
	}
	_, werr = f.Write(s[:])
	if werr == nil {
		werr = f.Sync()
	}
	if cerr := f.Close(); werr == nil {
		werr = cerr
	}
	if werr != nil {
		return s, fmt.Errorf("tee/sim: create host secret %s: %w", path, werr)
	}
	syncDir(dir)
	return s, nil
}

func readHostSecret(path string) ([HostSecretLen]byte, error) {
	var s [HostSecretLen]byte
	b, err := os.ReadFile(path)
	if err != nil {
		return s, fmt.Errorf("tee/sim: read host secret: %w", err)
	}
	if len(b) != HostSecretLen {
		return s, fmt.Errorf("%w: %s holds %d bytes, want %d (removing it makes everything sealed on this host unreadable)",
			ErrBadHostSecret, path, len(b), HostSecretLen)
	}
	copy(s[:], b)
	return s, nil
}

// syncDir makes a new directory entry durable, where the platform allows.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync() // best effort: not every platform syncs directories
		d.Close()
	}
}
