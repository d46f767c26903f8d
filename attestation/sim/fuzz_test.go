package sim

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/integritee-go/integritee/attestation"
)

// genuineQuotes are quotes really signed with the simulation key, over
// fixed inputs, so that the committed corpus holds the same bytes.
func genuineQuotes() [][]byte {
	var rd [64]byte
	for i := range rd {
		rd[i] = byte(i)
	}
	return [][]byte{
		NewQuote(mr, false, rd, now),
		NewQuote(mr, true, [64]byte{}, now),
		NewQuote(attestation.MrEnclave{}, false, rd, now.Add(-24*time.Hour)),
	}
}

// quoteSeeds are the genuine quotes and a few near misses.
func quoteSeeds() [][]byte {
	g := genuineQuotes()
	q, _ := DecodeQuote(g[0])
	wrongVersion := *q
	wrongVersion.Version = 2
	wrongVersion.Signature = ed25519.Sign(simKey, wrongVersion.SigningBytes())
	shortSig := *q
	shortSig.Signature = q.Signature[:10]
	return append(g, wrongVersion.Encode(), shortSig.Encode(), []byte{0xa0}, nil)
}

// FuzzVerifyQuote: whatever a host or a peer passes off as a simulation
// quote, Verify never panics, refuses with the attestation package's named
// errors, and accepts only a quote the simulation key really signed: no
// mutation of a genuine quote (re-encoding, a flipped field, a foreign
// signature) verifies. Every quote DecodeQuote accepts re-encodes to its
// input (the encoding is canonical).
func FuzzVerifyQuote(f *testing.F) {
	genuine := genuineQuotes()
	for _, q := range quoteSeeds() {
		f.Add(q)
	}
	v := NewVerifier()
	f.Fuzz(func(t *testing.T, b []byte) {
		q, derr := DecodeQuote(b)
		if derr == nil && !bytes.Equal(q.Encode(), b) {
			t.Fatalf("decoded quote re-encodes to %x, was %x", q.Encode(), b)
		}
		r, err := v.Verify(b)
		if err != nil {
			if r != nil {
				t.Fatal("Verify returned a report with its error")
			}
			named := false
			for _, e := range []error{attestation.ErrBadQuote, attestation.ErrQuoteTooLarge, attestation.ErrUnsupportedVersion, attestation.ErrBadSignature} {
				named = named || errors.Is(err, e)
			}
			if !named {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		if derr != nil {
			t.Fatalf("Verify accepted a quote DecodeQuote refuses: %v", derr)
		}
		isGenuine := false
		for _, g := range genuine {
			isGenuine = isGenuine || bytes.Equal(g, b)
		}
		if !isGenuine {
			t.Fatalf("Verify accepted a quote the simulation key did not sign: %x", b)
		}
		if r.Method != Method || r.MrEnclave != q.MrEnclave || r.Debug != q.Debug || r.ReportData != q.ReportData || r.Timestamp.UnixMilli() != q.Timestamp {
			t.Fatalf("report %+v does not state the quote %+v", r, q)
		}
	})
}
