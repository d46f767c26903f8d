package ratls

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"github.com/integritee-go/integritee/account"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
	attsim "github.com/integritee-go/integritee/attestation/sim"
	"github.com/integritee-go/integritee/enclave/tee/sim"
)

var now = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// newEnclave starts a simulated enclave whose executable holds code.
func newEnclave(t *testing.T, code string) *sim.Backend {
	t.Helper()
	dir := t.TempDir()
	exe := filepath.Join(dir, "service")
	if err := os.WriteFile(exe, []byte(code), 0o700); err != nil {
		t.Fatal(err)
	}
	b, err := sim.New(simConfig(exe, filepath.Join(dir, "secret")))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// simConfig returns a sim config with a fixed clock.
func simConfig(exe, secret string) sim.Config {
	return sim.Config{Executable: exe, HostSecretPath: secret, Now: func() time.Time { return now }}
}

func newCert(t *testing.T, b *sim.Backend) tls.Certificate {
	t.Helper()
	c, err := NewCertificate(b, now)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func simVerifiers() map[string]attestation.Verifier { return Verifiers(attsim.NewVerifier()) }

// certWith makes a self-signed certificate for key carrying ext as the
// attestation extension's value (none if ext is nil), the way an attacker
// or a careless tool would.
func certWith(t *testing.T, key *ecdsa.PrivateKey, ext []byte) tls.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "not an enclave"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(time.Hour),
	}
	if ext != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oid, Value: ext}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func spki(t *testing.T, k *ecdsa.PrivateKey) []byte {
	t.Helper()
	b, err := x509.MarshalPKIXPublicKey(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// handshake runs a TLS handshake over loopback TCP and returns both sides'
// errors. After a successful client handshake the client reads once, so a
// server that refuses the client (which TLS 1.3 reports only after the
// client's handshake is done) is seen as a client error too.
func handshake(t *testing.T, server, client *tls.Config) (serverErr, clientErr error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)
	serverDone := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			serverDone <- err
			return
		}
		defer c.Close()
		c.SetDeadline(deadline)
		s := tls.Server(c, server)
		if err := s.Handshake(); err != nil {
			serverDone <- err
			return
		}
		_, err = s.Write([]byte("hello"))
		serverDone <- err
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	cl := tls.Client(c, client)
	clientErr = cl.Handshake()
	if clientErr == nil {
		buf := make([]byte, 5)
		if _, err := io.ReadFull(cl, buf); err != nil {
			clientErr = err
		}
	}
	cl.Close()
	return <-serverDone, clientErr
}

func TestAttestedHandshakeSucceeds(t *testing.T) {
	enclave := newEnclave(t, "service build 1")
	var seen *attestation.Report
	client := ClientConfig(simVerifiers(), func(r *attestation.Report) error {
		seen = r
		return nil
	})

	serverErr, clientErr := handshake(t, ServerConfig(newCert(t, enclave)), client)

	if serverErr != nil || clientErr != nil {
		t.Fatalf("server: %v; client: %v", serverErr, clientErr)
	}
	if seen == nil || seen.MrEnclave != enclave.MrEnclave() || seen.Method != "sim" || !seen.Timestamp.Equal(now) {
		t.Fatalf("the check saw %+v, want the server enclave's report", seen)
	}
}

func TestCheckRefusalFailsTheHandshake(t *testing.T) {
	server := newEnclave(t, "service build 1")
	registered := newEnclave(t, "service build 2").MrEnclave()
	errNotRegistered := errors.New("mrenclave not registered on the parentchain")
	client := ClientConfig(simVerifiers(), func(r *attestation.Report) error {
		if r.MrEnclave != registered {
			return errNotRegistered
		}
		return nil
	})

	serverErr, clientErr := handshake(t, ServerConfig(newCert(t, server)), client)

	if !errors.Is(clientErr, ErrRefused) || !errors.Is(clientErr, errNotRegistered) {
		t.Fatalf("client error %v, want ErrRefused wrapping the check's error", clientErr)
	}
	if serverErr == nil {
		t.Fatal("the server completed a handshake the client refused")
	}
}

func TestPlainSelfSignedCertificateFailsWithNoAttestation(t *testing.T) {
	plain := certWith(t, newKey(t), nil)

	if _, err := Verify(plain.Certificate[0], simVerifiers()); !errors.Is(err, ErrNoAttestation) {
		t.Fatalf("Verify: error %v, want ErrNoAttestation", err)
	}
	_, clientErr := handshake(t, ServerConfig(plain), ClientConfig(simVerifiers(), nil))
	if !errors.Is(clientErr, ErrNoAttestation) {
		t.Fatalf("handshake: client error %v, want ErrNoAttestation", clientErr)
	}
}

// An attacker puts a genuine enclave quote, which binds the enclave's TLS
// key, into a certificate for its own key.
func TestQuoteLiftedIntoAnotherCertificateFailsWithKeyNotBound(t *testing.T) {
	enclave := newEnclave(t, "service build 1")
	genuine := newCert(t, enclave)
	var ext []byte
	for _, e := range genuine.Leaf.Extensions {
		if e.Id.Equal(oid) {
			ext = e.Value
		}
	}
	forged := certWith(t, newKey(t), ext)

	if _, err := Verify(forged.Certificate[0], simVerifiers()); !errors.Is(err, ErrKeyNotBound) {
		t.Fatalf("Verify: error %v, want ErrKeyNotBound", err)
	}
	_, clientErr := handshake(t, ServerConfig(forged), ClientConfig(simVerifiers(), nil))
	if !errors.Is(clientErr, ErrKeyNotBound) {
		t.Fatalf("handshake: client error %v, want ErrKeyNotBound", clientErr)
	}
}

func TestReportDataIsTheKeyHashFollowedByTheHolder(t *testing.T) {
	key := newKey(t)
	mr := newEnclave(t, "x").MrEnclave()
	holder := account.ID{7, 7, 7}
	good := ReportData(spki(t, key), holder)
	none := ReportData(spki(t, key), account.ID{})
	var flipped [64]byte = good
	flipped[0] ^= 1

	for name, tc := range map[string]struct {
		rd     [64]byte
		holder account.ID
		want   error
	}{
		"binding with a holder":    {good, holder, nil},
		"binding without a holder": {none, account.ID{}, nil},
		"key hash changed":         {flipped, holder, ErrKeyNotBound},
		"all zeros":                {[64]byte{}, account.ID{}, ErrKeyNotBound},
		"another key's hash":       {ReportData(spki(t, newKey(t)), holder), holder, ErrKeyNotBound},
	} {
		t.Run(name, func(t *testing.T) {
			ext := canonical.MustMarshal(evidence{Method: "sim", Quote: attsim.NewQuote(mr, false, tc.rd, now)})
			r, err := Verify(certWith(t, key, ext).Certificate[0], simVerifiers())
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
			if err == nil && Holder(r) != tc.holder {
				t.Fatalf("holder %s, want %s", Holder(r), tc.holder)
			}
		})
	}
}

func TestVerifyRejectsUnusableAttestations(t *testing.T) {
	key := newKey(t)
	rd := ReportData(spki(t, key), account.ID{})
	mr := newEnclave(t, "x").MrEnclave()
	quote := attsim.NewQuote(mr, false, rd, now)
	tampered := append([]byte(nil), quote...)
	tampered[len(tampered)-1] ^= 1
	type extra struct {
		Method string `cbor:"1,keyasint"`
		Quote  []byte `cbor:"2,keyasint"`
		More   int    `cbor:"3,keyasint"`
	}

	for name, tc := range map[string]struct {
		ext  []byte
		want []error
	}{
		"unknown method":     {canonical.MustMarshal(evidence{Method: "tdx", Quote: quote}), []error{ErrUnknownMethod}},
		"empty method":       {canonical.MustMarshal(evidence{Quote: quote}), []error{ErrUnknownMethod}},
		"garbage quote":      {canonical.MustMarshal(evidence{Method: "sim", Quote: []byte("quote")}), []error{ErrQuoteRejected, attestation.ErrBadQuote}},
		"bad signature":      {canonical.MustMarshal(evidence{Method: "sim", Quote: tampered}), []error{ErrQuoteRejected, attestation.ErrBadSignature}},
		"not CBOR":           {[]byte("quote"), []error{ErrMalformedAttestation}},
		"empty":              {[]byte{}, []error{ErrMalformedAttestation}},
		"unknown field":      {canonical.MustMarshal(extra{Method: "sim", Quote: quote, More: 1}), []error{ErrMalformedAttestation}},
		"not canonical":      {append([]byte{0xb9, 0x00, 0x02}, canonical.MustMarshal(evidence{Method: "sim", Quote: quote})[1:]...), []error{ErrMalformedAttestation}},
		"oversized":          {make([]byte, MaxExtensionSize+1), []error{ErrMalformedAttestation}},
		"method as a number": {canonical.MustMarshal(map[int]any{1: 7, 2: quote}), []error{ErrMalformedAttestation}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Verify(certWith(t, key, tc.ext).Certificate[0], simVerifiers())
			for _, want := range tc.want {
				if !errors.Is(err, want) {
					t.Fatalf("error %v, want %v", err, want)
				}
			}
		})
	}
}

func TestVerifyRejectsNonCertificates(t *testing.T) {
	for _, b := range [][]byte{nil, []byte("certificate"), {0x30, 0x03, 0x02, 0x01, 0x01}} {
		if _, err := Verify(b, simVerifiers()); !errors.Is(err, ErrBadCertificate) {
			t.Fatalf("%x: error %v, want ErrBadCertificate", b, err)
		}
	}
}

func TestVerifyWithoutVerifiersKnowsNoMethod(t *testing.T) {
	c := newCert(t, newEnclave(t, "x"))
	if _, err := Verify(c.Certificate[0], nil); !errors.Is(err, ErrUnknownMethod) {
		t.Fatalf("error %v, want ErrUnknownMethod", err)
	}
}

func TestNewCertificateShape(t *testing.T) {
	enclave := newEnclave(t, "service build 1")
	c := newCert(t, enclave)
	leaf, err := x509.ParseCertificate(c.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}

	if !leaf.NotBefore.Equal(now.Add(-time.Hour)) || !leaf.NotAfter.Equal(now.Add(30*24*time.Hour)) {
		t.Fatalf("valid %v..%v, want now-1h..now+30d", leaf.NotBefore, leaf.NotAfter)
	}
	pub, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P256() {
		t.Fatalf("public key %T, want ECDSA P-256", leaf.PublicKey)
	}
	if priv, ok := c.PrivateKey.(*ecdsa.PrivateKey); !ok || !priv.PublicKey.Equal(pub) {
		t.Fatal("the private key does not match the certificate")
	}
	if err := leaf.CheckSignature(leaf.SignatureAlgorithm, leaf.RawTBSCertificate, leaf.Signature); err != nil {
		t.Fatalf("not self-signed: %v", err)
	}
	var ext *pkix.Extension
	for i, e := range leaf.Extensions {
		if e.Id.String() == OID {
			ext = &leaf.Extensions[i]
		}
	}
	if ext == nil || ext.Critical {
		t.Fatalf("extension %s: %+v, want present and non-critical", OID, ext)
	}
	// The value is the canonical CBOR map {1: method, 2: quote}.
	var m map[uint64]any
	if err := canonical.Unmarshal(ext.Value, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != 2 || m[1] != "sim" {
		t.Fatalf("extension value %v, want {1: \"sim\", 2: quote}", m)
	}
	quote, _ := m[2].([]byte)
	r, err := attsim.NewVerifier().Verify(quote)
	if err != nil {
		t.Fatal(err)
	}
	if r.ReportData != ReportData(leaf.RawSubjectPublicKeyInfo, account.ID{}) || r.MrEnclave != enclave.MrEnclave() {
		t.Fatalf("quote %+v does not bind the certificate's key", r)
	}

	report, err := Verify(c.Certificate[0], simVerifiers())
	if err != nil {
		t.Fatal(err)
	}
	if report.MrEnclave != enclave.MrEnclave() {
		t.Fatalf("Verify reported mrenclave %s, want %s", report.MrEnclave, enclave.MrEnclave())
	}
}

func TestEachCertificateHasAFreshKey(t *testing.T) {
	enclave := newEnclave(t, "x")
	a, b := newCert(t, enclave), newCert(t, enclave)
	if string(a.Leaf.RawSubjectPublicKeyInfo) == string(b.Leaf.RawSubjectPublicKeyInfo) {
		t.Fatal("two certificates share a key")
	}
}

type failingBackend struct{ *sim.Backend }

var errNoQuote = errors.New("quoting enclave unavailable")

func (failingBackend) Quote([64]byte) ([]byte, error) { return nil, errNoQuote }

func TestNewCertificateFailsWithoutAQuote(t *testing.T) {
	if _, err := NewCertificate(failingBackend{newEnclave(t, "x")}, now); !errors.Is(err, errNoQuote) {
		t.Fatalf("error %v, want the backend's quote error", err)
	}
}

func TestServerRequiresTLS13(t *testing.T) {
	client := ClientConfig(simVerifiers(), nil)
	client.MinVersion, client.MaxVersion = tls.VersionTLS12, tls.VersionTLS12

	serverErr, clientErr := handshake(t, ServerConfig(newCert(t, newEnclave(t, "x"))), client)

	if serverErr == nil || clientErr == nil {
		t.Fatalf("a TLS 1.2 handshake succeeded (server %v, client %v)", serverErr, clientErr)
	}
}

func TestMutualAttestation(t *testing.T) {
	peerA := newEnclave(t, "service build 1")
	peerB := newEnclave(t, "service build 1") // same build, another instance
	sameBuild := func(mine attestation.MrEnclave, seen **attestation.Report) func(*attestation.Report) error {
		return func(r *attestation.Report) error {
			*seen = r
			if r.MrEnclave != mine {
				return errors.New("peer runs another mrenclave")
			}
			return nil
		}
	}

	t.Run("both attested", func(t *testing.T) {
		var serverSaw, clientSaw *attestation.Report
		clientCert := newCert(t, peerB)
		server := MutualServerConfig(newCert(t, peerA), simVerifiers(), sameBuild(peerA.MrEnclave(), &serverSaw))
		client := ClientConfig(simVerifiers(), sameBuild(peerB.MrEnclave(), &clientSaw))
		client.Certificates = []tls.Certificate{clientCert}

		serverErr, clientErr := handshake(t, server, client)

		if serverErr != nil || clientErr != nil {
			t.Fatalf("server: %v; client: %v", serverErr, clientErr)
		}
		if serverSaw == nil || serverSaw.ReportData != ReportData(clientCert.Leaf.RawSubjectPublicKeyInfo, account.ID{}) {
			t.Fatal("the server did not verify the client's certificate")
		}
		if clientSaw == nil {
			t.Fatal("the client did not verify the server's certificate")
		}
	})

	t.Run("client without a certificate", func(t *testing.T) {
		var serverSaw *attestation.Report
		server := MutualServerConfig(newCert(t, peerA), simVerifiers(), sameBuild(peerA.MrEnclave(), &serverSaw))

		serverErr, clientErr := handshake(t, server, ClientConfig(simVerifiers(), nil))

		if serverErr == nil || clientErr == nil {
			t.Fatalf("server %v, client %v: want both to fail", serverErr, clientErr)
		}
	})

	t.Run("client with a plain certificate", func(t *testing.T) {
		var serverSaw *attestation.Report
		server := MutualServerConfig(newCert(t, peerA), simVerifiers(), sameBuild(peerA.MrEnclave(), &serverSaw))
		client := ClientConfig(simVerifiers(), nil)
		client.Certificates = []tls.Certificate{certWith(t, newKey(t), nil)}

		serverErr, clientErr := handshake(t, server, client)

		if !errors.Is(serverErr, ErrNoAttestation) || clientErr == nil {
			t.Fatalf("server %v, client %v: want ErrNoAttestation on the server, failure on the client", serverErr, clientErr)
		}
	})

	t.Run("client of another build", func(t *testing.T) {
		var serverSaw *attestation.Report
		server := MutualServerConfig(newCert(t, peerA), simVerifiers(), sameBuild(peerA.MrEnclave(), &serverSaw))
		client := ClientConfig(simVerifiers(), nil)
		client.Certificates = []tls.Certificate{newCert(t, newEnclave(t, "service build 2"))}

		serverErr, clientErr := handshake(t, server, client)

		if !errors.Is(serverErr, ErrRefused) || clientErr == nil {
			t.Fatalf("server %v, client %v: want ErrRefused on the server, failure on the client", serverErr, clientErr)
		}
	})
}
