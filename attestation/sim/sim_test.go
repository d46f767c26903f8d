package sim

import (
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/integritee-go/integritee/attestation"
)

var (
	mr  = attestation.MrEnclave(sha256.Sum256([]byte("service binary")))
	now = time.UnixMilli(1_700_000_000_123).UTC()
)

func reportData() [64]byte {
	var rd [64]byte
	for i := range rd {
		rd[i] = byte(i)
	}
	return rd
}

func TestPublicKeyIsPublished(t *testing.T) {
	seed := sha256.Sum256([]byte("integritee simulation attestation key v1"))
	want := ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)
	if !want.Equal(PublicKey()) {
		t.Fatal("PublicKey is not derived from the published seed")
	}
	// The returned key is a copy.
	k := PublicKey()
	k[0] ^= 0xff
	if !want.Equal(PublicKey()) {
		t.Fatal("PublicKey exposes internal state")
	}
}

func TestRoundTrip(t *testing.T) {
	q := NewQuote(mr, true, reportData(), now)
	v := NewVerifier()
	if v.Method() != "sim" {
		t.Fatalf("method %q", v.Method())
	}
	r, err := v.Verify(q)
	if err != nil {
		t.Fatal(err)
	}
	want := attestation.Report{Method: "sim", MrEnclave: mr, Debug: true, ReportData: reportData(), Timestamp: now}
	if r.Method != want.Method || r.MrEnclave != want.MrEnclave || r.Debug != want.Debug ||
		r.ReportData != want.ReportData || !r.Timestamp.Equal(want.Timestamp) {
		t.Fatalf("report %+v, want %+v", r, want)
	}
	if len(q) > MaxQuoteSize {
		t.Fatalf("quote of %d bytes exceeds MaxQuoteSize", len(q))
	}
}

func TestSigningBytesDomain(t *testing.T) {
	q, err := DecodeQuote(NewQuote(mr, false, reportData(), now))
	if err != nil {
		t.Fatal(err)
	}
	sb := q.SigningBytes()
	if string(sb[:len(SignatureDomain)]) != "integritee-sim-quote:v1:" {
		t.Fatalf("domain %q", sb[:len(SignatureDomain)])
	}
	// The signed body is the canonical CBOR of the five unsigned fields.
	var body map[int]any
	if err := cbor.Unmarshal(sb[len(SignatureDomain):], &body); err != nil {
		t.Fatal(err)
	}
	if len(body) != 5 {
		t.Fatalf("body has %d fields", len(body))
	}
	if _, ok := body[6]; ok {
		t.Fatal("signature is signed over")
	}
}

func resign(q *Quote, key ed25519.PrivateKey) []byte {
	q.Signature = ed25519.Sign(key, q.SigningBytes())
	return q.Encode()
}

func TestVerifyRejects(t *testing.T) {
	v := NewVerifier()
	good := NewQuote(mr, false, reportData(), now)
	q, err := DecodeQuote(good)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(nil)

	tampered := *q
	tampered.MrEnclave[0] ^= 1 // signature no longer covers the body

	foreign := *q
	foreignQuote := resign(&foreign, other)

	wrongVersion := *q
	wrongVersion.Version = 2
	wrongVersionQuote := resign(&wrongVersion, simKey)

	shortSig := *q
	shortSig.Signature = shortSig.Signature[:63]

	noSig := *q
	noSig.Signature = nil

	// Same fields, non-canonical encoding: default (non-sorted) map order.
	type loose struct {
		Signature  []byte                `cbor:"6,keyasint"`
		Version    uint8                 `cbor:"1,keyasint"`
		MrEnclave  attestation.MrEnclave `cbor:"2,keyasint"`
		Debug      bool                  `cbor:"3,keyasint"`
		ReportData [64]byte              `cbor:"4,keyasint"`
		Timestamp  int64                 `cbor:"5,keyasint"`
	}
	em, _ := cbor.EncOptions{Sort: cbor.SortNone}.EncMode()
	unsorted, _ := em.Marshal(loose{q.Signature, q.Version, q.MrEnclave, q.Debug, q.ReportData, q.Timestamp})

	extraField, _ := cbor.Marshal(map[int]any{1: q.Version, 2: q.MrEnclave[:], 3: q.Debug, 4: q.ReportData[:], 5: q.Timestamp, 6: q.Signature, 7: 0})
	missingField, _ := cbor.Marshal(map[int]any{1: q.Version, 2: q.MrEnclave[:], 3: q.Debug, 4: q.ReportData[:], 6: q.Signature})
	shortReportData, _ := cbor.Marshal(map[int]any{1: q.Version, 2: q.MrEnclave[:], 3: q.Debug, 4: q.ReportData[:32], 5: q.Timestamp, 6: q.Signature})

	big := make([]byte, MaxQuoteSize+1)

	cases := []struct {
		name  string
		quote []byte
		want  error
	}{
		{"empty", nil, attestation.ErrBadQuote},
		{"garbage", []byte("not a quote"), attestation.ErrBadQuote},
		{"trailing bytes", append(append([]byte{}, good...), 0), attestation.ErrBadQuote},
		{"unsorted map", unsorted, attestation.ErrBadQuote},
		{"unknown field", extraField, attestation.ErrBadQuote},
		{"missing field", missingField, attestation.ErrBadQuote},
		{"short report data", shortReportData, attestation.ErrBadQuote},
		{"too large", big, attestation.ErrQuoteTooLarge},
		{"wrong version", wrongVersionQuote, attestation.ErrUnsupportedVersion},
		{"short signature", shortSig.Encode(), ErrSignatureLength},
		{"no signature", noSig.Encode(), ErrSignatureLength},
		{"tampered body", tampered.Encode(), attestation.ErrBadSignature},
		{"foreign key", foreignQuote, attestation.ErrBadSignature},
	}
	for _, c := range cases {
		r, err := v.Verify(c.quote)
		if !errors.Is(err, c.want) || r != nil {
			t.Errorf("%s: Verify = %v, %v; want %v", c.name, r, err, c.want)
		}
	}
	if !errors.Is(ErrSignatureLength, attestation.ErrBadSignature) {
		t.Error("ErrSignatureLength does not wrap ErrBadSignature")
	}
	if _, err := v.Verify(unsorted); err == nil || len(unsorted) != len(good) {
		t.Errorf("unsorted quote: %v (len %d vs %d)", err, len(unsorted), len(good))
	}
}
