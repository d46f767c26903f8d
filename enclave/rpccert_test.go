package enclave

import (
	"crypto/tls"
	"errors"
	"testing"
	"time"
)

func TestCertRenewerMakesANewCertificateOnceTheOldOneIsDue(t *testing.T) {
	made := 0
	r := &certRenewer{every: time.Hour, make: func(time.Time) (tls.Certificate, error) {
		made++
		return tls.Certificate{Certificate: [][]byte{{byte(made)}}}, nil
	}}
	a, _ := r.get(nil)
	b, _ := r.get(nil)
	if made != 1 || a != b {
		t.Fatalf("made %d certificates for two handshakes within the period", made)
	}
	r.made = time.Now().Add(-2 * time.Hour) // due
	c, _ := r.get(nil)
	if made != 2 || c == a {
		t.Fatal("a due certificate was not renewed")
	}
	r.made = time.Now().Add(-2 * time.Hour)
	r.make = func(time.Time) (tls.Certificate, error) { return tls.Certificate{}, errors.New("quote failed") }
	if d, err := r.get(nil); err != nil || d != c {
		t.Fatalf("a failed renewal: %v; want the previous certificate served", err)
	}
}
