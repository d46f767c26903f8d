package e2e

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"strings"
	"testing"
	"time"
)

// TestMuRaPortRefusesUnattestedClients: the validateer's mutual remote
// attestation port speaks TLS 1.3, presents an RA-TLS certificate, and
// refuses clients without a certificate or with a plain self-signed one;
// it stays up and keeps serving.
func TestMuRaPortRefusesUnattestedClients(t *testing.T) {
	n := startDevNode(t, "")
	w := startWorker(t, n, "")
	addr := fmt.Sprintf("127.0.0.1:%d", w.mura)

	plain := selfSigned(t)
	for _, c := range []struct {
		name  string
		certs []tls.Certificate
	}{
		{"no client certificate", nil},
		{"a self-signed certificate without a quote", []tls.Certificate{plain}},
	} {
		var serverCert *x509.Certificate
		conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr, &tls.Config{
			MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, Certificates: c.certs,
			VerifyConnection: func(cs tls.ConnectionState) error {
				serverCert = cs.PeerCertificates[0]
				return nil
			},
		})
		if err == nil {
			// TLS 1.3: the server's refusal of the client certificate
			// arrives with the first read.
			conn.SetDeadline(time.Now().Add(5 * time.Second))
			_, err = conn.Read(make([]byte, 1))
			conn.Close()
		}
		if err == nil || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("%s: %v, want a refused certificate", c.name, err)
		}
		if serverCert == nil || !hasExtension(serverCert, "1.3.6.1.4.1.99999.1.1") {
			t.Fatalf("%s: the server presented no RA-TLS certificate", c.name)
		}
	}
	if !w.initialized() {
		t.Fatal("the validateer stopped serving after refused MU-RA clients")
	}
}

func hasExtension(c *x509.Certificate, oid string) bool {
	for _, e := range c.Extensions {
		if e.Id.String() == oid {
			return true
		}
	}
	return false
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "not an enclave"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
