// Package tee is the enclave's view of the trusted execution environment it
// runs in: its measurement, quotes over report data, sealing keys, and a
// verifier for the quotes of its own kind.
//
// Everything else in the enclave reaches the hardware only through Backend,
// so real backends (Intel TDX, AMD SEV-SNP confidential VMs) plug in here
// without touching the rest. The development backend is enclave/tee/sim.
//
// A Backend hands out sealing keys; nothing outside the enclave's package
// tree may ever hold one.
package tee

import "github.com/integritee-go/integritee/attestation"

// Backend is one trusted execution environment. Implementations are safe for
// concurrent use.
type Backend interface {
	// Name is the attestation method of the backend's quotes, e.g. "sim";
	// it is the Method of its Verifier and of the reports that verifier
	// returns.
	Name() string

	// MrEnclave is the measurement of the running enclave.
	MrEnclave() attestation.MrEnclave

	// Debug reports whether the enclave runs in a debug mode whose memory
	// the host can read. Such an enclave keeps no secret.
	Debug() bool

	// Quote returns a quote over reportData, proving that this enclave (its
	// MrEnclave, in its Debug mode) chose those 64 bytes. By convention the
	// first 32 bytes bind a public key; see package attestation.
	Quote(reportData [64]byte) ([]byte, error)

	// SealingKey returns the 32-byte key for sealing data under label. It is
	// bound to the platform and to the MrEnclave: another machine, or
	// another enclave build on the same machine, derives another key, and
	// the same enclave on the same machine always derives the same key.
	// Distinct labels give independent keys.
	SealingKey(label string) ([32]byte, error)

	// Verifier returns a verifier for quotes of this backend's kind (made
	// by any enclave, not only this one).
	Verifier() attestation.Verifier
}
