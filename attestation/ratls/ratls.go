// Package ratls makes and checks RA-TLS certificates: self-signed TLS
// certificates that carry a quote of the enclave binding the certificate's
// public key. A TLS peer that completes the handshake proves it holds the
// certificate's private key; the quote proves that key was made inside an
// enclave with the quoted measurement. The certificate's CA chain and names
// mean nothing here: clients trust the attestation, never a CA.
//
// The attestation travels in a non-critical X.509 extension, OID
// 1.3.6.1.4.1.99999.1.1 (an arc under 1.3.6.1.4.1.99999.1, kept for
// Integritee-Go RA-TLS). Its value (the extnValue OCTET STRING's content)
// is canonical CBOR (RFC 8949 §4.2.1 core deterministic encoding), a map
//
//	{1: method (text, e.g. "sim"), 2: quote (bytes)}
//
// and the quote's 64 bytes of report data are SHA-256 of the certificate's
// DER-encoded SubjectPublicKeyInfo followed by the account of the enclave
// holding the key (its signing key; 32 zero bytes for none).
//
// The CLI uses it to check the worker's trusted RPC port against the
// parentchain registry; validateers use it for mutual remote attestation.
// The package holds only the fresh TLS keys it makes, no enclave secret.
package ratls

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"errors"
	"fmt"
	"math/big"
	"net"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	"github.com/integritee-go/integritee/codec"
)

// OID is the object identifier of the attestation extension.
const OID = "1.3.6.1.4.1.99999.1.1"

// Validity is how long a certificate from NewCertificate is valid; it is
// also valid from an hour before its creation, for clock skew. Verify does
// not check validity: a quote's freshness is the caller's policy (see
// attestation.Report.Timestamp).
const Validity = 30 * 24 * time.Hour

// MaxExtensionSize bounds the attestation extension's value.
const MaxExtensionSize = 64 << 10

// Errors of Verify and of the TLS configurations. Verify's errors wrap
// exactly one of the first six.
var (
	// ErrBadCertificate is returned for bytes that are not an X.509
	// certificate.
	ErrBadCertificate = errors.New("ratls: not a certificate")
	// ErrNoAttestation is returned for a certificate without the
	// attestation extension, such as a plain self-signed one.
	ErrNoAttestation = errors.New("ratls: certificate carries no attestation")
	// ErrMalformedAttestation is returned when the attestation extension
	// does not decode.
	ErrMalformedAttestation = errors.New("ratls: malformed attestation extension")
	// ErrUnknownMethod is returned for an attestation method the caller has
	// no verifier for.
	ErrUnknownMethod = errors.New("ratls: unknown attestation method")
	// ErrQuoteRejected is returned when the method's verifier rejects the
	// quote; the verifier's error is wrapped too.
	ErrQuoteRejected = errors.New("ratls: quote does not verify")
	// ErrKeyNotBound is returned when the quote's report data does not bind
	// the certificate's public key: the quote was lifted from another
	// certificate.
	ErrKeyNotBound = errors.New("ratls: quote does not bind the certificate's key")
	// ErrNoPeerCertificate is returned when the TLS peer presented no
	// certificate.
	ErrNoPeerCertificate = errors.New("ratls: peer presented no certificate")
	// ErrRefused is returned when the caller's check refuses an attested
	// peer; the check's error is wrapped too.
	ErrRefused = errors.New("ratls: attested peer refused")
)

var (
	oid       = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 99999, 1, 1}
	canonical = codec.New()
)

// evidence is the attestation extension's value.
type evidence struct {
	Method string `cbor:"1,keyasint"`
	Quote  []byte `cbor:"2,keyasint"`
}

// ReportData returns the report data that binds a public key, given as a
// DER-encoded SubjectPublicKeyInfo, to the enclave account holder: the
// key's SHA-256 followed by the account (32 zero bytes for none).
func ReportData(spki []byte, holder account.ID) [64]byte {
	var rd [64]byte
	h := sha256.Sum256(spki)
	copy(rd[:], h[:])
	copy(rd[32:], holder[:])
	return rd
}

// Holder returns the enclave account a verified certificate's quote names
// beside the key (zero if none): the enclave attests that the TLS key is
// held by the enclave whose signing key is this account.
func Holder(r *attestation.Report) account.ID {
	var id account.ID
	copy(id[:], r.ReportData[32:])
	return id
}

// Quoter is what makes a certificate's quote: an enclave's TEE (the
// enclave's tee.Backend is one). Declared here so that clients, which only
// verify, import nothing of the enclave.
type Quoter interface {
	// Name is the attestation method of the quotes.
	Name() string
	// MrEnclave is the quoted measurement.
	MrEnclave() attestation.MrEnclave
	// Quote returns a quote over the report data.
	Quote(reportData [64]byte) ([]byte, error)
}

// NewCertificate makes a fresh ECDSA P-256 TLS key and a self-signed
// certificate for it, valid from now-1h to now+Validity, carrying a quote of
// b that binds the key (and no account). The certificate names "localhost"
// and 127.0.0.1, for tools that insist on names; RA-TLS clients ignore them.
func NewCertificate(b Quoter, now time.Time) (tls.Certificate, error) {
	return NewBoundCertificate(b, account.ID{}, now)
}

// NewBoundCertificate is NewCertificate whose quote also names holder, the
// enclave's own account (its signing key), so that a peer can tie the TLS
// key to the enclave's registration on the parentchain.
func NewBoundCertificate(b Quoter, holder account.ID, now time.Time) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: generate key: %w", err)
	}
	spki, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: encode public key: %w", err)
	}
	quote, err := b.Quote(ReportData(spki, holder))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: quote: %w", err)
	}
	ext, err := canonical.Marshal(evidence{Method: b.Name(), Quote: quote})
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: encode attestation: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: serial number: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "integritee enclave " + b.MrEnclave().String()},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(Validity),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
		DNSNames:              []string{"localhost"},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		ExtraExtensions:       []pkix.Extension{{Id: oid, Critical: false, Value: ext}},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: create certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("ratls: parse own certificate: %w", err)
	}
	if !bytes.Equal(leaf.RawSubjectPublicKeyInfo, spki) {
		// The quote must bind the key exactly as the certificate encodes it.
		return tls.Certificate{}, errors.New("ratls: certificate encodes the public key differently from the quoted encoding")
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Verifiers returns a verifier map for Verify, keyed by each verifier's
// Method.
func Verifiers(vs ...attestation.Verifier) map[string]attestation.Verifier {
	m := make(map[string]attestation.Verifier, len(vs))
	for _, v := range vs {
		m[v.Method()] = v
	}
	return m
}

// Verify checks an RA-TLS certificate (DER): it finds the attestation
// extension, verifies the quote with the verifier of its method, and checks
// that the quote binds the certificate's public key. It returns what the
// quote attests; whether that enclave is acceptable (its mrenclave, debug
// mode, quote age) is the caller's policy.
//
// Verify does not check the certificate's signature or validity period: in
// a TLS handshake the peer proves it holds the certificate's key, and the
// quote proves where that key lives, which is all the trust there is.
func Verify(rawCert []byte, verifiers map[string]attestation.Verifier) (*attestation.Report, error) {
	cert, err := x509.ParseCertificate(rawCert)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCertificate, err)
	}
	var value []byte
	found := false
	for _, e := range cert.Extensions {
		if e.Id.Equal(oid) {
			value, found = e.Value, true
			break
		}
	}
	if !found {
		return nil, fmt.Errorf("%w: no extension %s in certificate %q", ErrNoAttestation, OID, cert.Subject.CommonName)
	}
	if len(value) > MaxExtensionSize {
		return nil, fmt.Errorf("%w: %d bytes, max %d", ErrMalformedAttestation, len(value), MaxExtensionSize)
	}
	var ev evidence
	if err := canonical.Unmarshal(value, &ev); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMalformedAttestation, err)
	}
	v := verifiers[ev.Method]
	if v == nil {
		return nil, fmt.Errorf("%w: %q", ErrUnknownMethod, ev.Method)
	}
	report, err := v.Verify(ev.Quote)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrQuoteRejected, ev.Method, err)
	}
	if want := ReportData(cert.RawSubjectPublicKeyInfo, Holder(report)); report.ReportData != want {
		return nil, fmt.Errorf("%w: report data %x, want %x", ErrKeyNotBound, report.ReportData[:32], want[:32])
	}
	return report, nil
}

// verifyPeer is the handshake's check of the peer's leaf certificate.
func verifyPeer(cs tls.ConnectionState, verifiers map[string]attestation.Verifier, check func(*attestation.Report) error) error {
	if len(cs.PeerCertificates) == 0 {
		return ErrNoPeerCertificate
	}
	report, err := Verify(cs.PeerCertificates[0].Raw, verifiers)
	if err != nil {
		return err
	}
	if check != nil {
		if err := check(report); err != nil {
			return fmt.Errorf("%w: mrenclave %s: %w", ErrRefused, report.MrEnclave, err)
		}
	}
	return nil
}

// ClientConfig returns a TLS 1.3 client configuration that accepts a server
// only if its certificate passes Verify with verifiers and then check (for
// example: "the mrenclave is the one registered on the parentchain for this
// shard"). A nil check accepts any attested enclave, including any
// simulated one, which anybody can fake: callers should always check.
//
// CA verification is switched off (InsecureSkipVerify), as the certificate
// is self-signed and its names mean nothing; the attestation replaces it.
// The check runs on every connection (VerifyConnection), and the client
// keeps no session cache, so no connection escapes it. For mutual
// attestation, set the returned config's Certificates to the client's own
// RA-TLS certificate.
func ClientConfig(verifiers map[string]attestation.Verifier, check func(*attestation.Report) error) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // the attestation, checked below, replaces the CA chain
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs, verifiers, check)
		},
	}
}

// ServerConfig returns a TLS 1.3 server configuration presenting cert,
// typically one from NewCertificate.
func ServerConfig(cert tls.Certificate) *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
	}
}

// MutualServerConfig returns a TLS 1.3 server configuration for mutual
// remote attestation: it presents cert and accepts a client only if the
// client's certificate passes Verify with verifiers and then check (for
// validateers: "the peer runs my mrenclave"). Session resumption is off, so
// every connection proves the client's key afresh.
func MutualServerConfig(cert tls.Certificate, verifiers map[string]attestation.Verifier, check func(*attestation.Report) error) *tls.Config {
	return &tls.Config{
		MinVersion:             tls.VersionTLS13,
		Certificates:           []tls.Certificate{cert},
		ClientAuth:             tls.RequireAnyClientCert, // the attestation, checked below, replaces the CA chain
		SessionTicketsDisabled: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			return verifyPeer(cs, verifiers, check)
		},
	}
}
