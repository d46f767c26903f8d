package enclave

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/attestation/ratls"
	"github.com/integritee-go/integritee/enclave/keys"
	"github.com/integritee-go/integritee/enclave/tee"
	"github.com/integritee-go/integritee/enclave/tee/sim"
)

// TEEConfig names the trusted execution environment the enclave runs in.
// The enclave opens it itself: the host never holds the backend, its
// sealing keys or any private key made with it.
type TEEConfig struct {
	// Name is the backend: "sim", the simulation TEE, is the one built.
	Name string
	// SimHostSecret is the simulation TEE's per-host secret file (empty:
	// its default).
	SimHostSecret string
	// Debug runs the enclave in debug mode (its quotes say so).
	Debug bool
}

// TEESim is the simulation TEE's name.
const TEESim = "sim"

func openTEE(c TEEConfig) (tee.Backend, error) {
	switch c.Name {
	case TEESim, "":
		return sim.New(sim.Config{HostSecretPath: c.SimHostSecret, Debug: c.Debug})
	}
	return nil, fmt.Errorf("enclave: unknown TEE %q (built: %s)", c.Name, TEESim)
}

// Open opens the TEE c names and starts the enclave in it (New).
func Open(ctx context.Context, c TEEConfig, host Host, cfg Config, log *slog.Logger) (*Enclave, error) {
	b, err := openTEE(c)
	if err != nil {
		return nil, err
	}
	return New(ctx, b, host, cfg, log)
}

// Identity is what the host may know of an enclave: its measurement and
// public keys.
type Identity struct {
	MrEnclave attestation.MrEnclave
	// Signer is the enclave's parentchain account (its signing key).
	Signer account.ID
	// ShieldingKey is the shard's shielding public key.
	ShieldingKey []byte
}

// Inspect opens the TEE and the enclave's sealed keys in store (creating
// them if absent, as New does) and returns only their public parts.
func Inspect(c TEEConfig, store keys.SealedStore) (Identity, error) {
	b, err := openTEE(c)
	if err != nil {
		return Identity{}, err
	}
	k, _, err := keys.LoadOrCreate(b, store)
	if err != nil {
		return Identity{}, fmt.Errorf("enclave: keys: %w", err)
	}
	return Identity{MrEnclave: b.MrEnclave(), Signer: k.Signer().ID(), ShieldingKey: k.ShieldingPublicKey()}, nil
}

// MeasurementOf returns the measurement of the enclave the TEE c names
// would run.
func MeasurementOf(c TEEConfig) (attestation.MrEnclave, error) {
	b, err := openTEE(c)
	if err != nil {
		return attestation.MrEnclave{}, err
	}
	return b.MrEnclave(), nil
}

// DumpRA makes a fresh RA-TLS certificate of the enclave (its key stays
// here) and returns its DER encoding with the verified report.
func DumpRA(c TEEConfig, now time.Time) ([]byte, *attestation.Report, error) {
	b, err := openTEE(c)
	if err != nil {
		return nil, nil, err
	}
	cert, err := ratls.NewCertificate(b, now)
	if err != nil {
		return nil, nil, err
	}
	r, err := ratls.Verify(cert.Certificate[0], ratls.Verifiers(b.Verifier()))
	if err != nil {
		return nil, nil, err
	}
	return cert.Certificate[0], r, nil
}

// QuoteVerifier returns a verifier of quotes of this enclave's TEE kind
// (by any enclave): public, as verifying needs no secret.
func (e *Enclave) QuoteVerifier() attestation.Verifier { return e.backend.Verifier() }
