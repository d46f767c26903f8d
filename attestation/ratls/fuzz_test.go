package ratls

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/integritee-go/integritee/account"
	"github.com/integritee-go/integritee/attestation"
	attsim "github.com/integritee-go/integritee/attestation/sim"
)

// certFixture makes RA-TLS certificates deterministically (ed25519 keys
// from fixed seeds, fixed serials and times), so that the committed corpus
// holds the very certificates the fixture knows to be genuine.
type certFixture struct {
	mr      attestation.MrEnclave
	keys    []ed25519.PrivateKey
	genuine map[[64]byte]bool // report data of every quote the fixture made
}

func newCertFixture() *certFixture {
	x := &certFixture{mr: sha256.Sum256([]byte("fuzzed enclave")), genuine: map[[64]byte]bool{}}
	for _, s := range []string{"key one", "key two"} {
		seed := sha256.Sum256([]byte(s))
		x.keys = append(x.keys, ed25519.NewKeyFromSeed(seed[:]))
	}
	return x
}

func (x *certFixture) spki(k ed25519.PrivateKey) []byte {
	b, err := x509.MarshalPKIXPublicKey(k.Public())
	if err != nil {
		panic(err)
	}
	return b
}

// quote returns a genuine simulation quote binding k's key to holder.
func (x *certFixture) quote(k ed25519.PrivateKey, holder account.ID) []byte {
	rd := ReportData(x.spki(k), holder)
	x.genuine[rd] = true
	return attsim.NewQuote(x.mr, false, rd, now)
}

func (x *certFixture) ext(k ed25519.PrivateKey, holder account.ID) []byte {
	return canonical.MustMarshal(evidence{Method: attsim.Method, Quote: x.quote(k, holder)})
}

// cert returns a certificate for k carrying ext (none if nil).
func (x *certFixture) cert(k ed25519.PrivateKey, ext []byte) []byte {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7),
		Subject:      pkix.Name{CommonName: "fuzzed enclave"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(Validity),
	}
	if ext != nil {
		tmpl.ExtraExtensions = []pkix.Extension{{Id: oid, Value: ext}}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, k.Public(), k)
	if err != nil {
		panic(err)
	}
	return der
}

// certSeeds are genuine certificates (with and without a holder) and the
// classic forgeries: a quote lifted into another key's certificate, no
// extension, an unknown method.
func (x *certFixture) certSeeds() [][]byte {
	k1, k2 := x.keys[0], x.keys[1]
	holder := account.ID{7, 7, 7}
	return [][]byte{
		x.cert(k1, x.ext(k1, account.ID{})),
		x.cert(k2, x.ext(k2, holder)),
		x.cert(k2, x.ext(k1, holder)),
		x.cert(k1, nil),
		x.cert(k1, canonical.MustMarshal(evidence{Method: "tdx", Quote: x.quote(k1, account.ID{})})),
	}
}

// extSeeds are attestation extension values for a certificate of keys[0].
func (x *certFixture) extSeeds() [][]byte {
	k1, k2 := x.keys[0], x.keys[1]
	return [][]byte{
		x.ext(k1, account.ID{}),
		x.ext(k1, account.ID{1, 2, 3}),
		x.ext(k2, account.ID{}),
		canonical.MustMarshal(evidence{Method: attsim.Method, Quote: []byte("quote")}),
		{0xa0},
	}
}

// checkVerdict is both targets' property: Verify refuses with exactly one
// of its named errors, or accepts a certificate whose key a genuine quote
// binds, and only then.
func (x *certFixture) checkVerdict(t *testing.T, der []byte, r *attestation.Report, err error) {
	t.Helper()
	if err != nil {
		if r != nil {
			t.Fatal("Verify returned a report with its error")
		}
		n := 0
		for _, e := range []error{ErrBadCertificate, ErrNoAttestation, ErrMalformedAttestation, ErrUnknownMethod, ErrQuoteRejected, ErrKeyNotBound} {
			if errors.Is(err, e) {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("error %v wraps %d of Verify's errors, want exactly one", err, n)
		}
		return
	}
	if !x.genuine[r.ReportData] {
		t.Fatalf("Verify accepted report data %x that no genuine quote carries", r.ReportData)
	}
	cert, perr := x509.ParseCertificate(der)
	if perr != nil {
		t.Fatalf("Verify accepted bytes that do not parse: %v", perr)
	}
	if h := sha256.Sum256(cert.RawSubjectPublicKeyInfo); [32]byte(r.ReportData[:32]) != h {
		t.Fatal("Verify accepted a certificate whose key the quote does not bind")
	}
	if r.MrEnclave != x.mr || r.Method != attsim.Method {
		t.Fatalf("report %+v is not the fixture enclave's", r)
	}
}

// FuzzVerifyCertificate: whatever DER a TLS peer presents, Verify never
// panics and accepts it only if a genuine quote binds the certificate's
// key: no mutation of the key or of the attestation gets through.
func FuzzVerifyCertificate(f *testing.F) {
	x := newCertFixture()
	for _, der := range x.certSeeds() {
		f.Add(der)
	}
	f.Add([]byte{0x30, 0x03, 0x02, 0x01, 0x01})
	verifiers := Verifiers(attsim.NewVerifier())
	f.Fuzz(func(t *testing.T, der []byte) {
		r, err := Verify(der, verifiers)
		x.checkVerdict(t, der, r, err)
	})
}

// FuzzVerifyAttestationExtension: a certificate of a fixed key carrying
// any extension value (the CBOR evidence and the quote in it) verifies only
// if the value holds a genuine quote binding that very key.
func FuzzVerifyAttestationExtension(f *testing.F) {
	x := newCertFixture()
	for _, ext := range x.extSeeds() {
		f.Add(ext)
	}
	verifiers := Verifiers(attsim.NewVerifier())
	k := x.keys[0]
	f.Fuzz(func(t *testing.T, ext []byte) {
		if ext == nil {
			ext = []byte{} // nil would mean no extension at all
		}
		der := x.cert(k, ext)
		r, err := Verify(der, verifiers)
		x.checkVerdict(t, der, r, err)
	})
}
